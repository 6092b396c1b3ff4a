"""`make bench`: every benchmark in turn, each printing its table and writing its JSON.

    .venv/bin/python -m bench [--quick]      (QUICK=1 make bench: about 7 minutes on 2 cores)
"""

from __future__ import annotations

import subprocess
import sys
import time

import click

BENCHMARKS = ("storage", "cache", "classify_memory", "classify_search", "extraction", "growth",
              "cluster", "inspection")
# Not in quick runs: accuracy's first run extracts flowers17 six times (reused after that),
# inspection_quality's extracts it three times.
FULL_ONLY = ("accuracy", "inspection_quality")


@click.command()
@click.option("--quick", is_flag=True, help="Smaller inputs: the whole run in about 7 minutes on 2 cores.")
def main(quick: bool) -> None:
    """Run all benchmarks, each in its own process so memory figures stay separate."""
    started = time.perf_counter()
    failed = []
    for name in BENCHMARKS if quick else (*BENCHMARKS, *FULL_ONLY):
        command = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if quick else [])]
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
    click.echo(f"\nbenchmarks done in {time.perf_counter() - started:.0f} s; "
               "figures in outputs/bench/*.json")
    if failed:
        raise click.ClickException(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
