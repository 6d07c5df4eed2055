"""history.csv: a resumed run logs each step once."""

from __future__ import annotations

import csv
from pathlib import Path

from vitrine.training.history import open_history


def _log(path: Path, start: int, steps: range, header: list[str] | None = None) -> None:
    with open_history(path, start) as log:
        writer = csv.writer(log)
        if header:
            writer.writerow(header)
        writer.writerows([step, f"{step / 10:.6f}"] for step in steps)


def _steps(path: Path) -> list[str]:
    return [row[0] for row in csv.reader(path.open()) if row]


def test_resume_drops_rows_logged_after_the_last_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    _log(path, 0, range(1, 9), header=["step", "loss"])  # crashed after step 8
    _log(path, 5, range(6, 11))  # resumed from the checkpoint of step 5
    assert _steps(path) == ["step", *(str(step) for step in range(1, 11))]


def test_a_fresh_run_starts_an_empty_log(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    _log(path, 0, range(1, 4))
    _log(path, 0, range(1, 3))
    assert _steps(path) == ["1", "2"]
