"""One feature file over many part files, with HDF5 virtual datasets (no copying).

`extract --cluster` has each worker write a complete feature file for its shard of the
sorted image list. The output file maps `features`, `labels` and `paths` onto those
parts in shard order, so any HDF5 reader sees the usual datasets, rows and attributes.
Part names are stored relative to the output, so the folder can be moved as a whole.
Only h5py and numpy are imported: no TensorFlow here.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from extract import store

VIRTUAL_DATASETS = ("features", "labels", "paths")


def part_folder(output: Path) -> Path:
    """Where the parts of `output` live: a sibling folder, so `*.h5` globs never see them."""
    return output.with_name(output.stem + ".parts")


def write_virtual(output: Path, parts: list[Path], attrs: dict[str, Any]) -> int:
    """Write `output` as virtual datasets over the complete `parts`, in order; its rows.

    The file is built under a temporary name and renamed into place, complete: an
    interrupted assembly never leaves an output that looks finished.
    """
    rows, skipped = [], []
    for part in parts:
        part_attrs = store.read_attrs(part)
        if part_attrs.get("complete") is not True:
            raise store.FeatureFileError(f"{part}: part file is not complete; rerun extract")
        rows.append(int(part_attrs["n_written"]))
        skipped.extend(store.read_skipped(part))
    total = sum(rows)
    with h5py.File(parts[0], "r") as first:
        kinds = {name: (first[name].shape[1:], first[name].dtype) for name in VIRTUAL_DATASETS}
        label_names = first["label_names"][()]
        first_attrs = {key: value for key, value in first.attrs.items()}
    layouts = {name: h5py.VirtualLayout(shape=(total, *shape), dtype=dtype)
               for name, (shape, dtype) in kinds.items()}
    start = 0
    for part, n in zip(parts, rows):
        relative = os.path.relpath(part, output.parent)
        for name, (shape, dtype) in kinds.items():
            source = h5py.VirtualSource(relative, name, shape=(n, *shape), dtype=dtype)
            layouts[name][start:start + n] = source
        start += n
    tmp = output.with_name(output.name + ".new")
    with h5py.File(tmp, "w") as f:
        for name, layout in layouts.items():
            f.create_virtual_dataset(name, layout)
        f.create_dataset("label_names", data=label_names, dtype=h5py.string_dtype())
        f.create_dataset("skipped", data=np.array(skipped, dtype=object),
                         dtype=h5py.string_dtype(), maxshape=(None,))
        f.attrs.update(first_attrs)
        f.attrs.update({
            **attrs,
            "n_written": total,
            "n_scanned": total + len(skipped),
            "n_parts": len(parts),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "complete": True,
        })
    os.replace(tmp, output)
    return total
