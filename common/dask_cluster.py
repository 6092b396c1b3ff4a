"""Where work runs when `--cluster` is given: a Dask scheduler, or a local cluster.

`--cluster local:N` starts N worker processes on this machine (a laptop, one
multi-GPU box); any other value is the address of a running scheduler, such as one
started by dask-jobqueue on SLURM or by the Dask Helm chart on Kubernetes. Only
dask.distributed is imported here (lazily), so `classify` stays free of TensorFlow.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from common.errors import UserError
from common.hardware import gpu_count

if TYPE_CHECKING:
    from distributed import Client

LOCAL_PREFIX = "local"


class ClusterError(UserError):
    """The --cluster value is malformed or the scheduler cannot be reached."""


def local_workers(spec: str) -> int | None:
    """N for `local:N`, None for a scheduler address.

    `local` alone gives one worker per visible GPU (each takes its own; see
    extract.distributor.worker_device), or one worker on a machine without GPUs.
    """
    if spec != LOCAL_PREFIX and not spec.startswith(LOCAL_PREFIX + ":"):
        return None
    if spec == LOCAL_PREFIX:
        return max(1, gpu_count())
    count = spec[len(LOCAL_PREFIX) + 1:]
    if not count.isdigit() or int(count) < 1:
        raise ClusterError(f"{spec}: expected local:N with N a positive number")
    return int(count)


@contextmanager
def _deaf_to_ctrl_c() -> Iterator[None]:
    """SIGINT ignored while local workers start: they inherit it, so a Ctrl-C (sent to
    the whole foreground process group) reaches only the command, which prints its one
    line and closes them, instead of each worker printing a traceback. A Ctrl-C in
    these seconds is dropped. Only the main thread may set a signal's handler."""
    previous = signal.getsignal(signal.SIGINT)  # None: set outside Python, left alone
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def connect(spec: str, *, timeout: float = 10.0) -> Iterator[Client]:
    """A Dask client for `spec`; a local cluster it starts is shut down on exit.

    Local workers are processes (one Python each, so one TensorFlow each) and share
    this machine's cores between them, so N workers never oversubscribe the CPU.
    """
    from distributed import Client, LocalCluster

    n_workers = local_workers(spec)
    if n_workers is not None:
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        # TensorFlow and BLAS size their pools from these, read when each worker starts.
        env = {name: str(threads) for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS",
                                               "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        # The scheduler's HTTP server starts even without a dashboard; ":0" lets the OS
        # pick its port, so a second local cluster does not warn that 8787 is taken.
        # Dask's own warnings (a cancelled task after Ctrl-C, a nanny stopping a worker)
        # are its bookkeeping, not the user's business; errors still show.
        with _deaf_to_ctrl_c():
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads,
                                   processes=True, dashboard_address=":0", env=env,
                                   silence_logs=logging.ERROR)
        with cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(spec, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"--cluster {spec}: cannot reach the Dask scheduler ({exc})") from None
    with client:
        yield client
