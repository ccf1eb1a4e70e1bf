"""What PostgreSQL cannot store, found before a batch of outcomes carries it to the database."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobforge import errors, storable
from jobforge.worker.outcomes import _json_result, error_record


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("plain", None),
        ("emoji \U0001f600 and accents é", None),
        ("a\x00b", storable.NUL),
        ("half \ud800 of a pair", storable.SURROGATE),
    ],
)
def test_text_problem(value: str, problem: str | None) -> None:
    assert storable.text_problem(value) == problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": "b"}, None),
        ({"text": "\\u0000"}, None),  # the six characters, escaped backslash and all: storable
        ({"text": "\\\\\x00"}, storable.NUL),  # backslashes, then a real NUL
        ({"a\x00": 1}, storable.NUL),  # in a key too
        ({"deep": [{"x": "\udfff"}]}, storable.SURROGATE),
    ],
)
def test_json_problem_tells_an_escaped_nul_from_the_text_of_one(
    value: Any, problem: str | None
) -> None:
    assert storable.json_problem(json.dumps(value, ensure_ascii=False)) == problem


def test_shown_writes_what_cannot_be_stored_as_escapes() -> None:
    assert storable.shown("ok") == "ok"
    assert storable.shown("a\x00b\ud800c") == "a\\x00b\\ud800c"
    assert storable.text_problem(storable.shown("a\x00b\ud800c")) is None


@pytest.mark.parametrize("result", ["a\x00", "\ud800", {"k": "v\x00"}, ["\udc00"], {"\x00": 1}])
def test_a_result_the_database_cannot_store_fails_its_job_alone(result: Any) -> None:
    with pytest.raises(errors.NonRetryable, match="result cannot be stored: it holds"):
        _json_result(result)


def test_a_result_with_the_text_of_an_escape_is_kept() -> None:
    assert _json_result({"text": "\\u0000"}) == {"text": "\\u0000"}
    assert _json_result("fine") == "fine"


def test_an_error_record_keeps_an_odd_message_as_escapes() -> None:
    class Odd(Exception):
        def __init__(self, message: str) -> None:
            super().__init__(message)
            self.details = {"raw": "x\x00y"}

    record = error_record("exception", Odd("bad\x00byte \ud800"))
    assert record["message"] == "bad\\x00byte \\ud800"
    assert storable.json_problem(json.dumps(record, ensure_ascii=False)) is None
    assert record["details"] == repr({"raw": "x\x00y"})  # repr writes the NUL as an escape
