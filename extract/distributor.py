"""`extract --cluster`: shards of the sorted image list run on Dask workers.

Each shard is an ordinary extraction (`runner.run`) of a contiguous slice of the list
into its own part file, so a shard whose worker dies is resumed from the part's
`n_written` when Dask runs it again elsewhere. Shard boundaries fall on batch
boundaries, so every batch is the one a single process would form. When all parts are
complete the output is assembled from them with virtual datasets (`assemble`).
Workers must see the images, the weights file and the output folder at the same
paths as this process (a shared filesystem).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from extract import assemble, runner, store
from extract.cluster import ClusterError
from extract.scan import Scan

if TYPE_CHECKING:
    from distributed import Client

DEFAULT_SHARD_SIZE = 1024
_WORKER_LOCK = threading.Lock()  # one shard at a time per worker: TF uses all its cores
# The backbone a worker built, and the device it runs on, kept for its later shards.
_WORKER_MODELS: dict[runner.Settings, tuple[Any, str | None]] = {}


@dataclass(frozen=True)
class ShardJob:
    """One shard as a worker receives it: its images, where to write, how."""

    scan: Scan  # the shard's images; fingerprint of the whole dataset
    settings: runner.Settings
    part: Path
    batch_size: int
    buffer_size: int
    compression: str | None
    dataset_name: str


def plan_shards(n_images: int, batch_size: int, shard_size: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) slices of about `shard_size` images, cut between batches.

    The plan depends only on these three numbers, not on the cluster, so a rerun on
    a different number of workers finds and resumes the same part files.
    """
    batches = -(-n_images // batch_size)
    n_shards = min(batches, max(1, -(-n_images // shard_size)))
    bounds = [min(n_images, i * batches // n_shards * batch_size) for i in range(n_shards + 1)]
    return list(itertools.pairwise(bounds))


def part_path(output: Path, start: int, stop: int) -> Path:
    """The part file of images [start, stop): the range in the name, so plans never mix."""
    return assemble.part_folder(output) / f"{start:010d}-{stop:010d}.h5"


def _shard_scan(scan: Scan, start: int, stop: int) -> Scan:
    return Scan(scan.root.resolve(), scan.paths[start:stop], scan.labels[start:stop],
                scan.label_names, scan.fingerprint)


def worker_device(kind: str = "GPU") -> str | None:
    """The device of this worker: GPU number (worker rank mod GPUs), or None for default.

    A local cluster names its workers 0..N-1, so on one machine with N GPUs each worker
    runs on its own GPU; a worker of a SLURM or Kubernetes cluster usually sees one.
    GPU memory is claimed as it is used, not all of every GPU up front (TensorFlow's
    default), which would leave nothing for the other workers on the machine.
    """
    import tensorflow as tf

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


def extract_shard(job: ShardJob, device: str | None = None) -> runner.Outcome:
    """Run on a worker: extract (or resume, or reuse) one shard into its part file.

    The backbone is built once per worker process and kept for its later shards.
    """
    from extract import pipeline  # first: it quiets TensorFlow's start-up logging

    tf = pipeline.tf
    with _WORKER_LOCK:
        if job.settings not in _WORKER_MODELS:
            _WORKER_MODELS.clear()
            device = device or worker_device()
            with tf.device(device) if device else nullcontext():
                _WORKER_MODELS[job.settings] = (runner.build_model(job.settings), device)
        model, device = _WORKER_MODELS[job.settings]
        with tf.device(device) if device else nullcontext():
            return runner.run(job.scan, job.settings, job.part, batch_size=job.batch_size,
                              buffer_size=job.buffer_size, compression=job.compression,
                              dataset_name=job.dataset_name, log=lambda _: None,
                              model=model, progress=False)


def _remove_other_parts(folder: Path, keep: list[Path]) -> None:
    """Delete part files of another plan or settings; they can never be resumed."""
    if folder.is_dir():
        for stale in set(folder.glob("*.h5")) - set(keep):
            stale.unlink()


def run_on_cluster(
    client: Client,
    scan: Scan,
    settings: runner.Settings,
    output: Path,
    *,
    batch_size: int = 32,
    buffer_size: int = 1000,
    compression: str | None = None,
    force: bool = False,
    dataset_name: str = "",
    shard_size: int = DEFAULT_SHARD_SIZE,
    log: Callable[[str], None] = print,
) -> runner.Outcome:
    """Extract `scan` into `output` with one Dask task per shard, then assemble it."""
    from distributed import as_completed
    from distributed.client import FuturesCancelledError
    from distributed.scheduler import KilledWorker

    started = time.perf_counter()
    attrs = settings.attrs(scan)
    with store.output_lock(output):
        state = "missing" if force else runner.existing_state(output, attrs)
        if state == "complete":
            return runner.reuse(output, started, log)
        shards = plan_shards(len(scan), batch_size, shard_size)
        parts = [part_path(output, start, stop) for start, stop in shards]
        _remove_other_parts(assemble.part_folder(output), [] if force else parts)
        jobs = [ShardJob(_shard_scan(scan, start, stop), settings, part, batch_size,
                         buffer_size, compression, dataset_name)
                for (start, stop), part in zip(shards, parts)]
        workers = len(client.scheduler_info().get("workers", {}))
        log(f"{len(shards)} shard(s) of up to {max(b - a for a, b in shards)} images on "
            f"{workers} worker(s); parts in {assemble.part_folder(output)}/"
            + ("; no worker has joined yet, the shards wait for one" if not workers else ""))
        futures = client.map(extract_shard, jobs, pure=False,
                             key=[f"extract-shard-{start}-{stop}" for start, stop in shards])
        outcomes = []
        try:
            with tqdm(total=len(scan), unit="img", desc=settings.backbone,
                      dynamic_ncols=True) as bar:
                for future in as_completed(futures):
                    outcome = future.result()
                    outcomes.append(outcome)
                    bar.update(outcome.written + len(outcome.skipped))
        except KilledWorker as exc:
            raise ClusterError(f"a shard killed its worker {exc.last_worker.address} "
                               "repeatedly; rerun to resume the other shards") from None
        except FuturesCancelledError as exc:
            raise ClusterError(f"the cluster cancelled the shards ({exc})") from None
        finally:
            client.cancel(futures)
        written = assemble.write_virtual(output, parts, {
            **attrs, "dataset": dataset_name, "dataset_root": str(scan.root),
            "n_images": len(scan)})
    skipped = store.read_skipped(output)
    # Parts left by an earlier run were resumed or reused: the run as a whole resumed.
    action = "extracted" if all(o.action == "extracted" for o in outcomes) else "resumed"
    return runner.Outcome(output, action, written, skipped, outcomes[0].feature_dim,
                          time.perf_counter() - started,
                          computed=sum(o.computed for o in outcomes))


def rows_in_parts(output: Path) -> int:
    """Rows safely written in `output`'s part files (for the message after a Ctrl-C)."""
    total = 0
    for part in assemble.part_folder(output).glob("*.h5"):
        try:
            total += int(store.read_attrs(part).get("n_written", 0))
        except store.FeatureFileError:
            continue
    return total

