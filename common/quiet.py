"""Keep TensorFlow's, absl's, CUDA's and libjpeg's native log lines off the terminal.

Imported first by the entry points that load TensorFlow (`extract`, `predict`, the demo).
TF_CPP_MIN_LOG_LEVEL=2 hides TensorFlow's own info and warning lines once its logging
is set up, but the lines written while its libraries load (absl's "before
InitializeLog" notice, oneDNN, cudart_stub, cpu_feature_guard), the cuInit failure of a
machine without a GPU and libjpeg's messages about a corrupt file are written straight
to file descriptor 2, where no variable reaches them. So descriptor 2 becomes a pipe
read by a small forked process that drops those known lines and passes every other one
on; Python's own `sys.stderr` (tracebacks, warnings, progress bars) keeps writing to the
terminal directly. Being a separate process, the filter still passes on the last lines
of a run that crashes. Set OFFTHESHELF_NATIVE_LOGS=1 to see everything.
"""

from __future__ import annotations

import atexit
import io
import os
import re
import signal
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHOW_ALL_VARIABLE = "OFFTHESHELF_NATIVE_LOGS"
NOISE_PATTERNS = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called",
    r"I\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] ",  # info lines written while TF loads
    # "Premature end of JPEG data": a warning, or an error when little of the file is left
    r"[WE]\d{4} [\d:.]+\s+\d+ jpeg_mem\.cc:\d+\] ",
    r"To enable the following instructions: .* rebuild TensorFlow",
    # libjpeg's own messages (jerror.h); our "skipped (unreadable)" line names the file
    r"Premature end of JPEG",
    r"Corrupt JPEG data",
    r"Improper call to JPEG library",
    r"Not a JPEG file",
    r"Invalid JPEG file structure",
    r"Bogus (marker|Huffman|DQT|DHT|input colorspace|sampling factors)",
    r"Unsupported (JPEG|marker type)",
    r"JPEG datastream contains no image",
    r"Huffman table 0x[0-9a-f]+ was not defined",
    r"Warning: unknown JFIF revision number",
    r"Invalid SOS parameters",
    r"libpng warning: ",
    # XGBoost's Dask workers announce their rank as they join (LOG(CONSOLE): no verbosity
    # setting reaches it), once per worker and fit: the local workers of classify --cluster
    r"\[[\d:]+\] Task \[xgboost\.dask-\S*\]:\S+ got rank \d+",
)
NOISE = re.compile("|".join(NOISE_PATTERNS))
# On a machine with no NVIDIA device, TensorFlow's CUDA build logs an error that only
# says so; where a device exists the same line is a real problem and is shown.
NO_GPU_NOISE = re.compile(r"E\d{4} [\d:.]+\s+\d+ cuda_\w+\.cc:\d+\] failed call to cuInit")
WAIT_FOR_FILTER_S = 2.0


def is_noise(line: str, *, gpu_present: bool) -> bool:
    """Whether a native stderr line is one of the known, harmless notices."""
    return bool(NOISE.match(line)) or (not gpu_present and bool(NO_GPU_NOISE.match(line)))


def _gpu_present() -> bool:
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0")


def _filter(read_end: int, gpu_present: bool) -> None:
    """The forked filter: copy lines from the pipe to stderr, less the noise, until EOF."""
    pending = b""
    while chunk := os.read(read_end, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = [line for line in lines
                if not is_noise(line.decode("utf-8", "replace"), gpu_present=gpu_present)]
        if kept:
            os.write(2, b"\n".join(kept) + b"\n")
    if pending and not is_noise(pending.decode("utf-8", "replace"), gpu_present=gpu_present):
        os.write(2, pending)


def _install() -> None:
    """Route descriptor 2 through the filter; Python's stderr keeps the terminal itself."""
    read_end, write_end = os.pipe()
    gpu_present = _gpu_present()
    pid = os.fork()
    if pid == 0:  # the filter: keep only the pipe and stderr, so no one waits on us
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the command
            os.close(write_end)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.closerange(3, read_end)
            os.closerange(read_end + 1, max(read_end + 1, os.sysconf("SC_OPEN_MAX")))
            _filter(read_end, gpu_present)
        finally:
            os._exit(0)
    os.close(read_end)
    terminal = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)
    previous = sys.stderr
    sys.stderr = io.TextIOWrapper(
        io.FileIO(terminal, "w"), encoding=previous.encoding, errors=previous.errors,
        line_buffering=True, write_through=True,
    )
    atexit.register(_finish, pid, sys.stderr, previous)


def _finish(pid: int, ours: io.TextIOWrapper, previous: io.TextIOBase) -> None:
    """Give descriptor 2 back, let the filter pass on what it still holds, and close our
    stream (left open, it ends the run with a ResourceWarning)."""
    ours.flush()
    os.dup2(ours.fileno(), 2)  # closes our end of the pipe: the filter reads EOF
    if sys.stderr is ours:  # what is written at shutdown goes to descriptor 2 again
        sys.stderr = previous
    ours.close()
    deadline = time.monotonic() + WAIT_FOR_FILTER_S
    while time.monotonic() < deadline:  # children that inherited the pipe may hold it
        if os.waitpid(pid, os.WNOHANG)[0]:
            return
        time.sleep(0.01)


def _wanted() -> bool:
    """Only for a program writing to the real stderr: never under pytest's or click's
    capture, nor where fork is missing."""
    if os.environ.get(SHOW_ALL_VARIABLE) or not hasattr(os, "fork"):
        return False
    if sys.stderr is None or sys.stderr is not sys.__stderr__:
        return False
    try:
        return sys.stderr.fileno() == 2
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


if _wanted():
    _install()
