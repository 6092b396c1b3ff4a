"""Issue 26, item 4: --image-size with several --backbone: once for all of them, or once
per backbone in order, and the advice to narrow down with it works."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.classifying import FAST, assert_one_line_error, run
from tests.helpers.featurefiles import write_feature_file


@pytest.fixture
def lite_files(outputs: Path) -> dict[str, Path]:
    """The same images through lite0 at 224 and 260 px, and lite1 at 240 px only."""
    folder = outputs / "features"
    return {
        name: write_feature_file(folder / f"toy-{backbone}-avg-{size}.h5",
                                 attrs={"backbone": backbone, "input_size": size})
        for name, backbone, size in (("lite0_224", "efficientnet_lite0", 224),
                                     ("lite0_260", "efficientnet_lite0", 260),
                                     ("lite1_240", "efficientnet_lite1", 240))
    }


BOTH = ("--dataset", "toy", "--backbone", "efficientnet_lite0",
        "--backbone", "efficientnet_lite1")


def test_ambiguous_backbone_advises_one_image_size_per_backbone(
    lite_files: dict[str, Path], outputs: Path
) -> None:
    result = run(outputs, *BOTH, *FAST)
    assert result.exit_code == 1
    assert ("narrow down with --pooling or --image-size (one per --backbone, in order), "
            "or name one with --features") in result.output


def test_following_the_advice_fuses_the_files(lite_files: dict[str, Path], outputs: Path
                                              ) -> None:
    result = run(outputs, *BOTH, "--image-size", "224", "--image-size", "240", *FAST)
    assert result.exit_code == 0, result.output
    assert f"features    {lite_files['lite0_224']}" in result.output
    assert f"features    {lite_files['lite1_240']}" in result.output


def test_one_size_for_two_backbones_lists_the_sizes_there_are(
    lite_files: dict[str, Path], outputs: Path
) -> None:
    result = run(outputs, *BOTH, "--image-size", "224", *FAST)
    assert result.exit_code == 1
    assert ("no complete feature file for --dataset toy --backbone efficientnet_lite1 "
            "--image-size 224; the efficientnet_lite1 files have other settings:"
            ) in result.output
    assert "toy-efficientnet_lite1-avg-240.h5: efficientnet_lite1 avg 240px" in result.output
    assert "--image-size (one per --backbone, in order)" in result.output


def test_one_size_still_applies_to_every_backbone(lite_files: dict[str, Path], outputs: Path
                                                  ) -> None:
    write_feature_file(outputs / "features" / "toy-efficientnet_lite1-avg-224.h5",
                       attrs={"backbone": "efficientnet_lite1", "input_size": 224})
    result = run(outputs, *BOTH, "--image-size", "224", *FAST)
    assert result.exit_code == 0, result.output


def test_a_size_count_that_fits_no_backbone_is_a_usage_error(
    lite_files: dict[str, Path], outputs: Path
) -> None:
    result = run(outputs, *BOTH, *["--image-size", "224"] * 3)
    assert result.exit_code == 2
    assert_one_line_error(result, "3 --image-size for 2 --backbone: give one for every "
                          "backbone, or one per --backbone, in order")
