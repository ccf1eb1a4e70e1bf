"""`jobforge jobs stats`, `jobforge health` and bulk `jobs retry|cancel` as subprocesses against a
migrated throwaway database: exit codes a probe relies on, JSON that parses, one-line errors for
bad input (told before any connection is tried), and the single-id forms unchanged."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge.provision import Database
from jobforge.queue import NewJob, Outcome, QueueClient
from tests.e2e.conftest import Cli, Run

pytestmark = pytest.mark.slow

#: No server answers here: a value checked before connecting never reaches it.
NOWHERE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"


@pytest.fixture
def jf(cli: Cli, jobforge_db: Database) -> Callable[..., Run]:
    def run(*args: str, tenant: str | None = "acme") -> Run:
        env = {"JOBFORGE_TENANT": tenant} if tenant else None
        return cli(*args, "--database-url", jobforge_db.dsn, env=env)

    return run


def _enqueue(dsn: str, tenant: str, n: int, **fields: object) -> list[int]:
    with QueueClient.connect(dsn, tenant=tenant, max_size=1) as client:
        jobs = [NewJob(type="ops.scan", payload={"i": i}, **fields) for i in range(n)]  # type: ignore[arg-type]
        return [e.job_id for e in client.enqueue_many(jobs)]


def test_health_exits_1_when_the_oldest_due_job_is_older_than_the_threshold(
    jf: Callable[..., Run], jobforge_db: Database
) -> None:
    healthy = jf("health")
    assert (healthy.code, healthy.out.startswith("healthy: 0 due")) == (0, True), healthy
    _enqueue(jobforge_db.dsn, "acme", 2, run_at=datetime.now(UTC) - timedelta(minutes=10))
    sick = jf("health", "--max-oldest-due", "5m")
    assert sick.code == 1, sick
    (line,) = sick.out.strip().splitlines()
    assert line.startswith("unhealthy: the oldest due job has waited 10m"), line
    assert "over --max-oldest-due 5m (2 jobs due)" in line
    assert jf("health", "--max-oldest-due", "1h").code == 0
    both = jf("health", "--max-oldest-due", "5m", "--max-due", "1")
    assert (both.code, len(both.out.strip().splitlines())) == (1, 2)
    assert "2 jobs are due, over --max-due 1" in both.out
    # another tenant's old job does not make this tenant unhealthy; the operator sees it
    assert jf("health", tenant="other").code == 0
    assert jf("health", tenant=None).code == 1


def test_health_and_stats_print_json_that_parses(
    jf: Callable[..., Run], jobforge_db: Database
) -> None:
    _enqueue(jobforge_db.dsn, "acme", 3, run_at=datetime.now(UTC) - timedelta(minutes=10))
    report = jf("health", "--format", "json")
    assert report.code == 1
    data = json.loads(report.out)
    assert (data["healthy"], len(data["breaches"])) == (False, 1)
    assert data["figures"]["due"] == 3
    assert data["figures"]["oldest_due_s"] >= 600
    assert data["thresholds"]["max_oldest_due_s"] == 300
    assert json.loads(jf("health", "--format", "json", "--max-oldest-due", "1d").out)["healthy"]
    counts = json.loads(jf("jobs", "stats", "--json").out)
    assert (counts["totals"]["due"], counts["by_type"]) == (3, {"ops.scan": {"due": 3}})
    assert json.loads(jf("jobs", "stats", "--format", "json").out)["tenant"] == "acme"
    table = jf("jobs", "stats", "--by-tenant", tenant=None)
    assert table.code == 0
    assert "acme" in table.out
    assert "every tenant" in table.out


def test_bulk_retry_and_cancel_from_the_shell(
    jf: Callable[..., Run], jobforge_db: Database
) -> None:
    ids = _enqueue(jobforge_db.dsn, "acme", 5, max_attempts=1)
    with QueueClient.connect(jobforge_db.dsn, max_size=1) as worker:
        jobs = worker.claim("w", 3)
        worker.finish("w", [Outcome(job_id=j.id, lease_token=j.lease_token, outcome="retry")  # type: ignore[arg-type]
                            for j in jobs])  # fmt: skip
    dry = jf("jobs", "retry", "--status", "dead", "--reset-attempts", "--dry-run", "--json")
    assert (dry.code, json.loads(dry.out)["matched"]) == (0, 3), dry
    skipped = jf("jobs", "retry", "--status", "dead", "--type", "ops.scan", "--since", "1h")
    assert skipped.out.strip() == (
        f"retried 0 jobs of tenant acme (dead, type ops.scan, finished since "
        f"{skipped.out.split('since ')[1].split(')')[0]}) in 1 batch"
    )
    assert "skipped 3 jobs that used all their attempts: add --reset-attempts" in skipped.err
    done = jf("jobs", "retry", "--status", "dead", "--reset-attempts", "--batch", "2", "--json")
    assert json.loads(done.out) | {"filter": None} == {
        "action": "retry", "tenant": "acme", "project": None, "dry_run": False, "matched": 3,
        "changed": 3, "skipped": 0, "busy": 0, "batches": 2, "filter": None,
    }  # fmt: skip
    canceled = jf("jobs", "cancel", "--type", "ops.scan")
    assert canceled.out.startswith("canceled 5 jobs of tenant acme (queued, type ops.scan)")
    # the single-id forms are unchanged
    assert json.loads(jf("jobs", "retry", str(ids[0]), "--json").out)["status"] == "queued"
    assert json.loads(jf("jobs", "cancel", str(ids[0]), "--json").out)["status"] == "canceled"


def test_jobs_held_by_another_transaction_throughout_are_one_line_and_exit_1(
    jf: Callable[..., Run], jobforge_db: Database
) -> None:
    ids = _enqueue(jobforge_db.dsn, "acme", 3)
    with jobforge_db.connect() as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM jobforge.jobs WHERE id = %s FOR UPDATE", (ids[1],))
        result = jf("jobs", "cancel", "--status", "queued")
        holder.execute("ROLLBACK")
    assert result.code == 1, result
    # the batch, then the locked job tried again by id until the patience ran out
    assert result.out.startswith("canceled 2 jobs of tenant acme (queued) in ")
    assert result.err.strip() == (
        "error: 1 matching job stayed locked by other transactions for 10 s and was left as it "
        "was: run the command again"
    )
    assert jf("jobs", "cancel", "--status", "queued").out.startswith("canceled 1 job of")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("jobs", "retry", "--since", "banana"),
            "error: --since 'banana': give a duration like 30m, 1h, 2d or an ISO 8601 date",
        ),
        (
            ("jobs", "retry", "--status", "bogus"),
            "error: --status 'bogus' is not a job status: choose from dead, failed, canceled",
        ),
        (
            ("jobs", "retry", "--status", "queued"),
            "error: --status 'queued' cannot be retried: choose from dead, failed, canceled",
        ),
        (
            ("jobs", "cancel", "--status", "dead"),
            "error: --status 'dead' cannot be canceled: choose from queued, running",
        ),
        (
            ("jobs", "cancel", "--status", "queued", "--batch", "0"),
            "error: --batch 0 is out of range: give 1-10000",
        ),
        (
            ("jobs", "retry"),
            "error: give a job ID, or a filter (--status, --type, --since) to retry jobs in bulk",
        ),
        (
            ("jobs", "cancel", "7", "--status", "queued"),
            "error: give a job ID or a filter (--status, --type, --since, --dry-run) to cancel, "
            "not both",
        ),
        (
            ("health", "--max-oldest-due", "banana"),
            "error: --max-oldest-due 'banana': give a duration like 30s, 5m, 1h or 2d",
        ),
        (
            ("health", "--expiring-within", "2d"),
            "error: --expiring-within '2d' is out of range: give 0 to 86400 seconds",
        ),
        (
            ("jobs", "stats", "--expiring-within", "-5s"),
            "error: --expiring-within '-5s': give a duration like 30s, 5m, 1h or 2d",
        ),
        (("health", "--format", "yaml"), "error: Invalid value for '--format'"),
    ],
)
def test_bad_input_is_one_line_before_any_connection(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    result = cli(*args, "--database-url", NOWHERE, env={"JOBFORGE_TENANT": "acme"})
    assert result.code == 2, result
    assert result.err.startswith(message), result.err
    assert len(result.err.strip().splitlines()) == 1, result.err


def test_a_login_that_may_not_read_every_tenant_is_told_to_name_one(
    cli: Cli, jobforge_db: Database
) -> None:
    login = f"jf_e2e_app_{secrets.token_hex(4)}"
    with jobforge_db.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_app").format(
            sql.Identifier(login)))  # fmt: skip
    try:
        dsn = make_conninfo(jobforge_db.dsn, user=login)
        for args in (("jobs", "stats"), ("health",)):
            result = cli(*args, "--database-url", dsn)
            assert result.code == 2, result
            assert result.err.startswith(
                f"error: login {login} may not read every tenant's counts: name a tenant"
            ), result.err
        assert cli("health", "--database-url", dsn, env={"JOBFORGE_TENANT": "acme"}).code == 0
    finally:
        with jobforge_db.connect() as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(login)))
