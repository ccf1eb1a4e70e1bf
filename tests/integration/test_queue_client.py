"""The queue client (sync and async) against a real database: calls, typed errors, pagination."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from jobforge import errors
from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, NewJob, Outcome, QueueClient
from jobforge.states import JobState

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def client(jobforge_db: Database) -> Iterator[QueueClient]:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        yield queue


def test_a_job_s_life_through_the_client(client: QueueClient) -> None:
    enqueued = client.enqueue("ops.scan", {"target": "a"}, idempotency_key="k", now=T0)
    assert enqueued.created
    assert client.enqueue(
        "ops.scan", {"target": "a"}, idempotency_key="k", now=T0
    ) == enqueued.model_copy(update={"created": False})
    (job,) = client.claim("w1", 5, now=T0)
    assert job.status is JobState.RUNNING
    assert job.lease_token is not None
    assert client.heartbeat("w1", [(job.id, job.lease_token)], now=T0) == {job.id: "ok"}
    assert client.progress("w1", job.id, job.lease_token, 50.0, "half", now=T0)
    outcome = Outcome(
        job_id=job.id, lease_token=job.lease_token, outcome="succeeded", result={"n": 1}
    )
    assert client.finish("w1", [outcome], now=T0) == {job.id: "succeeded"}
    assert client.finish("w1", [outcome], now=T0) == {job.id: "lost"}  # a duplicate changes nothing
    assert client.get(job.id).status is JobState.SUCCEEDED
    assert client.result(job.id) == {"n": 1}
    assert [e.kind for e in client.events(job.id)] == [
        "created",
        "claimed",
        "progress",
        "succeeded",
    ]
    assert [(a.attempt, a.outcome) for a in client.attempts(job.id)] == [(1, "succeeded")]


def test_listing_pages_newest_first_with_filters(client: QueueClient) -> None:
    ids = [
        e.job_id
        for e in client.enqueue_many([NewJob(type="ops.a", payload={"i": i}) for i in range(5)])
    ]
    client.enqueue("ops.b", {})
    first = client.list_jobs(type=["ops.a"], limit=2)
    assert [j.id for j in first.jobs] == ids[::-1][:2]
    second = client.list_jobs(type=["ops.a"], limit=2, before=first.next_before)
    assert [j.id for j in second.jobs] == ids[::-1][2:4]
    assert len(client.list_jobs(status=["queued"]).jobs) == 6
    with pytest.raises(errors.InvalidJob, match="unknown status 'bogus'"):
        client.list_jobs(status=["bogus"])


def test_typed_errors(client: QueueClient, jobforge_db: Database) -> None:
    job = client.enqueue("ops.scan", {"a": 1}, idempotency_key="k")
    with pytest.raises(
        errors.IdempotencyConflict, match=f"'k' is already used by job {job.job_id}"
    ):
        client.enqueue("ops.scan", {"a": 2}, idempotency_key="k")
    with pytest.raises(errors.PayloadTooLarge, match="over the limit of 10"):
        QueueClient(client.pool, tenant="acme", max_payload_bytes=10).enqueue(
            "ops.scan", {"x": "y" * 20}
        )
    with pytest.raises(errors.InvalidJob, match="type 'Bad Type' is invalid"):
        client.enqueue("Bad Type", {})
    with pytest.raises(errors.InvalidTransition, match="only failed, dead or canceled"):
        client.reschedule(job.job_id)
    assert client.cancel(job.job_id) is JobState.CANCELED
    assert client.cancel(job.job_id) is JobState.CANCELED  # idempotent
    with QueueClient.connect(jobforge_db.dsn, tenant="other") as other:
        with pytest.raises(errors.JobNotFound):
            other.cancel(job.job_id)
        with pytest.raises(errors.JobNotFound):
            other.get(job.job_id)
        with pytest.raises(errors.JobNotFound):
            other.events(job.job_id)
    with QueueClient.connect(jobforge_db.dsn) as nobody, pytest.raises(errors.TenantRequired):
        nobody.enqueue("ops.scan", {})
    assert [j.id for j in client.list_jobs().jobs] == [job.job_id]  # nothing else was written


def test_negative_priority_is_refused_before_the_database() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        NewJob(type="ops.scan", payload={}, priority=-1)


def test_the_async_client(jobforge_db: Database) -> None:
    async def scenario() -> list[str]:
        queue = await AsyncQueueClient.connect(jobforge_db.dsn, tenant="acme")
        try:
            enqueued = await queue.enqueue("ops.scan", {"a": 1}, now=T0)
            (job,) = await queue.claim("w1", 1, now=T0)
            assert job.id == enqueued.job_id
            assert job.lease_token is not None
            done = Outcome(
                job_id=job.id, lease_token=job.lease_token, outcome="retry", error={"m": "x"}
            )
            states = await queue.finish("w1", [done], now=T0)
            later = await queue.claim("w1", 1, now=T0 + timedelta(hours=2))
            assert [j.attempts for j in later] == [2]
            with pytest.raises(errors.JobNotFound):
                await queue.cancel(job.id + 1000)
            return list(states.values())
        finally:
            await queue.close()

    assert asyncio.run(scenario()) == ["retry_scheduled"]


def test_the_async_client_reads_and_reschedules_like_the_sync_one(jobforge_db: Database) -> None:
    async def scenario() -> None:
        queue = await AsyncQueueClient.connect(jobforge_db.dsn, tenant="acme")
        other = await AsyncQueueClient.connect(jobforge_db.dsn, tenant="globex")
        try:
            ids = [(await queue.enqueue("ops.scan", {"n": n}, now=T0)).job_id for n in range(3)]
            (job,) = await queue.claim("w1", 1, now=T0)
            assert job.lease_token is not None
            assert await queue.progress("w1", job.id, job.lease_token, 50.0, "half", now=T0)
            beat = await queue.heartbeat("w1", [(job.id, job.lease_token)], now=T0)
            assert beat == {job.id: "ok"}
            done = Outcome(job_id=job.id, lease_token=job.lease_token, outcome="failed")
            assert await queue.finish("w1", [done], now=T0) == {job.id: "failed"}

            assert (await queue.get(job.id)).status is JobState.FAILED
            kinds = [e.kind for e in await queue.events(job.id)]
            assert kinds == ["created", "claimed", "progress", "failed"]
            assert [a.outcome for a in await queue.attempts(job.id)] == ["failed"]
            assert await queue.result(job.id) is None
            assert await queue.reschedule(job.id, now=T0) is JobState.QUEUED

            first = await queue.list_jobs(limit=2)
            assert [j.id for j in first.jobs] == sorted(ids, reverse=True)[:2]
            rest = await queue.list_jobs(limit=2, before=first.next_before)
            assert [j.id for j in rest.jobs] == [min(ids)]
            assert rest.next_before is None
            queued = await queue.list_jobs(status=["queued"])
            assert len(queued.jobs) == 3

            for call in (other.get, other.events, other.attempts, other.result):
                with pytest.raises(errors.JobNotFound):
                    await call(job.id)
            with pytest.raises(errors.JobNotFound):
                await other.reschedule(job.id)
            with pytest.raises(errors.InvalidJob, match="unknown status 'nope'"):
                await queue.list_jobs(status=["nope"])
        finally:
            await queue.close()
            await other.close()

    asyncio.run(scenario())


def _finished(client: QueueClient, outcome: str, max_attempts: int = 3) -> int:
    """A job finished with `outcome` on its first attempt (retry with one attempt: dead)."""
    job_id = client.enqueue("ops.scan", {}, max_attempts=max_attempts, now=T0).job_id
    (job,) = client.claim("w1", 1, now=T0)
    assert job.id == job_id
    assert job.lease_token is not None
    done = Outcome(job_id=job_id, lease_token=job.lease_token, outcome=outcome)  # type: ignore[arg-type]
    client.finish("w1", [done], now=T0)
    return job_id


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("succeeded", "has already succeeded: only queued or running jobs can be canceled"),
        ("failed", "has already failed: only queued or running jobs can be canceled"),
        ("dead", "is already dead: only queued or running jobs can be canceled"),
    ],
)
def test_canceling_a_finished_job_names_its_state_in_plain_english(
    client: QueueClient, state: str, message: str
) -> None:
    outcome = {"succeeded": "succeeded", "failed": "failed", "dead": "retry"}[state]
    job_id = _finished(client, outcome, max_attempts=1)
    assert client.get(job_id).status.value == state
    with pytest.raises(errors.InvalidTransition) as caught:
        client.cancel(job_id)
    assert str(caught.value) == f"job {job_id} {message}"
    assert client.get(job_id).status.value == state  # nothing changed


def test_rescheduling_names_the_state_and_the_attempts_in_plain_english(
    client: QueueClient,
) -> None:
    queued = client.enqueue("ops.scan", {"q": 1}, now=T0).job_id
    with pytest.raises(errors.InvalidTransition) as caught:
        client.reschedule(queued)
    assert str(caught.value) == (
        f"job {queued} is queued: only failed, dead or canceled jobs can be rescheduled"
    )
    client.cancel(queued)
    succeeded = _finished(client, "succeeded")
    with pytest.raises(errors.InvalidTransition) as caught:
        client.reschedule(succeeded)
    assert str(caught.value) == (
        f"job {succeeded} has succeeded: only failed, dead or canceled jobs can be rescheduled"
    )
    for max_attempts, used in ((1, "its 1 attempt"), (2, "all 2 attempts")):
        job_id = client.enqueue("ops.scan", {"m": max_attempts}, max_attempts=max_attempts,
                                now=T0).job_id  # fmt: skip
        for n in range(max_attempts):
            (job,) = client.claim("w1", 1, now=T0 + timedelta(days=1))
            assert job.lease_token is not None
            failed = Outcome(job_id=job.id, lease_token=job.lease_token, outcome="failed")
            client.finish("w1", [failed], now=T0)
            if n < max_attempts - 1:
                client.reschedule(job_id, run_at=T0, now=T0)
        with pytest.raises(errors.InvalidTransition) as caught:
            client.reschedule(job_id)
        assert str(caught.value) == (
            f"job {job_id} has used {used}: reschedule it with reset_attempts"
        )
