"""The shallow classifiers `classify` offers, each with its default search grid.

Estimator libraries are imported inside the builders, so listing models or parsing
`--grid` costs nothing until a model is actually built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import UserError
from common.hardware import gpu_count
from common.text import did_you_mean

# `--grid default`: every parameter of the model's default grid (`make classify`'s default).
DEFAULT_GRID = "default"
DECADES_1E4_TO_1E3 = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
# What `--scoring` may name: scikit-learn scorer names (classify.search).
SCORINGS = ("accuracy", "balanced_accuracy", "f1_macro", "neg_log_loss")


class ModelError(UserError, ValueError):
    """An unknown model name or an unusable `--grid` request; the message lists valid names."""


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build the estimator and which values `--grid NAME` searches."""

    name: str
    summary: str
    build: Callable[[int, int], Any]  # (seed, n_jobs) -> unfitted estimator
    default_grid: Mapping[str, Sequence[Any]]


def _logreg(seed: int, n_jobs: int) -> Any:
    # newton-cg keeps float32 input as float32 (scikit-learn >= 0.19) and holds only a
    # few coefficient-sized vectors (~0.1 GB at 25,088 dims x 101 classes). lbfgs keeps
    # float32 only in recent releases, its history costs ~0.7 GB per fit at that size, and
    # at the default tolerance it stopped early on the benchmark matrix (held-out accuracy
    # 0.46 against newton-cg's 0.94 at C=1, 4x slower). Multinomial is implied.
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(solver="newton-cg")


def _rf(seed: int, n_jobs: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(random_state=seed, n_jobs=n_jobs)


def _xgb(seed: int, n_jobs: int) -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(
        tree_method="hist",
        device="cuda" if gpu_count() else "cpu",
        random_state=seed,
        n_jobs=n_jobs,
    )


def _svm(seed: int, n_jobs: int) -> Any:
    # liblinear copies float32 input to float64: a cheap baseline, not the memory-lean one.
    from sklearn.svm import LinearSVC

    return LinearSVC(random_state=seed)


def _knn(seed: int, n_jobs: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_jobs=n_jobs)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "logreg",
            "multinomial logistic regression (newton-cg)",
            _logreg,
            {"C": DECADES_1E4_TO_1E3},
        ),
        ModelSpec(
            "rf",
            "random forest",
            _rf,
            {
                "n_estimators": (100, 300, 500),
                "max_depth": (None, 10, 30),
                "max_features": ("sqrt", "log2"),
                "min_samples_leaf": (1, 2, 4),
            },
        ),
        ModelSpec(
            "xgb",
            "gradient-boosted trees (XGBoost, hist; CUDA when a GPU is visible)",
            _xgb,
            {
                "n_estimators": (100, 300),
                "max_depth": (3, 6, 9),
                "learning_rate": (0.03, 0.1, 0.3),
                "subsample": (0.8, 1.0),
            },
        ),
        ModelSpec(
            "svm",
            "linear support vector machine (baseline)",
            _svm,
            {"C": (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)},
        ),
        ModelSpec(
            "knn",
            "k nearest neighbours (baseline)",
            _knn,
            {
                "n_neighbors": (1, 3, 5, 11, 21),
                "weights": ("uniform", "distance"),
                "metric": ("euclidean", "cosine"),
            },
        ),
    )
}


def model_parameters(spec: ModelSpec) -> dict[str, Any]:
    """The parameters `--grid` may name for this model (the estimator's own), each with
    the estimator class's default value (what kind of value it takes, where it says)."""
    return type(spec.build(0, 1))().get_params(deep=False)


# Other names users give the models (lower case, without '-', '_' or spaces).
MODEL_ALIASES = {
    "logistic": "logreg", "logisticregression": "logreg", "lr": "logreg",
    "randomforest": "rf", "randomforestclassifier": "rf",
    "xgboost": "xgb", "xgbclassifier": "xgb", "gradientboosting": "xgb",
    "svc": "svm", "linearsvc": "svm", "linearsvm": "svm",
    "kneighbors": "knn", "kneighborsclassifier": "knn", "nearestneighbors": "knn",
}


def get_model(name: str) -> ModelSpec:
    """The registry entry for `name`, or a ModelError listing the models there are."""
    try:
        return MODELS[name]
    except KeyError:
        guess = did_you_mean(name, MODELS, MODEL_ALIASES)
        raise ModelError(f"unknown model '{name}'; {guess}choose one of: {', '.join(MODELS)} "
                         "(classify --list-models)") from None


