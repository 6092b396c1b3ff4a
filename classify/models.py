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


def model_parameters(spec: ModelSpec) -> list[str]:
    """The parameters `--grid` may name for this model (the estimator's own)."""
    return list(spec.build(0, 1).get_params(deep=False))


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
        "\n\nAll are installed with offtheshelf; none needs a download. Any other parameter "
        "of the estimator can be searched with --grid NAME=V1,V2."
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
    spec: ModelSpec, options: Iterable[str], parameters: Iterable[str]
) -> dict[str, list[Any]]:
    """The parameter grid the `--grid` options ask for; `parameters` are the estimator's own.

    An empty result means "fit the defaults once, no search".
    """
    known = sorted(parameters, key=str.lower)
    grid: dict[str, list[Any]] = {}
    for option in options:
        name, values = parse_grid_option(option)
        if name not in known:
            raise ModelError(f"{spec.name} has no parameter '{name}'; valid: {', '.join(known)}")
        if name in grid:
            raise ModelError(f"parameter '{name}' given twice; list its values once")
        if values is None:
            if name not in spec.default_grid:
                raise ModelError(
                    f"{spec.name} has no default values for '{name}'; give them "
                    f"({name}=V1,V2) or use one of: {', '.join(spec.default_grid)}"
                )
            values = list(spec.default_grid[name])
        grid[name] = values
    return grid
