"""A fault at every line of the feature writer: the schedule, the points and the trigger.

The schedule writes 13 images (3 unreadable) in blocks of 4 over two sittings, as a
user's run does after one Ctrl-C: create, stop after 7 images, resume, finish. A point
is (method, line, n-th call of the method that reaches the line); when it is reached a
real signal (SIGKILL, or SIGINT -> KeyboardInterrupt) is sent to this process. Used by
test_fault_writer_points.py in-process and by writer_child.py in forked children.
"""

from __future__ import annotations

import dis
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, NamedTuple

import numpy as np

from extract import runner
from extract.store import FeatureWriter

ROWS, DIM, BUFFER = 13, 3, 4
UNREADABLE = {2, 7, 8}
ATTRS = {"backbone": "toy", "weights": "random", "pooling": "avg", "input_size": 8,
         "preprocessing": "none", "dtype": "float32", "dataset_fingerprint": "toy-folder"}


def _name(i: int) -> str:
    return f"{'ab'[i % 2]}/{i:02d}.jpg"


def feed(writer: FeatureWriter, start: int, stop: int = ROWS) -> None:
    for i in range(start, stop):
        if i in UNREADABLE:
            writer.skip(_name(i))
        else:
            writer.add(np.arange(DIM, dtype=np.float32) + 10 * i, i % 2, _name(i))


def create(path: Path) -> FeatureWriter:
    return FeatureWriter.create(path, feature_dim=DIM, label_names=["a", "b"], attrs=ATTRS,
                                buffer_size=BUFFER)


def write_reference(path: Path) -> None:
    with create(path) as writer:
        feed(writer, 0)
        writer.finish()


def two_sittings(path: Path) -> None:
    """Stop after 7 images (buffer kept, as on Ctrl-C), then resume and finish."""
    with create(path) as writer:
        feed(writer, 0, 7)
    with FeatureWriter.resume(path, buffer_size=BUFFER) as writer:
        feed(writer, writer.n_scanned)
        writer.finish()


def next_run(path: Path) -> str:
    """What the next `extract` does with whatever is at `path`: the runner's own choice
    between reuse, resume and a fresh start, then the rest of the images."""
    state = runner.existing_state(path, ATTRS)
    if state == "complete":
        return state
    writer = FeatureWriter.resume(path, buffer_size=BUFFER) if state == "partial" else create(path)
    with writer:
        feed(writer, writer.n_scanned)
        writer.finish()
    return state


CLEANUP_CLOSE = "close<__exit__"
# Where a Ctrl-C would land inside the clean-up of an earlier stop (a second fault): the
# process is ending anyway; what it leaves on disk is checked by the SIGKILL points.
CLEANUP = {"__enter__", "__exit__", CLEANUP_CLOSE}


class Point(NamedTuple):
    method: str
    line: int  # relative to the method's first line (its decorator, if any)
    call: int  # the n-th call of the method in which this line runs
    nop: bool  # the line starts with a NOP (`try:`): no real signal can land there

    @property
    def interruptible(self) -> bool:
        """Whether an in-process Ctrl-C here is a fair single fault (see CLEANUP, _nop_lines)."""
        return not self.nop and self.method not in CLEANUP

    @property
    def id(self) -> str:
        return f"{self.method}+{self.line}#{self.call}"


def _methods() -> dict[CodeType, str]:
    codes = {}
    for name, value in vars(FeatureWriter).items():
        function = getattr(value, "__func__", value)
        if hasattr(function, "__code__"):
            codes[function.__code__] = name
    return codes


@contextmanager
def _tracing(on_line: Any) -> Iterator[None]:
    """Call on_line(method, relative line, call number) before each writer line runs."""
    methods = _methods()
    calls: dict[str, int] = {}

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        name = methods.get(frame.f_code)
        if event != "call" or name is None:
            return None
        if name == "close" and frame.f_back and frame.f_back.f_code.co_name == "__exit__":
            name = CLEANUP_CLOSE  # the clean-up, told apart from finish()'s close
        calls[name] = calls.get(name, 0) + 1
        call, first = calls[name], frame.f_code.co_firstlineno

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "line":
                on_line(name, frame.f_lineno - first, call)
            return local

        return local

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        yield
    finally:
        sys.settrace(previous)


def _nop_lines() -> set[tuple[str, int]]:
    """Lines whose first instruction is a NOP. A KeyboardInterrupt raised from a trace
    function there escapes the enclosing try (NOPs are outside CPython's exception
    table); a real signal only lands on calls, jumps back and function entries."""
    nops = set()
    for code, name in _methods().items():
        for instruction in dis.get_instructions(code):
            if instruction.starts_line is not None and instruction.opname == "NOP":
                nops.add((name, instruction.starts_line - code.co_firstlineno))
    return nops


def points() -> list[Point]:
    """Every writer line the schedule runs, at the first two calls that run it."""
    seen: dict[tuple[str, int], list[int]] = {}

    def record(method: str, line: int, call: int) -> None:
        calls = seen.setdefault((method, line), [])
        if call not in calls and len(calls) < 2:
            calls.append(call)

    with tempfile.TemporaryDirectory() as folder, _tracing(record):
        two_sittings(Path(folder) / "dry.h5")
    nops = _nop_lines()
    return [Point(m, line, c, (m, line) in nops)
            for (m, line), calls in sorted(seen.items()) for c in calls]


@contextmanager
def armed(point: Point, signum: int) -> Iterator[None]:
    """Send `signum` to this process once, just before `point` runs."""
    fired = False

    def on_line(method: str, line: int, call: int) -> None:
        nonlocal fired
        if not fired and (method, line, call) == point[:3]:
            fired = True
            os.kill(os.getpid(), signum)

    with _tracing(on_line):
        yield
    if not fired:
        raise AssertionError(f"{point.id} was never reached")
