"""Read a legacy (pre-1.6, non-zip) PyTorch `.pth` state dict into numpy arrays, without torch.

The file is a sequence of pickles: magic number, protocol version, system info, the state
dict (tensors point at storages through persistent ids), the list of storage keys, then
each storage's raw bytes, preceded by its element count. Unpickling is restricted to the
few names a plain state dict needs, so a hostile file cannot run code.
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchFileError(ValueError):
    """The file is not a legacy PyTorch state dict this reader understands."""


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for torch.FloatStorage & co.: only its element dtype matters."""

    dtype: type


@dataclass
class _Storage:
    """A storage announced by the pickle; its bytes arrive after the pickle ends."""

    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _Tensor:
    """What torch._utils._rebuild_tensor_v2 would build, kept until the storage is read."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def numpy(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise TorchFileError("a tensor refers to a storage missing from the file")
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or last >= data.size:
            raise TorchFileError(f"tensor view {self.size} exceeds its storage of {data.size}")
        strides = tuple(s * data.itemsize for s in self.stride)
        view = np.lib.stride_tricks.as_strided(data[self.offset:], self.size, strides)
        return np.array(view, order="C")  # a contiguous copy that owns its memory


def _rebuild_tensor_v2(
    storage: _Storage, offset: int, size: tuple, stride: tuple, *_: Any
) -> _Tensor:
    return _Tensor(storage, offset, tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    """Resolves only the names a state dict of plain tensors uses; anything else is refused."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        raise TorchFileError(f"refusing to unpickle {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and pid[0] == "storage" and len(pid) in (5, 6)):
            raise TorchFileError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, *view = pid
        if view and view[0] is not None:
            raise TorchFileError("storage views are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, numel)
        return self.storages[key]


class _DataUnpickler(pickle.Unpickler):
    """Plain values only (the header and the key list): any class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise TorchFileError(f"unexpected object {module}.{name} in a PyTorch file header")


def _load_data(f: Any) -> Any:
    return _DataUnpickler(f).load()


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The state dict in `path` as {name: array}, each array a C-contiguous copy."""
    with open(path, "rb") as f:
        if _load_data(f) != MAGIC_NUMBER:
            raise TorchFileError(f"{path}: not a legacy PyTorch file (bad magic number)")
        if _load_data(f) != PROTOCOL_VERSION:
            raise TorchFileError(f"{path}: unsupported PyTorch protocol version")
        sys_info = _load_data(f)
        if not sys_info.get("little_endian", False):
            raise TorchFileError(f"{path}: big-endian files are not supported")
        unpickler = _StateDictUnpickler(f)
        state = unpickler.load()
        for key in _load_data(f):
            storage = unpickler.storages.get(key)
            if storage is None:
                raise TorchFileError(f"{path}: storage {key} is listed but never used")
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != storage.numel:
                raise TorchFileError(f"{path}: storage {key} holds {numel}, expected {storage.numel}")
            dtype = np.dtype(storage.dtype).newbyteorder("<")
            raw = f.read(numel * dtype.itemsize)
            if len(raw) != numel * dtype.itemsize:
                raise TorchFileError(f"{path}: truncated")
            storage.data = np.frombuffer(raw, dtype=dtype)
    return {name: tensor.numpy() for name, tensor in state.items()}
