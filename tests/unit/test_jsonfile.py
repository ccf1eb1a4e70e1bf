"""Hostile JSON files (issue [2/10], point 10): each is one line naming the file, never a
traceback, for golden cases and bundles alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from jobforge import errors
from jobforge.golden.case import load_case, write_case
from jobforge.jsonfile import read_json, write_atomic
from jobforge.replay.bundle import load_bundle, write_bundle

BAD = {
    "not_utf8": (b'{"input": "\xff\xfe"}', r"is not UTF-8 \(byte 11: b'\\xff'\)"),
    "not_json": (b'{"input": ', r"is not JSON: Expecting value"),
    "deep_array": (b"[" * 100_000 + b"]" * 100_000, r"is nested too deeply to read"),
    "deep_object": (b'{"input": ' + b'{"a":' * 5_000 + b"1" + b"}" * 5_001,
                    r"is nested too deeply to read"),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_hostile_file_is_one_line_naming_it(tmp_path: Path, kind: str) -> None:
    body, message = BAD[kind]
    path = tmp_path / f"{kind}.json"
    path.write_bytes(body)
    loaders: list[tuple[Callable[[Path], object], str]] = [
        (load_case, "golden case"), (load_bundle, "bundle"),
    ]  # fmt: skip
    for load, what in loaders:
        with pytest.raises(
            errors.ConfigurationError, match=f"^{what} .*{kind}.json {message}"
        ) as caught:
            load(path)
        assert "\n" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"cannot read bundle .*gone.json"):
        read_json(tmp_path / "gone.json", "bundle")


def test_good_json_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text('{"a": [1, 2, {"b": null}]}')
    assert read_json(path, "x") == {"a": [1, 2, {"b": None}]}


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.write_text("do not touch\n")
    return victim


def test_a_symlink_planted_at_the_old_temporary_name_of_a_golden_case_is_not_followed(
    tmp_path: Path,
) -> None:
    """Point 8: `<case>.json.tmp` used to be opened for writing, following a planted symlink."""
    victim = _victim(tmp_path)
    path = tmp_path / "case.json"
    (tmp_path / "case.json.tmp").symlink_to(victim)
    write_case(path, load_case(next((EXAMPLES / "golden" / "ops.scan").glob("*.json"))))
    assert victim.read_text() == "do not touch\n"
    assert load_case(path).input
    assert not path.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.json", "case.json.tmp", "victim"]


def test_a_symlink_planted_at_the_old_temporary_name_of_a_bundle_is_not_followed(
    tmp_path: Path,
) -> None:
    victim = _victim(tmp_path)
    bundle = load_bundle(EXAMPLES / "bundles" / "ops.scan-job1-a1.json")
    folder = tmp_path / "bundles"
    folder.mkdir()
    (folder / f"{bundle.file_name()}.tmp").symlink_to(victim)
    path = write_bundle(folder, bundle)
    assert victim.read_text() == "do not touch\n"
    assert load_bundle(path) == bundle


def test_an_atomic_write_replaces_a_symlink_at_the_target_instead_of_writing_through_it(
    tmp_path: Path,
) -> None:
    victim = _victim(tmp_path)
    target = tmp_path / "server.json"
    target.symlink_to(victim)
    write_atomic(target, "{}\n", private=True)
    assert victim.read_text() == "do not touch\n"
    assert not target.is_symlink()
    assert target.read_text() == "{}\n"
    assert target.stat().st_mode & 0o777 == 0o600


def test_an_atomic_write_leaves_no_temporary_file_when_it_fails(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "inside").write_text("x")  # a non-empty folder cannot be replaced
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path / "taken", "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
