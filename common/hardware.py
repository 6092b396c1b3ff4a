"""Facts about this machine: CPU model and flags, usable cores, visible GPUs.

Read from /proc/cpuinfo, the scheduler's affinity and `nvidia-smi`, never from
TensorFlow, so any process (classify included) can ask at no cost.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess


def _cpuinfo(field: str) -> str | None:
    """The first value of `field` in /proc/cpuinfo (None where there is no such file)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: the callers fall back to what the platform says
    return None


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (or the platform's word for it)."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return set((_cpuinfo("flags") or "").split())


def bf16_hardware(flags: set[str]) -> list[str]:
    """The bf16 instruction sets among `flags` (cpu_flags()), of AMX-BF16 and AVX512-BF16."""
    return [name for flag, name in (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"))
            if flag in flags]


def cores() -> int:
    """CPU cores this process may use: a container's or taskset's limit, not the host's,
    and no more than OMP_NUM_THREADS (local Dask workers split the cores that way)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    share = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(available, int(share))) if share.isdigit() else available


def gpu_count() -> int:
    """GPUs `nvidia-smi -L` lists, unless CUDA_VISIBLE_DEVICES hides them (no TensorFlow)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return 0
    try:
        listing = subprocess.run([nvidia_smi, "-L"], check=False, capture_output=True,
                                 text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    gpus = sum(line.startswith("GPU ") for line in listing.stdout.splitlines())
    if visible is not None:
        gpus = min(gpus, len(visible.split(",")))
    return gpus if listing.returncode == 0 else 0


def memory() -> int | None:
    """Bytes of memory this process may use: the machine's, or a container's lower limit
    (cgroup v2 or v1); None where the platform says neither."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf, or no such name
        physical = None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file, encoding="ascii") as limit:
                value = limit.read().strip()
        except OSError:
            continue
        if value.isdigit() and (physical is None or int(value) < physical):
            return int(value)
    return physical
