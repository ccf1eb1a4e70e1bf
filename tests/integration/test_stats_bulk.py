"""Queue stats and bulk actions (migrations/0013) on a real database.

Stats are checked against a hand count after a mixed workload (every state, two types, two
tenants, on the caller's clock): as the operator across tenants, as the operator for one tenant,
and as a tenant's own app login, which sees its counts only. Bulk retry takes 10,000 dead jobs in
one call with one event each; bulk actions by a tenant never touch another tenant's jobs; a dry
run changes nothing; a bulk cancel of running jobs closes their attempts as a single cancel does.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from jobforge import errors
from jobforge.provision import Database
from jobforge.queue import NewJob, Outcome, QueueClient, bulk
from jobforge.queue.health import Thresholds, breaches
from jobforge.queue.stats import STATES
from jobforge.worker import Registry, WorkerConfig, WorkerReport, drain
from tests.integration.conftest import new_app_login

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TYPES = ("ops.scan", "ops.mail")
Key = tuple[str, str, str]  # tenant, type, state


def _enqueue(
    dsn: str, tenant: str, job_type: str, n: int, at: datetime, **fields: Any
) -> list[int]:
    with QueueClient.connect(dsn, tenant=tenant, max_size=1) as client:
        jobs = [NewJob(type=job_type, payload={"i": i}, **fields) for i in range(n)]
        return [e.job_id for e in client.enqueue_many(jobs, now=at)]


def _claim(worker: QueueClient, at: datetime, lease_s: float = 30, types: Any = TYPES) -> list[Any]:
    return worker.claim("w", 1000, types=types, lease_s=lease_s, now=at)


def _finish(worker: QueueClient, jobs: list[Any], outcome: str, at: datetime) -> None:
    done = [Outcome(job_id=j.id, lease_token=j.lease_token, outcome=outcome) for j in jobs]  # type: ignore[arg-type]
    worker.finish("w", done, now=at)


@pytest.fixture
def workload(jobforge_db: Database) -> dict[Key, int]:
    """Jobs in every state for tenants acme and globex, two types each; the hand count."""
    dsn, count = jobforge_db.dsn, Counter[Key]()
    # a slow backoff, so a retried job is still waiting at T0
    with QueueClient.connect(dsn, max_size=1, backoff_base_s=900, backoff_cap_s=3600) as worker:
        for tenant, scale in (("acme", 1), ("globex", 2)):
            for job_type in TYPES:
                # dead two days ago: dead, but not in the last 24 h
                _enqueue(dsn, tenant, job_type, scale, T0 - timedelta(days=2), max_attempts=1)
        _finish(worker, _claim(worker, T0 - timedelta(days=2)), "retry", T0 - timedelta(days=2))
        for tenant, scale in (("acme", 1), ("globex", 2)):
            for job_type in TYPES:
                count[tenant, job_type, "dead"] += scale
            # leased two minutes ago and never renewed: running, its lease expired (a type of
            # its own: a claim of it would take the expired lease over)
            _enqueue(dsn, tenant, "ops.stuck", scale, T0 - timedelta(minutes=2))
            count[tenant, "ops.stuck", "running"] += scale
        expired = _claim(worker, T0 - timedelta(minutes=2), types=["ops.stuck"])
        early = T0 - timedelta(minutes=1)
        outcomes = {"succeeded": 3, "failed": 2, "retry": 2, "dead": 1, "expiring": 2}
        for tenant, scale in (("acme", 1), ("globex", 2)):
            for job_type in TYPES:
                for role, n in outcomes.items():
                    attempts = 1 if role == "dead" else 3
                    with QueueClient.connect(dsn, tenant=tenant, max_size=1) as client:
                        client.enqueue_many(
                            [NewJob(type=job_type, payload={"role": role, "i": i},
                                    max_attempts=attempts) for i in range(n * scale)],
                            now=early,
                        )  # fmt: skip
                    state = {"retry": "retry_scheduled", "expiring": "running"}.get(role, role)
                    count[tenant, job_type, state] += n * scale
        claimed = _claim(worker, early, lease_s=64)  # ends at T0 + 4 s: expiring
        by_role: dict[str, list[Any]] = {}
        for job in claimed:
            by_role.setdefault(job.payload["role"], []).append(job)
        done_at = early + timedelta(seconds=10)
        _finish(worker, by_role["succeeded"], "succeeded", done_at)
        _finish(worker, by_role["failed"], "failed", done_at)
        _finish(worker, by_role["retry"], "retry", done_at)
        _finish(worker, by_role["dead"], "retry", done_at)  # max_attempts 1: dead
        for tenant, scale in (("acme", 1), ("globex", 2)):
            for job_type in TYPES:
                # claimed a second ago with a fresh 30 s lease: running, not expiring
                _enqueue(dsn, tenant, job_type, scale, T0 - timedelta(seconds=1))
                count[tenant, job_type, "running"] += scale
        fresh = _claim(worker, T0 - timedelta(seconds=1))
        assert (len(fresh), len(expired)) == (6, 3)
        for tenant, scale in (("acme", 1), ("globex", 2)):
            for job_type in TYPES:
                # due five minutes ago (the oldest due), due now, scheduled in an hour, canceled
                _enqueue(dsn, tenant, job_type, scale, T0, run_at=T0 - timedelta(minutes=5))
                _enqueue(dsn, tenant, job_type, scale, T0)
                count[tenant, job_type, "due"] += 2 * scale
                _enqueue(dsn, tenant, job_type, 2 * scale, T0, run_at=T0 + timedelta(hours=1))
                count[tenant, job_type, "scheduled"] += 2 * scale
                with QueueClient.connect(dsn, tenant=tenant, max_size=1) as client:
                    for job_id in _enqueue(dsn, tenant, job_type, scale, T0):
                        client.cancel(job_id, now=T0)
                count[tenant, job_type, "canceled"] += scale
    return dict(count)


def _counts(rows: Any) -> dict[Key, int]:
    return {(r.tenant_id, r.type, r.state): r.jobs for r in rows}


def test_stats_match_a_hand_count_after_a_mixed_workload(
    jobforge_db: Database, workload: dict[Key, int]
) -> None:
    with QueueClient.connect(jobforge_db.dsn, max_size=1) as operator:
        every = operator.stats(now=T0)
    assert _counts(every.rows) == workload
    assert {s for _, _, s in workload} == {"due", "scheduled", "retry_scheduled", "running",
                                           "succeeded", "failed", "dead", "canceled"}  # fmt: skip
    assert (every.tenant, every.at) == (None, T0)
    assert (every.totals["due"], every.totals["running"]) == (12, 3 + 6 + 12)
    assert every.oldest_due_s == 300
    # expiring: the 64 s leases (end at T0 + 4 s) and the expired ones; not the fresh 30 s ones
    assert (every.leases_expiring, every.leases_expired) == (12 + 3, 3)
    assert (every.dead_24h, every.totals["dead"]) == (6, 12)
    assert every.by_type()["ops.mail"]["succeeded"] == 3 + 6
    for tenant in ("acme", "globex"):
        with QueueClient.connect(jobforge_db.dsn, tenant=tenant, max_size=1) as one:
            theirs = one.stats(now=T0)
        assert _counts(theirs.rows) == {k: v for k, v in workload.items() if k[0] == tenant}
    fast = QueueClient.connect(jobforge_db.dsn, max_size=1)
    with fast:
        quick = fast.stats(succeeded=False, now=T0)
    assert _counts(quick.rows) == {k: v for k, v in workload.items() if k[2] != "succeeded"}
    assert not quick.succeeded_counted


def test_health_breaches_read_the_same_figures(
    jobforge_db: Database, workload: dict[Key, int]
) -> None:
    with QueueClient.connect(jobforge_db.dsn, max_size=1) as operator:
        found = operator.stats(succeeded=False, now=T0)
        later = operator.stats(succeeded=False, now=T0 + timedelta(days=1, minutes=1))
    assert breaches(found, Thresholds()) == []  # 5 minutes exactly: not over 5 minutes
    assert breaches(found, Thresholds(max_oldest_due_s=299, max_due=12, max_dead_24h=6,
                                      max_expiring=15)) == [
        "the oldest due job has waited 5m, over --max-oldest-due 4m59s (12 jobs due)"
    ]  # fmt: skip
    assert breaches(found, Thresholds(None, 11, 5, 14)) == [
        "12 jobs are due, over --max-due 11",
        "6 jobs died in the last 24 h, over --max-dead-24h 5",
        "15 leases end within 10s without renewal (3 already expired), over --max-expiring 14",
    ]
    assert (later.dead_24h, later.leases_expired) == (0, 21)


@pytest.fixture
def app_login(jobforge_db: Database) -> Iterator[str]:
    """A fresh jobforge_app login bound to tenant acme."""
    with new_app_login(jobforge_db, ["acme"]) as url:
        yield url


def test_a_tenants_app_login_sees_only_its_own_counts(
    app_login: str, workload: dict[Key, int]
) -> None:
    with QueueClient.connect(app_login, tenant="acme", max_size=1) as own:
        assert _counts(own.stats(now=T0).rows) == {
            k: v for k, v in workload.items() if k[0] == "acme"
        }
    with (
        QueueClient.connect(app_login, tenant="globex", max_size=1) as other,
        pytest.raises(errors.TenantRequired, match="may not act for tenant 'globex'"),
    ):
        other.stats(now=T0)
    with (
        QueueClient.connect(app_login, max_size=1) as everyone,
        pytest.raises(errors.TenantRequired, match="may not read every tenant's counts"),
    ):
        everyone.stats(now=T0)
    with psycopg.connect(app_login, autocommit=True) as conn:  # asking for the worker scope
        conn.execute("SET jobforge.scope = 'worker'")
        with pytest.raises(psycopg.Error, match="no tenant is set"):
            conn.execute("SELECT * FROM jobforge.stats_v1()")
        conn.execute("SET jobforge.tenant = 'acme'")
        rows = conn.execute("SELECT DISTINCT tenant_id FROM jobforge.stats_v1()").fetchall()
        assert rows == [("acme",)]


def _dead(dsn: str, tenant: str, n: int, job_type: str = "ops.scan") -> list[int]:
    ids = []
    for start in range(0, n, 1000):
        ids += _enqueue(dsn, tenant, job_type, min(1000, n - start), T0, max_attempts=1)
    with QueueClient.connect(dsn, max_size=1) as worker:
        while jobs := worker.claim("w", 5000, types=[job_type], now=T0):
            _finish(worker, jobs, "retry", T0)
    return ids


def test_bulk_retry_of_10000_dead_jobs_in_one_call_with_an_event_each(
    jobforge_db: Database,
) -> None:
    ids = _dead(jobforge_db.dsn, "acme", 10_000)
    flt = bulk.check_filter("retry", ["dead"], ["ops.scan"], T0 - timedelta(hours=1))
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client:
        dry = client.bulk("retry", flt, dry_run=True)
        assert (dry.matched, dry.changed, dry.skipped, dry.batches) == (10_000, 0, 10_000, 1)
        assert client.stats(now=T0).totals["dead"] == 10_000  # a dry run changes nothing
        progress: list[int] = []
        done = client.bulk("retry", flt, reset_attempts=True,
                           on_batch=lambda r: progress.append(r.changed))  # fmt: skip
        assert (done.matched, done.changed, done.skipped) == (10_000, 10_000, 0)
        assert (progress[:3], done.batches) == ([1000, 2000, 3000], 11)  # the 11th finds none
        assert client.stats(succeeded=False).totals["due"] == 10_000
        again = client.bulk("retry", flt, reset_attempts=True)
        assert (again.matched, again.changed) == (0, 0)
    with jobforge_db.connect() as conn:
        events = conn.execute(
            "SELECT job_id, data FROM jobforge.job_events WHERE kind = 'rescheduled' ORDER BY id"
        ).fetchall()
        jobs = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'queued' AND attempts = 0 AND error IS NULL "
            "AND finished_at IS NULL) FROM jobforge.jobs"
        ).fetchone()
    assert [e[0] for e in events] == ids  # one each, in id order
    assert all(e[1] == {"from": "dead", "reset_attempts": True, "bulk": True} for e in events)
    assert jobs == (10_000,)


def test_a_tenants_bulk_action_never_touches_another_tenants_jobs(
    jobforge_db: Database, app_login: str
) -> None:
    """From the attacker's side: acme's bound app login, with filters that match globex's jobs
    too, asking as itself, as globex, and for every tenant."""
    theirs = _dead(jobforge_db.dsn, "globex", 5)
    queued = _enqueue(jobforge_db.dsn, "globex", "ops.scan", 5, T0)
    own = _dead(jobforge_db.dsn, "acme", 3)

    def snapshot() -> list[tuple[Any, ...]]:
        with jobforge_db.connect() as conn:
            return conn.execute(
                "SELECT to_jsonb(j)::text FROM jobforge.jobs j WHERE tenant_id = 'globex' "
                "UNION ALL SELECT to_jsonb(e)::text FROM jobforge.job_events e "
                "WHERE tenant_id = 'globex' ORDER BY 1"
            ).fetchall()

    before = snapshot()
    any_retry = bulk.check_filter("retry", ["dead", "failed", "canceled"], None, None)
    any_cancel = bulk.check_filter("cancel", ["queued", "running"], None, None)
    with QueueClient.connect(app_login, tenant="acme", max_size=1) as attacker:
        assert attacker.bulk("retry", any_retry, reset_attempts=True, dry_run=True).matched == 3
        assert attacker.bulk("retry", any_retry, reset_attempts=True).changed == 3
        assert attacker.bulk("cancel", any_cancel).changed == 3
    for tenant in ("globex", None):
        with QueueClient.connect(app_login, tenant=tenant, max_size=1) as attacker:
            for action, flt in (("retry", any_retry), ("cancel", any_cancel)):
                with pytest.raises(errors.TenantRequired):
                    attacker.bulk(action, flt, reset_attempts=True)  # type: ignore[arg-type]
    with psycopg.connect(app_login, autocommit=True) as conn:
        for setting in ("SET jobforge.scope = 'worker'", "SET jobforge.tenant = 'globex'"):
            conn.execute(setting)
            with pytest.raises(psycopg.Error, match="tenant"):
                conn.execute("SELECT * FROM jobforge.bulk_cancel_v1(ARRAY['queued'])")
    assert snapshot() == before
    with QueueClient.connect(jobforge_db.dsn, tenant="globex", max_size=1) as globex:
        assert {j.id for j in globex.list_jobs(status=["dead"]).jobs} == set(theirs)
        assert {j.id for j in globex.list_jobs(status=["queued"]).jobs} == set(queued)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as acme:
        assert {j.id for j in acme.list_jobs(status=["canceled"]).jobs} == set(own)


def test_bulk_retry_skips_exhausted_jobs_without_reset_and_filters_by_type_and_time(
    jobforge_db: Database,
) -> None:
    dead_scan = _dead(jobforge_db.dsn, "acme", 4, "ops.scan")
    dead_mail = _dead(jobforge_db.dsn, "acme", 2, "ops.mail")
    with QueueClient.connect(jobforge_db.dsn, max_size=1) as worker:
        _enqueue(jobforge_db.dsn, "acme", "ops.fail", 3, T0, max_attempts=5)
        _finish(worker, worker.claim("w", 10, types=["ops.fail"], now=T0), "failed", T0)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client:
        mail = bulk.check_filter("retry", ["dead"], ["ops.mail"], None)
        skipped = client.bulk("retry", mail, batch=1)
        assert (skipped.matched, skipped.changed, skipped.skipped, skipped.batches) == (2, 0, 2, 3)
        later = bulk.check_filter("retry", ["dead"], None, T0 + timedelta(seconds=1))
        assert client.bulk("retry", later, reset_attempts=True).matched == 0
        failed = client.bulk("retry", bulk.check_filter("retry", ["failed"], None, None))
        assert (failed.changed, failed.skipped) == (3, 0)  # attempts left: no reset needed
        scan = client.bulk("retry", bulk.check_filter("retry", None, ["ops.scan"], None),
                           reset_attempts=True, batch=3)  # fmt: skip
        assert (scan.changed, scan.batches) == (4, 2)
        assert {j.id for j in client.list_jobs(status=["dead"]).jobs} == set(dead_mail)
        assert {j.id for j in client.list_jobs(status=["queued"]).jobs} >= set(dead_scan)


def test_bulk_cancel_of_running_jobs_closes_their_attempts_and_tells_the_worker(
    jobforge_db: Database,
) -> None:
    _enqueue(jobforge_db.dsn, "acme", "ops.scan", 3, T0)
    old = _enqueue(jobforge_db.dsn, "acme", "ops.mail", 2, T0 - timedelta(hours=2))
    with QueueClient.connect(jobforge_db.dsn, max_size=1) as worker:
        running = worker.claim("w", 2, types=["ops.scan"], now=T0)
        with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client:
            recent = bulk.check_filter("cancel", ["queued"], None, T0 - timedelta(hours=1))
            assert client.bulk("cancel", recent, dry_run=True).matched == 1  # not the old mail
            both = bulk.check_filter("cancel", ["running"], ["ops.scan"], None)
            assert client.bulk("cancel", both).changed == 2
            leases = [(j.id, j.lease_token) for j in running if j.lease_token is not None]
            beats = worker.heartbeat("w", leases, now=T0)
            assert set(beats.values()) == {"canceled"}
            for job in running:
                (attempt,) = client.attempts(job.id)
                assert attempt.outcome == "canceled"
                kinds = [(e.kind, e.data) for e in client.events(job.id)]
                assert kinds[-1] == ("canceled", {"from": "running", "bulk": True})
            assert client.bulk("cancel", recent).changed == 1
            assert {j.id for j in client.list_jobs(status=["queued"]).jobs} == set(old)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            "SELECT * FROM jobforge.bulk_retry_v1(ARRAY['succeeded'])",
            "bulk retry: status 'succeeded' cannot be retried: choose from dead, failed, canceled",
        ),
        (
            "SELECT * FROM jobforge.bulk_cancel_v1(ARRAY['bogus'])",
            "bulk cancel: status 'bogus' cannot be canceled: choose from queued, running",
        ),
        (
            "SELECT * FROM jobforge.bulk_cancel_v1(NULL, NULL, NULL, 0, 0)",
            "bulk cancel: the batch size must be 1-10000",
        ),
        (
            "SELECT * FROM jobforge.bulk_retry_v1(NULL, NULL, '-infinity')",
            "bulk retry: since: run_at -infinity is out of range",
        ),
        (
            "SELECT * FROM jobforge.stats_v1(true, -1)",
            "stats: expiring must be 0-86400 s and recent 1 s to 366 days",
        ),
    ],
)
def test_bad_arguments_are_one_line_errors(
    jobforge_db: Database, statement: str, message: str
) -> None:
    with (
        QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client,
        pytest.raises(errors.InvalidJob) as raised,
        client.transaction() as conn,
    ):
        conn.execute(statement.encode())
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value).strip()


def test_a_job_another_transaction_holds_is_tried_again_not_waited_for(
    jobforge_db: Database,
) -> None:
    """A worker's open transaction holds one dead job: the batch goes on without it (waiting
    could deadlock), and it is retried once released, or reported busy if it never is."""
    ids = _dead(jobforge_db.dsn, "acme", 5)
    flt = bulk.check_filter("retry", ["dead"], None, None)
    with (
        jobforge_db.connect() as holder,
        QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client,
    ):
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM jobforge.jobs WHERE id = %s FOR UPDATE", (ids[2],))
        began = time.monotonic()
        stuck = client.bulk("retry", flt, reset_attempts=True, batch=2, patience_s=0.3)
        assert 0.3 <= time.monotonic() - began < 5
        assert (stuck.changed, stuck.busy) == (4, 1)
        release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
        release.start()
        try:
            late = client.bulk("retry", flt, reset_attempts=True, patience_s=10)
        finally:
            release.join()
        assert (late.changed, late.busy) == (1, 0)
        assert {j.id for j in client.list_jobs(status=["queued"]).jobs} == set(ids)


def test_a_bulk_retry_runs_while_a_worker_drains_and_every_job_ends_once(
    jobforge_db: Database,
) -> None:
    """Workers keep claiming, heartbeating and finishing while batches go back to the queue: no
    deadlock, no error, every retried job runs to success with exactly one bulk event."""
    dead = _dead(jobforge_db.dsn, "acme", 3000, "ops.flaky")
    fresh = []
    for _ in range(2):
        fresh += _enqueue(jobforge_db.dsn, "acme", "ops.fine", 1000, datetime.now(UTC))
    registry = Registry()
    registry.register("ops.flaky", lambda payload, ctx: None)
    registry.register("ops.fine", lambda payload, ctx: None)
    config = WorkerConfig(name="drainer", poll_min_s=0.02, poll_max_s=0.1, concurrency=16)
    reports: list[WorkerReport] = []
    worker = threading.Thread(
        target=lambda: reports.append(drain(jobforge_db.dsn, registry, config, timeout_s=120))
    )
    worker.start()
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client:
        flt = bulk.check_filter("retry", ["dead"], ["ops.flaky"], None)
        done = client.bulk("retry", flt, reset_attempts=True, batch=250)
        worker.join()
        assert (done.changed, done.busy) == (3000, 0)
        rest = drain(jobforge_db.dsn, registry, config, timeout_s=120)  # what came back late
        assert reports[0].stopped_because is None
        assert reports[0].counts["succeeded"] + rest.counts["succeeded"] == 5000
        assert client.stats(succeeded=True).totals == dict.fromkeys(STATES, 0) | {"succeeded": 5000}
    with jobforge_db.connect() as conn:
        rows = conn.execute(
            "SELECT job_id, count(*) FROM jobforge.job_events WHERE kind = 'rescheduled' "
            "GROUP BY job_id ORDER BY job_id"
        ).fetchall()
    assert rows == [(job_id, 1) for job_id in dead]
    assert len(fresh) == 2000
