"""Fault-injection suite: shared fixtures and the end-of-run fault figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Ledger:
    """What the fault tests injected and what came of it, summed at the end of the run."""

    injected: int = 0
    recovered: int = 0
    rows_lost: int = 0
    partial_accepted: int = 0
    by_fault: dict[str, list[int]] = field(default_factory=dict)

    def record(self, fault: str, *, recovered: bool, rows_lost: int = 0,
               partial_accepted: int = 0) -> None:
        self.add(fault, injected=1, recovered=int(recovered), rows_lost=rows_lost,
                 partial_accepted=partial_accepted)

    def add(self, fault: str, *, injected: int, recovered: int, rows_lost: int = 0,
            partial_accepted: int = 0) -> None:
        """Many faults of one kind at once (a child process that counted them)."""
        self.injected += injected
        self.recovered += recovered
        self.rows_lost += rows_lost
        self.partial_accepted += partial_accepted
        totals = self.by_fault.setdefault(fault, [0, 0, 0, 0])
        for i, value in enumerate((injected, recovered, rows_lost, partial_accepted)):
            totals[i] += value


_LEDGER = Ledger()


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return _LEDGER


@pytest.fixture(scope="session")
def standard(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The folder most fault tests extract (3 classes x 8 JPEGs + 1 truncated one, so
    25 scanned, 24 written, 1 skipped; 4 shards) and its uninterrupted file."""
    from tests.helpers.faultkit import extract_args, extract_here, make_dataset

    base = tmp_path_factory.mktemp("standard")
    root = make_dataset(base / "data")
    reference = base / "reference.h5"
    result = extract_here(extract_args(root, reference))
    assert result.exit_code == 0, result.output
    assert "created: 24 rows, 1 skipped" in result.output
    return root, reference


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _LEDGER.injected:
        return
    write = terminalreporter.write_line
    terminalreporter.section("faults injected")
    write(f"{'fault':<48} {'injected':>8} {'recovered':>9} {'rows lost':>9} "
          f"{'partial accepted':>16}")
    for fault, (injected, recovered, lost, accepted) in sorted(_LEDGER.by_fault.items()):
        write(f"{fault:<48} {injected:>8} {recovered:>9} {lost:>9} {accepted:>16}")
    write(f"{'total':<48} {_LEDGER.injected:>8} {_LEDGER.recovered:>9} "
          f"{_LEDGER.rows_lost:>9} {_LEDGER.partial_accepted:>16}")
