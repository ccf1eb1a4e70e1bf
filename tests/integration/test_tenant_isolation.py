"""Row-level security as non-owner roles: fails closed, and no tenant reaches another's jobs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge import db, errors
from jobforge.provision import Database
from jobforge.queue import Outcome, QueueClient
from tests.integration.test_rls_catalog import seed_events, seed_schedules
from tests.records import run_write

TABLES = ("jobs", "job_attempts", "job_results", "job_events", "connector_configs", "job_runs",
          "artifact_blobs", "artifact_chunks", "artifact_refs", "schedules",
          "schedule_firings", "events", "triggers", "trigger_evaluations")  # fmt: skip
DIGEST = "sha256:" + "0" * 64


@pytest.fixture
def roles(jobforge_db: Database) -> Iterator[dict[str, str]]:
    """DSNs for a fresh app login role and a fresh worker login role (roles are cluster-wide)."""
    suffix = secrets.token_hex(4)
    names = {"app": f"jf_app_{suffix}", "worker": f"jf_worker_{suffix}"}
    with jobforge_db.connect() as admin:
        for kind, name in names.items():
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                    sql.Identifier(name), sql.Identifier(f"jobforge_{kind}")
                )
            )
    yield {k: make_conninfo(jobforge_db.dsn, user=v) for k, v in names.items()}
    with jobforge_db.connect() as admin:
        for name in names.values():
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def seeded(jobforge_db: Database) -> dict[str, int]:
    """One job per tenant, each claimed, recorded with an artifact, finished and with a connector
    config, a dry-run schedule fired once, and an event evaluated by a dry-run trigger: rows
    everywhere."""
    seed_schedules(jobforge_db)
    seed_events(jobforge_db)
    ids = {}
    for tenant in ("tenant_a", "tenant_b"):
        with QueueClient.connect(jobforge_db.dsn, tenant=tenant) as queue:
            ids[tenant] = queue.enqueue("ops.scan", {"t": tenant}).job_id
            with queue.pool.connection() as conn, db.tenant_transaction(conn, tenant):
                conn.execute(
                    "INSERT INTO jobforge.connector_configs VALUES (%s, 'http', '{}', now())",
                    (tenant,),
                )
    # an actor: the claims and finishes store their events (migrations/0031), so
    # job_events holds rows of each too
    with QueueClient.connect(jobforge_db.dsn, actor="seed") as worker:
        for job in worker.claim("w", 10):
            assert job.lease_token is not None
            data = f"report of {job.tenant_id}".encode()  # an artifact: blob, chunk, reference
            sha = worker.store_blob("w", job.id, job.lease_token, job.tenant_id, data)
            assert sha is not None
            record = {"format": "jobforge.run/1", "runner_id": "ops.scan", "runner_version": "1",
                      "status": "succeeded", "input": {"sha256": DIGEST},
                      "trace_sha256": DIGEST}  # fmt: skip
            written = run_write(record, [("report.md", sha, len(data))])
            assert worker.record_run("w", job.id, job.lease_token, written)
            done = Outcome(
                job_id=job.id, lease_token=job.lease_token, outcome="succeeded", result={"n": 1}
            )
            worker.finish("w", [done])  # a result, so job_results has a row per tenant
    return ids


def test_no_tenant_sees_no_rows_in_any_table(roles: dict[str, str], seeded: dict[str, int]) -> None:
    with psycopg.connect(roles["app"], autocommit=True) as conn:
        for table in TABLES:
            assert conn.execute(f"SELECT count(*) FROM jobforge.{table}").fetchone() == (0,), table
        conn.execute("SET jobforge.scope = 'worker'")  # asking is not enough without the role
        assert conn.execute("SELECT count(*) FROM jobforge.jobs").fetchone() == (0,)


def test_a_tenant_sees_only_its_own_rows(roles: dict[str, str], seeded: dict[str, int]) -> None:
    with psycopg.connect(roles["app"], autocommit=True) as conn:
        conn.execute("SET jobforge.tenant = 'tenant_a'")
        for table in TABLES:
            tenants = conn.execute(f"SELECT DISTINCT tenant_id FROM jobforge.{table}").fetchall()
            assert tenants == [("tenant_a",)], table


def test_a_tenant_cannot_act_on_another_s_job(
    roles: dict[str, str], seeded: dict[str, int]
) -> None:
    with QueueClient.connect(roles["app"], tenant="tenant_a") as queue:
        other = seeded["tenant_b"]
        for action in (queue.cancel, queue.reschedule, queue.get, queue.events, queue.attempts):
            with pytest.raises(errors.JobNotFound):
                action(other)
        assert [j.id for j in queue.list_jobs().jobs] == [seeded["tenant_a"]]


def test_tenant_functions_refuse_without_a_tenant(
    roles: dict[str, str], seeded: dict[str, int]
) -> None:
    with QueueClient.connect(roles["app"]) as queue:
        with pytest.raises(errors.TenantRequired):
            queue.enqueue("ops.scan", {})
        with pytest.raises(errors.TenantRequired):
            queue.cancel(seeded["tenant_a"])


def test_the_app_role_cannot_claim_and_the_worker_role_claims_across_tenants(
    roles: dict[str, str], jobforge_db: Database
) -> None:
    for tenant in ("tenant_a", "tenant_b"):
        with QueueClient.connect(jobforge_db.dsn, tenant=tenant) as queue:
            queue.enqueue("ops.scan", {})
    with (
        QueueClient.connect(roles["app"], tenant="tenant_a") as app,
        pytest.raises(psycopg.Error) as info,
    ):
        app.claim("w", 10)
    assert info.value.sqlstate == "42501"  # permission denied
    with QueueClient.connect(roles["worker"]) as worker:
        assert sorted(j.tenant_id for j in worker.claim("w", 10)) == ["tenant_a", "tenant_b"]


def test_the_worker_role_cannot_write_rows_directly(
    roles: dict[str, str], seeded: dict[str, int]
) -> None:
    with (
        psycopg.connect(roles["worker"], autocommit=True) as conn,
        pytest.raises(psycopg.Error) as info,
    ):
        conn.execute("UPDATE jobforge.jobs SET priority = 1")
    assert info.value.sqlstate == "42501"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE jobforge.schedules SET paused = false",
        "INSERT INTO jobforge.schedules (tenant_id, name, cron, timezone, type, input, anchor, "
        "created_at, updated_at) VALUES ('tenant_a', 'x', '* * * * *', 'UTC', 't', '{}', now(), "
        "now(), now())",
        "DELETE FROM jobforge.schedule_firings",
        "UPDATE jobforge.features SET enabled = true",
        "UPDATE jobforge.triggers SET paused = false, dry_run = false",
        "INSERT INTO jobforge.events (tenant_id, type, source, data, occurred_at, submitted_at) "
        "VALUES ('tenant_a', 't', 's', '{}', now(), now())",
        "DELETE FROM jobforge.events",
        "UPDATE jobforge.trigger_evaluations SET outcome = 'fired'",
        "SELECT jobforge.evaluate_triggers(NULL, now(), false)",
    ],
)
def test_no_login_writes_schedules_or_flags_directly(
    roles: dict[str, str], seeded: dict[str, int], statement: str
) -> None:
    for login in ("app", "worker"):
        with psycopg.connect(roles[login], autocommit=True) as conn:
            conn.execute("SET jobforge.tenant = 'tenant_a'")
            with pytest.raises(psycopg.Error) as info:
                conn.execute(statement.encode())
            assert info.value.sqlstate == "42501", (login, statement)


def test_the_runner_catalogue_is_one_for_every_tenant_and_no_tenant_changes_it(
    roles: dict[str, str], jobforge_db: Database
) -> None:
    """Runners are code deployed for all tenants: each tenant reads the same catalogue, and
    none can switch a runner off for the others (only an operator may)."""
    with jobforge_db.connect() as owner:
        owner.execute("SELECT jobforge.catalogue_sync_v1('ops.scan', '1.0.0', '{}', '{}', %s)",
                      ("sha256:" + "0" * 64,))  # fmt: skip
    for tenant in ("tenant_a", "tenant_b"):
        with psycopg.connect(roles["app"], autocommit=True) as conn:
            conn.execute("SELECT set_config('jobforge.tenant', %s, false)", (tenant,))
            rows = conn.execute("SELECT runner_id, enabled FROM jobforge.runner_catalogue")
            assert rows.fetchall() == [("ops.scan", True)]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT jobforge.catalogue_enable_v1('ops.scan', false)")
