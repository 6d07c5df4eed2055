"""The loss log of a training run: ``history.csv`` (a header, then one row per step,
resumable without duplicates), the progress bar that shows it, and its plot."""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from tqdm import tqdm

__all__ = ["HISTORY", "PLOT", "Panel", "StepLog", "open_history", "plot_history", "step_log"]

HISTORY = "history.csv"
"""The loss log in a run folder."""
PLOT = "loss.png"
"""Its plot, beside it."""
_WINDOW = 50  # steps per moving average in the plot


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


class StepLog:
    """Where a training loop reports each step: a row of ``history.csv`` and the bar."""

    def __init__(
        self, file: TextIO, bar: tqdm, columns: Sequence[str], shown: Sequence[str]
    ) -> None:
        self._file = file
        self._rows = csv.writer(file)
        self._bar = bar
        self._columns = columns
        self._shown = shown or columns

    def record(self, step: int, losses: dict[str, float]) -> None:
        """Log the ``losses`` of ``step`` (one per column) and advance the bar."""
        self._rows.writerow([step, *(f"{losses[name]:.6f}" for name in self._columns)])
        self._bar.update(1)
        self._bar.set_postfix(
            {name: f"{losses[name]:.4g}" for name in self._shown if math.isfinite(losses[name])}
        )

    def note(self, message: str) -> None:
        """A line above the bar (e.g. an evaluation's summary)."""
        self._bar.write(message)

    def flush(self) -> None:
        """Put the rows so far on disk (before a checkpoint is saved)."""
        self._file.flush()


@contextmanager
def step_log(
    run_dir: Path,
    name: str,
    *,
    columns: Sequence[str],
    start: int,
    total: int,
    progress: bool,
    shown: Sequence[str] = (),
) -> Iterator[StepLog]:
    """The log of a run of ``total`` steps resuming after ``start`` (``HISTORY`` in
    ``run_dir``, see ``open_history``): ``columns`` name the losses of each row; the bar
    shows those in ``shown`` (default all)."""
    with (
        open_history(run_dir / HISTORY, start) as file,
        tqdm(
            total=total, initial=start, desc=f"train {name}", disable=not progress, unit="step"
        ) as bar,
    ):
        if not start:
            csv.writer(file).writerow(["step", *columns])
        yield StepLog(file, bar, columns, shown)


@dataclass(frozen=True)
class Panel:
    """One plot of ``plot_history``: these columns against the step."""

    columns: tuple[str, ...]
    label: str
    log_scale: bool = False


def plot_history(run_dir: Path, title: str, panels: Sequence[Panel]) -> None:
    """The ``panels`` of the run's ``HISTORY`` as its ``PLOT``, each loss a moving average
    over 50 steps; losses that are never finite (a disabled term) are left out, and so are
    panels left empty. Without matplotlib (a bare GPU node) the plot is skipped with a
    warning: ``HISTORY`` holds the same numbers."""
    try:
        import matplotlib
    except ImportError:
        warnings.warn(f"matplotlib is not installed: no {PLOT} for {title}", stacklevel=2)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with (run_dir / HISTORY).open(newline="") as log:
        header, *rows = [row for row in csv.reader(log) if row]
    if not rows:
        return
    table = np.array(rows, dtype=np.float64)
    series = {
        column: table[:, header.index(column)] for panel in panels for column in panel.columns
    }
    logged = {name: values for name, values in series.items() if np.isfinite(values).any()}
    shown = [panel for panel in panels if logged.keys() & set(panel.columns)]
    if not shown:
        return
    figure, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 3.5), squeeze=False)
    for axis, panel in zip(axes[0], shown, strict=True):
        for column in (column for column in panel.columns if column in logged):
            kept = np.isfinite(logged[column])
            window = min(_WINDOW, int(kept.sum()))
            smooth = np.convolve(logged[column][kept], np.ones(window) / window, mode="valid")
            axis.plot(table[kept, 0][window - 1 :], smooth, label=f"{column} (mean of {window})")
        axis.set(xlabel="step", ylabel=panel.label, yscale="log" if panel.log_scale else "linear")
        axis.legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(run_dir / PLOT, dpi=100)
    plt.close(figure)
