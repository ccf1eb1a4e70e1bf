"""A batch's columns travel as binary arrays (`job_enqueue_many`): every per-job field, with
NULLs among values, unicode and values at the edges of their types, must be stored as the same
job enqueued alone stores it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jobforge import db
from jobforge.provision import Database
from jobforge.queue import NewJob, QueueClient

_COLUMNS = (
    "project, type, payload, priority, run_at, max_attempts, idempotency_key, trace_id, envelope"
)
_AT = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def _jobs(suffix: str) -> list[NewJob]:
    return [
        NewJob(type="ops.a", payload={"i": 0}),
        NewJob(
            type="ops.b-2_x",
            payload={"ü": 'ç\\"{},'},
            idempotency_key=f'key, with "quotes" {{braces}} and ünicode {suffix}',
            priority=32767,
            run_at=_AT,
            max_attempts=1000,
            trace_id="trace,{x}",
            project="alpha",
        ),
        NewJob(type="ops.a", payload={}, priority=0, max_attempts=1, run_at=_AT - timedelta(1)),
        NewJob(type="ops.c", payload={"n": None}, idempotency_key=f"NULL {suffix}", token="t"),
        NewJob(type="ops.c", payload={"n": 1}, trace_id="", timeout_s=1.5),
    ]


def _fields(job: NewJob) -> dict[str, Any]:
    return job.model_dump(exclude={"type", "payload", "signatures"}, exclude_defaults=True)


def _stored(conn: db.Connection, job_id: int) -> dict[str, Any]:
    cursor = conn.cursor(row_factory=db.dict_row)
    row = cursor.execute(
        f"SELECT {_COLUMNS} FROM jobforge.jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert row is not None
    return row


def test_a_batch_stores_each_job_as_it_is_stored_alone(
    jobforge_db: Database, jobforge_conn: db.Connection
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client:
        batched = client.enqueue_many(_jobs("batch"))
        alone = [  # one statement each, with text parameters (enqueue_one_v1)
            client.enqueue(job.type, job.payload, **_fields(job)) for job in _jobs("alone")
        ]
    assert all(e.created for e in batched + alone)
    for b, a in zip(batched, alone, strict=True):
        in_batch, by_itself = _stored(jobforge_conn, b.job_id), _stored(jobforge_conn, a.job_id)
        for row in (in_batch, by_itself):
            if row["idempotency_key"] is not None:
                row["idempotency_key"] = row["idempotency_key"].rsplit(" ", 1)[0]
            if row["run_at"] != _AT and row["run_at"] != _AT - timedelta(1):
                row["run_at"] = "now"  # left to the database: the time of the enqueue
        assert in_batch == by_itself
    second = _stored(jobforge_conn, batched[1].job_id)
    assert second == {
        "project": "alpha", "type": "ops.b-2_x", "payload": {"ü": 'ç\\"{},'}, "priority": 32767,
        "run_at": _AT, "max_attempts": 1000, "trace_id": "trace,{x}", "envelope": None,
        "idempotency_key": 'key, with "quotes" {braces} and ünicode batch',
    }  # fmt: skip
    keys = [_stored(jobforge_conn, e.job_id)["idempotency_key"] for e in batched]
    assert keys == [None, second["idempotency_key"], None, "NULL batch", None]
