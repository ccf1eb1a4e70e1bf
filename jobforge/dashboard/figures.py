"""Shapes the templates draw: the throughput chart's bars and a side-by-side diff's rows.

The chart is SVG computed here and written by the template as elements with numeric attributes
(no script, no inline style: the page's Content-Security-Policy allows neither). The diff comes
from `difflib` as rows of plain text; the template escapes every cell.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from jobforge.dashboard.reads import Minute

#: The chart's drawing area (SVG user units).
WIDTH, HEIGHT = 600, 120


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    y_ok: float  #: top of the succeeded part
    h_ok: float
    y_other: float  #: top of the failed/dead/canceled part (stacked on the succeeded one)
    h_other: float
    label: str  #: the bar's tooltip: minute and counts


def bars(minutes: Sequence[Minute]) -> tuple[list[Bar], int]:
    """One stacked bar per minute, scaled to the busiest minute; and that minute's count."""
    peak = max((m.succeeded + m.other for m in minutes), default=0)
    scale = HEIGHT / peak if peak else 0.0
    step = WIDTH / max(len(minutes), 1)
    found = []
    for i, m in enumerate(minutes):
        h_ok, h_other = m.succeeded * scale, m.other * scale
        found.append(Bar(
            x=round(i * step, 2), width=round(step * 0.8, 2),
            y_ok=round(HEIGHT - h_ok, 2), h_ok=round(h_ok, 2),
            y_other=round(HEIGHT - h_ok - h_other, 2), h_other=round(h_other, 2),
            label=f"{m.at:%H:%M} UTC: {m.succeeded} succeeded, {m.other} failed/dead/canceled",
        ))  # fmt: skip
    return found, peak


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One row of a side-by-side diff: a line of each side (None: no line there) and what
    happened to it (`equal`, `replace`, `delete`, `insert`)."""

    tag: str
    left: str | None
    right: str | None
    left_no: int | None
    right_no: int | None


def side_by_side(left: str, right: str) -> list[DiffRow]:
    """The two texts line by line, aligned where they agree."""
    a, b = left.splitlines(), right.splitlines()
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            li, rj = i1 + k, j1 + k
            rows.append(DiffRow(
                tag,
                a[li] if li < i2 else None, b[rj] if rj < j2 else None,
                li + 1 if li < i2 else None, rj + 1 if rj < j2 else None,
            ))  # fmt: skip
    return rows
