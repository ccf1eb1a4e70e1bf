"""Every tenant table is walled, from the catalog, so a table added later cannot be forgotten.

`rls_problems` is the check: every table of schema jobforge with a `tenant_id` column has row
level security enabled AND forced and at least one policy, and with rows of two tenants in it,
a fresh non-owner app login and a fresh worker login (without `jobforge.scope = 'worker'`) see
no row with no tenant set (the wall fails closed) and only tenant_a's rows with tenant_a set.

The mutation tests prove the check bites: each breaks the wall one way in a fresh clone, as the
owner, and the same check must name the broken table.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge import db, trust
from jobforge.provision import Database
from jobforge.queue import Outcome, QueueClient, signing
from jobforge.queue.events import NewEvent
from jobforge.queue.features import set_feature
from jobforge.queue.schedules import NewSchedule
from jobforge.queue.triggers import NewTrigger
from tests.records import run_write

TENANTS = ("tenant_a", "tenant_b")
DIGEST = "sha256:" + "0" * 64


@dataclass(frozen=True)
class Logins:
    app: str  # DSN of a fresh jobforge_app login
    worker: str  # DSN of a fresh jobforge_worker login


def tenant_tables(conn: psycopg.Connection[Any]) -> list[tuple[str, bool, bool, int]]:
    """(name, RLS enabled, RLS forced, number of policies) of every table of schema jobforge
    that has a tenant_id column."""
    rows = conn.execute(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
        "       (SELECT count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid)::int "
        "FROM pg_catalog.pg_class c "
        "WHERE c.relnamespace = 'jobforge'::regnamespace AND c.relkind IN ('r', 'p') "
        "  AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid "
        "              AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped) "
        "ORDER BY 1"
    ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def _seen(conn: psycopg.Connection[Any], table: str, tenant: str | None,
          scope: str | None) -> list[str]:  # fmt: skip
    with conn.transaction():
        conn.execute(
            "SELECT pg_catalog.set_config('jobforge.tenant', %s, true), "
            "pg_catalog.set_config('jobforge.scope', %s, true)",
            (tenant or "", scope or ""),
        )
        rows = conn.execute(
            sql.SQL("SELECT DISTINCT tenant_id FROM jobforge.{} ORDER BY 1").format(
                sql.Identifier(table))).fetchall()  # fmt: skip
    return [r[0] for r in rows]


def rls_problems(owner: Database, logins: Logins) -> list[str]:
    """What is wrong with the tenant wall of this database; empty when it holds."""
    problems: list[str] = []
    with owner.connect() as conn:
        tables = tenant_tables(conn)
        for name, enabled, forced, policies in tables:
            if not enabled:
                problems.append(f"{name}: row level security is not enabled")
            if not forced:
                problems.append(f"{name}: row level security is not forced (the owner passes)")
            if policies < 1:
                problems.append(f"{name}: no policy")
            present = [r[0] for r in conn.execute(
                sql.SQL("SELECT DISTINCT tenant_id FROM jobforge.{} ORDER BY 1").format(
                    sql.Identifier(name))).fetchall()]  # fmt: skip
            if not set(TENANTS) <= set(present):
                problems.append(f"{name}: holds rows of {present}, not of both test tenants, "
                                "so what other logins see of it proves nothing")  # fmt: skip
    if not tables:
        problems.append("no table of schema jobforge has a tenant_id column")
    views: tuple[tuple[str, str, str | None, list[str]], ...] = (
        ("app", logins.app, None, []),
        ("app", logins.app, "tenant_a", ["tenant_a"]),
        ("app", logins.app, "tenant_b", ["tenant_b"]),
        ("worker", logins.worker, None, []),
        ("worker", logins.worker, "tenant_a", ["tenant_a"]),
    )
    for who, dsn, tenant, expected in views:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name, *_ in tables:
                scopes: tuple[str | None, ...] = (None, "worker") if who == "app" else (None,)
                for scope in scopes:  # an app login asking for the worker scope gets nothing
                    where = f"{name}: the {who} login with tenant {tenant or 'unset'}" + (
                        f" and scope {scope}" if scope else "")  # fmt: skip
                    try:
                        seen = _seen(conn, name, tenant, scope)
                    except psycopg.Error as exc:
                        problems.append(f"{where} cannot read it: {exc.diag.message_primary}")
                        continue
                    if seen != expected:
                        problems.append(f"{where} sees rows of {seen}, expected {expected}")
    return problems


def seed(database: Database) -> None:
    """Rows of both tenants in every tenant table: a job claimed, recorded with an artifact and
    finished with a result (jobs, attempts, events, results, run records, artifact blobs, chunks
    and references), a connector config, a dry-run schedule fired once (schedules,
    schedule_firings; a dry run enqueues no job), and an event evaluated by a dry-run trigger
    (events, triggers, trigger_evaluations)."""
    seed_schedules(database)
    seed_events(database)
    seed_trust(database)
    for tenant in TENANTS:
        with QueueClient.connect(database.dsn, tenant=tenant) as queue:
            queue.enqueue("rls.job", {"tenant": tenant})
            with queue.pool.connection() as conn, db.tenant_transaction(conn, tenant):
                conn.execute(
                    "INSERT INTO jobforge.connector_configs VALUES (%s, 'http', '{}', now())",
                    (tenant,),
                )
    # an actor: the claims and finishes store their events (migrations/0031), so
    # job_events holds rows of each too
    with QueueClient.connect(database.dsn, actor="seed") as worker:
        claimed = worker.claim("w", 10)
        assert sorted(j.tenant_id for j in claimed) == list(TENANTS)
        for job in claimed:
            assert job.lease_token is not None
            record = {"format": "jobforge.run/1", "runner_id": "rls.job", "runner_version": "1",
                      "status": "succeeded", "input": {"sha256": DIGEST},
                      "trace_sha256": DIGEST}  # fmt: skip
            data = f"an artifact of {job.tenant_id}".encode()
            sha = worker.store_blob("w", job.id, job.lease_token, job.tenant_id, data)
            assert sha is not None
            written = run_write(record, [("out.txt", sha, len(data))])
            assert worker.record_run("w", job.id, job.lease_token, written)
            done = Outcome(job_id=job.id, lease_token=job.lease_token, outcome="succeeded",
                           result={"n": 1})  # fmt: skip
            assert worker.finish("w", [done]) == {job.id: "succeeded"}


def seed_trust(database: Database) -> None:
    """A signing key of each tenant (signing_keys) and a policy token's jti used by a job of
    each (token_uses), written through the functions an operator and a worker call."""
    for tenant in TENANTS:
        public = trust.public_key_bytes(trust.generate_private_key())
        with database.connect() as conn:
            assert signing.add_key(conn, tenant, f"{tenant}-key", public, "rls") == "added"
        with QueueClient.connect(database.dsn, tenant=tenant) as queue:
            queue.enqueue("rls.token", {"tenant": tenant})
    with QueueClient.connect(database.dsn) as worker:
        claimed = worker.claim("w", 10, types=["rls.token"])
        assert sorted(j.tenant_id for j in claimed) == list(TENANTS)
        for job in claimed:
            assert job.lease_token is not None
            expires = datetime.now(UTC) + timedelta(minutes=5)
            assert worker.consume_token("w", job.id, job.lease_token, f"jti-{job.tenant_id}",
                                        expires) == "ok"  # fmt: skip
            done = Outcome(job_id=job.id, lease_token=job.lease_token, outcome="succeeded")
            assert worker.finish("w", [done]) == {job.id: "succeeded"}


def seed_schedules(database: Database) -> None:
    """A dry-run schedule of each tenant, fired once by a pass: a row in schedules and one in
    schedule_firings per tenant, and no job."""
    now = datetime.now(UTC)
    with database.connect() as conn:
        set_feature(conn, "schedules", None, True)
    for tenant in TENANTS:
        with QueueClient.connect(database.dsn, tenant=tenant) as queue:
            tick = NewSchedule(name="rls", cron="* * * * *", type="rls.tick", dry_run=True)
            queue.schedule_add(tick, now=now - timedelta(minutes=2))
    with QueueClient.connect(database.dsn) as worker:
        fired, _ = worker.schedule_pass("w")
    assert sorted((f.tenant_id, f.outcome) for f in fired) == [(t, "dry_run") for t in TENANTS]


def seed_events(database: Database) -> None:
    """A dry-run trigger of each tenant and an event it evaluated: a row in events, triggers
    and trigger_evaluations per tenant, and no job."""
    with database.connect() as conn:
        for feature in ("events", "triggers"):
            set_feature(conn, feature, None, True)
    for tenant in TENANTS:
        with QueueClient.connect(database.dsn, tenant=tenant) as queue:
            queue.trigger_add(NewTrigger(name="rls", event_type="rls.event", job_type="rls.fired",
                                         input={"t": "$.data.t"}, dry_run=True))  # fmt: skip
            done = queue.event_submit(NewEvent(type="rls.event", source="rls", data={"t": tenant}))
            assert [e.outcome for e in done.evaluations] == ["dry_run"]


@pytest.fixture
def logins(jobforge_db: Database) -> Iterator[Logins]:
    """A fresh app login and a fresh worker login (roles are cluster-wide: random names)."""
    suffix = secrets.token_hex(4)
    names = {"app": f"jf_rls_app_{suffix}", "worker": f"jf_rls_worker_{suffix}"}
    with jobforge_db.connect() as admin:
        for kind, name in names.items():
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                sql.Identifier(name), sql.Identifier(f"jobforge_{kind}")))  # fmt: skip
    yield Logins(*(make_conninfo(jobforge_db.dsn, user=names[k]) for k in ("app", "worker")))
    with jobforge_db.connect() as admin:
        for name in names.values():
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def seeded(jobforge_db: Database) -> Database:
    seed(jobforge_db)
    return jobforge_db


def test_every_tenant_table_is_forced_has_a_policy_and_fails_closed(
    seeded: Database, logins: Logins
) -> None:
    with seeded.connect() as conn:
        names = {t[0] for t in tenant_tables(conn)}
    # the tables known today are among those the catalog finds (job_runs was once forgotten)
    assert {"jobs", "job_attempts", "job_results", "job_events", "connector_configs",
            "job_runs", "artifact_blobs", "artifact_chunks", "artifact_refs", "schedules",
            "schedule_firings", "events", "triggers", "trigger_evaluations"} <= names  # fmt: skip
    assert rls_problems(seeded, logins) == []


MUTATIONS = {
    "jobs-not-forced": ("ALTER TABLE jobforge.jobs NO FORCE ROW LEVEL SECURITY", "jobs"),
    "job_runs-not-forced": ("ALTER TABLE jobforge.job_runs NO FORCE ROW LEVEL SECURITY",
                            "job_runs"),
    "job_runs-policy-open": ("DROP POLICY tenant_isolation ON jobforge.job_runs; "
                             "CREATE POLICY tenant_isolation ON jobforge.job_runs USING (true)",
                             "job_runs"),
    "jobs-policy-open": ("ALTER POLICY tenant_isolation ON jobforge.jobs USING (true)", "jobs"),
    "connector_configs-rls-disabled": (
        "ALTER TABLE jobforge.connector_configs DISABLE ROW LEVEL SECURITY", "connector_configs"),
    "job_events-policy-dropped": ("DROP POLICY tenant_isolation ON jobforge.job_events",
                                  "job_events"),
    "artifact_chunks-not-forced": (
        "ALTER TABLE jobforge.artifact_chunks NO FORCE ROW LEVEL SECURITY", "artifact_chunks"),
    "artifact_blobs-policy-open": (
        "ALTER POLICY tenant_isolation ON jobforge.artifact_blobs USING (true)", "artifact_blobs"),
    "artifact_refs-rls-disabled": (
        "ALTER TABLE jobforge.artifact_refs DISABLE ROW LEVEL SECURITY", "artifact_refs"),
    "schedules-not-forced": ("ALTER TABLE jobforge.schedules NO FORCE ROW LEVEL SECURITY",
                             "schedules"),
    "schedule_firings-policy-open": (
        "ALTER POLICY tenant_isolation ON jobforge.schedule_firings USING (true)",
        "schedule_firings"),
    "events-not-forced": ("ALTER TABLE jobforge.events NO FORCE ROW LEVEL SECURITY", "events"),
    "triggers-policy-open": ("ALTER POLICY tenant_isolation ON jobforge.triggers USING (true)",
                             "triggers"),
    "trigger_evaluations-rls-disabled": (
        "ALTER TABLE jobforge.trigger_evaluations DISABLE ROW LEVEL SECURITY",
        "trigger_evaluations"),
    "new-table-forgotten": (
        "CREATE TABLE jobforge.job_notes (tenant_id text NOT NULL, note text); "
        "GRANT SELECT ON jobforge.job_notes TO jobforge_app, jobforge_worker; "
        "INSERT INTO jobforge.job_notes VALUES ('tenant_a', 'a'), ('tenant_b', 'b')",
        "job_notes"),
}  # fmt: skip


@pytest.mark.parametrize(("mutation", "table"), list(MUTATIONS.values()), ids=list(MUTATIONS))
def test_the_check_reports_each_broken_wall(
    seeded: Database, logins: Logins, mutation: str, table: str
) -> None:
    assert rls_problems(seeded, logins) == []  # the same clone holds before the break
    with seeded.connect() as owner:
        owner.execute(mutation.encode())
    problems = rls_problems(seeded, logins)
    assert problems, mutation
    assert all(p.startswith(f"{table}: ") for p in problems), problems


def project_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Every table of schema jobforge with a tenant_id and a project column (migrations/0016)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_catalog.pg_class c "
        "WHERE c.relnamespace = 'jobforge'::regnamespace AND c.relkind IN ('r', 'p') "
        "  AND (SELECT count(*) FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid "
        "       AND a.attname IN ('tenant_id', 'project') AND a.attnum > 0 "
        "       AND NOT a.attisdropped) = 2 "
        "ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def _projects_seen(conn: psycopg.Connection[Any], table: str, project: str,
                   scope: str | None) -> list[str]:  # fmt: skip
    with conn.transaction():
        conn.execute(
            "SELECT pg_catalog.set_config('jobforge.tenant', 'tenant_a', true), "
            "pg_catalog.set_config('jobforge.scope', %s, true), "
            "pg_catalog.set_config('jobforge.project', %s, true)",
            (scope or "", project),
        )
        rows = conn.execute(
            sql.SQL("SELECT DISTINCT project FROM jobforge.{} ORDER BY 1").format(
                sql.Identifier(table))).fetchall()  # fmt: skip
    return [r[0] for r in rows]


def test_every_project_table_hides_the_other_projects(
    jobforge_db: Database, logins: Logins
) -> None:
    """With a project scope, every table that has a project column shows that project's rows
    only, to an app login and to a worker login in the worker scope alike; an unknown project
    shows nothing."""
    for project in ("p1", "p2"):
        with QueueClient.connect(jobforge_db.dsn, tenant="tenant_a", project=project) as queue:
            queue.enqueue("rls.job", {"project": project})
    # an actor: the claims and finishes store their events (migrations/0031), so
    # job_events holds rows of each too
    with QueueClient.connect(
        jobforge_db.dsn, actor="seed"
    ) as worker:  # rows of both in every child table
        for job in worker.claim("w", 10):
            assert job.lease_token is not None
            record = {"format": "jobforge.run/1", "runner_id": "rls.job", "runner_version": "1",
                      "status": "succeeded", "input": {"sha256": DIGEST},
                      "trace_sha256": DIGEST}  # fmt: skip
            assert worker.record_run("w", job.id, job.lease_token, run_write(record))
            done = Outcome(job_id=job.id, lease_token=job.lease_token, outcome="succeeded",
                           result={"n": 1})  # fmt: skip
            assert worker.finish("w", [done]) == {job.id: "succeeded"}
    with jobforge_db.connect() as owner:
        tables = project_tables(owner)
    assert tables == ["job_attempts", "job_events", "job_results", "job_runs", "jobs"]
    for dsn, scope in ((logins.app, None), (logins.worker, "worker")):
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table in tables:
                for project, expected in (("p1", ["p1"]), ("p2", ["p2"]), ("p3", [])):
                    seen = _projects_seen(conn, table, project, scope)
                    assert seen == expected, (dsn, table, project)


#: Deployment-wide tables (no tenant_id): walled too, readable by every login, written only
#: through the owner's SECURITY DEFINER functions that check for an operator.
DEPLOYMENT_TABLES = ("runner_catalogue",)


def test_deployment_wide_tables_are_forced_readable_and_not_writable(
    seeded: Database, logins: Logins
) -> None:
    with seeded.connect() as owner:
        for name in DEPLOYMENT_TABLES:
            row = owner.execute(
                "SELECT relrowsecurity, relforcerowsecurity, "
                "(SELECT count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid)::int "
                "FROM pg_catalog.pg_class c WHERE c.oid = %s::regclass", (f"jobforge.{name}",),
            ).fetchone()  # fmt: skip
            assert row == (True, True, 2), name
        owner.execute(
            "SELECT jobforge.catalogue_sync_v1('rls.job', '1.0.0', '{}', '{}', %s)", (DIGEST,)
        )
    for dsn in (logins.app, logins.worker):
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in DEPLOYMENT_TABLES:
                table = sql.Identifier(name)
                assert conn.execute(
                    sql.SQL("SELECT count(*) FROM jobforge.{}").format(table)
                ).fetchone() == (1,), name  # fmt: skip
                for write in ("DELETE FROM jobforge.{}", "UPDATE jobforge.{} SET enabled = false"):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        conn.execute(sql.SQL(write).format(table))
