"""The model registry and `--grid` parsing."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from classify.models import (
    DECADES_1E4_TO_1E3,
    MODELS,
    ModelError,
    get_model,
    model_parameters,
    parse_grid_option,
    parse_value,
    resolve_grid,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("-2", -2),
        ("0.01", 0.01),
        ("1e-3", 0.001),
        ("None", None),
        ("none", None),
        ("true", True),
        ("False", False),
        ("sqrt", "sqrt"),
        (" log2 ", "log2"),
    ],
)
def test_parse_value_types(text: str, expected: object) -> None:
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_parse_grid_option_name_only_means_defaults() -> None:
    assert parse_grid_option("C") == ("C", None)


def test_parse_grid_option_explicit_values() -> None:
    assert parse_grid_option("max_depth=3,None,6") == ("max_depth", [3, None, 6])


@pytest.mark.parametrize("text", ["=1,2", "C=", "C=,"])
def test_parse_grid_option_rejects_empty_parts(text: str) -> None:
    with pytest.raises(ModelError):
        parse_grid_option(text)


def test_every_model_builds_and_its_default_grid_names_real_parameters() -> None:
    for spec in MODELS.values():
        parameters = set(model_parameters(spec))
        assert set(spec.default_grid) <= parameters, spec.name


def test_logreg_default_c_grid_is_decades_from_1e4_to_1e3() -> None:
    grid = resolve_grid(MODELS["logreg"], ["C"], ["C", "max_iter"])
    assert grid == {"C": list(DECADES_1E4_TO_1E3)}
    assert grid["C"][0] == 1e-4 and grid["C"][-1] == 1e3


def test_repeated_grid_options_make_a_product_grid() -> None:
    spec = MODELS["rf"]
    grid = resolve_grid(spec, ["max_depth=3,None", "n_estimators"], model_parameters(spec))
    assert grid == {"max_depth": [3, None], "n_estimators": list(spec.default_grid["n_estimators"])}


def test_no_grid_means_no_search() -> None:
    assert resolve_grid(MODELS["logreg"], [], ["C"]) == {}


def test_unknown_parameter_lists_the_valid_ones() -> None:
    # Issue 26: the searchable parameters (the default grid), not every constructor argument.
    with pytest.raises(
        ModelError, match=r"logreg has no parameter 'gamma'; valid: C \(its default grid"
    ) as raised:
        resolve_grid(MODELS["logreg"], ["gamma=1"], model_parameters(MODELS["logreg"]))
    assert "max_iter" not in str(raised.value)


def test_parameter_without_default_values_needs_explicit_ones() -> None:
    with pytest.raises(ModelError, match="no default values for 'max_iter'.*use one of: C"):
        resolve_grid(MODELS["logreg"], ["max_iter"], ["C", "max_iter"])


def test_parameter_given_twice_is_refused() -> None:
    with pytest.raises(ModelError, match="given twice"):
        resolve_grid(MODELS["logreg"], ["C", "C=1"], ["C"])


def test_unknown_model_lists_the_registry() -> None:
    with pytest.raises(
        ModelError,
        match=r"unknown model 'svc'; did you mean svm\? choose one of: logreg, rf, xgb, svm, knn",
    ):
        get_model("svc")


def test_logreg_fits_float32_without_a_float64_copy() -> None:
    """The memory budget assumes the features are never upcast: a float64 copy would
    double the largest allocation."""
    rng = np.random.default_rng(0)
    y = np.arange(600) % 10
    X = (rng.normal(size=(10, 2000))[y] + rng.normal(size=(600, 2000))).astype(np.float32)
    estimator = MODELS["logreg"].build(0, 1)
    tracemalloc.start()
    try:
        estimator.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert estimator.coef_.dtype == np.float32
    assert peak < 0.5 * X.nbytes
