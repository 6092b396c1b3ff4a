"""Issue 26, item 14 (classify): every usage error is refused before the features load,
with exit status 2, and the advice given is possible."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.classifying import FAST, assert_one_line_error, run
from tests.helpers.featurefiles import write_feature_file


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("C=abc", "logreg's C takes numbers, not 'abc'"),
        ("C=true", "logreg's C takes numbers, not 'true'"),
        ("C=None", "logreg's C takes numbers, not 'None'"),
        ("gamma=1", "logreg has no parameter 'gamma'"),
    ],
)
def test_a_bad_grid_is_refused_before_loading(outputs: Path, grid: str, message: str) -> None:
    # The file does not exist: loading it first would end in exit 1 and another message.
    missing = outputs / "features" / "absent.h5"
    result = run(outputs, "--features", str(missing), "--grid", grid)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, f"Invalid value for '--grid': {message}")
    assert "loaded" not in result.output


def test_none_is_a_number_parameter_value_where_the_default_grid_has_it(outputs: Path) -> None:
    missing = outputs / "features" / "absent.h5"
    result = run(outputs, "--features", str(missing), "--model", "rf",
                 "--grid", "max_depth=None,abc")
    assert_one_line_error(result, "rf's max_depth takes numbers or None, not 'abc'")


def test_text_values_pass_where_the_parameter_takes_text(feature_file: Path,
                                                         outputs: Path) -> None:
    result = run(outputs, "--model", "knn", "--grid", "weights=uniform,distance",
                 "--grid", "n_neighbors=3", "--jobs", "1")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--backbone", "vgg61",
         ("Invalid value for '--backbone': no feature file in {folder} has backbone 'vgg61'; "
         "did you mean vgg16? the files have vgg16 (extract --list shows them; extract "
         "--backbone NAME makes one)")),
        ("--pooling", "mean",
         ("Invalid value for '--pooling': no feature file in {folder} has pooling 'mean'; the "
         "files have avg (extract --list shows them; extract --pooling NAME makes one)")),
    ],
)
def test_a_misspelt_backbone_or_pooling_is_a_usage_error(
    feature_file: Path, outputs: Path, option: str, value: str, message: str
) -> None:
    backbone = [] if option == "--backbone" else ["--backbone", "vgg16"]
    result = run(outputs, "--dataset", "toy", *backbone, option, value)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, message.format(folder=outputs / "features"))


def test_a_backbone_only_the_feature_files_name_is_accepted(outputs: Path) -> None:
    """A file another tool wrote, with its own backbone and pooling names."""
    path = write_feature_file(outputs / "features" / "toy-mynet-gem.h5",
                              attrs={"backbone": "mynet", "pooling": "gem"})
    result = run(outputs, "--dataset", "toy", "--backbone", "mynet", "--pooling", "gem", *FAST)
    assert result.exit_code == 0, result.output
    assert f"features    {path}" in result.output


def test_scale_with_cluster_gives_advice_that_can_be_followed(feature_file: Path,
                                                              outputs: Path) -> None:
    result = run(outputs, "--features", str(feature_file), "--cluster", "local:2", "--scale")
    assert result.exit_code == 2
    assert_one_line_error(result, "--scale is not supported with --cluster; drop --scale, or "
                          "run without --cluster to standardise the features inside each fold")
    assert "extract" not in result.output.splitlines()[-1]
