"""A client acting for a tenant is held to it by row-level security, not only by its queries'
filters, however privileged its login (issue [3/10]: `--tenant` was ignored by `runs` and
`replay` on a superuser login, which bypasses RLS).

The database's login here is a superuser, as the CLI's usual login is. Each test reads with SQL
of its own, without any tenant filter, inside the client's transaction: what comes back is what
the policies let through.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge import errors
from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, Outcome, QueueClient
from tests.records import run_write

TENANTS = ("acme", "globex")
TABLES = ("jobs", "job_attempts", "job_results", "job_events", "job_runs")
DIGEST = "sha256:" + "0" * 64


@pytest.fixture
def seeded(jobforge_db: Database) -> dict[str, int]:
    """One job per tenant, claimed, recorded and finished: a row of each tenant in every table."""
    ids = {}
    for tenant in TENANTS:
        with QueueClient.connect(jobforge_db.dsn, tenant=tenant) as queue:
            ids[tenant] = queue.enqueue("rls.job", {"tenant": tenant}).job_id
    # an actor: the claims and finishes store their events (migrations/0031), so
    # job_events holds rows of each too
    with QueueClient.connect(jobforge_db.dsn, actor="seed") as worker:
        for job in worker.claim("w", 10):
            assert job.lease_token is not None
            record = {"format": "jobforge.run/1", "runner_id": "rls.job", "runner_version": "1",
                      "status": "succeeded", "input": {"sha256": DIGEST},
                      "trace_sha256": DIGEST}  # fmt: skip
            assert worker.record_run("w", job.id, job.lease_token, run_write(record))
            done = Outcome(job_id=job.id, lease_token=job.lease_token, outcome="succeeded",
                           result={"ok": True})  # fmt: skip
            assert worker.finish_each("w", [done]) == ["succeeded"]
    return ids


def test_the_login_is_a_superuser_that_bypasses_rls(jobforge_db: Database, seeded: object) -> None:
    """What the other tests stand on: this login sees every tenant's rows without the role."""
    with jobforge_db.connect() as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        conn.execute("SELECT set_config('jobforge.tenant', 'acme', false)")
        seen = conn.execute("SELECT DISTINCT tenant_id FROM jobforge.job_runs ORDER BY 1")
        assert seen.fetchall() == [("acme",), ("globex",)]


def test_a_tenant_client_reads_only_its_tenant_through_unfiltered_sql(
    jobforge_db: Database, seeded: dict[str, int]
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="globex") as client:
        with client.transaction() as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("jobforge_app",)
            for table in TABLES:
                seen = conn.execute(f"SELECT DISTINCT tenant_id FROM jobforge.{table}").fetchall()
                assert seen == [("globex",)], table
            other = conn.execute(
                "SELECT count(*) FROM jobforge.job_runs WHERE job_id = %s", (seeded["acme"],)
            ).fetchone()
            assert other == (0,)
        assert [r.tenant_id for r in client.find_runs()] == ["globex"]
        assert client.find_runs(job_ids=[seeded["acme"]]) == []
        with pytest.raises(errors.JobNotFound):
            client.runs(seeded["acme"])
        # the role lasts one transaction: the pooled connection is the login again afterwards
        with client.pool.connection() as conn:
            assert conn.execute("SELECT current_user = session_user").fetchone() == (True,)


def test_the_async_client_is_held_the_same_way(
    jobforge_db: Database, seeded: dict[str, int]
) -> None:
    async def main() -> tuple[list[tuple[str]], list[str]]:
        client = await AsyncQueueClient.connect(jobforge_db.dsn, tenant="acme")
        try:
            async with client.transaction() as conn:
                cursor = await conn.execute("SELECT DISTINCT tenant_id FROM jobforge.job_runs")
                seen = await cursor.fetchall()
            return seen, [r.tenant_id for r in await client.find_runs()]
        finally:
            await client.close()

    assert asyncio.run(main()) == ([("acme",)], ["acme"])


def test_every_tenant_call_works_under_the_app_role(
    jobforge_db: Database, seeded: dict[str, int]
) -> None:
    """The grants of jobforge_app cover everything a tenant-scoped client does."""
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        job = seeded["acme"]
        assert client.get(job).tenant_id == "acme"
        assert [j.id for j in client.list_jobs().jobs] == [job]
        assert client.result(job) == {"ok": True}
        assert [e.kind for e in client.events(job)] == ["created", "claimed", "succeeded"]
        assert [a.attempt for a in client.attempts(job)] == [1]
        assert len(client.runs(job)) == 1
        new = client.enqueue("rls.job", {"n": 2}).job_id
        assert client.cancel(new).value == "canceled"
        assert client.reschedule(new).value == "queued"


def test_without_a_tenant_runs_of_every_tenant_only_for_a_worker_login(
    jobforge_db: Database, seeded: dict[str, int], app_login: str
) -> None:
    with QueueClient.connect(jobforge_db.dsn) as operator:  # a superuser may act as a worker
        assert sorted(r.tenant_id for r in operator.find_runs()) == sorted(TENANTS)
    with (
        QueueClient.connect(app_login) as app,
        pytest.raises(errors.TenantRequired, match=r"may not read every tenant's runs"),
    ):
        app.find_runs()
    with QueueClient.connect(app_login, tenant="acme") as app:
        assert [r.tenant_id for r in app.find_runs()] == ["acme"]
        with app.transaction() as conn:  # a login that is a member takes the role too
            assert conn.execute("SELECT current_user").fetchone() == ("jobforge_app",)


def test_a_bypassrls_login_outside_the_app_role_still_sees_one_tenant(
    jobforge_db: Database, seeded: dict[str, int]
) -> None:
    """A login that bypasses RLS and may not take jobforge_app keeps the queries' own filters."""
    name = f"jf_bypass_{secrets.token_hex(4)}"
    role = sql.Identifier(name)
    with jobforge_db.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN BYPASSRLS").format(role))
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA jobforge TO {}").format(role))
        admin.execute(sql.SQL("GRANT SELECT ON jobforge.job_runs, jobforge.tenant_logins TO {}")
                      .format(role))  # fmt: skip
        admin.execute(sql.SQL("GRANT EXECUTE ON FUNCTION jobforge.current_tenant(), "
                              "jobforge.worker_scope(), jobforge.current_project() "
                              "TO {}").format(role))  # fmt: skip
    try:
        dsn = make_conninfo(jobforge_db.dsn, user=name)
        with QueueClient.connect(dsn, tenant="acme") as client:
            with client.transaction() as conn:
                assert conn.execute("SELECT current_user").fetchone() == (name,)
            assert [r.tenant_id for r in client.find_runs()] == ["acme"]
    finally:
        with jobforge_db.connect() as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))
