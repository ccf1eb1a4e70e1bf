"""The named-query loader: file format rules, and every shipped query used by the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobforge import sql

PACKAGE = Path(sql.__file__).parent.parent


def test_parses_named_blocks_and_ignores_leading_comments() -> None:
    text = "-- about this file\n\n-- name: a_one\nSELECT 1;\n\n-- name: b_two\nSELECT 2\n"
    assert sql.parse(text) == {"a_one": "SELECT 1;", "b_two": "SELECT 2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 1\n-- name: a\nSELECT 2", "SQL before the first"),
        ("-- name: a\n\n-- name: b\nSELECT 1", "'a' is empty"),
        ("-- name: a\nSELECT 1\n-- name: a\nSELECT 2", "'a' defined twice"),
    ],
)
def test_malformed_files_are_refused_with_the_file_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        sql.parse(text, source="x.sql")
    assert "x.sql" in str(info.value)


def test_unknown_query_names_the_query() -> None:
    with pytest.raises(KeyError, match="no_such_query"):
        sql.query("no_such_query")


def test_every_shipped_query_is_used_by_the_code() -> None:
    code = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    unused = [name for name in sql.queries() if not re.search(rf"['\"]{name}['\"]", code)]
    assert unused == []
