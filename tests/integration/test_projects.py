"""Projects (migrations/0016): set on enqueue, filtered on, and walled off by row-level security
beside the tenant, on real Postgres.

The database's login is a superuser (as the CLI's usual login is): the SECURITY DEFINER functions
run as an owner that row-level security does not bind, so what they let through is their own
filters' doing; reads go through the policies as jobforge_app. The attacker's side is a real
second login bound to a tenant and to projects (jobforge.tenant_logins.projects).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from jobforge import errors
from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, NewJob, Outcome, QueueClient, bulk
from jobforge.queue.retention import prune
from tests.integration.conftest import new_app_login
from tests.records import run_write

TENANT = "acme"
CHILDREN = ("job_attempts", "job_results", "job_events", "job_runs")
TABLES = ("jobs", *CHILDREN)
DIGEST = "sha256:" + "0" * 64


def _finish_all(database: Database) -> None:
    """Claim every due job as a worker, record a run and finish it with a result: rows of its
    project in every child table."""
    # an actor: the claims and finishes store their events (migrations/0031), so
    # job_events holds rows of each too
    with QueueClient.connect(database.dsn, actor="seed") as worker:
        for job in worker.claim("w", 100):
            assert job.lease_token is not None
            record = {"format": "jobforge.run/1", "runner_id": "p.job", "runner_version": "1",
                      "status": "succeeded", "input": {"sha256": DIGEST},
                      "trace_sha256": DIGEST}  # fmt: skip
            assert worker.record_run("w", job.id, job.lease_token, run_write(record))
            done = Outcome(job_id=job.id, lease_token=job.lease_token, outcome="succeeded",
                           result={"ok": True})  # fmt: skip
            assert worker.finish_each("w", [done]) == ["succeeded"]


@pytest.fixture
def seeded(jobforge_db: Database) -> dict[str, int]:
    """A finished job in projects `a` and `b` of the tenant (rows in every table), and a queued
    one in each (for cancel and bulk)."""
    ids: dict[str, int] = {}
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        for project in ("a", "b"):
            ids[project] = queue.enqueue("p.job", {"p": project}, project=project).job_id
    _finish_all(jobforge_db)
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        for project in ("a", "b"):
            ids[f"{project}_queued"] = queue.enqueue(
                "p.job", {"p": project, "n": 2}, project=project
            ).job_id
    return ids


def _projects_seen(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(f"SELECT DISTINCT project FROM jobforge.{table} ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def test_every_row_of_a_job_carries_its_project(
    jobforge_db: Database, seeded: dict[str, int]
) -> None:
    with jobforge_db.connect() as owner:  # superuser: every row
        for table in CHILDREN:
            rows = owner.execute(
                f"SELECT DISTINCT c.project, j.project FROM jobforge.{table} c "
                "JOIN jobforge.jobs j ON j.id = c.job_id"
            ).fetchall()
            assert sorted(rows) == [("a", "a"), ("b", "b")], table


def test_children_written_by_functions_that_leave_the_project_out_get_the_job_s(
    jobforge_db: Database, seeded: dict[str, int]
) -> None:
    """cancel, reschedule and bulk write events; the trigger (or the function) fills the project."""
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        queue.cancel(seeded["b_queued"])
        queue.reschedule(seeded["b_queued"])
    with jobforge_db.connect() as owner:
        kinds = owner.execute(
            "SELECT kind, project FROM jobforge.job_event_log WHERE job_id = %s ORDER BY id",
            (seeded["b_queued"],),
        ).fetchall()
    assert kinds == [("created", "b"), ("canceled", "b"), ("rescheduled", "b")]


def test_a_job_without_a_project_is_in_default_or_in_the_client_s_scope(
    jobforge_db: Database,
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        plain = queue.enqueue("p.job", {})
        scoped = queue.in_project("ops").enqueue("p.job", {})
        assert queue.get(plain.job_id).project == "default"
        assert queue.get(scoped.job_id).project == "ops"


def test_batch_enqueue_mixes_projects_in_order(jobforge_db: Database) -> None:
    jobs = [NewJob(type="p.job", payload={"i": i}, project=p)
            for i, p in enumerate(["a", None, "b", "a"])]  # fmt: skip
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        done = queue.enqueue_many(jobs)
        assert [queue.get(d.job_id).project for d in done] == ["a", "default", "b", "a"]
        keyed = [j.model_copy(update={"idempotency_key": f"k{i}"}) for i, j in enumerate(jobs)]
        again = queue.enqueue_many(keyed)
        assert [queue.get(d.job_id).project for d in again] == ["a", "default", "b", "a"]


def test_async_batch_enqueue_with_projects(jobforge_db: Database) -> None:
    async def main() -> list[str]:
        client = await AsyncQueueClient.connect(jobforge_db.dsn, tenant=TENANT)
        try:
            done = await client.enqueue_many([
                NewJob(type="p.job", payload={}, project="x"),
                NewJob(type="p.job", payload={}),
            ])  # fmt: skip
            listed = await client.in_project("x").list_jobs()
            assert {j.id for j in listed.jobs} == {done[0].job_id}
            return [(await client.get(d.job_id)).project for d in done]
        finally:
            await client.close()

    assert asyncio.run(main()) == ["x", "default"]


def test_list_and_find_runs_filter_by_project(
    jobforge_db: Database, seeded: dict[str, int]
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        listed = queue.list_jobs(project="a")
        assert {j.id for j in listed.jobs} == {seeded["a"], seeded["a_queued"]}
        assert {j.project for j in listed.jobs} == {"a"}
        assert queue.list_jobs(project="nope").jobs == []
        runs = queue.find_runs(project="b")
        assert [(r.job_id, r.project) for r in runs] == [(seeded["b"], "b")]
        # a filter inside another project's scope finds nothing
        assert queue.in_project("a").list_jobs(project="b").jobs == []
    with QueueClient.connect(jobforge_db.dsn) as operator:  # every tenant: the worker scope
        assert [r.project for r in operator.find_runs(project="a")] == ["a"]


def test_a_bad_project_is_one_line_before_anything_is_sent(jobforge_db: Database) -> None:
    with pytest.raises(ValidationError, match="project"):
        NewJob(type="p.job", payload={}, project="has space")
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        with pytest.raises(errors.ConfigurationError, match=r"^project '' is not a project name"):
            queue.in_project("")
        with pytest.raises(errors.ConfigurationError, match="is 129 characters"):
            queue.list_jobs(project="x" * 129)
        with pytest.raises(errors.ConfigurationError, match="not a project name"):
            queue.find_runs(project="a/b")
    with pytest.raises(errors.ConfigurationError, match="not a project name"):
        QueueClient.connect(jobforge_db.dsn, tenant=TENANT, project="é")


def test_the_database_refuses_a_bad_project_sent_around_the_client(jobforge_db: Database) -> None:
    """A caller of enqueue_v1 that skips the client's check gets the table's rule, in one line."""
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        bad = NewJob.model_construct(type="p.job", payload={}, project="a b", priority=0,
                                     max_attempts=3, idempotency_key=None, run_at=None,
                                     trace_id=None)  # fmt: skip
        with pytest.raises(errors.InvalidJob, match=r"job #1: project 'a b' is invalid"):
            queue.enqueue_many([bad])


def test_a_scoped_client_sees_and_changes_only_its_project(
    jobforge_db: Database, seeded: dict[str, int]
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT, project="a") as queue:
        assert {j.project for j in queue.list_jobs().jobs} == {"a"}
        for call in (queue.get, queue.events, queue.attempts, queue.result, queue.runs,
                     queue.cancel, queue.reschedule):  # fmt: skip
            with pytest.raises(errors.JobNotFound):
                call(seeded["b"] if call is not queue.cancel else seeded["b_queued"])
        assert queue.result(seeded["a"]) == {"ok": True}
        # unfiltered SQL in the client's transaction: the policies let only project a through
        with queue.transaction() as conn:
            for table in TABLES:
                assert _projects_seen(conn, table) == ["a"], table
        with pytest.raises(errors.TenantRequired, match="outside this session's project 'a'"):
            queue.enqueue("p.job", {}, project="b")
        stats = queue.stats()
        assert sum(row.jobs for row in stats.rows) == 2  # a's finished and queued job
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as everyone:
        assert everyone.get(seeded["b_queued"]).status.value == "queued"


def test_bulk_actions_stay_in_the_scope(jobforge_db: Database, seeded: dict[str, int]) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT, project="b") as queue:
        done = queue.bulk("cancel", bulk.Filter(statuses=("queued",)))
        assert (done.matched, done.changed) == (1, 1)
        # b's id given to a bulk action in a's scope touches nothing
        a_scope = queue.in_project("a")
        assert a_scope.bulk("retry", bulk.Filter(statuses=("canceled",)), dry_run=True).matched == 0
        ids_only = a_scope.bulk_batch("retry", bulk.Filter(statuses=("canceled",)),
                                      ids=[seeded["b_queued"]])  # fmt: skip
        assert ids_only.changed == 0
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as everyone:
        assert everyone.get(seeded["a_queued"]).status.value == "queued"
        assert everyone.get(seeded["b_queued"]).status.value == "canceled"


def test_idempotency_keys_are_per_project(jobforge_db: Database) -> None:
    """A project-b session reusing a key of project a makes its own job: it learns nothing of
    a's (neither its id nor, with another payload, that the key is taken)."""
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        in_a = queue.enqueue("p.job", {"v": 1}, idempotency_key="k", project="a")
        same = queue.enqueue("p.job", {"v": 1}, idempotency_key="k", project="a")
        assert (same.job_id, same.created) == (in_a.job_id, False)
        with pytest.raises(errors.IdempotencyConflict):
            queue.enqueue("p.job", {"v": 2}, idempotency_key="k", project="a")
        in_b = queue.in_project("b").enqueue("p.job", {"v": 2}, idempotency_key="k")
        assert in_b.created
        assert in_b.job_id != in_a.job_id
        in_default = queue.enqueue("p.job", {"v": 3}, idempotency_key="k")
        assert in_default.created


