"""A report's files, as seen from where the command ran (GitHub resolves them from the checkout)."""

from __future__ import annotations

from pathlib import Path

from jobforge.report import Finding, Item, Outcome, Report


def _report(file: str | None, finding_file: str | None) -> Report:
    finding = Finding("differs", file=finding_file, line=3)
    return Report([Item("golden", "r/case", Outcome.failed, findings=(finding,), file=file)])


def test_files_relative_to_the_project_become_relative_to_the_checkout(tmp_path: Path) -> None:
    project = tmp_path / "examples"
    moved = _report("golden/r/case.json", "runners/r.py").files_from(project, tmp_path)
    assert moved.items[0].file == "examples/golden/r/case.json"
    assert moved.items[0].findings[0].file == "examples/runners/r.py"
    assert moved.items[0].findings[0].line == 3


def test_a_relative_project_is_taken_from_here_and_outside_files_stay_absolute(
    tmp_path: Path,
) -> None:
    here = tmp_path / "checkout"
    moved = _report("../elsewhere/case.json", str(tmp_path / "lib" / "x.py")).files_from(
        here / "sub", here
    )
    assert moved.items[0].file == "elsewhere/case.json"
    assert moved.items[0].findings[0].file == str(tmp_path / "lib" / "x.py")


def test_no_file_stays_none(tmp_path: Path) -> None:
    moved = _report(None, None).files_from(tmp_path, tmp_path)
    assert moved.items[0].file is None
    assert moved.items[0].findings[0].file is None
