"""`jsonfile.write_new` and `bundle.export`: a file is written where nothing is, left alone when
it already holds the text, and never replaced when it holds anything else (issue [3/10]: `runs
export` overwrote one run's bundle with another's of the same attempt number)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jobforge.golden.case import load_case
from jobforge.jsonfile import write_new
from jobforge.replay.bundle import export, load_bundle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_written_then_unchanged_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    assert write_new(path, "one\n") == "written"
    assert path.read_text() == "one\n"
    assert write_new(path, "one\n") == "unchanged"
    assert write_new(path, "two\n") == "kept"
    assert write_new(path, "one\nand more\n") == "kept"
    assert path.read_text() == "one\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left


def test_the_new_file_has_the_usual_mode(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    path = tmp_path / "a.json"
    write_new(path, "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_symlink_or_folder_at_the_name_is_kept_and_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    (tmp_path / "link.json").symlink_to(victim)
    assert write_new(tmp_path / "link.json", "untouched") == "kept"  # not even read through
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    assert write_new(tmp_path / "dangling.json", "x") == "kept"
    assert not (tmp_path / "nowhere.json").exists()
    (tmp_path / "folder.json").mkdir()
    assert write_new(tmp_path / "folder.json", "x") == "kept"
    assert victim.read_text() == "untouched"


@pytest.fixture
def bundle_file() -> Path:
    return EXAMPLES / "bundles" / "ops.scan-job1-a1.json"


def test_export_names_the_file_for_the_run_and_keeps_a_different_one(
    tmp_path: Path, bundle_file: Path
) -> None:
    bundle = load_bundle(bundle_file)
    first = export(bundle, 11, bundles=tmp_path)
    assert (first.path.name, first.outcome) == ("ops.scan-job1-a1-run11.json", "written")
    assert load_bundle(first.path) == bundle
    other = export(bundle, 12, bundles=tmp_path)
    assert (other.path.name, other.outcome) == ("ops.scan-job1-a1-run12.json", "written")
    assert export(bundle, 11, bundles=tmp_path).outcome == "unchanged"
    edited = json.loads(first.path.read_text())
    edited["input"] = {"edited": True}
    first.path.write_text(json.dumps(edited))
    assert export(bundle, 11, bundles=tmp_path).outcome == "kept"
    assert json.loads(first.path.read_text())["input"] == {"edited": True}
    assert export(bundle, 11, bundles=tmp_path, overwrite=True).outcome == "written"
    assert load_bundle(first.path) == bundle


def test_export_as_a_golden_case(tmp_path: Path, bundle_file: Path) -> None:
    bundle = load_bundle(bundle_file)
    done = export(bundle, 7, golden=tmp_path / "golden")
    assert done.path == tmp_path / "golden" / "ops.scan" / "job1-a1-run7.json"
    assert load_case(done.path) == bundle.case()
    assert export(bundle, 7, golden=tmp_path / "golden").outcome == "unchanged"
