"""Retention (migrations/0012) on a real database: what a prune deletes and what it leaves, the
counts it reports against the rows that went, one tenant's prune, states and types, run records
only, dry runs, batches and their cursor, rows another transaction holds, idempotency keys after a
prune, per-type retention, the workers' pass (one at a time, taken over, not before it is due),
and who may prune: an app login is refused everything, from its own side.

Jobs are made "old" on the caller's clock (a test database takes one): claimed and finished at
`OLD`, about a year before the server's now; the prune itself runs on the server's clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
import pytest
from psycopg import sql

from jobforge import db, errors
from jobforge.provision import Database
from jobforge.queue import Job, NewJob, Outcome, QueueClient
from jobforge.queue.models import Pruned
from jobforge.queue.retention import (
    Retention,
    clear_retention,
    list_retention,
    pass_state,
    prune,
    set_retention,
)
from jobforge.worker import Registry, Worker, WorkerConfig, WorkerReport
from tests.records import run_write

OLD = datetime.now(UTC) - timedelta(days=365)
MONTH = timedelta(days=30)
TABLES = ("jobs", "job_events", "job_attempts", "job_results", "job_runs")
DIGEST = "sha256:" + "0" * 64
#: Every kind of job the scene makes: the first four are finished (terminal) at OLD.
FINISHED = ("succeeded", "failed", "dead", "canceled", "canceled_running")
KEPT = ("queued", "scheduled", "running", "retrying", "rescheduled", "recent")


@dataclass
class Scene:
    dsn: str
    ids: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (tenant, kind) -> ids

    def of(self, *, tenants: tuple[str, ...] = ("a", "b"), kinds: tuple[str, ...]) -> set[int]:
        return {i for (t, k), ids in self.ids.items() if t in tenants and k in kinds for i in ids}


def record(worker: QueueClient, job_id: int, token: Any, kind: str) -> None:
    document = {
        "format": "jobforge.run/1",
        "runner_id": f"kind.{kind}",
        "runner_version": "1",
        "status": "succeeded",
        "input": {"sha256": DIGEST},
        "trace_sha256": DIGEST,
    }
    assert worker.record_run("w", job_id, token, run_write(document), now=OLD)


def finished(job: Job, outcome: Literal["succeeded", "retry", "failed"]) -> Outcome:
    assert job.lease_token is not None
    return Outcome(job_id=job.id, lease_token=job.lease_token, outcome=outcome,
                   result={"ok": job.id})  # fmt: skip


def make(scene: Scene, worker: QueueClient, kind: str, tenants: tuple[str, ...] = ("a", "b"),
         n: int = 2) -> None:  # fmt: skip
    """`n` jobs of each tenant that end in `kind` (see FINISHED and KEPT), on the caller's clock
    (claimed together: a claim takes every tenant's due jobs of the type)."""
    job_type = f"kind.{kind.replace('_', '-')}"
    at = datetime.now(UTC) if kind == "recent" else OLD
    max_attempts = 1 if kind in ("dead", "rescheduled") else 3
    run_at = at + timedelta(days=400) if kind == "scheduled" else None
    ids: dict[str, list[int]] = {}
    for tenant in tenants:
        with QueueClient.connect(scene.dsn, tenant=tenant, max_size=1) as client:
            new = [
                NewJob(
                    type=job_type,
                    payload={"i": i},
                    max_attempts=max_attempts,
                    run_at=run_at,
                    idempotency_key=f"{kind}-{i}",
                )
                for i in range(n)
            ]
            ids[tenant] = [e.job_id for e in client.enqueue_many(new, now=at)]
            if kind == "canceled":
                for job_id in ids[tenant]:
                    client.cancel(job_id, now=at)
    if kind not in ("queued", "scheduled", "canceled"):
        claimed = worker.claim("w", n * len(tenants), types=[job_type], now=at)
        assert sorted(j.id for j in claimed) == sorted(i for got in ids.values() for i in got)
        for job in claimed:
            record(worker, job.id, job.lease_token, kind)
        outcome: dict[str, Literal["succeeded", "retry", "failed"]] = {
            "succeeded": "succeeded", "recent": "succeeded", "failed": "failed",
            "dead": "retry", "retrying": "retry", "rescheduled": "retry",
        }  # fmt: skip
        if kind in outcome:
            worker.finish("w", [finished(j, outcome[kind]) for j in claimed], now=at)
    for tenant in tenants:
        with QueueClient.connect(scene.dsn, tenant=tenant, max_size=1) as client:
            for job_id in ids[tenant]:
                if kind == "canceled_running":
                    client.cancel(job_id, now=at)
                if kind == "rescheduled":  # dead at OLD, then sent back to the queue (for later)
                    client.reschedule(job_id, reset_attempts=True,
                                      run_at=at + timedelta(days=400), now=at)  # fmt: skip
                status = client.get(job_id).status
                assert status == {
                    "rescheduled": "queued",
                    "retrying": "queued",
                    "canceled_running": "canceled",
                    "recent": "succeeded",
                    "scheduled": "queued",
                }.get(kind, kind), (kind, status)
        scene.ids[(tenant, kind)] = ids[tenant]


@pytest.fixture
def scene(jobforge_db: Database) -> Scene:
    made = Scene(jobforge_db.dsn)
    with QueueClient.connect(jobforge_db.dsn) as worker:
        for kind in (*FINISHED, *KEPT):
            make(made, worker, kind)
    return made


@pytest.fixture
def owner(jobforge_db: Database) -> Iterator[db.Connection]:
    with jobforge_db.connect() as connection:
        yield connection


def rows(conn: db.Connection, job_ids: set[int] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the five tables (of `job_ids` only, when given), as the owner sees them."""
    found = {}
    for table in TABLES:
        column = sql.Identifier("id" if table == "jobs" else "job_id")
        statement = sql.SQL("SELECT to_jsonb(t)::text FROM jobforge.{} t {} ORDER BY 1").format(
            sql.Identifier(table),
            sql.SQL("") if job_ids is None else sql.SQL("WHERE {} = ANY (%s)").format(column),
        )
        params = () if job_ids is None else (sorted(job_ids),)
        found[table] = [r[0] for r in conn.execute(statement, params).fetchall()]
    return found


def counts(conn: db.Connection, job_ids: set[int] | None = None) -> Pruned:
    found = rows(conn, job_ids)
    return Pruned(*(len(found[t]) for t in TABLES))


def existing(conn: db.Connection) -> set[int]:
    return {r[0] for r in conn.execute("SELECT id FROM jobforge.jobs").fetchall()}


def pruned_by(conn: db.Connection, dsn: str, **kwargs: Any) -> tuple[Pruned, Pruned]:
    """What `prune` reported, and what left the tables."""
    before = counts(conn)
    with QueueClient.connect(dsn, max_size=1) as client:
        reported = prune(client, **kwargs)
    after = counts(conn)
    went = Pruned(
        *(
            b - a
            for b, a in zip(
                (before.jobs, before.events, before.attempts, before.results, before.runs),
                (after.jobs, after.events, after.attempts, after.results, after.runs),
                strict=True,
            )
        )
    )
    return reported, went


def test_a_prune_deletes_old_finished_jobs_with_their_rows_and_reports_what_went(
    scene: Scene, owner: db.Connection
) -> None:
    doomed = scene.of(kinds=FINISHED)
    kept = scene.of(kinds=KEPT)
    kept_rows = rows(owner, kept)
    expected = counts(owner, doomed)
    assert min(expected.events, expected.attempts, expected.results, expected.runs) > 0
    reported, went = pruned_by(owner, scene.dsn, older_than=MONTH, batch=3)
    assert reported == went == expected
    assert existing(owner) == kept
    assert rows(owner, kept) == kept_rows  # queued, running, retrying: not a row changed
    assert counts(owner, doomed) == Pruned()
    assert orphans(owner) == dict.fromkeys(TABLES[1:], 0)


def test_one_tenants_prune_leaves_the_other_tenant_alone(
    scene: Scene, owner: db.Connection
) -> None:
    b_rows = rows(owner, scene.of(tenants=("b",), kinds=(*FINISHED, *KEPT)))
    expected = counts(owner, scene.of(tenants=("a",), kinds=FINISHED))
    reported, went = pruned_by(owner, scene.dsn, older_than=MONTH, tenant="a")
    assert reported == went == expected
    assert rows(owner, scene.of(tenants=("b",), kinds=(*FINISHED, *KEPT))) == b_rows
    # the same through a client acting for tenant a, without naming it again
    with QueueClient.connect(scene.dsn, tenant="b", max_size=1) as client:
        assert prune(client, older_than=MONTH).jobs == len(scene.of(tenants=("b",), kinds=FINISHED))
    assert existing(owner) == scene.of(kinds=KEPT)


def test_states_and_types_narrow_a_prune(scene: Scene, owner: db.Connection) -> None:
    dead = scene.of(kinds=("dead",))
    expected = counts(owner, dead)
    reported, went = pruned_by(owner, scene.dsn, older_than=MONTH, statuses=["dead"], batch=3)
    assert reported == went == expected
    assert not dead & existing(owner)
    assert scene.of(kinds=("succeeded", "failed")) <= existing(owner)
    reported, _ = pruned_by(owner, scene.dsn, older_than=MONTH, types=["kind.failed"])
    assert reported.jobs == len(scene.of(kinds=("failed",)))
    assert scene.of(kinds=("succeeded", "canceled")) <= existing(owner)


def test_runs_only_deletes_the_run_records_and_keeps_the_jobs(
    scene: Scene, owner: db.Connection
) -> None:
    doomed = scene.of(kinds=FINISHED)
    before = rows(owner)
    runs = counts(owner, doomed).runs
    reported, went = pruned_by(owner, scene.dsn, older_than=MONTH, runs_only=True)
    assert reported == went == Pruned(runs=runs)
    after = rows(owner)
    assert {t: after[t] for t in TABLES if t != "job_runs"} == {
        t: before[t] for t in TABLES if t != "job_runs"
    }
    assert counts(owner, scene.of(kinds=KEPT)).runs > 0  # running and retrying jobs keep theirs


def test_a_dry_run_deletes_nothing_and_counts_what_the_prune_then_deletes(
    scene: Scene, owner: db.Connection
) -> None:
    before = rows(owner)
    dry, went = pruned_by(owner, scene.dsn, older_than=MONTH, dry_run=True, batch=4)
    assert went == Pruned()
    assert rows(owner) == before
    real, went = pruned_by(owner, scene.dsn, older_than=MONTH)
    assert dry == real == went
    dry_runs, _ = pruned_by(owner, scene.dsn, older_than=timedelta(0), dry_run=True, runs_only=True)
    assert dry_runs == Pruned(runs=counts(owner, scene.of(kinds=("recent",))).runs)


def test_nothing_younger_than_the_cut_off_goes(scene: Scene, owner: db.Connection) -> None:
    reported, _ = pruned_by(owner, scene.dsn, older_than=timedelta(days=400))
    assert reported == Pruned()
    reported, _ = pruned_by(owner, scene.dsn, older_than=timedelta(0))  # every finished job
    assert reported.jobs == len(scene.of(kinds=(*FINISHED, "recent")))
    assert existing(owner) == scene.of(kinds=tuple(k for k in KEPT if k != "recent"))


def orphans(conn: db.Connection) -> dict[str, int]:
    """Rows of the child tables whose job is gone, per table."""
    found = {}
    for table in TABLES[1:]:
        statement = sql.SQL(
            "SELECT count(*) FROM jobforge.{} c "
            "WHERE NOT EXISTS (SELECT 1 FROM jobforge.jobs j WHERE j.id = c.job_id)"
        ).format(sql.Identifier(table))
        row = conn.execute(statement).fetchone()
        assert row is not None
        found[table] = row[0]
    return found


def test_a_prune_stopped_midway_has_deleted_whole_batches(
    scene: Scene, owner: db.Connection
) -> None:
    class Stopped(Exception):
        pass

    def stop(done: Pruned) -> None:
        raise Stopped(done)

    doomed = scene.of(kinds=FINISHED)
    with QueueClient.connect(scene.dsn, max_size=1) as client:
        with pytest.raises(Stopped):
            prune(client, older_than=MONTH, batch=3, on_batch=stop)
        assert len(doomed - existing(owner)) == 3  # the first batch, whole
        assert orphans(owner) == dict.fromkeys(TABLES[1:], 0)
        rest = prune(client, older_than=MONTH, batch=3)
    assert rest.jobs == len(doomed) - 3
    assert existing(owner) == scene.of(kinds=KEPT)
    assert orphans(owner) == dict.fromkeys(TABLES[1:], 0)


def test_a_batch_skips_a_row_another_transaction_holds_and_never_waits_for_it(
    scene: Scene, owner: db.Connection, jobforge_db: Database
) -> None:
    """A tenant retries a dead job while a prune runs: the prune neither waits for the retry's
    lock nor deletes the job it brings back to the queue."""
    held = min(scene.of(tenants=("a",), kinds=("dead",)))
    with QueueClient.connect(jobforge_db.dsn, tenant="a", max_size=1) as retrying:
        with retrying.transaction() as conn:
            conn.execute("SELECT jobforge.reschedule_v1(%s, true)", (held,))
            with QueueClient.connect(jobforge_db.dsn, max_size=1) as client:
                with client.pool.connection() as pruning:
                    pruning.execute("SET lock_timeout = '2s'")
                reported = prune(client, older_than=MONTH)
            assert reported.jobs == len(scene.of(kinds=FINISHED)) - 1
        assert retrying.get(held).status == "queued"
    assert existing(owner) == scene.of(kinds=KEPT) | {held}


def test_a_prune_batch_holds_nothing_the_claim_or_finish_waits_for(
    scene: Scene, jobforge_db: Database
) -> None:
    """An open prune batch (its locks held, not committed) while a worker claims and finishes."""
    with QueueClient.connect(jobforge_db.dsn, tenant="a", max_size=1) as client:
        client.enqueue("kind.fresh", {"n": 1})
    with jobforge_db.connect() as pruning, pruning.transaction():
        pruning.execute("SELECT set_config('jobforge.scope', 'worker', true)")
        got = pruning.execute("SELECT jobs FROM jobforge.prune_v1('30 days'::interval)").fetchone()
        assert got is not None
        assert got[0] > 0
        with QueueClient.connect(jobforge_db.dsn, max_size=1) as worker:
            with worker.pool.connection() as conn:
                conn.execute("SET lock_timeout = '500ms'")
            [job] = worker.claim("w2", 10, types=["kind.fresh"])
            assert job.lease_token is not None
            done = Outcome(job_id=job.id, lease_token=job.lease_token, outcome="succeeded")
            assert worker.finish("w2", [done]) == {job.id: "succeeded"}


def test_a_pruned_jobs_idempotency_key_is_free_again(scene: Scene, owner: db.Connection) -> None:
    [first, _] = scene.ids[("a", "succeeded")]
    with QueueClient.connect(scene.dsn, tenant="a", max_size=1) as client:
        same = client.enqueue("kind.succeeded", {"i": 0}, idempotency_key="succeeded-0")
        assert (same.job_id, same.created) == (first, False)  # before the prune: the old job
        with pytest.raises(errors.IdempotencyConflict):
            client.enqueue("kind.succeeded", {"other": 1}, idempotency_key="succeeded-0")
        with QueueClient.connect(scene.dsn, max_size=1) as operator:
            prune(operator, older_than=MONTH)
        again = client.enqueue("kind.succeeded", {"other": 1}, idempotency_key="succeeded-0")
        assert again.created
        assert again.job_id != first
        assert client.get(again.job_id).status == "queued"
        # a key of a job that is kept stays taken
        [queued, _] = scene.ids[("a", "queued")]
        kept = client.enqueue("kind.queued", {"i": 0}, idempotency_key="queued-0")
        assert (kept.job_id, kept.created) == (queued, False)


def test_each_type_keeps_its_own_retention(scene: Scene, owner: db.Connection) -> None:
    assert list_retention(owner) == [Retention(None, MONTH)]  # as migrated: 30 days
    set_retention(owner, None, None)  # the default: forever
    set_retention(owner, "kind.failed", timedelta(days=7))
    set_retention(owner, "kind.dead", timedelta(days=500))  # longer than the jobs are old
    assert list_retention(owner) == [
        Retention(None, None), Retention("kind.dead", timedelta(days=500)),
        Retention("kind.failed", timedelta(days=7)),
    ]  # fmt: skip
    reported, went = pruned_by(owner, scene.dsn)  # no --older-than: the settings
    assert reported == went
    assert reported.jobs == len(scene.of(kinds=("failed",)))
    set_retention(owner, None, MONTH)
    assert clear_retention(owner, "kind.dead")
    assert not clear_retention(owner, "kind.dead")
    reported, _ = pruned_by(owner, scene.dsn)
    assert reported.jobs == len(scene.of(kinds=("succeeded", "dead", "canceled",
                                                "canceled_running")))  # fmt: skip
    assert existing(owner) == scene.of(kinds=KEPT)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("prune_v1('-1 day'::interval)", "prune: older_than -1 days is out of range 0-100 years"),
        ("prune_v1('101 years'::interval)",
         "prune: older_than 101 years is out of range 0-100 years"),
        ("prune_v1(NULL, ARRAY['queued'])",
         "prune: status 'queued' is not a finished state: use succeeded, failed, dead or canceled"),
        ("prune_v1(NULL, ARRAY[]::text[])",
         "prune: status null is not a finished state: use succeeded, failed, dead or canceled"),
        ("prune_v1(NULL, NULL, 'bad tenant')",
         "prune: tenant 'bad tenant' is not a valid tenant id"),
        ("prune_v1(NULL, NULL, NULL, ARRAY['Bad'])", "prune: type 'Bad' is not a valid job type"),
        ("prune_v1(NULL, NULL, NULL, NULL, false, false, 0)",
         "prune: batch 0 is out of range 1-50000"),
        ("set_retention_v1('Bad Type', '1 day')", "retention: 'Bad Type' is not a valid job type"),
        ("set_retention_v1('*', '-1 day')", "retention: keep -1 days is out of range 0-100 years"),
        ("clear_retention_v1('*')",
         "retention: the default cannot be cleared; set it to forever instead"),
        ("prune_pass_v1('w', 0)", "prune: every_s must be 0-31536000 s and hold_s 0-86400 s"),
    ],
)  # fmt: skip
def test_the_database_refuses_bad_arguments_in_one_line(
    owner: db.Connection, call: str, message: str
) -> None:
    with owner.transaction():
        owner.execute("SELECT set_config('jobforge.scope', 'worker', true)")
        with pytest.raises(psycopg.Error) as caught:
            owner.execute(f"SELECT * FROM jobforge.{call}")
    assert caught.value.diag.message_primary == message
    assert caught.value.diag.sqlstate == "JF006"


def test_a_prune_without_the_worker_scope_is_refused_not_silently_empty(
    owner: db.Connection,
) -> None:
    with pytest.raises(psycopg.Error, match="needs the worker scope"):
        owner.execute("SELECT * FROM jobforge.prune_v1('1 day'::interval)")


# the workers' pass


def batch_of(conn: db.Connection, worker: str, at: datetime, every_s: float = 600,
             batch: int = 4) -> tuple[int, bool]:  # fmt: skip
    with conn.transaction():
        conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
        row = conn.execute(
            "SELECT jobs, more FROM jobforge.prune_pass_v1(%s, %s, %s, 60, %s)",
            (worker, every_s, batch, at),
        ).fetchone()
    assert row is not None
    return int(row[0]), bool(row[1])


def test_one_worker_at_a_time_runs_the_pass_and_another_takes_over_when_it_stops(
    scene: Scene, owner: db.Connection
) -> None:
    total = len(scene.of(kinds=FINISHED))  # 20 jobs, batches of 4 candidates
    now = datetime.now(UTC)
    assert batch_of(owner, "w1", now) == (4, True)
    assert batch_of(owner, "w2", now) == (0, False)  # w1 holds the pass
    assert batch_of(owner, "w1", now + timedelta(seconds=1)) == (4, True)
    state = pass_state(owner)
    assert (state.holder, state.under_way, state.pruned.jobs) == ("w1", True, 8)
    # w1 stops asking; once its hold (60 s) lapses, w2 goes on where it stopped
    assert batch_of(owner, "w2", now + timedelta(seconds=30)) == (0, False)
    later = now + timedelta(seconds=62)
    deleted, more = batch_of(owner, "w2", later)
    while more:
        assert batch_of(owner, "w1", later) == (0, False)
        step, more = batch_of(owner, "w2", later)
        deleted += step
    assert 8 + deleted == total
    state = pass_state(owner)
    assert (state.holder, state.under_way, state.pruned.jobs) == (None, False, total)
    assert (state.started_at, state.finished_at) == (now, later)
    # the next pass is due once `every_s` has passed since this one started
    with QueueClient.connect(scene.dsn, max_size=1) as worker:
        make(scene, worker, "succeeded", ("a",))  # their keys were freed by the pass
    assert batch_of(owner, "w1", now + timedelta(seconds=599)) == (0, False)
    assert batch_of(owner, "w1", now + timedelta(seconds=600)) == (2, False)


def test_a_worker_prunes_under_the_settings_while_it_works(
    scene: Scene, owner: db.Connection
) -> None:
    old = scene.of(kinds=FINISHED)
    registry = Registry()
    registry.register("kind.fresh", lambda payload, ctx: None)
    with QueueClient.connect(scene.dsn, tenant="a", max_size=1) as client:
        fresh = {e.job_id for e in client.enqueue_many(
            [NewJob(type="kind.fresh", payload={"i": i}) for i in range(50)])}  # fmt: skip
    config = WorkerConfig(name="pruner", types=["kind.fresh"], prune_every_s=0.2, prune_batch=3,
                          prune_throttle=0.5, poll_min_s=0.05, poll_max_s=0.1)  # fmt: skip

    async def until_pruned() -> WorkerReport:
        worker = Worker(scene.dsn, registry, config)
        running = asyncio.ensure_future(worker.run())
        for _ in range(300):
            await asyncio.sleep(0.05)
            if pass_state(owner).finished_at is not None:
                break
        worker.stop()
        return await running

    report = asyncio.run(until_pruned())
    state = pass_state(owner)
    assert state.finished_at is not None
    assert state.holder is None
    assert state.pruned.jobs == report.counts["pruned"] == len(old)
    assert not old & existing(owner)
    assert fresh <= existing(owner)  # finished just now: kept 30 days
    assert report.counts["succeeded"] == len(fresh)


# who may prune


ATTACKS = (
    "SELECT * FROM jobforge.prune_v1('0'::interval)",
    "SELECT * FROM jobforge.prune_v1('0'::interval, NULL, 'b')",
    "SELECT * FROM jobforge.prune_v1(NULL, NULL, NULL, NULL, true)",
    "SELECT * FROM jobforge.prune_pass_v1('evil', 1)",
    "SELECT * FROM jobforge.prune_batch('0'::interval, '{succeeded}', NULL, NULL, false, false, "
    "1000, NULL, NULL, NULL, now())",
    "SELECT * FROM jobforge.set_retention_v1('*', '0'::interval)",
    "SELECT jobforge.clear_retention_v1('kind.failed')",
    "SELECT * FROM jobforge.retention",
    "SELECT * FROM jobforge.prune_pass",
    "UPDATE jobforge.retention SET keep = '0'",
    "INSERT INTO jobforge.retention VALUES ('kind.succeeded', '0', now())",
    "UPDATE jobforge.prune_pass SET after_type = NULL",
    "DELETE FROM jobforge.jobs",
    "DELETE FROM jobforge.job_runs",
)


def test_an_app_login_can_neither_prune_nor_change_retention(
    scene: Scene, owner: db.Connection, app_login: str
) -> None:
    before = rows(owner)
    with psycopg.connect(app_login, autocommit=True) as attacker:
        for tenant, scope in (("a", None), ("b", "worker"), (None, "worker")):
            for attack in ATTACKS:
                with attacker.transaction():
                    attacker.execute(
                        "SELECT set_config('jobforge.tenant', %s, true), "
                        "set_config('jobforge.scope', %s, true)",
                        (tenant or "", scope or ""),
                    )
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        attacker.execute(attack)
    assert rows(owner) == before
    assert list_retention(owner) == [Retention(None, MONTH)]
    with (
        QueueClient.connect(app_login, tenant="a", max_size=1) as client,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        prune(client, older_than=timedelta(0))
    assert rows(owner) == before
