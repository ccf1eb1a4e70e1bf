"""What a caller may hand the queue's functions, from the attacker's side: no clock of its own on
a production database, times that are finite and in range, JSON that every reader can load,
bounded text, a payload limit it can lower but not lift; and a reaper for stale leases of every
type (migrations/0008)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobforge import db, errors
from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, Outcome, QueueClient
from jobforge.states import JobState
from jobforge.worker import Metrics, Registry, Worker, WorkerConfig

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ENQUEUE = (
    "SELECT * FROM jobforge.enqueue_v1(ARRAY[%(type)s], ARRAY[%(payload)s::jsonb], NULL, NULL,"
    " ARRAY[%(run_at)s::timestamptz], NULL, ARRAY[%(trace)s], NULL, %(limit)s)"
)


@pytest.fixture
def queue(jobforge_db: Database) -> Iterator[QueueClient]:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        yield client


@pytest.fixture
def production(jobforge_db: Database) -> Database:
    """The database as `jobforge migrate` leaves it: it keeps its own clock."""
    with jobforge_db.connect() as conn:
        conn.execute("UPDATE jobforge.settings SET caller_clock = false")
    return jobforge_db


def enqueue_raw(queue: QueueClient, **given: Any) -> Any:
    """enqueue_v1 called as a hostile app would: any value, straight to SQL."""
    params = {"type": "ops.x", "payload": "{}", "run_at": None, "trace": None, "limit": 1048576}
    params.update(given)
    with queue.pool.connection() as conn, db.tenant_transaction(conn, "acme"):
        return conn.execute(ENQUEUE, params).fetchall()


def test_a_production_database_refuses_a_caller_s_clock(production: Database) -> None:
    with QueueClient.connect(production.dsn, tenant="acme") as queue:
        calls: dict[str, Callable[[], object]] = {  # one refusal per call
            "enqueue": lambda: queue.enqueue("ops.x", {}, now=T0),
            "claim": lambda: queue.claim("w1", 1, now=T0),
            "cancel": lambda: queue.cancel(1, now=T0),
            "reschedule": lambda: queue.reschedule(1, now=T0),
        }
        for call in calls.values():
            with pytest.raises(errors.InvalidJob, match=r"caller's clock .* is refused"):
                call()
        job = queue.enqueue("ops.x", {})  # the database's own clock
        assert abs(queue.get(job.job_id).created_at - datetime.now(UTC)) < timedelta(minutes=5)


@pytest.mark.parametrize(
    "run_at", ["-infinity", "infinity", "0044-03-15 BC", "2290-01-01", "1800-01-01"]
)
def test_run_at_must_be_finite_and_within_a_century(queue: QueueClient, run_at: str) -> None:
    with pytest.raises(errors.InvalidJob, match=r"job #1: run_at .* is out of range"):
        enqueue_raw(queue, run_at=run_at)
    with (
        pytest.raises(errors.InvalidJob, match=r"reschedule: run_at .* is out of range"),
        queue.pool.connection() as conn,
        db.tenant_transaction(conn, "acme"),
    ):
        conn.execute("SELECT jobforge.reschedule_v1(1, false, %s::timestamptz)", (run_at,))


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper than 64 levels"),
        ('{"a": ' + "[" * 65 + "]" * 65 + "}", "nested deeper than 64 levels"),
        ('{"n": ' + "9" * 5000 + "}", "outside the range of a double"),
        ('{"n": -1e400}', "outside the range of a double"),
    ],
)
def test_a_payload_no_reader_can_load_is_refused(
    queue: QueueClient, payload: str, problem: str
) -> None:
    with pytest.raises(
        errors.InvalidJob, match=f"job #1: the payload cannot be stored: it .*{problem}"
    ):
        enqueue_raw(queue, payload=payload)


def test_json_at_the_edges_still_goes_in(queue: QueueClient) -> None:
    deep: Any = 1
    for _ in range(63):
        deep = [deep]
    queue.enqueue("ops.x", {"a": deep, "big": 1.79e308, "small": -1.79e308, "int": 10**300})


@pytest.mark.parametrize("limit", [None, 2**31 - 1])
def test_the_caller_cannot_lift_the_payload_limit(queue: QueueClient, limit: int | None) -> None:
    big = json.dumps({"s": "x" * (1024 * 1024)})
    with pytest.raises(errors.PayloadTooLarge, match="over the limit of 1048576"):
        enqueue_raw(queue, payload=big, limit=limit)
    enqueue_raw(queue, payload=json.dumps({"s": "x" * 1000}), limit=500_000)
    with pytest.raises(errors.PayloadTooLarge, match="over the limit of 500"):
        enqueue_raw(queue, payload=json.dumps({"s": "x" * 1000}), limit=500)


def test_text_fields_are_bounded(queue: QueueClient) -> None:
    with pytest.raises(
        errors.InvalidJob, match="trace_id is 300 characters, over the limit of 256"
    ):
        enqueue_raw(queue, trace="t" * 300)
    with pytest.raises(errors.InvalidJob, match=r"type .* is invalid"):
        enqueue_raw(queue, type="x" * 10_000)
    queue.enqueue("ops.x", {})
    with pytest.raises(errors.InvalidJob, match="worker name must be 1-200"):
        queue.claim("w" * 201, 1)
    with pytest.raises(errors.InvalidJob, match="lease 0-86400"):
        queue.claim("w1", 1, lease_s=1e9)
    (job,) = queue.claim("w1", 1)
    assert job.lease_token is not None
    assert queue.progress("w1", job.id, job.lease_token, 50, "m" * 10_000)
    stored = queue.get(job.id).progress_message
    assert stored is not None
    assert len(stored) == 2000
    with pytest.raises(errors.InvalidJob, match="not a percentage"):
        queue.progress("w1", job.id, job.lease_token, float("nan"))


def test_a_result_that_cannot_be_stored_fails_its_job_not_the_batch(queue: QueueClient) -> None:
    for n in range(4):
        queue.enqueue("ops.x", {"n": n})
    jobs = queue.claim("w1", 4)
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    results: list[Any] = [{"ok": 1}, {"s": "x" * (1024 * 1024 + 10)}, {"deep": deep}, None]
    errs: list[Any] = [
        None,
        None,
        None,
        {"kind": "exception", "message": "m", "details": "d" * 40_000},
    ]
    kinds = ["succeeded", "succeeded", "succeeded", "failed"]
    outcomes = [
        Outcome(job_id=j.id, lease_token=j.lease_token, outcome=k, result=r, error=e)  # type: ignore[arg-type]
        for j, r, e, k in zip(jobs, results, errs, kinds, strict=True)
    ]
    assert queue.finish_each("w1", outcomes) == ["succeeded", "failed", "failed", "failed"]
    assert queue.result(jobs[0].id) == {"ok": 1}
    too_big, too_deep, long_error = (queue.get(j.id).error for j in jobs[1:])
    assert too_big["kind"] == too_deep["kind"] == "result_rejected"
    assert "over the limit of 1048576" in too_big["message"]
    assert "nested deeper" in too_deep["message"]
    assert long_error == {"kind": "exception", "type": None, "message": "m", "truncated": True}


def test_reap_expires_stale_leases_of_every_type(queue: QueueClient) -> None:
    again = queue.enqueue("other.kind", {}, now=T0).job_id
    last = queue.enqueue("other.kind", {}, max_attempts=1, now=T0).job_id
    assert len(queue.claim("ghost", 2, now=T0, lease_s=5)) == 2
    assert queue.reap(now=T0 + timedelta(seconds=4)) == 0
    assert queue.reap(now=T0 + timedelta(seconds=6)) == 2
    assert queue.get(again).status is JobState.QUEUED
    assert queue.get(last).status is JobState.DEAD
    assert [e.kind for e in queue.events(again)] == ["created", "claimed", "lease_expired"]
    assert [e.kind for e in queue.events(last)] == ["created", "claimed", "lease_expired", "dead"]
    assert [a.outcome for a in queue.attempts(again)] == ["lease_expired"]


def test_a_worker_reaps_a_dead_worker_s_job_of_another_type(jobforge_db: Database) -> None:
    """No worker of type other.kind is running: the ops.x worker puts its job back anyway."""
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        job_id = queue.enqueue("other.kind", {}).job_id
        assert len(queue.claim("ghost", 1, lease_s=0.3)) == 1  # and the ghost never comes back

    registry = Registry()
    registry.register("ops.x", lambda payload, ctx: None)

    async def main() -> int:
        client = await AsyncQueueClient.connect(jobforge_db.dsn, tenant="acme")
        worker = Worker(client, registry, WorkerConfig(name="w1", lease_s=0.5), metrics=Metrics())
        running = asyncio.ensure_future(worker.run())
        try:
            for _ in range(200):
                if worker.metrics.counts["reaped"]:
                    break
                await asyncio.sleep(0.02)
            return worker.metrics.counts["reaped"]
        finally:
            worker.stop()
            worker.stop()
            await asyncio.wait_for(running, 10)
            await client.close()

    assert asyncio.run(main()) == 1
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        assert queue.get(job_id).status is JobState.QUEUED
