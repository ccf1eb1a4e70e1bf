"""Durations an operator types (`30s`, `5m`, `1h30m`, `2d`) for thresholds and windows."""

from __future__ import annotations

import re
from datetime import datetime

from jobforge import errors
from jobforge.durations import moment_since

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def parse_duration(text: str, option: str, *, maximum_s: float = 366 * 86_400) -> float:
    """Seconds in `text`; else one line naming the option and what it takes. A bare number is
    seconds."""
    spec = text.strip().lower()
    try:
        seconds = float(spec)
    except ValueError:
        if not spec or _PART.sub("", spec).strip():
            raise errors.ConfigurationError(
                f"{option} {text!r}: give a duration like 30s, 5m, 1h or 2d"
            ) from None
        seconds = sum(float(n) * _SECONDS[unit] for n, unit in _PART.findall(spec))
    if not 0 <= seconds <= maximum_s:  # also refuses nan and inf
        raise errors.ConfigurationError(
            f"{option} {text!r} is out of range: give 0 to {maximum_s:g} seconds"
        )
    return seconds


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """`90m`, `1h30m`, `2d` back from now, or an ISO 8601 date or time (UTC when naive)."""
    if text is None:
        return None
    moment = moment_since(text, now)
    if moment is None:
        raise errors.ConfigurationError(
            f"--since {text!r}: give a duration like 30m, 1h, 2d or an ISO 8601 date"
        )
    return moment
