"""Corrupted feature files meet `read_features`: each is one clear FeatureFileError line
naming the file, never another exception and never data that differs from what was
written. The named faults first, then hypothesis writing arbitrary files with raw h5py."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extract import featurefile
from tests.helpers.featurefiles import write_feature_file


def _truncate(keep: Callable[[int], int]) -> Callable[[Path], None]:
    def cut(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: keep(len(data))])
    return cut


def _edit(action: Callable[[h5py.File], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            action(f)
    return edit


def _set_value(name: str, index: Any, value: Any) -> Callable[[h5py.File], None]:
    def action(f: h5py.File) -> None:
        f[name][index] = value
    return action


def _resize(name: str, size: int) -> Callable[[h5py.File], None]:
    def action(f: h5py.File) -> None:
        f[name].resize(size, axis=0)
    return action


def _delete(name: str) -> Callable[[h5py.File], None]:
    def action(f: h5py.File) -> None:
        del f[name]
    return action


# fault -> (damage, words the message must hold). The file: 4 classes x 30 rows x 16 dims.
FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated to half": (_truncate(lambda size: size // 2), "not a readable HDF5 feature file"),
    "truncated to 1 KB": (_truncate(lambda size: 1024), "not a readable HDF5 feature file"),
    "empty file": (_truncate(lambda size: 0), "not a readable HDF5 feature file"),
    "missing features": (_edit(_delete("features")), "missing dataset(s) features"),
    "missing labels": (_edit(_delete("labels")), "missing dataset(s) labels"),
    "missing paths": (_edit(_delete("paths")), "missing dataset(s) paths"),
    "missing label_names": (_edit(_delete("label_names")), "missing dataset(s) label_names"),
    "label too big": (_edit(_set_value("labels", 7, 4)), "labels out of range 0..3"),
    "label negative": (_edit(_set_value("labels", 0, -1)), "labels out of range 0..3"),
    "NaN feature": (_edit(_set_value("features", (3, 2), np.nan)), "1 row(s) hold NaN"),
    "infinite feature": (_edit(_set_value("features", (5, 0), -np.inf)), "1 row(s) hold NaN"),
    "fewer labels": (_edit(_resize("labels", 119)), "row counts disagree"),
    "more paths": (_edit(_resize("paths", 121)), "row counts disagree"),
    "fewer features": (_edit(_resize("features", 100)), "row counts disagree"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_corrupted_file_is_one_clear_error_naming_it(fault: str, tmp_path: Path, ledger) -> None:
    path = write_feature_file(tmp_path / "toy-vgg16-avg.h5")
    damage, words = FAULTS[fault]
    damage(path)
    with pytest.raises(featurefile.FeatureFileError) as err:
        features = featurefile.read_features(path)
        ledger.record(f"corrupt feature file: {fault}", recovered=False, partial_accepted=1)
        raise AssertionError(f"accepted: {features.X.shape}")
    ledger.record("corrupt feature files (store level)", recovered=True)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and words in message, message
    assert "\n" not in message


# -- hypothesis -----------------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=6)
_FLOATS = st.floats(-1e4, 1e4, allow_nan=False, width=16)

# Each mutation: (name, must the reader refuse the file?). None: either way, but if the
# file loads it must hold exactly what was written.
_MUTATIONS: list[tuple[str, bool | None]] = [
    ("features float16", None), ("features big-endian", None), ("features float64", None),
    ("features int32", None), ("features complex", True), ("features text", True),
    ("features 1-D", True), ("features 3-D", True), ("features scalar", True),
    ("features NaN", True), ("features inf", True), ("features group", True),
    ("labels float", None), ("labels uint8", None), ("labels uint64 huge", True),
    ("labels text", True), ("labels 2-D", True), ("labels out of range", True),
    ("labels -1", True), ("paths int", None), ("paths fixed bytes", None),
    ("paths 2-D", True), ("paths bad utf-8", True), ("label_names int", None),
    ("label_names 2-D", True), ("skipped int", None), ("skipped 2-D", True),
    ("drop features", True), ("drop labels", True), ("drop paths", True),
    ("drop label_names", True), ("format_version 2", True), ("format_version 0", True),
    ("format_version text", True), ("format_version float", None),
    ("format_version array", True), ("format_version bool", True), ("format_version empty", True),
    ("drop format_version", True), ("complete False", True), ("complete 1", None),
    ("complete text", None), ("drop complete", True), ("n_written -1", True),
    ("n_written +1", True), ("n_written -1 row", True), ("n_written text", True),
    ("n_written float", True), ("n_written array", True), ("drop n_written", None),
    ("extra attr", None), ("extra rows everywhere", None),
]


def _target(mutation: tuple[str, bool | None]) -> str:
    """What a mutation changes: one mutation per dataset or attribute, so none undoes
    another ("drop features" and "features NaN" both change features)."""
    what, _, how = mutation[0].partition(" ")
    return how if what == "drop" else what


@st.composite
def feature_files(draw: st.DrawFn) -> dict[str, Any]:
    """A valid file's contents, then zero or more mutations applied to them."""
    n = draw(st.integers(0, 6))
    dim = draw(st.integers(0, 4))
    classes = draw(st.integers(1, 4))
    spec: dict[str, Any] = {
        "features": np.array(draw(st.lists(st.lists(_FLOATS, min_size=dim, max_size=dim),
                                           min_size=n, max_size=n)), np.float32).reshape(n, dim),
        "labels": np.array(draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)),
                           np.int32),
        "paths": draw(st.lists(_TEXT, min_size=n, max_size=n)),
        "label_names": draw(st.lists(_TEXT, min_size=classes, max_size=classes)),
        "skipped": draw(st.lists(_TEXT, max_size=2)),
        "attrs": {"format_version": 1, "complete": True, "n_written": n, "backbone": "vgg16"},
    }
    spec["mutations"] = draw(st.lists(st.sampled_from(_MUTATIONS), max_size=3,
                                      unique_by=_target))
    return spec


