"""Durations as people type them on a command line: `30d`, `12h`, `90m`, `45s`, `2w`, or a
sum of them (`1d12h`). Standard library only.

One parser for every option that takes one (`jobforge prune --older-than`, `jobforge retention
set`, `--since`), so they all accept and refuse the same text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_PART = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: The longest duration accepted: what the database takes (a century, in whole days).
LONGEST = timedelta(days=36_500)


def parse_duration(text: str) -> timedelta | None:
    """The duration `text` spells (`30d`, `1h30m`, `0s`), or None when it spells none."""
    spec = text.strip().lower()
    if not spec or _PART.sub("", spec).strip():
        return None
    try:
        return sum(
            (timedelta(**{_UNITS[unit]: int(n)}) for n, unit in _PART.findall(spec)), timedelta()
        )
    except (OverflowError, ValueError):  # more than a timedelta holds (or int() reads):
        # out of every range anyway
        return timedelta.max


def format_duration(value: timedelta) -> str:
    """`value` the way `parse_duration` reads it back: the largest units first (`1d12h`), `0s`."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def moment_since(text: str, now: datetime | None = None) -> datetime | None:
    """The moment `text` names: a duration back from `now` (`90m`, `1h30m`, `2d`), or an ISO 8601
    date or time (UTC when naive); None when it names neither (each front end says so in its own
    words). Further back than a datetime goes is its earliest moment: everything is since then."""
    delta = parse_duration(text)
    if delta is not None:
        try:
            return (now or datetime.now(UTC)) - delta
        except OverflowError:
            return datetime.min.replace(tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
