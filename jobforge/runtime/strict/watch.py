"""`Watch`: what one watched run collects, one site per (call, file, line) with the first values
returned there, and the context variable that says which watch (if any) the current thread or
asyncio task belongs to. Values are kept as short reprs taken with the original `repr`.
"""

from __future__ import annotations

import builtins
import contextvars
import reprlib
import threading
import types
from typing import Any

from jobforge.runtime.strict.causes import CAUSES, GlobalChange, UncontrolledCall
from jobforge.runtime.strict.sources import _NO_VALUE

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 190
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 20
_REPR.maxlevel = 3
_MAX_VALUES = 16
_original_repr = builtins.repr
_id = builtins.id
_object_repr: Any = object.__repr__


def _short(value: Any, limit: int = 200) -> str:
    try:
        text = (
            _REPR.repr(value)
            if isinstance(value, list | tuple | dict | set | frozenset)
            else _original_repr(value)
        )
    except Exception as exc:  # a broken __repr__ must not break the runner
        text = f"<{type(value).__name__}: repr failed: {type(exc).__name__}>"
    return _cap(text, limit)


def _cap(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Site:
    __slots__ = ("call", "cause", "file", "line", "values")

    def __init__(self, call: str, cause: str, file: str, line: int) -> None:
        self.call, self.cause, self.file, self.line = call, cause, file, line
        self.values: list[str] = []


class Watch:
    """Collects the uncontrolled calls made in the contexts (threads, tasks) it is installed in."""

    def __init__(self, clock_shift_s: float = 0.0) -> None:
        """`clock_shift_s`: what the wall clock (`time.time`, `time.time_ns`) is moved by for
        the watched code, whoever calls it (a library, `date.today()`, a default factory) but
        jobforge: runs of one case are watched with different shifts, so a date or an hour
        taken from the clock anywhere differs between them instead of agreeing by chance."""
        self._lock = threading.Lock()
        self._sites: dict[tuple[str, str, int], _Site] = {}
        self.globals_changed: list[GlobalChange] = []
        self.clock_shift_s = clock_shift_s

    @property
    def calls(self) -> list[UncontrolledCall]:
        """One per (call, file, line), in order of first sight, with the values seen there."""
        with self._lock:
            sites = list(self._sites.values())
            return [
                UncontrolledCall(s.call, s.file, s.line, s.cause,
                                 CAUSES.get(s.cause, ("error", ""))[0], tuple(s.values))
                for s in sites
            ]  # fmt: skip

    def _add(self, call: str, cause: str, frame: types.FrameType, value: Any) -> None:
        key = (call, frame.f_code.co_filename, frame.f_lineno or 0)
        with self._lock:
            site = self._sites.get(key)
            if site is None:
                site = self._sites[key] = _Site(call, cause, key[1], key[2])
            full = len(site.values) >= _MAX_VALUES
        if value is not _NO_VALUE and not full:
            text = _short(value)
            with self._lock:
                if len(site.values) < _MAX_VALUES:
                    site.values.append(text)


_CURRENT: contextvars.ContextVar[Watch | None] = contextvars.ContextVar(
    "jobforge.strict.watch", default=None
)
