"""Run the real `extract` CLI with one fault armed at an exact moment.

    python launcher.py POINT -- EXTRACT_ARGS...

The fault is real (a SIGKILL or SIGINT the process sends itself, or a pause holding
the lock); only the moment is chosen, by wrapping library functions in this process.
Nothing in `extract` knows about it.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import h5py

from extract import store


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _on_attr(name: str, wanted: Callable[[Any], bool], occurrence: int) -> None:
    """SIGKILL just before the n-th time the attribute `name` is set to a wanted value."""
    original = h5py.AttributeManager.__setitem__
    seen = 0

    def setitem(self: h5py.AttributeManager, key: str, value: Any) -> None:
        nonlocal seen
        if key == name and wanted(value):
            seen += 1
            if seen == occurrence:
                _die()
        original(self, key, value)

    h5py.AttributeManager.__setitem__ = setitem


def _around_flush(call: int, action: Callable[[], None], *, after: bool) -> None:
    """Run `action` just before (or just after) the n-th FeatureWriter.flush."""
    original = store.FeatureWriter.flush
    calls = 0

    def flush(self: store.FeatureWriter) -> None:
        nonlocal calls
        calls += 1
        if calls == call and not after:
            action()
        original(self)
        if calls == call and after:
            action()

    store.FeatureWriter.flush = flush


def _before_replace() -> None:
    """SIGKILL with the new file's header written beside the output, not yet in place."""
    original = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if str(src).endswith(".h5.new"):
            _die()
        original(src, dst, *args, **kwargs)

    store.os.replace = replace  # store's `os` is the os module: this child only


def _pause() -> None:
    """Hold the lock and the open file until the parent writes a line to stdin."""
    print("PAUSED", flush=True)
    sys.stdin.readline()


def _sigint_in_tensorflow(batch: int, rows: int) -> None:
    """SIGINT from a tf.data worker while the main thread is inside TensorFlow.

    The worker preparing batch `batch` waits until the main thread has queued `rows`
    rows (so some are on disk and some only in the buffer), then signals.
    """
    import threading

    from extract import backbones

    progress = threading.Event()
    add = store.FeatureWriter.add
    added = 0

    def counting_add(self: store.FeatureWriter, *args: Any) -> None:
        nonlocal added
        add(self, *args)
        added += 1
        if added >= rows:
            progress.set()

    store.FeatureWriter.add = counting_add
    original = backbones.preprocess_function

    def preprocess_function(name: str) -> Callable[[Any], Any]:
        import tensorflow as tf

        preprocess = original(name)
        seen = 0

        def fire() -> Any:
            nonlocal seen
            seen += 1
            if seen == batch:
                progress.wait(120)
                os.kill(os.getpid(), signal.SIGINT)
            return tf.constant(0.0)

        def wrapped(images: Any) -> Any:
            token = tf.py_function(fire, [], tf.float32)
            with tf.control_dependencies([token]):
                return tf.identity(preprocess(images))

        return wrapped

    backbones.preprocess_function = preprocess_function


def _sigint_in_scan() -> None:
    """SIGINT while the dataset folder is being scanned (before any file exists)."""
    from extract import cli

    original = cli.scan

    def scan(root: Any) -> Any:
        os.kill(os.getpid(), signal.SIGINT)
        return original(root)

    cli.scan = scan


POINTS: dict[str, Callable[[], None]] = {
    # SIGKILL points, in the order a run meets them.
    "kill-creating": _before_replace,
    "kill-before-first-block": lambda: _around_flush(1, _die, after=False),
    # Block 2's rows flushed to disk, n_written not yet moved past them.
    "kill-mid-block": lambda: _on_attr("n_written", lambda n: n > 0, occurrence=2),
    "kill-between-blocks": lambda: _around_flush(2, _die, after=True),
    "kill-setting-complete": lambda: _on_attr("complete", lambda v: v is True, occurrence=1),
    # Others.
    "pause-holding-lock": lambda: _around_flush(1, _pause, after=False),
    "sigint-in-tensorflow": lambda: _sigint_in_tensorflow(batch=6, rows=7),
    "sigint-in-scan": _sigint_in_scan,
}


def main() -> None:
    point, separator, *args = sys.argv[1:]
    assert separator == "--", "usage: launcher.py POINT -- EXTRACT_ARGS..."
    POINTS[point]()
    from extract.cli import main as extract

    extract(args, prog_name="extract")


if __name__ == "__main__":
    main()