def _text_array(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=h5py.string_dtype())


def _write(path: Path, spec: dict[str, Any]) -> None:
    """Write `spec` with raw h5py, applying its mutations."""
    data: dict[str, Any] = {
        "features": spec["features"], "labels": spec["labels"],
        "paths": _text_array(spec["paths"]), "label_names": _text_array(spec["label_names"]),
        "skipped": _text_array(spec["skipped"]),
    }
    attrs: dict[str, Any] = dict(spec["attrs"])
    groups: set[str] = set()
    n = len(spec["labels"])
    for name, _ in spec["mutations"]:
        what, _, how = name.partition(" ")
        if what == "drop":
            data.pop(how, None)
            attrs.pop(how, None)
        elif what == "extra" and how == "attr":
            attrs["whatever"] = np.arange(3)
        elif what == "extra":
            for key in ("features", "labels", "paths"):
                if key in data and getattr(data[key], "ndim", 0) >= 1:
                    data[key] = np.concatenate([data[key], data[key][:1]]) if len(data[key]) \
                        else data[key]
            if n == 0:  # nothing to repeat: make the counts disagree another way
                data["labels"] = np.zeros(1, np.int32)
        elif what in ("format_version", "complete", "n_written"):
            attrs[what] = {
                "2": 2, "0": 0, "text": "1", "float": 1.0 * (n if what == "n_written" else 1),
                "array": np.array([1, 1]), "bool": True, "empty": h5py.Empty("i4"),
                "False": False, "1": 1, "-1": -1, "+1": n + 1, "-1 row": n - 1,
            }.get(how, "yes") if what != "complete" or how != "text" else "True"
        elif what in data:
            data[what] = _mutate_dataset(what, how, data[what], groups)
    with h5py.File(path, "w") as f:
        for name, value in data.items():
            if name in groups:
                f.create_group(name)
            else:
                f.create_dataset(name, data=value)
        for key, value in attrs.items():
            f.attrs[key] = value


def _mutate_dataset(name: str, how: str, value: np.ndarray, groups: set[str]) -> Any:
    if how == "float16":
        return value.astype(np.float16)
    if how == "big-endian":
        return value.astype(">f4")
    if how == "float64":
        return value.astype(np.float64)
    if how == "int32":
        return value.astype(np.int32)
    if how == "complex":
        return value.astype(np.complex64)
    if how == "text":
        return _text_array([str(v) for v in np.ravel(value)])
    if how == "1-D":
        return np.ravel(value)
    if how == "3-D":
        return value[..., None]
    if how == "scalar":
        return np.float32(1.0)
    if how in ("NaN", "inf"):
        value = value.copy()
        if value.size:
            value.flat[0] = np.nan if how == "NaN" else np.inf
        else:
            value = np.full((1, 1), np.nan if how == "NaN" else np.inf, np.float32)
        return value
    if how == "group":
        groups.add(name)
        return value
    if how == "float":
        return value.astype(np.float64) + 0.5
    if how == "uint8":
        return value.astype(np.uint8)
    if how == "uint64 huge":
        return np.full(max(len(value), 1), 2**64 - 1, np.uint64)
    if how == "2-D":
        if not len(value):
            value = _text_array([""]) if value.dtype.kind == "O" else np.zeros(1, value.dtype)
        return np.stack([value, value], axis=1)
    if how == "out of range":
        return np.full(max(len(value), 1), 99, np.int32)
    if how == "-1":
        return np.full(max(len(value), 1), -1, np.int32)
    if how == "int":
        return np.arange(len(value))
    if how == "fixed bytes":
        return np.array([v.encode() if isinstance(v, str) else v for v in value.tolist()],
                        dtype="S") if len(value) else np.zeros(0, "S1")
    if how == "bad utf-8":
        return np.array([b"\xff\xfe"] * max(len(value), 1), dtype=h5py.string_dtype("utf-8"))
    raise AssertionError(how)


def _text_of(values: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=feature_files())
def test_any_file_loads_as_written_or_is_refused_cleanly(spec: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.h5"
        _write(path, spec)
        with h5py.File(path, "r") as f:  # what is really on disk, after h5py's conversions
            written = {name: f[name][()] for name in f if isinstance(f[name], h5py.Dataset)}
        try:
            got = featurefile.read_features(path)
        except featurefile.FeatureFileError as exc:
            message = str(exc)
            assert message.startswith(f"{path}: ") and "\n" not in message, message
            assert spec["mutations"], f"a valid file was refused: {message}"
            return
    must_refuse = [name for name, refuse in spec["mutations"] if refuse]
    assert not must_refuse, f"loaded a file with {must_refuse}"
    n = len(got.paths)
    assert n == int(spec["attrs"]["n_written"]) or "drop n_written" in dict(spec["mutations"])
    np.testing.assert_array_equal(got.X, np.asarray(written["features"][:n], np.float32))
    assert got.X.dtype == np.float32
    assert np.array_equal(got.y, written["labels"][:n])
    assert got.paths == _text_of(written["paths"][:n])
    assert got.label_names == _text_of(written["label_names"])
    if "skipped" in written:
        assert got.skipped == _text_of(written["skipped"])
