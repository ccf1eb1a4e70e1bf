"""The lean enqueue of [5/10] (migrations/0025) on a real database: one job in one statement with
the scope as arguments, and a plain `created` event derived from the job's row.

What must not change is the log as its readers see it (`jobs show`, the state machine), the
audit trail of an enqueue that names an actor, the tenant wall, and the scope of a connection
after the statement (the settings it made die with its implicit transaction)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from jobforge import errors
from jobforge.provision import Database
from jobforge.queue import NewJob, QueueClient

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def stored_kinds(jobforge_db: Database, job_id: int) -> list[str]:
    with jobforge_db.connect() as owner:
        rows = owner.execute(
            "SELECT kind FROM jobforge.job_events WHERE job_id = %s ORDER BY id", (job_id,)
        ).fetchall()
    return [r[0] for r in rows]


def test_a_plain_enqueue_stores_no_created_event_and_the_log_derives_it(
    jobforge_db: Database,
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        single = client.enqueue("ops.scan", {"n": 1})
        (batched,) = client.enqueue_many([NewJob(type="ops.scan", payload={"n": 2})])
        for enqueued in (single, batched):
            assert enqueued.created
            assert stored_kinds(jobforge_db, enqueued.job_id) == []
            job = client.get(enqueued.job_id)
            (event,) = client.events(enqueued.job_id)
            assert (event.id, event.kind, event.at, event.actor) == (0, "created", job.created_at,
                                                                     None)  # fmt: skip
        assert client.audit_list(since=LONG_AGO) == []  # nobody acted: nothing to audit


def test_an_enqueue_that_names_an_actor_stores_its_created_event(jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", actor="alice") as client:
        single = client.enqueue("ops.scan", {"n": 1})
        (batched,) = client.acting_as(reason="backfill").enqueue_many(
            [NewJob(type="ops.scan", payload={"n": 2})]
        )
        for enqueued in (single, batched):
            assert stored_kinds(jobforge_db, enqueued.job_id) == ["created"]
            (event,) = client.events(enqueued.job_id)
            assert (event.kind, event.id > 0, event.actor) == ("created", True, "alice")
        trail = client.audit_list(since=LONG_AGO)
        assert sorted(e.job_id for e in trail) == sorted([single.job_id, batched.job_id])


def test_the_derived_log_follows_the_job_through_its_life(jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        job_id = client.enqueue("ops.scan", {}).job_id
        client.cancel(job_id)
        assert [(e.id == 0, e.kind) for e in client.events(job_id)] == [
            (True, "created"), (False, "canceled"),
        ]  # fmt: skip


def test_the_single_path_keeps_idempotency_and_its_refusals(jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        first = client.enqueue("ops.scan", {"n": 1}, idempotency_key="k1")
        again = client.enqueue("ops.scan", {"n": 1}, idempotency_key="k1")
        assert (again.job_id, again.created) == (first.job_id, False)
        with pytest.raises(errors.IdempotencyConflict, match="already used by job"):
            client.enqueue("ops.scan", {"n": 2}, idempotency_key="k1")
        with pytest.raises(errors.InvalidJob, match="type 'Ops Scan' is invalid"):
            client.enqueue("Ops Scan", {})
        deep: dict[str, object] = {}
        for _ in range(70):
            deep = {"d": deep}
        with pytest.raises(errors.InvalidJob, match="nested deeper than 64 levels"):
            client.enqueue("ops.scan", deep)
        with pytest.raises(errors.PayloadTooLarge):
            client.enqueue("ops.scan", {"blob": "x" * (2 * 1024 * 1024)})
        later = datetime.now(UTC) + timedelta(days=1)
        future = client.enqueue("ops.scan", {}, run_at=later, priority=7, max_attempts=9,
                                trace_id="t-1")  # fmt: skip
        job = client.get(future.job_id)
        assert (job.run_at, job.priority, job.max_attempts, job.trace_id) == (later, 7, 9, "t-1")
        assert len(client.list_jobs(limit=100).jobs) == 2  # nothing refused was stored


def test_another_tenant_sees_no_derived_event(jobforge_db: Database, app_login: str) -> None:
    with QueueClient.connect(app_login, tenant="acme") as acme:
        job_id = acme.enqueue("ops.scan", {}).job_id
    with QueueClient.connect(app_login, tenant="globex") as globex:
        with pytest.raises(errors.JobNotFound):
            globex.events(job_id)
        with globex.transaction() as conn:  # raw SQL under the tenant's policies
            rows = conn.execute("SELECT job_id FROM jobforge.job_event_log").fetchall()
        assert rows == []


def test_the_statement_leaves_no_scope_on_its_connection(jobforge_db: Database) -> None:
    """The settings enqueue_one_v1 makes are local to its implicit transaction: the next
    statement on the same connection acts for no tenant."""
    with psycopg.connect(jobforge_db.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT job_id, created FROM jobforge.enqueue_one_v1('acme', '', 'alice', '', "
            "'ops.scan', '{}'::jsonb)"
        ).fetchone()
        assert row is not None
        assert row[1] is True
        settings = conn.execute(
            "SELECT coalesce(current_setting('jobforge.tenant', true), ''), "
            "coalesce(current_setting('jobforge.actor', true), '')"
        ).fetchone()
        assert settings == ("", "")
        with pytest.raises(psycopg.Error, match="no tenant is set"):
            conn.execute("SELECT * FROM jobforge.enqueue_one_v1('', '', '', '', 'ops.scan', "
                         "'{}'::jsonb)")  # fmt: skip
