"""The completer records one batch of outcomes at a time; what arrives meanwhile waits for it
and goes in the next batch (no database: a fake client whose finish the test lets through)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any, cast

from jobforge.queue import AsyncQueueClient, Outcome
from jobforge.queue.models import FinishState
from jobforge.worker.completer import Completer


class Gated:
    """Stands in for the queue client: each `finish_each` waits until the test opens the gate."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()

    async def finish_each(self, worker: str, outcomes: Sequence[Outcome]) -> list[FinishState]:
        self.batches.append([o.job_id for o in outcomes])
        await self.gate.wait()
        return ["succeeded"] * len(outcomes)


def outcome(job_id: int) -> Outcome:
    return Outcome(job_id=job_id, lease_token=uuid.uuid4(), outcome="succeeded")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_outcomes_wait_for_the_batch_in_flight_and_go_in_the_next() -> None:
    async def main() -> tuple[list[list[int]], list[list[int]], list[int], bool]:
        fake = Gated()
        recorded: list[int] = []
        completer = Completer(
            cast(AsyncQueueClient, fake),
            "w1",
            lambda o, state: recorded.append(o.job_id),
            batch=2,
            flush_s=60.0,  # only a full batch or a flush that ends sends anything here
        )
        for job_id in (1, 2):  # a full batch: sent at once
            completer.submit(outcome(job_id))
        await settle()
        for job_id in (3, 4, 5):  # while it is in flight: they wait
            completer.submit(outcome(job_id))
        await settle()
        while_in_flight = [list(b) for b in fake.batches]
        fake.gate.set()
        await completer.close()
        return while_in_flight, fake.batches, recorded, completer.busy

    while_in_flight, batches, recorded, busy = asyncio.run(main())
    assert while_in_flight == [[1, 2]]
    assert batches == [[1, 2], [3, 4], [5]]
    assert recorded == [1, 2, 3, 4, 5]
    assert not busy


def test_close_records_what_waits_behind_a_flush() -> None:
    async def main() -> list[int]:
        fake = Gated()
        fake.gate.set()
        recorded: list[int] = []

        def note(o: Outcome, state: Any) -> None:
            recorded.append(o.job_id)

        completer = Completer(cast(AsyncQueueClient, fake), "w1", note, batch=10, flush_s=60.0)
        completer.submit(outcome(7))
        await completer.close()
        return recorded

    assert asyncio.run(main()) == [7]
