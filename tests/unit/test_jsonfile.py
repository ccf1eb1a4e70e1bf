"""Hostile JSON files (issue [2/10], point 10): each is one line naming the file, never a
traceback, for golden cases and bundles alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from jobforge import errors
from jobforge.golden.case import load_case
from jobforge.jsonfile import read_json
from jobforge.replay.bundle import load_bundle

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
