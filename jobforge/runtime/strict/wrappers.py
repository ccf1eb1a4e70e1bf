"""What runs in place of a source while a watch is active: a wrapper that calls the original,
returns exactly what it returned (or raises what it raised) and, when the call is a watched
runner's own, records the site and the value. Also the wall clock's shift (`Watch.clock_shift_s`)
and the evidence of the clock read inside a library on the runner's behalf.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from jobforge.runtime.strict.frames import _LIB, _OURS, _USER, _kind, _site, _unordered_use
from jobforge.runtime.strict.sources import _NO_VALUE, Source, _result
from jobforge.runtime.strict.watch import _CURRENT, Watch


def _watched(
    watch: Watch, source: Source, original: Callable[..., Any], frame: types.FrameType,
    label: str, args: tuple[Any, ...], kwargs: dict[str, Any],
) -> Any:  # fmt: skip
    if source.order and _unordered_use(frame):
        return original(*args, **kwargs)
    token = _CURRENT.set(None)  # what the original calls is its business, not the runner's
    try:
        result = original(*args, **kwargs)
        shift = _SHIFTS.get(source.call)
        if shift is not None and watch.clock_shift_s:
            result = shift(result, watch.clock_shift_s)
    except BaseException:
        if source.keep is None:
            watch._add(label, source.cause_of(label), frame, _NO_VALUE)
        raise
    finally:
        _CURRENT.reset(token)
    if source.keep is None or source.keep(result):
        pick = source.value or _result
        watch._add(label, source.cause_of(label), frame, pick(args, kwargs, result))
    return result


#: The wall clock's sources, and how a shift in seconds applies to what they return.
_SHIFTS: dict[str, Callable[[Any, float], Any]] = {
    "time.time": lambda value, shift: value + shift,
    "time.time_ns": lambda value, shift: value + int(shift * 1_000_000_000),
}


def _library_read(watch: Watch, call: str, frame: types.FrameType | None, value: Any) -> None:
    """Evidence (severity "info") of the wall clock read by a library on the runner's behalf,
    at the runner's line that called into the library: explains a date that differs between
    runs, without blaming every log line on the runner."""
    via = frame.f_globals.get("__name__", "?") if frame is not None else "?"
    while frame is not None and _kind(frame.f_code.co_filename) == _LIB:
        frame = frame.f_back
    if frame is not None and _kind(frame.f_code.co_filename) == _USER:
        watch._add(f"{call}() inside {via}", "the wall clock, read inside a library", frame,
                   value)  # fmt: skip


def _ours(frame: types.FrameType | None) -> bool:
    """Whether the first frame that is not a library's is jobforge's (its timings are real)."""
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if kind != _LIB:
            return kind == _OURS
        frame = frame.f_back
    return True


def _make_wrapper(source: Source, original: Callable[..., Any]) -> Callable[..., Any]:
    current, getframe, site, label_of = _CURRENT.get, sys._getframe, _site, source.label
    call, through = source.call, source.through
    shift = _SHIFTS.get(call)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        watch = current()
        if watch is None:
            return original(*args, **kwargs)
        label: str | None = call
        if label_of is not None:
            try:
                label = label_of(args, kwargs)
            except Exception:  # an odd argument: not a call that counts
                label = None
        if label is None:
            return original(*args, **kwargs)
        frame = site(getframe(1), through)
        if frame is None:
            if shift is None or _ours(getframe(1)):
                return original(*args, **kwargs)
            value = original(*args, **kwargs)  # a library reads the clock for the runner
            if watch.clock_shift_s:
                value = shift(value, watch.clock_shift_s)
            _library_read(watch, call, getframe(1), value)
            return value
        return _watched(watch, source, original, frame, label, args, kwargs)

    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        with suppress(AttributeError, TypeError):
            setattr(wrapper, attr, getattr(original, attr))
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    return wrapper
