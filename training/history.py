"""The per-step loss log of a training run (``history.csv``), resumable without duplicates."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

__all__ = ["open_history"]


def open_history(path: Path, start: int) -> TextIO:
    """``path`` opened to append the rows of the steps after ``start``.

    At step 0 the file starts empty. On resume, rows of steps after ``start`` are dropped
    first: they were logged after the last checkpoint, whose state the run resumes from,
    and would otherwise appear twice. A header row (a non-numeric first cell) is kept.
    """
    if not start or not path.exists():
        return path.open("w", newline="")
    with path.open(newline="") as log:
        rows = [row for row in csv.reader(log) if row]
    kept = [row for row in rows if not row[0].isdigit() or int(row[0]) <= start]
    with path.open("w", newline="") as log:
        csv.writer(log).writerows(kept)
    return path.open("a", newline="")
