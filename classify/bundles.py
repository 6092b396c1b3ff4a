"""Model bundles that load without running code.

A bundle is a folder: bundle.json (the metadata, classify.report.records.ModelBundle), and
the estimator as skops (scikit-learn objects; loading refuses any type outside
TRUSTED_TYPES, so a shared file cannot run code) or, for XGBoost, the booster in
XGBoost's own JSON (any steps before it in skops). Bundles of format 1 (one .joblib
pickle) still load, but only when the user says they trust the file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from classify.report.records import BUNDLE_FORMAT_VERSION, ModelBundle, write_json
from common.errors import UserError

METADATA = "bundle.json"
ESTIMATOR = "estimator.skops"
PREPROCESS = "preprocess.skops"
BOOSTER = "booster.json"
# The names and first bytes of a format-1 bundle, as joblib.dump writes it: a pickle
# (protocol 2 and later open with b"\x80"), or one compressed by joblib's zlib (its
# default), gzip, bz2, xz, lzma or lz4 (the prefixes in joblib/compressor.py).
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
PICKLE_PREFIXES = (b"\x80", b"\x78", b"\x1f\x8b", b"BZ", b"\xfd7zXZ", b"\x5d\x00",
                   b"\x04\x22\x4d\x18")
NOT_A_MODEL = ("not a model saved by classify (expected a folder in outputs/models/ "
               f"holding {METADATA})")
# Types beyond skops' defaults that classify's own models are made of.
TRUSTED_TYPES = frozenset({
    "classify.scaling.BlockwiseStandardScaler",
    "sklearn.tree._tree.Tree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
})


class BundleError(UserError):
    """A model bundle that cannot be used; the message names it and the way out."""


def _is_xgboost(estimator: Any) -> bool:
    return type(estimator).__module__.startswith("xgboost")


def save_bundle(folder: Path, bundle: ModelBundle) -> None:
    """Write the bundle aside and rename it into place once complete."""
    import skops.io as sio
    from sklearn.pipeline import Pipeline


    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    estimator = bundle.estimator
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if _is_xgboost(final):
        final.save_model(partial / BOOSTER)
        if isinstance(estimator, Pipeline) and len(estimator) > 1:
            sio.dump(estimator[:-1], partial / PREPROCESS)
    else:
        sio.dump(estimator, partial / ESTIMATOR)
    write_json(partial / METADATA, bundle.metadata())
    partial.rename(folder)


def _load_skops(path: Path) -> Any:
    import skops.io as sio

    untrusted = set(sio.get_untrusted_types(file=path)) - TRUSTED_TYPES
    if untrusted:
        raise BundleError(f"{path}: holds types classify never saves ({', '.join(sorted(untrusted))}); "
                          "refused, as loading them could run code")
    return sio.load(path, trusted=sorted(TRUSTED_TYPES))


def _load_folder(folder: Path) -> ModelBundle:
    from sklearn.pipeline import Pipeline
    from xgboost import XGBClassifier

    try:
        metadata = json.loads((folder / METADATA).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{folder}: no {METADATA}; not a model saved by classify") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{folder / METADATA}: unreadable ({exc})") from None
    if int(metadata.get("format_version", 0)) > BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{folder}: model format {metadata['format_version']} is newer than "
                          "this offtheshelf reads; upgrade offtheshelf")
    if (folder / BOOSTER).exists():
        estimator: Any = XGBClassifier()
        estimator.load_model(folder / BOOSTER)
        if (folder / PREPROCESS).exists():
            estimator = Pipeline([*_load_skops(folder / PREPROCESS).steps, ("model", estimator)])
    else:
        estimator = _load_skops(folder / ESTIMATOR)
    try:
        return ModelBundle(estimator=estimator, **metadata)
    except TypeError as exc:
        raise BundleError(f"{folder / METADATA}: not a model saved by classify ({exc})") from None


def _load_pickle(path: Path) -> ModelBundle:
    """A format-1 bundle: one joblib pickle holding a dict with one extractor."""
    import joblib

    try:
        old = joblib.load(path)
    except Exception:  # noqa: BLE001 - unpickling raises many types for a bad file
        # Their text is often a bare byte or number ("35"): say what it means instead.
        raise BundleError(f"{path}: not a model saved by classify (it cannot be read as "
                          "one; classify saves models to outputs/models/<name>/)") from None
    if not isinstance(old, dict) or "estimator" not in old or "extractor" not in old:
        raise BundleError(f"{path}: {NOT_A_MODEL}")
    return ModelBundle(
        model=old.get("model", "?"), estimator=old["estimator"],
        label_names=list(old["label_names"]), params=old.get("params", {}),
        scale=bool(old.get("scale", False)), extractors=[old["extractor"]],
        features=[str(old.get("features", ""))],
        dataset_fingerprints=[old.get("dataset_fingerprint")],
        metrics=old.get("metrics", {}), created=old.get("created", ""),
        versions=old.get("versions", {}), format_version=int(old.get("format_version", 1)),
    )


def is_pickle(path: Path) -> bool:
    """Whether `path` is named and starts like a file joblib.dump wrote."""
    if path.suffix.lower() not in PICKLE_SUFFIXES:
        return False
    with path.open("rb") as f:
        return f.read(8).startswith(PICKLE_PREFIXES)


def load_bundle(path: Path, *, trust: bool = False, warn: Callable[[str], None] = print
                ) -> ModelBundle:
    """The bundle at `path` (its folder or bundle.json; a joblib pickle only with `trust`);
    any other file is refused before it is opened as a pickle."""
    if path.name == METADATA:
        path = path.parent
    if path.is_dir():
        return _load_folder(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such model (classify writes them to outputs/models/)")
    if not is_pickle(path):
        raise BundleError(f"{path}: {NOT_A_MODEL}")
    if not trust:
        raise BundleError(f"{path}: an old pickled model, which can run any code when loaded; "
                          "pass --trust if you made it or trust who did")
    warn(f"warning: loading {path} with pickle (--trust): it runs whatever code the file holds")
    return _load_pickle(path)
