"""Job timeouts on shared timers: one event-loop timer per tick of `TICK_S`, however many jobs
reach their deadline within it.

A timer of its own per job (`loop.call_later`, then `cancel` when the job ends in time) cost a
heap push, a handle and a cancellation for every job, most of which never time out: ~3 us of
a no-op job's ~30 us in the worker. Here a job's deadline is rounded up to the next tick and
filed under it; the tick's timer is set once, by the first job filed under it, and a job that
ends in time takes itself off its tick's list. A timeout therefore fires between 0 and `TICK_S`
late, never early.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

#: How finely deadlines are told apart: a timeout fires at most this late.
TICK_S = 0.02

Armed = tuple[int, int]  #: (tick, entry): what `disarm` takes
#: Delays this long or longer (a century; infinity, NaN) are never armed: no run lasts that
#: long, and the tick of an infinite deadline cannot be computed.
NEVER_S = 100 * 365.25 * 86400
NOT_ARMED: Armed = (-1, -1)


class Deadlines:
    """Callbacks due at deadlines, grouped by tick; use it on one event loop."""

    __slots__ = ("_next", "_tick_s", "_ticks")

    def __init__(self, tick_s: float = TICK_S) -> None:
        self._tick_s = tick_s
        self._ticks: dict[int, dict[int, tuple[Callable[..., None], tuple[Any, ...]]]] = {}
        self._next = 0

    def arm(self, delay_s: float, callback: Callable[..., None], *args: Any) -> Armed:
        """Call `callback(*args)` once `delay_s` has passed (up to a tick later), unless
        disarmed before."""
        if not delay_s < NEVER_S:  # infinite, NaN, or past any run: never fires
            return NOT_ARMED
        loop = asyncio.get_running_loop()
        tick = math.ceil((loop.time() + max(delay_s, 0.0)) / self._tick_s)
        entries = self._ticks.get(tick)
        if entries is None:
            entries = self._ticks[tick] = {}
            loop.call_at(tick * self._tick_s, self._fire, tick)
        self._next += 1
        entries[self._next] = (callback, args)
        return tick, self._next

    def disarm(self, armed: Armed) -> None:
        entries = self._ticks.get(armed[0])
        if entries is not None:
            entries.pop(armed[1], None)

    def _fire(self, tick: int) -> None:
        for callback, args in self._ticks.pop(tick, {}).values():
            callback(*args)
