"""The queue side of `jobforge mcp` (migrations/0023), from the attacker's side too: a claim held
to one tenant (claim_tenant_v1) and a session's unfinished jobs, marked, by correlation id."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge import errors
from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, NewJob, Outcome, QueueClient
from tests.integration.conftest import new_app_login

DIGEST = "sha256:" + "1" * 64


@contextmanager
def worker_login(database: Database, tenants: list[str],
                 projects: list[str] | None = None) -> Iterator[str]:  # fmt: skip
    """A worker login (jobforge_app and jobforge_worker) bound to `tenants` (and projects)."""
    name = f"jf_agent_{secrets.token_hex(4)}"
    role = sql.Identifier(name)
    with database.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_app, jobforge_worker")
                      .format(role))  # fmt: skip
        admin.execute("INSERT INTO jobforge.tenant_logins (login, tenants, projects) "
                      "VALUES (%s, %s, %s)", (name, tenants, projects))  # fmt: skip
    try:
        yield make_conninfo(database.dsn, user=name)
    finally:
        with database.connect() as admin:
            admin.execute("DELETE FROM jobforge.tenant_logins WHERE login = %s", (name,))
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))


def _fill(dsn: str, tenant: str, n: int, type: str = "agent.scan", **fields: object) -> list[int]:
    with QueueClient.connect(dsn, tenant=tenant, max_size=1) as client:
        jobs = [NewJob(type=type, payload={"i": i}, **fields) for i in range(n)]  # type: ignore[arg-type]
        return [e.job_id for e in client.enqueue_many(jobs)]


def test_a_signed_or_token_bearing_job_is_never_handed_to_an_agent(jobforge_db: Database) -> None:
    """Only a worker verifies a job's signatures and policy token before anything runs (0021):
    an agent that claimed one could complete it with any output, a forged success (0025)."""
    dsn = jobforge_db.dsn
    plain = _fill(dsn, "acme", 1)
    _fill(dsn, "acme", 1, timeout_s=5)  # any envelope: the job is a worker's
    _fill(dsn, "acme", 1, token="t.o.k")
    with QueueClient.connect(dsn, tenant="acme", max_size=1, actor="agent-a") as acme:
        claimed = acme.claim_tenant("mcp:agent-a", 10, lease_s=60)
        assert [j.id for j in claimed] == plain


def test_the_claim_takes_the_tenants_jobs_only_most_urgent_first(jobforge_db: Database) -> None:
    dsn = jobforge_db.dsn
    theirs = _fill(dsn, "globex", 3, priority=0)
    low = _fill(dsn, "acme", 2, priority=5)
    urgent = _fill(dsn, "acme", 1, priority=1)
    with QueueClient.connect(dsn, tenant="acme", max_size=1, actor="agent-a") as acme:
        claimed = acme.claim_tenant("mcp:agent-a", 10, lease_s=60)
        assert [j.id for j in claimed] == urgent + low
        assert {j.tenant_id for j in claimed} == {"acme"}
        assert acme.claim_tenant("mcp:agent-a", 10) == []  # nothing left; globex's untouched
        # the secret the claim returns is the fencing token: heartbeat, finish with it
        job = claimed[0]
        assert job.lease_token is not None
        assert acme.heartbeat("mcp:agent-a", [(job.id, job.lease_token)])[job.id] == "ok"
        done = Outcome(job_id=job.id, lease_token=job.lease_token, outcome="succeeded")
        assert acme.finish("mcp:agent-a", [done])[job.id] == "succeeded"
        kinds = [(e.kind, e.actor) for e in acme.events(job.id)]
        assert kinds == [("created", None), ("claimed", "agent-a"), ("succeeded", "agent-a")]
    with jobforge_db.connect() as admin:
        statuses = admin.execute("SELECT status::text FROM jobforge.jobs WHERE id = ANY(%s)",
                                 (theirs,)).fetchall()  # fmt: skip
    assert statuses == [("queued",)] * 3


def test_types_and_bad_arguments(jobforge_db: Database) -> None:
    dsn = jobforge_db.dsn
    scans = _fill(dsn, "acme", 1)
    mails = _fill(dsn, "acme", 1, type="agent.mail")
    with QueueClient.connect(dsn, tenant="acme", max_size=1) as acme:
        assert [j.id for j in acme.claim_tenant("w", 5, types=["agent.mail"])] == mails
        with pytest.raises(errors.InvalidJob, match="out of range"):
            acme.claim_tenant("w", 0)
        with pytest.raises(errors.InvalidJob, match="worker name"):
            acme.claim_tenant("", 1)
        with pytest.raises(errors.InvalidJob, match="lease"):
            acme.claim_tenant("w", 1, lease_s=0)
        assert [j.id for j in acme.claim_tenant("w", 5)] == scans
    with QueueClient.connect(dsn, max_size=1) as nobody, pytest.raises(errors.TenantRequired):
        nobody.claim_tenant("w", 1)


def test_a_login_bound_to_a_tenant_claims_no_other_tenants_jobs(jobforge_db: Database) -> None:
    """The attacker: a worker login bound to acme names globex to the SQL function itself."""
    dsn = jobforge_db.dsn
    _fill(dsn, "globex", 2)
    with worker_login(jobforge_db, ["acme"]) as url, psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match="may not act for tenant 'globex'") as caught:
            conn.execute("SELECT * FROM jobforge.claim_tenant_v1('globex', 'w', 10)")
        assert caught.value.sqlstate == "JF003"
        assert (
            conn.execute("SELECT * FROM jobforge.claim_tenant_v1('acme', 'w', 10)").fetchall() == []
        )
    with (
        new_app_login(jobforge_db, ["globex"]) as app,
        psycopg.connect(app, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT * FROM jobforge.claim_tenant_v1('globex', 'w', 10)")  # no worker


def test_a_login_bound_to_projects_claims_only_theirs(jobforge_db: Database) -> None:
    dsn = jobforge_db.dsn
    mine = _fill(dsn, "acme", 1, project="pa")
    _fill(dsn, "acme", 1, project="pb")
    with (
        worker_login(jobforge_db, ["acme"], ["pa"]) as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        rows = conn.execute("SELECT id FROM jobforge.claim_tenant_v1('acme', 'w', 10)").fetchall()
    assert [r[0] for r in rows] == mine


def test_a_queue_limit_is_left_to_the_workers(jobforge_db: Database) -> None:
    dsn = jobforge_db.dsn
    _fill(dsn, "acme", 1, type="agent.capped")
    free = _fill(dsn, "acme", 1)
    with jobforge_db.connect() as admin:
        admin.execute("SELECT jobforge.set_limit_v1('type', 'agent.capped', 1)")
    with QueueClient.connect(dsn, tenant="acme", max_size=1) as acme:
        with pytest.raises(errors.QueueLimited, match=r"type 'agent\.capped'"):
            acme.claim_tenant("w", 5)
        assert [j.id for j in acme.claim_tenant("w", 5, types=["agent.scan"])] == free
        with jobforge_db.connect() as admin:
            admin.execute("SELECT jobforge.set_limit_v1('tenant', 'acme', 10)")
        with pytest.raises(errors.QueueLimited, match="tenant 'acme'"):
            acme.claim_tenant("w", 5, types=["agent.scan"])


def test_a_session_is_marked_by_hand_count(jobforge_db: Database) -> None:
    """One job of each mark under correlation id s-1, one finished, one of another session and
    one of another tenant: the session lists the five unfinished, marked."""
    dsn = jobforge_db.dsn
    with jobforge_db.connect() as admin:
        for runner_id in ("agent.scan", "agent.off"):
            admin.execute("SELECT jobforge.catalogue_sync_v1(%s, '1.0.0', '{}', '{}', %s)",
                          (runner_id, DIGEST))  # fmt: skip
    (stale,) = _fill(dsn, "acme", 1, trace_id="s-1")
    with QueueClient.connect(dsn, tenant="acme", max_size=1) as acme:
        # claimed with a 50 ms lease, never renewed: its holder stopped heartbeating
        assert [j.id for j in acme.claim_tenant("gone", 1, lease_s=0.05)] == [stale]
        time.sleep(0.1)
        (running,) = _fill(dsn, "acme", 1, trace_id="s-1")
        assert [j.id for j in acme.claim_tenant("here", 1, lease_s=600)] == [running]
        (done,) = _fill(dsn, "acme", 1, trace_id="s-1")
        (held,) = acme.claim_tenant("here", 1, lease_s=600)
        assert held.id == done
        assert held.lease_token is not None
        acme.finish("here", [Outcome(job_id=done, lease_token=held.lease_token,
                                     outcome="succeeded")])  # fmt: skip
        (blocked,) = _fill(dsn, "acme", 1, type="agent.off", trace_id="s-1")
        (waiting,) = _fill(dsn, "acme", 1, trace_id="s-1",
                           run_at=datetime.now(UTC) + timedelta(hours=2))  # fmt: skip
        (queued,) = _fill(dsn, "acme", 1, trace_id="s-1")
        _fill(dsn, "acme", 1, trace_id="s-2")
        _fill(dsn, "globex", 1, trace_id="s-1")
        with jobforge_db.connect() as admin:
            admin.execute("SELECT jobforge.catalogue_enable_v1('agent.off', false)")
        found = acme.session("s-1")
        marks = {s.job.id: s.mark for s in found}
        assert marks == {stale: "stale", running: "running", blocked: "blocked",
                         waiting: "waiting", queued: "queued"}  # fmt: skip
        reasons = {s.job.id: s.reason or "" for s in found}
        assert "held by gone" in reasons[stale]
        assert "disabled" in reasons[blocked]
        assert "due at" in reasons[waiting]
        assert [s.job.id for s in found] == sorted(marks)
        with pytest.raises(errors.InvalidJob, match="correlation id"):
            acme.session("")
        with pytest.raises(errors.InvalidJob, match="correlation id"):
            acme.session("x" * 201)
    with QueueClient.connect(dsn, tenant="globex", max_size=1) as globex:
        assert len(globex.session("s-1")) == 1


def test_check_tenant_refuses_a_login_bound_elsewhere(jobforge_db: Database) -> None:
    with worker_login(jobforge_db, ["acme"]) as url:
        with (
            QueueClient.connect(url, tenant="globex", max_size=1) as client,
            pytest.raises(errors.TenantRequired, match="may not act for tenant 'globex'"),
        ):
            client.check_tenant()
        with QueueClient.connect(url, tenant="acme", max_size=1) as client:
            client.check_tenant()


def test_the_async_client_claims_for_its_tenant_too(jobforge_db: Database) -> None:
    dsn = jobforge_db.dsn
    mine = _fill(dsn, "acme", 1, trace_id="s-a")
    _fill(dsn, "globex", 1, trace_id="s-a")

    async def run() -> None:
        client = await AsyncQueueClient.connect(dsn, tenant="acme", max_size=1)
        try:
            await client.check_tenant()
            assert [s.job.id for s in await client.session("s-a")] == mine
            assert [j.id for j in await client.claim_tenant("w", 5)] == mine
        finally:
            await client.close()

    asyncio.run(run())
