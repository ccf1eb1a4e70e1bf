"""The run manifest (`jobforge.runtime.manifest`): user data never becomes Markdown. A value
with pipes, newlines, backticks, HTML or emphasis stays one cell of one row; a code block holds
any text without closing early."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from jobforge.runtime.manifest import cell, code, fenced, render, table

#: A `|` not preceded by an odd number of backslashes: a cell boundary.
_BOUNDARY = re.compile(r"(?<!\\)(?:\\\\)*\|")


def boundaries(line: str) -> int:
    return len(_BOUNDARY.findall(line))


@given(st.text())
def test_a_cell_is_one_line_without_a_cell_boundary(text: str) -> None:
    escaped = cell(text)
    assert "\n" not in escaped
    assert "\r" not in escaped
    assert boundaries(escaped) == 0
    assert "<" not in escaped.replace("<br>", "").replace("\\<", "")


@given(st.lists(st.text(), min_size=3, max_size=3))
def test_a_row_keeps_its_cells_whatever_they_hold(values: list[str]) -> None:
    rows = table(("a", "b", "c"), [values]).splitlines()
    assert len(rows) == 3
    assert boundaries(rows[2]) == 4


def test_what_markdown_would_read_is_escaped() -> None:
    assert cell("a|b") == "a\\|b"
    assert cell("one\ntwo\r\nthree") == "one<br>two<br>three"
    assert cell("<script>x</script>") == "\\<script\\>x\\</script\\>"
    assert cell("**bold** `code` [link](u) ~~s~~ \\") == (
        "\\*\\*bold\\*\\* \\`code\\` \\[link\\](u) \\~\\~s\\~\\~ \\\\"
    )
    assert cell({"k": "v|w"}) == '{"k": "v\\|w"}'


@given(st.text())
def test_a_fence_is_never_closed_by_its_content(text: str) -> None:
    block = fenced(text)
    fence = block.split("\n", 1)[0]
    inner = block[len(fence) + 1 : -len(fence) - 1]
    assert inner == text
    assert fence not in text


def test_a_record_renders_with_every_section() -> None:
    record = {
        "format": "jobforge.run/1", "runner_id": "ops.scan", "runner_version": "1.0.0",
        "status": "failed", "error": {"type": "NonRetryable", "message": "bad | input\n```"},
        "input": {"canonical": '{"target":"a|b"}', "sha256": "sha256:" + "1" * 64},
        "environment": {"tenant_id": "acme", "trace_id": None},
        "trace": [{"key": "k|ey", "value": "v\nw", "why": {"reason": "r"}}],
        "trace_sha256": "sha256:" + "2" * 64, "output": None,
        "artifacts": [{"name": "report.md", "media": "text", "size": 2048,
                       "sha256": "sha256:" + "3" * 64}],
        "logs": {"name": "@logs.jsonl", "media": "text", "size": 10,
                 "sha256": "sha256:" + "4" * 64},
        "provenance": {"job_id": 7, "attempt": 2, "worker": "w1", "recorded_at": "2026-01-01",
                       "duration_ms": 1.5, "fingerprints": {"code_sha256": None, "python": "3.12",
                                                            "packages": {"pydantic": "2"}}},
    }  # fmt: skip
    text = render(record)
    assert "| job | 7 |" in text
    assert "| attempt | 2 |" in text
    assert '| 1 | k\\|ey | "v\\\\nw" | {"reason": "r"} |' in text  # values as JSON
    assert "| report.md | text | 2048 (2.0 KiB) | sha256:" + "3" * 64 + " |" in text
    assert "| @logs.jsonl | log lines | 10 |" in text
    assert "none (status failed)" in text
    assert "````\nbad | input\n```\n````" in text  # the message's fence cannot close the block
    assert "| package pydantic | 2 |" in text


def test_hashes_are_code_spans_unless_that_would_not_be_safe() -> None:
    assert code("sha256:" + "a" * 64) == "`sha256:" + "a" * 64 + "`"
    assert code("a`b") == "a\\`b"
    assert code("a|b") == "a\\|b"
    assert code("") == ""
