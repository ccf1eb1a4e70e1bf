"""The dashboard's chart bars and side-by-side diff rows (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobforge.dashboard.figures import HEIGHT, bars, side_by_side
from jobforge.dashboard.reads import Minute


def test_bars_scale_to_the_busiest_minute_and_stack() -> None:
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    minutes = [Minute(start + timedelta(minutes=i), ok, bad)
               for i, (ok, bad) in enumerate([(0, 0), (30, 10), (10, 0)])]  # fmt: skip
    found, peak = bars(minutes)
    assert peak == 40
    assert (found[0].h_ok, found[0].h_other) == (0, 0)
    assert found[1].h_ok + found[1].h_other == HEIGHT  # the busiest fills the chart
    assert found[1].y_other + found[1].h_other == found[1].y_ok  # stacked on the succeeded part
    assert found[2].h_ok == HEIGHT / 4
    assert found[1].label == "09:01 UTC: 30 succeeded, 10 failed/dead/canceled"


def test_bars_of_an_idle_hour_are_flat() -> None:
    found, peak = bars([Minute(datetime(2026, 3, 1, tzinfo=UTC), 0, 0)] * 60)
    assert peak == 0
    assert {b.h_ok for b in found} == {0}


def test_side_by_side_aligns_equal_lines_and_marks_the_change() -> None:
    rows = side_by_side('{\n  "total": 108.0\n}', '{\n  "total": 96.0\n}')
    assert [r.tag for r in rows] == ["equal", "replace", "equal"]
    assert (rows[1].left, rows[1].right) == ('  "total": 108.0', '  "total": 96.0')
    uneven = side_by_side("a\nb", "a\nb\nc")
    assert uneven[-1].tag == "insert"
    assert (uneven[-1].left, uneven[-1].right, uneven[-1].right_no) == (None, "c", 3)
