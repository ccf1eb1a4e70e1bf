"""The pipelined worker against a real database: it claims again while earlier outcomes are
still being recorded, claims ahead of its free slots, and holds the jobs it claimed ahead like
running ones (heartbeated, released at shutdown, canceled without running)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, NewJob, Outcome, QueueClient
from jobforge.states import JobState
from jobforge.worker import JobContext, Registry, Worker, WorkerConfig, WorkerReport
from tests.integration.test_worker import LIMIT_S, fast, has_event, kinds, run_worker, until

Payload = dict[str, Any]


@pytest.fixture
def client(jobforge_db: Database) -> Iterator[QueueClient]:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        yield queue


class SlowFinish(AsyncQueueClient):
    """A client whose outcome batches take `finish_s` to record; it notes its claims (with
    their limits) and when each batch of outcomes began and ended, in order."""

    calls: list[tuple[str, int]]
    finish_s: float

    async def claim(self, worker: str, limit: int, **kwargs: Any) -> Any:
        self.calls.append(("claim", limit))
        return await super().claim(worker, limit, **kwargs)

    async def finish_each(self, worker: str, outcomes: Sequence[Outcome], **kwargs: Any) -> Any:
        self.calls.append(("finish", len(outcomes)))
        await asyncio.sleep(self.finish_s)
        states = await super().finish_each(worker, outcomes, **kwargs)
        self.calls.append(("finished", len(outcomes)))
        return states


def test_the_worker_claims_again_before_earlier_outcomes_are_recorded(
    client: QueueClient, jobforge_db: Database
) -> None:
    """Outcomes are recorded in the background: a claim does not wait for their commit."""
    registry = Registry()
    registry.register("math.one", lambda payload, ctx: 1)
    ids = [e.job_id for e in client.enqueue_many([NewJob(type="math.one", payload={})] * 12)]
    config = fast(concurrency=2, prefetch=3, exit_when_idle=True, listen=False)

    async def main() -> tuple[WorkerReport, list[tuple[str, int]]]:
        queue = await SlowFinish.connect(jobforge_db.dsn)
        assert isinstance(queue, SlowFinish)
        queue.calls, queue.finish_s = [], 0.3
        try:
            report = await asyncio.wait_for(Worker(queue, registry, config).run(), LIMIT_S)
        finally:
            await queue.close()
        return report, queue.calls

    report, calls = asyncio.run(main())

    assert report.counts["succeeded"] == 12
    assert all(client.get(i).status is JobState.SUCCEEDED for i in ids)
    assert calls[0] == ("claim", 5)  # two slots and three ahead
    first_finish = next(i for i, (name, _) in enumerate(calls) if name == "finish")
    first_finished = next(i for i, (name, _) in enumerate(calls) if name == "finished")
    claims_meanwhile = [c for c in calls[first_finish:first_finished] if c[0] == "claim"]
    assert claims_meanwhile, calls
    assert calls[-1][0] == "claim"  # the drain ends on an empty claim, all recorded by then


def test_jobs_claimed_ahead_are_released_at_shutdown_without_costing_an_attempt(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    ran: list[int] = []

    async def hang(payload: Payload, ctx: JobContext) -> None:
        ran.append(ctx.job_id)
        await asyncio.sleep(30)

    registry.register("ops.hang", hang)
    ids = [e.job_id for e in client.enqueue_many([NewJob(type="ops.hang", payload={})] * 3)]

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> None:
        await until(lambda: len(ran) == 1, what="the first job to start")
        for job_id in ids:
            await until(has_event(queue, job_id, "claimed"), what="every job to be claimed")

    config = fast(concurrency=1, prefetch=2, grace_s=0.2)
    report, _ = run_worker(jobforge_db.dsn, registry, config, scenario)

    assert ran == [ids[0]]
    for job_id in ids:
        job = client.get(job_id)
        assert job.status is JobState.QUEUED
        assert job.attempts == 0
        assert job.lease_holder is None
        assert kinds(client, job_id) == ["created", "claimed", "released"]
    assert report.counts["claimed"] == report.counts["released"] == 3


def test_a_job_claimed_ahead_keeps_its_lease_while_it_waits(
    client: QueueClient, jobforge_db: Database
) -> None:
    """It waits longer than its lease behind a slow job, with the reaper running every lease
    period: only the heartbeat keeps it."""
    registry = Registry()

    async def slow(payload: Payload, ctx: JobContext) -> str:
        await asyncio.sleep(payload["s"])
        return "done"

    registry.register("ops.slow", slow)
    first = client.enqueue("ops.slow", {"s": 2.5}).job_id
    second = client.enqueue("ops.slow", {"s": 0}).job_id

    config = fast(concurrency=1, prefetch=1, lease_s=1.0, exit_when_idle=True, listen=False)
    report = asyncio.run(asyncio.wait_for(Worker(jobforge_db.dsn, registry, config).run(), LIMIT_S))

    for job_id in (first, second):
        assert client.result(job_id) == "done"
        assert kinds(client, job_id) == ["created", "claimed", "succeeded"]
        assert [(a.attempt, a.outcome) for a in client.attempts(job_id)] == [(1, "succeeded")]
    assert report.counts["claimed"] == 2  # both in one claim: the second waited
    assert report.counts["lost"] == report.counts["reaped"] == 0


def test_a_job_canceled_while_it_waits_never_runs_and_is_acknowledged(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    ran: list[int] = []
    compensated: list[int] = []
    release = asyncio.Event()

    async def gate(payload: Payload, ctx: JobContext) -> str:
        ran.append(ctx.job_id)
        await release.wait()
        return "done"

    async def undo(payload: Payload, ctx: JobContext) -> None:
        compensated.append(ctx.job_id)

    registry.register("ops.gate", gate, on_cancel=undo)
    first = client.enqueue("ops.gate", {}).job_id
    second = client.enqueue("ops.gate", {}).job_id

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> None:
        await until(lambda: ran == [first], what="the first job to start")
        await until(has_event(queue, second, "claimed"), what="the second to be claimed ahead")
        assert await queue.cancel(second) is JobState.CANCELED
        await until(has_event(queue, second, "cancel_acknowledged"), what="the acknowledgement")
        release.set()
        await until(has_event(queue, first, "succeeded"), what="the first job's outcome")

    config = fast(concurrency=1, prefetch=1, lease_s=1.5)
    report, _ = run_worker(jobforge_db.dsn, registry, config, scenario)

    assert ran == [first]
    assert compensated == []  # no handler ran: nothing to compensate
    assert client.get(second).status is JobState.CANCELED
    events = client.events(second)
    assert [e.kind for e in events] == ["created", "claimed", "canceled", "cancel_acknowledged"]
    assert events[-1].data == {"compensation": "none"}
    assert report.counts["canceled"] == 1
    assert report.counts["succeeded"] == 1


def test_prefetch_defaults_to_at_least_as_many_as_the_slots_and_none_for_one_slot() -> None:
    assert WorkerConfig(concurrency=1).ahead == 0
    assert WorkerConfig(concurrency=2).ahead == 2
    assert WorkerConfig(concurrency=10).ahead == 10
    assert WorkerConfig(concurrency=10, prefetch=0).ahead == 0


def test_a_claim_asks_for_no_more_than_claim_batch(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    registry.register("math.one", lambda payload, ctx: 1)
    client.enqueue_many([NewJob(type="math.one", payload={})] * 7)
    config = fast(concurrency=4, prefetch=4, claim_batch=3, exit_when_idle=True, listen=False)

    async def main() -> tuple[WorkerReport, list[tuple[str, int]]]:
        queue = await SlowFinish.connect(jobforge_db.dsn)
        assert isinstance(queue, SlowFinish)
        queue.calls, queue.finish_s = [], 0.0
        try:
            report = await asyncio.wait_for(Worker(queue, registry, config).run(), LIMIT_S)
        finally:
            await queue.close()
        return report, queue.calls

    report, calls = asyncio.run(main())
    assert report.counts["succeeded"] == 7
    assert max(limit for name, limit in calls if name == "claim") == 3


@pytest.mark.parametrize("tune_gc", [True, False])
def test_the_collector_is_paced_while_the_worker_runs_and_restored_after(
    client: QueueClient, jobforge_db: Database, tune_gc: bool
) -> None:
    """`WorkerConfig.tune_gc` (`worker/gcpace.py`): the handlers run with startup objects frozen
    and a young threshold of 10,000; after the drain the process has its own settings back."""
    import gc

    from jobforge.worker import gcpace

    seen: list[tuple[tuple[int, int, int], int]] = []
    registry = Registry()
    registry.register(
        "gc.see", lambda payload, ctx: seen.append((gc.get_threshold(), gc.get_freeze_count()))
    )
    client.enqueue_many([NewJob(type="gc.see", payload={})] * 3)
    before = gc.get_threshold()
    report = asyncio.run(
        Worker(
            jobforge_db.dsn,
            registry,
            fast(exit_when_idle=True, listen=False, tune_gc=tune_gc),
        ).run()
    )
    assert report.counts["succeeded"] == 3
    assert len(seen) == 3
    for threshold, frozen in seen:
        if tune_gc:
            assert threshold[0] == max(before[0], gcpace.YOUNG_THRESHOLD)
            assert frozen > 0
        else:
            assert threshold == before
            assert frozen == 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
