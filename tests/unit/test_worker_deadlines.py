"""The worker's shared timeout ticks: a deadline fires once, never early, at most a tick late,
and never once disarmed."""

from __future__ import annotations

import asyncio
import math

import pytest

from jobforge.worker.deadlines import Deadlines


def test_a_deadline_fires_once_not_early_and_at_most_a_tick_late() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(tick_s=0.02)
        fired: list[tuple[str, float]] = []
        began = loop.time()
        for name, delay in (("a", 0.05), ("b", 0.05), ("c", 0.11), ("now", 0.0)):
            deadlines.arm(delay, lambda n: fired.append((n, loop.time() - began)), name)
        await asyncio.sleep(0.25)
        return fired

    fired = asyncio.run(main())
    assert sorted(name for name, _ in fired) == ["a", "b", "c", "now"]
    due = {"a": 0.05, "b": 0.05, "c": 0.11, "now": 0.0}
    for name, at in fired:
        assert at >= due[name] - 0.001, (name, at)  # the loop's clock granularity aside
        assert at <= due[name] + 0.02 + 0.05, (name, at)  # a tick, and a busy machine's slack


def test_a_disarmed_deadline_never_fires_and_leaves_the_others() -> None:
    async def main() -> list[str]:
        deadlines = Deadlines(tick_s=0.02)
        fired: list[str] = []
        kept = deadlines.arm(0.03, fired.append, "kept")
        gone = deadlines.arm(0.03, fired.append, "gone")
        deadlines.disarm(gone)
        deadlines.disarm(gone)  # twice: nothing happens
        await asyncio.sleep(0.1)
        deadlines.disarm(kept)  # after it fired: nothing happens
        return fired

    assert asyncio.run(main()) == ["kept"]


@pytest.mark.parametrize("delay", [math.inf, math.nan, 1e306, 4e9])
def test_a_deadline_past_any_run_is_never_armed_and_never_raises(delay: float) -> None:
    """An infinite timeout (an operator's `inf`, a tenant's envelope of 1e400) used to raise
    while arming, before the job's outcome could be recorded, so its lease stayed held."""

    async def main() -> list[str]:
        deadlines = Deadlines(tick_s=0.02)
        fired: list[str] = []
        armed = deadlines.arm(delay, fired.append, "never")
        deadlines.disarm(armed)
        deadlines.arm(delay, fired.append, "never")
        await asyncio.sleep(0.05)
        return fired

    assert asyncio.run(main()) == []
