"""The audit trail (migrations/0014) on a real database: the actor and reason a client sets are
on every event its transaction writes, the login is the database's own record, other tenants
see none of it, and what the database or the client refuses is one line, nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from jobforge import errors
from jobforge.provision import Database
from jobforge.queue import Outcome, QueueClient, bulk

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def test_enqueue_cancel_and_retry_carry_the_actor_and_reason(jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", actor="alice") as client:
        job_id = client.enqueue("ops.scan", {"n": 1}).job_id
        client.acting_as("bob", reason="sent twice").cancel(job_id)
        client.acting_as("carol", reason="the customer asked\nagain").reschedule(job_id)
        kinds = [(e.kind, e.actor, e.reason) for e in client.events(job_id)]
        assert kinds == [
            ("created", "alice", None),
            ("canceled", "bob", "sent twice"),
            ("rescheduled", "carol", "the customer asked\nagain"),
        ]
        trail = client.audit_list(since=LONG_AGO)
        assert [(e.kind, e.actor) for e in trail] == [
            ("rescheduled", "carol"), ("canceled", "bob"), ("created", "alice"),
        ]  # fmt: skip
        assert {e.login for e in trail} == {"postgres"}  # the session's own login
        counts = client.audit_summary(since=LONG_AGO)
        assert {(c.kind, c.actor, c.count) for c in counts} == {
            ("created", "alice", 1), ("canceled", "bob", 1), ("rescheduled", "carol", 1),
        }  # fmt: skip
        assert [e.kind for e in client.audit_list(since=LONG_AGO, actor="bob")] == ["canceled"]
        assert client.audit_list(since=LONG_AGO, kind=["claimed"]) == []
        future = datetime.now(UTC) + timedelta(hours=1)
        assert client.audit_list(since=future) == []


def test_the_workers_own_events_carry_no_actor(jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", actor="alice") as client:
        job_id = client.enqueue("ops.scan", {}).job_id
    with QueueClient.connect(jobforge_db.dsn) as worker:
        (job,) = worker.claim("w1", 1)
        assert job.lease_token is not None
        worker.finish("w1", [Outcome(job_id=job.id, lease_token=job.lease_token,
                                     outcome="succeeded")])  # fmt: skip
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        events = [(e.kind, e.actor) for e in client.events(job_id)]
        assert events == [("created", "alice"), ("claimed", None), ("succeeded", None)]
        assert [e.kind for e in client.audit_list(since=LONG_AGO)] == ["created"]


def test_another_tenant_sees_none_of_it(jobforge_db: Database, app_login: str) -> None:
    with QueueClient.connect(app_login, tenant="acme", actor="alice") as acme:
        acme.acting_as(reason="secret plans").cancel(acme.enqueue("ops.scan", {}).job_id)
        assert len(acme.audit_list(since=LONG_AGO)) == 2
    with QueueClient.connect(app_login, tenant="globex", actor="mallory") as globex:
        assert globex.audit_list(since=LONG_AGO) == []
        assert globex.audit_summary(since=LONG_AGO) == []
        with globex.transaction() as conn:  # raw SQL under the tenant's policies
            rows = conn.execute("SELECT actor, reason FROM jobforge.job_events").fetchall()
        assert rows == []


def test_the_login_is_the_databases_record_whatever_actor_is_claimed(
    jobforge_db: Database, app_login: str
) -> None:
    """An app login may claim any actor (trust it as far as the login), but the login column
    is written by the database: the tenant's client cannot set it."""
    with QueueClient.connect(app_login, tenant="acme", actor="admin") as client:
        job_id = client.enqueue("ops.scan", {}).job_id
        (event,) = client.audit_list(since=LONG_AGO)
    user = make_conninfo(app_login)
    assert event.job_id == job_id
    assert event.actor == "admin"
    assert event.login == psycopg.conninfo.conninfo_to_dict(user)["user"]
    with psycopg.connect(app_login, autocommit=True) as conn:  # writing the trail by hand
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE jobforge.job_events SET login = 'postgres'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, login) "
                "VALUES (%s, 'acme', 'canceled', now(), 'postgres')",
                (job_id,),
            )


