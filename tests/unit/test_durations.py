"""Durations and moments as people type them, one parser for every front end (CLI, MCP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobforge.durations import format_duration, moment_since, parse_duration

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("90m", NOW - timedelta(minutes=90)),
        ("1h30m", NOW - timedelta(minutes=90)),
        (" 2D ", NOW - timedelta(days=2)),
        ("0s", NOW),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),  # naive: UTC
        ("2026-11-01T05:00:00+02:00", datetime(2026, 11, 1, 3, tzinfo=UTC)),
        ("99999999999d", datetime.min.replace(tzinfo=UTC)),  # further back than a datetime goes
    ],
)
def test_a_moment_is_a_duration_back_or_a_date(text: str, moment: datetime) -> None:
    assert moment_since(text, NOW) == moment


@pytest.mark.parametrize("text", ["", " ", "yesterday", "5 parsecs", "1h-2m", "2026-13-01", "-5m"])
def test_text_naming_no_moment_is_none(text: str) -> None:
    assert moment_since(text, NOW) is None


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=36_500)))
def test_a_formatted_duration_reads_back_to_its_whole_seconds(value: timedelta) -> None:
    whole = timedelta(seconds=int(value.total_seconds()))
    assert parse_duration(format_duration(value)) == whole
