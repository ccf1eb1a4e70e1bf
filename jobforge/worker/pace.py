"""How far ahead a worker claims when it was not told (`WorkerConfig.prefetch` None): enough
jobs to keep its slots busy for a claim's round trip or two at the rate its jobs have been
finishing, never fewer than its slots.

Why adaptive: a fixed number ahead is wrong at one end or the other. No-op jobs at concurrency
10 drained ~3,900 jobs/s with 10 ahead and ~6,600 with 128 (one process, 2 cores): short jobs
want many ahead, so each claim is large and a slot never waits for one. Long jobs want few:
every job held ahead is leased to this worker while idle workers could run it. Jobs that finish
fast raise the rate and so the claims; slow ones keep the old default (as many as the slots).
"""

from __future__ import annotations

import math
from collections import deque

#: Finishes counted over this window for the rate.
WINDOW_S = 0.5
#: Keep enough ahead for this long at that rate (a claim's round trip, with room to spare).
HORIZON_S = 0.1
#: Never more ahead than this many per slot, nor than MOST in all: a worker that dies strands
#: what it held until the leases run out.
PER_SLOT = 8
MOST = 256


class Pace:
    """Job finishes of the last `WINDOW_S`, and the number ahead they call for."""

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: deque[float] = deque(maxlen=16_384)

    def finished(self, now: float) -> None:
        self._times.append(now)

    def ahead(self, concurrency: int, now: float) -> int:
        """Jobs to hold ahead of `concurrency` slots: between the slots' number and the caps."""
        times = self._times
        while times and times[0] < now - WINDOW_S:
            times.popleft()
        wanted = math.ceil(len(times) / WINDOW_S * HORIZON_S)
        return max(concurrency, min(wanted, PER_SLOT * concurrency, MOST))
