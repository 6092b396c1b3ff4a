"""Distributors: where the shards of a plan run. Both call the same `run_shard`.

`Sequential` runs them in this process with the mapper it was given. `OnDask` sends one
task per shard to a Dask cluster; a worker builds its mapper once and keeps it for its
later shards, and a shard whose worker dies is run again elsewhere by Dask (it starts
over: its part file was never renamed into place). Workers must see the images, the
weights file and the output folder at the same paths as this process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from common.dask_cluster import ClusterError
from extract.mapper import Mapper, build_mapper
from extract.plan import Shard
from extract.settings import RunOptions, Settings
from extract.shard import ShardResult, run_shard

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class ShardJob:
    """One shard as a distributor receives it: its images, where to write, how."""

    shard: Shard
    part: Path
    settings: Settings
    options: RunOptions


class Distributor(Protocol):
    def run(self, jobs: list[ShardJob], progress: Callable[[int], None]
            ) -> Iterator[ShardResult]: ...


class Sequential:
    """The shards one after another, in this process, through one mapper."""

    def __init__(self, mapper: Mapper):
        self.mapper = mapper

    def run(self, jobs: list[ShardJob], progress: Callable[[int], None]
            ) -> Iterator[ShardResult]:
        for job in jobs:
            yield run_shard(job.shard, job.part, job.settings, job.options, self.mapper,
                            progress=progress)


_WORKER_LOCK = threading.Lock()  # one shard at a time per worker: the engine uses all cores
# The one mapper a worker holds (its settings and device): replaced, and so freed,
# when a shard with other settings arrives.
_WORKER_MAPPER: dict[Settings, tuple[Mapper, str | None]] = {}


def worker_device(kind: str = "GPU") -> str | None:
    """The device of this worker: GPU number (worker rank mod GPUs), or None for default.

    A local cluster names its workers 0..N-1, so on one machine with N GPUs each worker
    runs on its own GPU; a worker of a SLURM or Kubernetes cluster usually sees one.
    GPU memory is claimed as it is used, not all of every GPU up front (TensorFlow's
    default), which would leave nothing for the other workers on the machine.
    """
    from extract.reader import tf

    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    devices = tf.config.list_logical_devices(kind)
    if not devices:
        return None
    return devices[_worker_rank() % len(devices)].name


def _worker_rank() -> int:
    from distributed import get_worker

    try:
        name = get_worker().name
    except ValueError:  # not inside a worker (called directly)
        return 0
    return name if isinstance(name, int) else 0


def run_on_worker(job: ShardJob, device: str | None = None) -> ShardResult:
    """A Dask task: one shard, with this worker's mapper (built on its first shard)."""
    from extract.reader import tf

    with _WORKER_LOCK:
        if job.settings not in _WORKER_MAPPER:
            _WORKER_MAPPER.clear()
            device = device or worker_device()
            with tf.device(device) if device else nullcontext():
                _WORKER_MAPPER[job.settings] = (build_mapper(job.settings), device)
        mapper, device = _WORKER_MAPPER[job.settings]
        with tf.device(device) if device else nullcontext():
            return run_shard(job.shard, job.part, job.settings, job.options, mapper)


class OnDask:
    """One Dask task per shard; results arrive as shards finish, in any order."""

    def __init__(self, client: Client):
        self.client = client

    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def run(self, jobs: list[ShardJob], progress: Callable[[int], None]
            ) -> Iterator[ShardResult]:
        from distributed import as_completed
        from distributed.client import FuturesCancelledError
        from distributed.scheduler import KilledWorker

        futures = self.client.map(run_on_worker, jobs, pure=False,
                                  key=[f"extract-{job.shard.name}" for job in jobs])
        try:
            for future in as_completed(futures):
                result = future.result()
                progress(result.rows + result.skipped)
                yield result
        except KilledWorker as exc:
            raise ClusterError(f"a shard killed its worker {exc.last_worker.address} "
                               "repeatedly; rerun to resume the other shards") from None
        except FuturesCancelledError as exc:
            raise ClusterError(f"the cluster cancelled the shards ({exc})") from None
        finally:
            self.client.cancel(futures)
