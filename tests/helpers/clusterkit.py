"""Dask worker plugins for the cluster tests (imported by the workers themselves)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin


class KillOnceAfterFirstBlock(WorkerPlugin):
    """SIGKILL the first worker that writes a block of a part file, exactly once.

    The marker file, created atomically, records which part and how many rows; the
    worker the nanny restarts gets the plugin again but finds the marker and lives.
    """

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def setup(self, worker: Any) -> None:
        from extract import parts

        original = parts.PartWriter._flush
        marker = self.marker

        def flush(writer: parts.PartWriter) -> None:
            original(writer)
            if writer.n_rows == 0:
                return
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, f"{writer.path}\n{writer.n_rows}\n".encode())
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)

        parts.PartWriter._flush = flush
