"""history.csv: a resumed run logs each step once."""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

from vitrine.training.history import (
    HISTORY,
    PLOT,
    Panel,
    open_history,
    plot_history,
    step_log,
)


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


def test_step_log_writes_a_header_and_a_row_per_step(tmp_path: Path) -> None:
    columns = ("reconstruction", "discriminator")
    with step_log(tmp_path, "vae", columns=columns, start=0, total=2, progress=False) as log:
        log.record(1, {"reconstruction": 0.5, "discriminator": float("nan")})
        log.record(2, {"reconstruction": 0.25, "discriminator": 1.5})
    rows = list(csv.reader((tmp_path / HISTORY).open()))
    assert rows == [["step", *columns], ["1", "0.500000", "nan"], ["2", "0.250000", "1.500000"]]


def test_plot_leaves_out_panels_of_losses_never_logged(tmp_path: Path) -> None:
    with step_log(
        tmp_path, "vae", columns=("kl", "adversarial"), start=0, total=60, progress=False
    ) as log:
        for step in range(1, 61):
            log.record(step, {"kl": 1.0 / step, "adversarial": float("nan")})
    panels = [Panel(("kl",), "KL"), Panel(("adversarial",), "hinge loss")]
    plot_history(tmp_path, "vae", panels)
    with Image.open(tmp_path / PLOT) as image:
        assert image.size == (500, 350)  # one panel of 5 x 3.5 inches at 100 dpi
