"""common.hardware: the facts about this machine that size the work."""

import os

from common import hardware


def test_reader_cores_respect_a_workers_share(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert hardware.cores() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert hardware.cores() == len(os.sched_getaffinity(0))