@pytest.fixture
def bound(jobforge_db: Database, seeded: dict[str, int]) -> Iterator[str]:
    """The URL of a real second login, a member of jobforge_app bound to tenant acme and to
    project a only."""
    with new_app_login(jobforge_db, tenants=[TENANT], projects=["a"]) as url:
        yield url


def _raw_view(url: str, project: str | None) -> dict[str, list[str]]:
    """What the login reads of each table with SQL of its own, tenant acme and `project` set."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(
            "SELECT set_config('jobforge.tenant', %s, true), "
            "set_config('jobforge.project', %s, true)",
            (TENANT, project or ""),
        )
        return {table: _projects_seen(conn, table) for table in TABLES}


def test_a_project_bound_login_sees_its_project_only_and_nothing_otherwise(bound: str) -> None:
    assert _raw_view(bound, "a") == {table: ["a"] for table in TABLES}
    nothing: dict[str, list[str]] = {table: [] for table in TABLES}
    assert _raw_view(bound, "b") == nothing  # another project
    assert _raw_view(bound, None) == nothing  # none: fail closed
    assert _raw_view(bound, "A") == nothing  # names are case-sensitive


def test_a_project_bound_login_cannot_act_outside_its_project(
    bound: str, seeded: dict[str, int]
) -> None:
    with QueueClient.connect(bound, tenant=TENANT) as unscoped:
        assert unscoped.list_jobs().jobs == []
        with pytest.raises(errors.TenantRequired, match="is bound to projects"):
            unscoped.enqueue("p.job", {})
        with pytest.raises(errors.TenantRequired, match="is bound to projects"):
            unscoped.cancel(seeded["a_queued"])
        with pytest.raises(errors.TenantRequired, match="is bound to projects"):
            unscoped.stats()
    with QueueClient.connect(bound, tenant=TENANT, project="b") as other:
        with pytest.raises(errors.TenantRequired, match="may not act for project 'b'"):
            other.enqueue("p.job", {})
        with pytest.raises(errors.TenantRequired, match="may not act for project 'b'"):
            other.cancel(seeded["b_queued"])
        with pytest.raises(errors.TenantRequired, match="may not act for project 'b'"):
            other.bulk_batch("cancel", bulk.Filter(statuses=("queued",)))
        with pytest.raises(errors.JobNotFound):
            other.get(seeded["b"])
    with QueueClient.connect(bound, tenant=TENANT, project="a") as own:
        made = own.enqueue("p.job", {"mine": True})
        assert own.get(made.job_id).project == "a"
        with pytest.raises(errors.TenantRequired, match="outside this session's project 'a'"):
            own.enqueue("p.job", {}, project="b")
        with pytest.raises(errors.JobNotFound):
            own.cancel(seeded["b_queued"])
        assert own.cancel(seeded["a_queued"]).value == "canceled"


def test_a_project_bound_login_reads_the_tenant_s_connectors_but_changes_none(
    jobforge_db: Database, bound: str
) -> None:
    """A connector is the whole tenant's (its secret signs every project's deliveries): a login
    bound to project a reads it, as its runs must, and neither overwrites nor removes it, with
    the client or with SQL of its own (migrations/0028); a login for the whole tenant does."""
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as whole:
        whole.connector_set("hooks", {"secret": "the tenant's"})
    with QueueClient.connect(bound, tenant=TENANT, project="a") as own:
        assert own.connector_get("hooks").config == {"secret": "the tenant's"}
        with pytest.raises(errors.TenantRequired, match="is bound to projects"):
            own.connector_set("hooks", {"secret": "the attacker's"})
        with pytest.raises(errors.TenantRequired, match="is bound to projects"):
            own.connector_set("new", {"secret": "the attacker's"})
        with pytest.raises(errors.TenantRequired, match="is bound to projects"):
            own.connector_remove("hooks")
    with psycopg.connect(bound, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT set_config('jobforge.tenant', %s, true)", (TENANT,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM jobforge.connector_configs")
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as whole:
        assert [(c.name, c.config) for c in whole.connector_list()] == [
            ("hooks", {"secret": "the tenant's"})
        ]
        assert whole.connector_remove("hooks") is True
        assert whole.connector_remove("hooks") is False


def test_a_project_bound_login_cannot_lift_its_binding(bound: str) -> None:
    """The login may read its own binding row but not change it, nor write a job row itself."""
    with psycopg.connect(bound, autocommit=True) as conn:
        for statement in (
            "UPDATE jobforge.tenant_logins SET projects = NULL",
            "DELETE FROM jobforge.tenant_logins",
            "INSERT INTO jobforge.jobs (tenant_id, project, type, payload, payload_hash, run_at, "
            f"created_at, updated_at) VALUES ('{TENANT}', 'b', 'p.job', '{{}}', '{DIGEST}', "
            "now(), now(), now())",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_a_project_binding_needs_real_names(jobforge_db: Database) -> None:
    with jobforge_db.connect() as owner:
        for projects in ("{}", '{""}', "{NULL}"):
            with pytest.raises(psycopg.errors.CheckViolation):
                owner.execute(
                    "INSERT INTO jobforge.tenant_logins (login, tenants, projects) "
                    "VALUES ('someone', '{acme}', %s::text[])",
                    (projects,),
                )


def test_the_worker_claims_across_projects(jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        queue.enqueue_many([NewJob(type="p.job", payload={}, project=p) for p in "abc"])
    with QueueClient.connect(jobforge_db.dsn) as worker:
        assert sorted(j.project for j in worker.claim("w", 10)) == ["a", "b", "c"]


def test_prune_of_a_project_deletes_that_project_s_jobs_only(
    jobforge_db: Database, seeded: dict[str, int]
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        done = prune(queue, older_than=timedelta(0), project="a", throttle=0)
        assert (done.jobs, done.runs) == (1, 1)
        with pytest.raises(errors.JobNotFound):
            queue.get(seeded["a"])
        assert queue.get(seeded["b"]).status.value == "succeeded"
        scoped = queue.in_project("b")
        with pytest.raises(errors.TenantRequired, match="outside this session's project 'b'"):
            prune(scoped, older_than=timedelta(0), project="a", throttle=0)
        with pytest.raises(errors.ConfigurationError, match="not a project name"):
            prune(queue, older_than=timedelta(0), project="a b", throttle=0)
        assert prune(scoped, older_than=timedelta(0), throttle=0).jobs == 1  # the scope's
        assert queue.get(seeded["a_queued"]).status.value == "queued"  # never a live job
