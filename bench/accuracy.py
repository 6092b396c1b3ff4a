"""Accuracy: logreg with a C search on flowers17 (all 1,360 photos), by backbone, pooling
and fusion of cached feature files, through the `extract` and `classify` commands.

Each feature file is extracted once (the tool reuses it on a rerun, `--force` extracts
again) into outputs/bench/accuracy/features/; its img/s is the figure `extract`
printed when it ran, kept beside the files. Every row is one `classify --model logreg
--grid C` run with the tool's own split (test size 0.25, seed 42). A fused row reads
several files of the same photos (`classify --features A --features B`); its img/s is
what extracting all of them costs per photo.

    .venv/bin/python -m bench.accuracy [--force]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from bench.photos import flowers_subset
from bench.report import BENCH_DIR, emit
from classify.report.ledger import read_rows
from extract.datasets import FLOWERS17_CLASSES, FLOWERS17_PER_CLASS

WORK = BENCH_DIR / "accuracy"
BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
POOLINGS = ("avg", "max")
FILES = tuple((backbone, pooling) for backbone in BACKBONES for pooling in POOLINGS)
# Fused rows, each a tuple of files; all are run and the best is marked.
FUSIONS = (
    *(((backbone, "avg"), (backbone, "max")) for backbone in BACKBONES),
    (("efficientnet_lite1", "avg"), ("efficientnet_lite2", "avg")),
    tuple((backbone, "avg") for backbone in BACKBONES),
    FILES,
)
# file name -> {"img_s": rate, "load": 1-minute load average after, "mtime_ns": of the file}
RATES_FILE = "rates.json"


def _bin(command: str) -> str:
    return str(Path(sys.executable).with_name(command))


def feature_path(backbone: str, pooling: str) -> Path:
    return WORK / "features" / f"flowers17-{backbone}-{pooling}.h5"


def extract(dataset: Path, backbone: str, pooling: str, force: bool) -> dict[str, float]:
    """Extract (or reuse) one file; its img/s and the machine's load when it was extracted
    (the machine is shared: the load says how far to trust the rate)."""
    path = feature_path(backbone, pooling)
    rates_path = path.parent / RATES_FILE
    rates = json.loads(rates_path.read_text()) if rates_path.is_file() else {}
    command = [_bin("extract"), "--dataset", str(dataset), "--backbone", backbone,
               "--pooling", pooling, "--output", str(path), *(["--force"] if force else [])]
    print(" ".join(command[1:]), flush=True)
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    print(done.stdout.strip().splitlines()[-1], flush=True)
    measured = re.findall(r"([\d.]+) images/s", done.stdout)  # the summary's; none if reused
    if measured:
        rates[path.name] = {"img_s": float(measured[-1]), "load": os.getloadavg()[0],
                            "mtime_ns": path.stat().st_mtime_ns}
        rates_path.write_text(json.dumps(rates, indent=2))
    known = rates.get(path.name)
    if known is None or known["mtime_ns"] != path.stat().st_mtime_ns:
        raise click.ClickException(f"{path}: reused, but its extraction rate was not recorded; "
                                   "rerun with --force")
    return known


def classify(files: tuple[tuple[str, str], ...], outputs: Path) -> dict[str, str]:
    """One logreg --grid C run on the (fused) files, in a fresh `outputs`; its ledger row."""
    features = [arg for f in files for arg in ("--features", str(feature_path(*f)))]
    command = [_bin("classify"), *features, "--model", "logreg", "--grid", "C",
               "--outputs", str(outputs)]
    print(" ".join(command[1:]), flush=True)
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:  # its stderr is solver warnings when all goes well
        raise click.ClickException(f"classify failed:\n{done.stdout}{done.stderr}")
    (row,) = read_rows(outputs / "results.csv")
    return row


def label(files: tuple[tuple[str, str], ...]) -> str:
    return " + ".join(f"{backbone.removeprefix('efficientnet_')} {pooling}"
                      for backbone, pooling in files)


@click.command()
@click.option("--force", is_flag=True, help="Extract every file again (new img/s figures).")
def main(force: bool) -> None:
    """Accuracy and macro F1 of logreg --grid C per feature file and per fusion."""
    dataset = flowers_subset(len(FLOWERS17_CLASSES) * FLOWERS17_PER_CLASS, WORK / "flowers17")
    rates = {f: extract(dataset, *f, force) for f in FILES}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as scratch:
        for number, files in enumerate((*((f,) for f in FILES), *FUSIONS)):
            ledger = classify(files, Path(scratch) / f"run-{number}")
            rows.append({
                "features": label(files),
                "fused": len(files) > 1,
                "accuracy": round(float(ledger["accuracy"]), 4),
                "macro_f1": round(float(ledger["macro_f1"]), 4),
                "best": ledger["params"],
                # Extracting every file of the row, one after the other, per photo.
                "extract_img_s": round(1 / sum(1 / rates[f]["img_s"] for f in files), 1),
                "load": round(max(rates[f]["load"] for f in files), 1),
            })
    best_single = max((r for r in rows if not r["fused"]), key=lambda r: r["accuracy"])
    best_fused = max((r for r in rows if r["fused"]), key=lambda r: r["accuracy"])
    emit("accuracy", {"rows": rows, "best_single": best_single, "best_fused": best_fused}, rows,
         note="flowers17, 1,360 photos, logreg --grid C, test size 0.25, seed 42; img/s "
              "on a shared machine, load = its highest 1-minute load average after an "
              "extraction of the row")
    print(f"best single file: {best_single['features']} {best_single['accuracy']:.4f}; "
          f"best fusion: {best_fused['features']} {best_fused['accuracy']:.4f}")


if __name__ == "__main__":
    main()
