"""Ctrl-C reaches every process of the foreground group: local Dask workers ignore it,
so the command alone answers (one `interrupted:` line) and closes them, and no worker
prints a traceback."""

from __future__ import annotations

import signal

from common.dask_cluster import connect


def _ignores_ctrl_c() -> bool:
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_local_workers_leave_ctrl_c_to_the_command() -> None:
    before = signal.getsignal(signal.SIGINT)
    with connect("local:1") as client:
        assert list(client.run(_ignores_ctrl_c).values()) == [True]
        assert signal.getsignal(signal.SIGINT) == before  # the command still hears it
