"""`jobforge prune` and `jobforge retention set|list|clear` as subprocesses against a migrated
throwaway database: what a prune deletes and reports, a dry run that deletes nothing, one
tenant's prune, one-line errors for bad input (told before any connection), and a login that may
not prune."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from psycopg import sql

from jobforge.provision import Database
from jobforge.queue import NewJob, Outcome, QueueClient
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

#: No server answers here: a value checked before connecting never reaches it.
NOWHERE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
OLD = datetime.now(UTC) - timedelta(days=90)
TABLES = ("jobs", "job_events", "job_attempts", "job_results", "job_runs")


def finish_old(
    dsn: str, tenant: str, n: int, outcome: Literal["succeeded", "retry"] = "succeeded"
) -> None:
    """`n` jobs of `tenant` claimed and finished 90 days ago (the test database's caller clock)."""
    with QueueClient.connect(dsn, tenant=tenant, max_size=1) as client:
        new = [NewJob(type="ops.old", payload={"i": i}, max_attempts=1) for i in range(n)]
        client.enqueue_many(new, now=OLD)
    with QueueClient.connect(dsn, max_size=1) as worker:
        claimed = worker.claim("w", n, types=["ops.old"], now=OLD)
        outcomes = []
        for job in claimed:
            assert job.lease_token is not None
            outcomes.append(Outcome(job_id=job.id, lease_token=job.lease_token, outcome=outcome,
                                    result={"n": job.id}))  # fmt: skip
        worker.finish("w", outcomes, now=OLD)


def table_counts(db: Database) -> dict[str, int]:
    with db.connect() as conn:
        return {t: conn.execute(sql.SQL("SELECT count(*) FROM jobforge.{}").format(
            sql.Identifier(t))).fetchone()[0] for t in TABLES}  # type: ignore[index]  # fmt: skip


@pytest.fixture
def seeded(jobforge_db: Database) -> Database:
    finish_old(jobforge_db.dsn, "acme", 5)
    finish_old(jobforge_db.dsn, "globex", 3, outcome="retry")  # dead: one attempt
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client:
        client.enqueue("ops.waiting", {"queued": True}, now=OLD)  # queued since OLD: stays
    return jobforge_db


def test_a_dry_run_deletes_nothing_and_the_prune_deletes_what_it_said(
    cli: Cli, seeded: Database
) -> None:
    url = ("--database-url", seeded.dsn)
    before = table_counts(seeded)
    dry = cli("prune", "--older-than", "30d", "--dry-run", *url)
    assert dry.code == 0, dry.err
    assert dry.out.strip() == (
        # no stored events: `created` is derived from the job (migrations/0025), `claimed` and
        # the outcome from the attempt (0031)
        "would prune 8 jobs finished more than 30d ago: 0 stored events, 8 attempts, 5 results, "
        "0 run records (dry run: nothing deleted)"
    )
    assert table_counts(seeded) == before
    run = cli("prune", "--older-than", "30d", "--json", *url)
    assert run.code == 0, run.err
    reported = json.loads(run.out)
    after = table_counts(seeded)
    went = {t: before[t] - after[t] for t in TABLES}
    assert reported == {"dry_run": False, "runs_only": False, "older_than": "30d", "jobs": 8,
                        "events": 0, "attempts": 8, "results": 5, "runs": 0, "blobs": 0,
                        "blob_bytes": 0}  # fmt: skip
    assert [reported[k] for k in ("jobs", "events", "attempts", "results", "runs")] == [
        went[t] for t in TABLES
    ]
    assert after["jobs"] == 1  # the queued job
    again = cli("prune", "--older-than", "30d", *url)
    assert again.out.strip().startswith("pruned 0 jobs finished more than 30d ago")


def test_one_tenant_and_one_state(cli: Cli, seeded: Database) -> None:
    url = ("--database-url", seeded.dsn)
    run = cli("prune", "--older-than", "30d", "--status", "dead", "--json", *url)
    assert json.loads(run.out)["jobs"] == 3  # globex's dead jobs, not acme's succeeded ones
    run = cli("prune", "--older-than", "1w", "--tenant", "globex", *url)
    assert run.out.startswith("pruned 0 jobs")
    run = cli("prune", "--older-than", "1w", *url, env={"JOBFORGE_TENANT": "acme"})
    assert run.out.startswith("pruned 5 jobs"), run.out + run.err


def test_without_older_than_the_retention_settings_decide(cli: Cli, seeded: Database) -> None:
    url = ("--database-url", seeded.dsn)
    made = cli("retention", "set", "ops.old", "forever", *url)
    assert (made.code, made.out.strip()) == (0, "finished jobs of ops.old are kept forever")
    made = cli("retention", "set", "--default", "1w", *url)
    assert made.out.strip() == "finished jobs of every type without its own are kept 7d"
    listed = json.loads(cli("retention", "list", "--json", *url).out)
    assert listed["retention"] == [
        {"type": None, "keep": "7d", "keep_s": 604800.0},
        {"type": "ops.old", "keep": "forever", "keep_s": None},
    ]
    assert listed["pass"]["started_at"] is None
    shown = cli("retention", "list", *url).out
    assert "(default)  7d" in shown
    assert "ops.old    forever" in shown
    assert "no worker has pruned yet" in shown
    kept = cli("prune", *url)
    assert kept.out.strip().startswith("pruned 0 jobs past their type's retention")
    cleared = cli("retention", "clear", "ops.old", *url)
    assert cleared.out.strip() == "ops.old follows the default retention again"
    assert cli("prune", *url).out.startswith("pruned 8 jobs past their type's retention")


def test_retention_list_shows_the_workers_last_pass(cli: Cli, seeded: Database) -> None:
    with seeded.connect() as conn, conn.transaction():
        conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
        row = conn.execute("SELECT jobs, more FROM jobforge.prune_pass_v1('w-7', 600)").fetchone()
    assert row == (8, False)  # 8 jobs of 90 days, past the default 30 days: one batch
    shown = cli("retention", "list", "--database-url", seeded.dsn).out
    assert shown.splitlines()[-1].startswith("last pass started ")
    assert shown.splitlines()[-1].endswith(": 8 jobs pruned")
    listed = json.loads(cli("retention", "list", "--json", "--database-url", seeded.dsn).out)
    assert {k: listed["pass"][k] for k in ("holder", "under_way", "jobs", "events")} == {
        "holder": None, "under_way": False, "jobs": 8, "events": 0,
    }  # fmt: skip


def test_runs_only_keeps_the_jobs(cli: Cli, seeded: Database) -> None:
    run = cli("prune", "--older-than", "30d", "--runs-only", "--database-url", seeded.dsn)
    assert (
        run.out.strip() == "pruned 0 run records of jobs finished more than 30d ago (the jobs stay)"
    )
    assert table_counts(seeded)["jobs"] == 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("prune", "--older-than", "banana"),
         "error: --older-than 'banana': give a duration like 30d, 12h, 90m or 2w"),
        (("prune", "--older-than", "30"),
         "error: --older-than '30': give a duration like 30d, 12h, 90m or 2w"),
        (("prune", "--older-than=-3d"),
         "error: --older-than '-3d': give a duration like 30d, 12h, 90m or 2w"),
        (("prune", "--older-than", "40000d"),
         "error: --older-than '40000d' is out of range: give at most 36500d"),
        (("prune", "--status", "running"),
         "error: cannot prune 'running' jobs: only finished ones go, choose among succeeded, "
         "failed, dead, canceled"),
        (("prune", "--batch", "0"), "error: --batch 0 is out of range: give 1-50000"),
        (("prune", "--throttle=-1"),
         "error: --throttle -1 is out of range: give 0 (full speed) to 100"),
        (("prune", "--throttle", "nan"),
         "error: --throttle nan is out of range: give 0 (full speed) to 100"),
        (("prune", "--tenant", ""),
         "error: --tenant is empty: a tenant id is 1 to 128 of A-Z a-z 0-9 . _ : - (leave out "
         "--tenant and unset JOBFORGE_TENANT to read every tenant)"),
        (("retention", "set", "ops.scan", "soon"),
         "error: KEEP 'soon': give a duration like 30d, 12h, 90m, 2w or forever"),
        (("retention", "set", "ops.scan"),
         "error: give a job type and how long to keep its jobs (retention set ops.scan 7d), or "
         "--default and how long (retention set --default 30d)"),
        (("retention", "set", "--default", "ops.scan", "7d"),
         "error: with --default give KEEP only: retention set --default 30d"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2_before_any_connection(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    run = cli(*args, "--database-url", NOWHERE)
    assert run.code == 2, run.out + run.err
    assert run.err.strip() == message
    assert run.out == ""


def test_the_database_refuses_a_bad_type_in_one_line(cli: Cli, jobforge_db: Database) -> None:
    url = ("--database-url", jobforge_db.dsn)
    run = cli("retention", "set", "Not A Type", "7d", *url)
    assert (run.code, run.err.strip()) == (
        2,
        "error: retention: 'Not A Type' is not a valid job type",
    )
    run = cli("prune", "--older-than", "1d", "--type", "Bad", *url)
    assert (run.code, run.err.strip()) == (2, "error: prune: type 'Bad' is not a valid job type")


def test_an_app_login_may_not_prune_or_manage_retention(
    cli: Cli, seeded: Database, app_login: str
) -> None:
    before = table_counts(seeded)
    for args, denied in (
        (("prune", "--older-than", "0s", "--tenant", "acme"), "prune jobs"),
        (("prune", "--older-than", "0s"), "prune jobs"),
        (("retention", "set", "--default", "0s"), "manage retention"),
        (("retention", "list"), "manage retention"),
        (("retention", "clear", "ops.old"), "manage retention"),
    ):
        run = cli(*args, "--database-url", app_login)
        assert run.code == 2, run.out + run.err
        assert run.err.startswith(
            f"error: only a superuser or a member of jobforge_worker may {denied} ("
        ), run.err
        assert len(run.err.strip().splitlines()) == 1
    assert table_counts(seeded) == before
