"""Classifier search: `classify --model logreg --grid C` against a plain GridSearchCV.

Both run in this one benchmark on the same synthetic feature files (class structure,
so accuracy means something) and the same stratified split: `classify` as a child
process (its phases timed by itself: load, search with its refit, test), the plain search
here: read the file, GridSearchCV(LogisticRegression(), {"C": same values}, cv=3) on
the training part, score on the test part. Shapes: Caltech-101 through VGG16 flatten
(8,677 x 25,088, 101 classes) and a pooled backbone (8,677 x 2,048).
Targets: classify at least 4x faster on the first shape and 3.5x on the second, at equal
test accuracy (within 0.5 point).

A second table times what the search's fits run on: one fold's C path (newton-cg, warm
starts, the row-space coordinates where classify uses them), on the rows as they are
and centred, side by side.

The pooled file's class means are weaker than the flatten file's distances would make
them at 2,048 dims (0.42): with those, the classes were separable, every C scored 1.0
and the accuracy comparison said nothing. At POOLED_SIGNAL the test accuracy is about
0.93 and the C values score differently.

    .venv/bin/python -m bench.classify_search [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import click

from bench.classify_memory import write_synthetic
from bench.report import emit
from classify.models import DECADES_1E4_TO_1E3
from classify.protocol import split_rows
from extract.featurefile import FeatureFileError, read_attrs, read_features

POOLED_SIGNAL = 0.24
# rows, features, classes, class-mean scale (None: write_synthetic's default)
FULL = ((8677, 25088, 101, None), (8677, 2048, 101, POOLED_SIGNAL))
QUICK = ((2000, 4096, 20, None),)
WORKDIR = Path(tempfile.gettempdir()) / "offtheshelf-bench"


def synthetic_file(rows: int, dims: int, classes: int, signal: float | None) -> Path:
    """A complete synthetic feature file of this shape, written once and kept."""
    suffix = "" if signal is None else f"-signal{signal:g}"
    path = WORKDIR / "features" / f"synthetic-{rows}x{dims}-{classes}{suffix}.h5"
    try:
        if read_attrs(path).get("complete"):
            return path
    except FeatureFileError:
        pass
    click.echo(f"writing {path} ({rows * dims * 4 / 1e9:.2f} GB of float32) ...")
    write_synthetic(path, rows, dims, classes, signal)
    return path


def run_classify(features: Path) -> dict:
    """One `classify --model logreg --grid C` run; its own phase timings and accuracy."""
    outputs = WORKDIR / "outputs"
    command = [sys.executable, "-m", "classify", "--features", str(features), "--outputs",
               str(outputs), "--model", "logreg", "--grid", "C"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise click.ClickException(f"classify failed:\n{done.stdout}{done.stderr}")
    report = next(line.split()[1] for line in done.stdout.splitlines()
                  if line.startswith("saved"))
    metrics = json.loads((Path(report) / "metrics.json").read_text())
    seconds = sum(metrics["timings"][phase] for phase in ("load", "search", "test"))
    return {"seconds": seconds, "accuracy": metrics["accuracy"],
            "best_C": metrics["best_params"]["C"]}


def run_plain(features: Path) -> dict:
    """The textbook search on the same split: GridSearchCV(LogisticRegression(), C, cv=3)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    started = time.perf_counter()
    data = read_features(features)
    train, test = split_rows(data.y, 0.25, 42)
    search = GridSearchCV(LogisticRegression(), {"C": list(DECADES_1E4_TO_1E3)}, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs's ConvergenceWarnings, one per fit
        search.fit(data.X[train], data.y[train])
    accuracy = search.score(data.X[test], data.y[test])
    return {"seconds": time.perf_counter() - started, "accuracy": accuracy,
            "best_C": search.best_params_["C"]}


def fold_path_seconds(features: Path) -> dict:
    """One fold's warm C path with the search's own estimator, on the rows as they are and
    centred: seconds, Newton iterations and the best validation accuracy of each."""
    from sklearn.model_selection import StratifiedKFold

    from classify.models import get_model
    from classify.search.logreg import centre
    from classify.search.rowspace import RowSpaceBasis

    data = read_features(features)
    train, _ = split_rows(data.y, 0.25, 42)
    X, y = data.X[train], data.y[train]
    Z = RowSpaceBasis().fit_transform(X) if X.shape[0] < X.shape[1] else X
    fold_train, fold_test = next(StratifiedKFold(3).split(Z, y))
    row: dict = {"shape": f"{len(data.y)}x{X.shape[1]}", "fit_width": Z.shape[1]}
    for name in ("as_is", "centred"):
        Z_train, Z_test = Z[fold_train], Z[fold_test]
        if name == "centred":
            Z_test -= centre(Z_train)
        model = get_model("logreg").build(42, 1).set_params(warm_start=True)
        started, iterations, best = time.perf_counter(), 0, 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter, if any
            for C in DECADES_1E4_TO_1E3:
                model.set_params(C=C).fit(Z_train, y[fold_train])
                iterations += int(model.n_iter_.max())
                best = max(best, model.score(Z_test, y[fold_test]))
        row |= {f"{name}_s": time.perf_counter() - started, f"{name}_newton_iters": iterations,
                f"{name}_best_val_acc": best}
    row["speedup"] = row["as_is_s"] / row["centred_s"]
    return row


@click.command()
@click.option("--quick", is_flag=True, help="One small shape (2,000 x 4,096, 20 classes).")
def main(quick: bool) -> None:
    """classify's logistic-regression search against a plain GridSearchCV, side by side."""
    rows = []
    for n, dims, classes, signal in QUICK if quick else FULL:
        features = synthetic_file(n, dims, classes, signal)
        ours, plain = run_classify(features), run_plain(features)
        rows.append({
            "shape": f"{n}x{dims}", "classes": classes,
            "classify_s": ours["seconds"], "plain_s": plain["seconds"],
            "speedup": plain["seconds"] / ours["seconds"],
            "classify_acc": ours["accuracy"], "plain_acc": plain["accuracy"],
            "acc_diff_points": 100 * (ours["accuracy"] - plain["accuracy"]),
            "classify_C": ours["best_C"], "plain_C": plain["best_C"],
        })
    emit("classify_search", {"rows": rows, "C_values": list(DECADES_1E4_TO_1E3)}, rows,
         note="synthetic ReLU-like features with class means; same split (seed 42, test "
              "0.25); classify --jobs -1 vs GridSearchCV defaults (lbfgs, n_jobs=None)")
    paths = [fold_path_seconds(synthetic_file(*shape)) for shape in (QUICK if quick else FULL)]
    emit("classify_search_centring", {"rows": paths}, paths,
         note="one fold's C path, 8 values, newton-cg with warm starts, all BLAS threads; "
              "rows as they are against centred")


if __name__ == "__main__":
    main()