def describe_models() -> str:
    """The `classify --list-models` table: each model and what `--grid NAME` searches."""
    lines = []
    for spec in MODELS.values():
        lines.append(f"{spec.name:<8}{spec.summary}")
        lines += [f"{'':<8}  --grid {param}: "
                  + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
                  for param, values in spec.default_grid.items()]
    return "\n".join(lines) + (
        "\n\nAll are installed with offtheshelf; none needs a download. --grid default "
        "searches a model's whole grid above (what `make classify` does); any other "
        "parameter of the estimator can be searched with --grid NAME=V1,V2."
    )


def parse_value(text: str) -> Any:
    """One grid value from the command line: int, float, None, true/false, else the string."""
    word = text.strip()
    lowered = word.lower()
    if lowered == "none":
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(word)
        except ValueError:
            pass
    return word


def parse_grid_option(text: str) -> tuple[str, list[Any] | None]:
    """`C` -> ("C", None) meaning "the default values"; `C=0.1,1` -> ("C", [0.1, 1])."""
    name, has_values, values = text.partition("=")
    name = name.strip()
    if not name:
        raise ModelError(f"'{text}' names no parameter; write NAME or NAME=V1,V2")
    if not has_values:
        return name, None
    parsed = [parse_value(value) for value in values.split(",") if value.strip()]
    if not parsed:
        raise ModelError(f"'{text}' gives no values; write {name}=V1,V2")
    return name, parsed


def resolve_grid(
    spec: ModelSpec, options: Iterable[str], parameters: Mapping[str, Any] | Iterable[str]
) -> dict[str, list[Any]]:
    """The parameter grid the `--grid` options ask for, checked before any data is read.

    `parameters` are the estimator's own (model_parameters: with their defaults, which
    let a text value for a number be refused here rather than after loading). `default`
    asks for the model's whole default grid; a parameter also named on its own overrides
    its default values. An empty result means "fit the defaults once, no search".
    """
    defaults = dict(parameters) if isinstance(parameters, Mapping) else dict.fromkeys(parameters)
    grid: dict[str, list[Any]] = {}
    whole_default = False
    for option in options:
        name, values = parse_grid_option(option)
        if name == DEFAULT_GRID and values is None:
            whole_default = True
            continue
        if name not in defaults:
            raise ModelError(_unknown_parameter(spec, name, defaults))
        if name in grid:
            raise ModelError(f"parameter '{name}' given twice; list its values once")
        if values is None:
            if name not in spec.default_grid:
                raise ModelError(
                    f"{spec.name} has no default values for '{name}'; give them "
                    f"({name}=V1,V2) or use one of: {', '.join(spec.default_grid)}"
                )
            values = list(spec.default_grid[name])
        _check_numbers(spec, name, values, defaults[name])
        grid[name] = values
    if whole_default:  # the default grid's order; a parameter named alone keeps its values
        grid = {**{name: list(values) for name, values in spec.default_grid.items()}, **grid}
    return grid


def _unknown_parameter(spec: ModelSpec, name: str, known: Iterable[str]) -> str:
    guess = did_you_mean(name, known)
    return f"{spec.name} has no parameter '{name}'; {guess}valid: {searchable(spec)}"


def searchable(spec: ModelSpec) -> str:
    """The model's searchable parameters (its default grid), not every argument."""
    return (f"{', '.join(spec.default_grid)} (its default grid, classify --list-models; "
            "--grid default searches all of them), or any other parameter of the estimator "
            "with values (NAME=V1,V2)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_numbers(spec: ModelSpec, name: str, values: Sequence[Any], default: Any) -> None:
    """Refuse text (or true/false) for a parameter that takes numbers: one whose default
    and default grid hold numbers (and maybe None) only. Other values are left for the
    estimator to check when it is fitted."""
    examples = [default, *spec.default_grid.get(name, ())]
    if not any(map(_is_number, examples)) or not all(
        _is_number(v) or v is None for v in examples
    ):
        return
    takes_none = None in examples
    for value in values:
        if not (_is_number(value) or (value is None and takes_none)):
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            raise ModelError(f"{spec.name}'s {name} takes numbers"
                             f"{' or None' if takes_none else ''}, not '{shown}'")
