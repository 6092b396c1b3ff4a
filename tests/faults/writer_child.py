"""SIGKILL at every writer point, each in a forked child; prints {point id: outcome}.

    python writer_child.py OUTDIR

Runs in a fresh interpreter that has no threads (no TensorFlow), so forking is safe and
each kill costs milliseconds. OUTDIR/<point id>.h5 is what each killed child left.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path

from writer_points import armed, points, two_sittings


def main() -> None:
    out = Path(sys.argv[1])
    outcomes = {}
    for point in points():
        pid = os.fork()
        if pid == 0:
            signal.alarm(60)  # a child that hangs instead of dying must not outlive us
            try:
                with armed(point, signal.SIGKILL):
                    two_sittings(out / f"{point.id}.h5")
                os._exit(0)  # the kill never came
            except BaseException:  # noqa: BLE001 - any escape is reported, then exit 3
                traceback.print_exc()
                os._exit(3)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        outcomes[point.id] = "killed" if code == -signal.SIGKILL else f"exit {code}"
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main()
