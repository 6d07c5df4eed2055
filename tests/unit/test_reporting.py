"""Model cards and the README's results table equal what the committed reports render."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vitrine import paths, reporting
from vitrine.registry import SPECS


@pytest.mark.parametrize("name", SPECS)
def test_committed_card_is_current(name: str) -> None:
    card = paths.reports_dir() / name / "README.md"
    assert card.read_text() == reporting.model_card(name), (
        f"{card} is stale: run vitrine regenerate"
    )


def test_readme_results_table_is_current() -> None:
    readme = paths.source_root() / "README.md"
    text = readme.read_text()
    assert text == reporting.readme_with_results(text), (
        "README.md's results table is stale: run vitrine regenerate"
    )


def test_every_spec_has_a_results_row() -> None:
    rows = reporting.results_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == list(SPECS)


@pytest.fixture
def report_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the committed reports and README that the renderer reads instead."""
    reports = tmp_path / "reports"
    for name in SPECS:
        shutil.copytree(paths.reports_dir() / name, reports / name)
    shutil.copy(paths.source_root() / "README.md", tmp_path / "README.md")
    monkeypatch.setenv("VITRINE_REPORTS_DIR", str(reports))
    return tmp_path


def _stale(readme: Path, *, write: bool = False) -> list[Path]:
    """The rendered files that differ from what is on disk (rewritten with ``write``)."""
    stale = []
    for path, text in reporting.rendered_reports(readme).items():
        if path.read_text() != text:
            stale.append(path)
            if write:
                path.write_text(text)
    return stale


def test_a_changed_eval_json_makes_card_and_readme_stale(report_copy: Path) -> None:
    readme = report_copy / "README.md"
    assert _stale(readme) == []
    eval_json = report_copy / "reports" / "denoise" / "eval.json"
    report = json.loads(eval_json.read_text())
    report["margins"]["psnr_over_best_baseline_db_sigma25"] = 1.25  # now meets its target
    eval_json.write_text(json.dumps(report))

    card = report_copy / "reports" / "denoise" / "README.md"
    assert _stale(readme) == [card, readme]
    assert _stale(readme, write=True) == [card, readme]
    assert "| `psnr_over_best_baseline_db_sigma25` | 1.250 | ≥ 1 | MET |" in card.read_text()
    assert _stale(readme) == []


def test_notes_need_both_sections(report_copy: Path) -> None:
    notes = report_copy / "reports" / "enhance" / "notes.md"
    notes.write_text("## Known limits\n\nNone.\n")
    with pytest.raises(ValueError, match="How it is scored"):
        reporting.model_card("enhance")


def test_a_card_without_notes_says_none_are_recorded(report_copy: Path) -> None:
    (report_copy / "reports" / "enhance" / "notes.md").unlink()
    card = reporting.model_card("enhance")
    assert "`vitrine eval enhance` on the validation photos, against clahe" in card
    assert "## Known limits\n\nNone recorded yet: `notes.md` beside this card" in card


def test_readme_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="results:start"):
        reporting.readme_with_results("# A README without the markers\n")


def test_rendering_does_not_import_torch() -> None:
    code = "import sys, vitrine.reporting as r; r.results_table(); print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
