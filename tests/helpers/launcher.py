"""Run the real `extract` CLI with one fault armed at an exact moment.

    python launcher.py POINT -- EXTRACT_ARGS...

The fault is real (a SIGINT the process sends itself, or a pause holding the lock);
only the moment is chosen, by wrapping library functions in this process.
Nothing in `extract` knows about it.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from extract import parts, writer


def _pause_before_first_part() -> None:
    """Hold the lock, before the first part is published, until the parent writes a
    line to stdin."""
    original = writer.publish
    paused = False

    def publish(tmp: Any, final: Any) -> None:
        nonlocal paused
        if not paused:
            paused = True
            print("PAUSED", flush=True)
            sys.stdin.readline()
        original(tmp, final)

    writer.publish = publish


def _sigint_in_tensorflow(batch: int, rows: int) -> None:
    """SIGINT from a tf.data worker while the main thread is inside TensorFlow.

    The worker preparing batch `batch` (counted over all shards) waits until the main
    thread has handled `rows` images (so some shards are complete and one is part-way),
    then signals.
    """
    import threading

    from extract.backbones import registry

    progress = threading.Event()
    handled = 0

    def counting(method: Callable[..., None]) -> Callable[..., None]:
        def count(self: parts.PartWriter, *args: Any) -> None:
            nonlocal handled
            method(self, *args)
            handled += 1
            if handled >= rows:
                progress.set()
        return count

    parts.PartWriter.add = counting(parts.PartWriter.add)
    parts.PartWriter.skip = counting(parts.PartWriter.skip)
    original = registry.preprocess_function
    seen = 0

    def preprocess_function(name: str, *more: Any) -> Callable[[Any], Any]:
        import tensorflow as tf

        preprocess = original(name, *more)

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

    registry.preprocess_function = preprocess_function


def _sigint_in_scan() -> None:
    """SIGINT while the dataset folder is being scanned (before any file exists)."""
    from extract import cli

    original = cli.scan

    def scan(root: Any) -> Any:
        os.kill(os.getpid(), signal.SIGINT)
        return original(root)

    cli.scan = scan


POINTS: dict[str, Callable[[], None]] = {
    "pause-holding-lock": _pause_before_first_part,
    # The standard folder's shards hold 4, 8, 8 and 5 images in batches of 4: batch 5
    # is the third shard's second, prepared once its first batch is handled.
    "sigint-in-tensorflow": lambda: _sigint_in_tensorflow(batch=5, rows=13),
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