@pytest.mark.parametrize(
    ("actor", "reason", "message"),
    [
        ("", None, "actor '' is not 1-200 printable characters"),
        ("a" * 201, None, "is not 1-200 printable characters"),
        ("eve\nroot", None, "is not 1-200 printable characters"),
        ("adm\u200bin", None, "is not 1-200 printable characters"),  # shows as "admin"
        ("\u202eeve", None, "is not 1-200 printable characters"),  # a direction override
        ("eve", "", "reason '' is not 1-1000 characters without control characters"),
        ("eve", "x" * 1001, "is not 1-1000 characters"),
        ("eve", "bell\x07", "without control characters"),
    ],
)
def test_the_client_refuses_a_bad_actor_or_reason_in_one_line(
    jobforge_db: Database, actor: str, reason: str | None, message: str
) -> None:
    with pytest.raises(errors.ConfigurationError, match=message):
        QueueClient.connect(jobforge_db.dsn, tenant="acme", actor=actor, reason=reason)


@pytest.mark.parametrize("actor", ["x" * 201, "adm\u200bin", "eve\u2028root", "\x85eve"])
def test_the_database_refuses_a_bad_actor_and_writes_nothing(
    jobforge_db: Database, actor: str
) -> None:
    """A session that sets the actor itself (not through the client) meets the table's checks:
    the change fails in one line and nothing of it is stored."""
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        job_id = client.enqueue("ops.scan", {}).job_id
    with psycopg.connect(jobforge_db.dsn) as conn:
        conn.execute("SELECT set_config('jobforge.tenant', 'acme', true)")
        conn.execute("SELECT set_config('jobforge.actor', %s, true)", (actor,))
        with pytest.raises(psycopg.errors.CheckViolation) as caught:
            conn.execute("SELECT jobforge.cancel_v1(%s)", (job_id,))
        assert "job_events_actor_shape" in str(caught.value)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        assert client.get(job_id).status == "queued"
        assert [e.kind for e in client.events(job_id)] == ["created"]


def test_a_bad_listing_is_one_line(jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        with pytest.raises(errors.ConfigurationError, match=r"^unknown event kind 'cancelled'"):
            client.audit_list(since=LONG_AGO, kind=["cancelled"])
        with pytest.raises(errors.ConfigurationError, match=r"^limit 0 is out of range 1-10000"):
            client.audit_list(since=LONG_AGO, limit=0)


def test_a_bulk_action_names_its_actor_and_reason_on_every_job(jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", actor="alice") as client:
        ids = [client.enqueue("ops.scan", {"n": n}).job_id for n in range(3)]
        flt = bulk.check_filter("cancel", ["queued"], None, None)
        done = client.acting_as("ops-bot", reason="a bad deploy").bulk("cancel", flt)
        assert done.changed == 3
        trail = client.audit_list(since=LONG_AGO, kind=["canceled"])
    assert sorted(e.job_id for e in trail) == ids
    assert {(e.actor, e.reason) for e in trail} == {("ops-bot", "a bad deploy")}


def test_a_manual_change_sent_without_an_actor_is_still_in_the_trail(
    jobforge_db: Database,
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:  # no actor
        job_id = client.enqueue("ops.scan", {}).job_id
        client.cancel(job_id)
        client.reschedule(job_id)
        trail = client.audit_list(since=LONG_AGO)
        counts = client.audit_summary(since=LONG_AGO)
    # the enqueue, unattributed, is not; the two manual changes are, with the login
    assert [(e.kind, e.actor, e.login) for e in trail] == [
        ("rescheduled", None, "postgres"), ("canceled", None, "postgres"),
    ]  # fmt: skip
    assert {(c.kind, c.actor, c.count) for c in counts} == {
        ("rescheduled", None, 1), ("canceled", None, 1),
    }  # fmt: skip
