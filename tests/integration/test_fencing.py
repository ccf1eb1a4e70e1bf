"""Every fencing rule of the worker-side writes, deterministically (issue [2/10]).

A worker write (finish, heartbeat, progress, release, record_run, acknowledge_cancel) is
accepted only from the holder of the lease: the worker name the claim was made under and the
per-claim secret the claim returned. Each rule is tried against

(a) a stale token of the same worker: its lease expired and the same worker re-claimed the job
    (alone, and batched with the new token: one answer per (job, token), in input order);
(b) the right token under another worker's name;
(c) a forged token: the digest a `jobforge_worker` login reads from `jobs.lease_token` or
    `job_attempts.lease_token`;
(d) a duplicate (or a late replay after the job finished).

After every refused call nothing changed: the job row, its attempts, events, result and run
records are compared as the owner sees them. Time is frozen with `now=` (the test template
accepts the caller's clock) and leases are 5 s, so nothing depends on the wall clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge.provision import Database
from jobforge.queue import Job, Outcome, QueueClient, lease_id
from tests.records import run_write

T0 = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
LEASE_S = 5.0
TENANT = "acme"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


#: What a job is made of, by table and the column naming the job.
JOB_TABLES = (
    ("jobs", "id"),
    ("job_attempts", "job_id"),
    ("job_events", "job_id"),
    ("job_results", "job_id"),
    ("job_runs", "job_id"),
)

DIGEST = "sha256:" + "0" * 64


def record(status: str = "succeeded") -> dict[str, Any]:
    return {"format": "jobforge.run/1", "runner_id": "fx.job", "runner_version": "1.0.0",
            "status": status, "input": {"sha256": DIGEST}, "trace_sha256": DIGEST}  # fmt: skip


@pytest.fixture
def tenant(jobforge_db: Database) -> Iterator[QueueClient]:
    """The tenant's client (enqueue, cancel), as the owner."""
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as client:
        yield client


@pytest.fixture
def worker(jobforge_db: Database) -> Iterator[QueueClient]:
    """A worker-side client, as the owner."""
    with QueueClient.connect(jobforge_db.dsn) as client:
        yield client


@pytest.fixture
def forger(jobforge_db: Database) -> Iterator[str]:
    """DSN of a fresh `jobforge_worker` login: it may read every lease digest of the tables."""
    name = f"jf_forger_{secrets.token_hex(4)}"
    with jobforge_db.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_worker").format(
            sql.Identifier(name)))  # fmt: skip
    yield make_conninfo(jobforge_db.dsn, user=name)
    with jobforge_db.connect() as admin:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def state(db: Database, job_id: int) -> dict[str, list[str]]:
    """Everything stored about the job, as the owner (who bypasses row-level security) sees it."""
    with db.connect() as conn:
        return {
            table: [row[0] for row in conn.execute(
                sql.SQL("SELECT to_jsonb(x)::text FROM jobforge.{} x WHERE {} = %s ORDER BY 1")
                .format(sql.Identifier(table), sql.Identifier(column)), (job_id,))]
            for table, column in JOB_TABLES
        }  # fmt: skip


def token(job: Job) -> UUID:
    assert job.lease_token is not None
    return job.lease_token


def claim_one(worker: QueueClient, name: str, now: datetime) -> Job:
    [job] = worker.claim(name, 1, lease_s=LEASE_S, now=now)
    return job


def enqueue(tenant: QueueClient, n: int = 1) -> list[int]:
    return [tenant.enqueue("fx.job", {"n": i}, now=T0).job_id for i in range(n)]


def self_takeover(tenant: QueueClient, worker: QueueClient) -> tuple[int, UUID, UUID]:
    """A job claimed by w1 at T0 whose 5 s lease expired, re-claimed by w1 itself at T0+10 s."""
    [job_id] = enqueue(tenant)
    old = claim_one(worker, "w1", T0)
    new = claim_one(worker, "w1", at(10))
    assert (old.id, new.id) == (job_id, job_id)
    assert token(old) != token(new)
    assert new.attempts == 2
    return job_id, token(old), token(new)


def release_each(db: Database, name: str, leases: Sequence[tuple[int, UUID]],
                 now: datetime) -> list[str]:  # fmt: skip
    """release_v1's answers as they come, one per lease (the client folds them per job)."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT job_id, state FROM jobforge.release_v1(%s, %s, %s, %s)",
            (name, [i for i, _ in leases], [t for _, t in leases], now),
        ).fetchall()
    assert [r[0] for r in rows] == [i for i, _ in leases]
    return [r[1] for r in rows]


def succeeded(job_id: int, lease: UUID) -> Outcome:
    return Outcome(job_id=job_id, lease_token=lease, outcome="succeeded", result={"ok": True})


# (a) a stale token of the same worker


def test_a_stale_token_of_the_same_worker_changes_nothing(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    job_id, old, new = self_takeover(tenant, worker)
    before = state(jobforge_db, job_id)
    now = at(11)

    assert worker.finish_each("w1", [succeeded(job_id, old)], now=now) == ["lost"]
    assert state(jobforge_db, job_id) == before
    assert worker.heartbeat_each("w1", [(job_id, old)], lease_s=LEASE_S, now=now) == ["lost"]
    assert state(jobforge_db, job_id) == before
    assert worker.progress("w1", job_id, old, 50, "old attempt", now=now) is False
    assert state(jobforge_db, job_id) == before
    assert worker.release("w1", [(job_id, old)], now=now) == {job_id: "lost"}
    assert state(jobforge_db, job_id) == before
    assert worker.acknowledge_cancel("w1", job_id, old, {"compensation": "x"}, now=now) is False
    assert state(jobforge_db, job_id) == before

    # the new lease is untouched by all that and still works
    assert worker.heartbeat_each("w1", [(job_id, new)], lease_s=LEASE_S, now=now) == ["ok"]
    assert worker.progress("w1", job_id, new, 50, "new attempt", now=now) is True
    assert worker.finish_each("w1", [succeeded(job_id, new)], now=at(12)) == ["succeeded"]
    assert tenant.get(job_id).status == "succeeded"
    assert [a.outcome for a in tenant.attempts(job_id)] == ["lease_expired", "succeeded"]


def test_a_stale_token_cannot_acknowledge_the_new_attempt_s_cancellation(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    job_id, old, new = self_takeover(tenant, worker)
    assert tenant.cancel(job_id, now=at(11)) == "canceled"
    before = state(jobforge_db, job_id)
    assert worker.acknowledge_cancel("w1", job_id, old, {"compensation": "x"}, now=at(12)) is False
    assert state(jobforge_db, job_id) == before
    assert worker.acknowledge_cancel("w1", job_id, new, {"compensation": "y"}, now=at(12)) is True


def test_a_stale_token_records_only_its_own_attempt_once(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    """record_run is fenced on the attempt, not on the job's current lease: a taken-over attempt
    still gets its record (status lease_lost), under its own attempt number and lease, once; it
    never lands on the new attempt, and nothing else of the job changes."""
    job_id, old, new = self_takeover(tenant, worker)
    before = state(jobforge_db, job_id)
    assert worker.record_run("w1", job_id, old, run_write(record("lease_lost")), now=at(11)) is True
    after = state(jobforge_db, job_id)
    assert {k: v for k, v in after.items() if k != "job_runs"} == {
        k: v for k, v in before.items() if k != "job_runs"
    }
    with jobforge_db.connect() as conn:
        runs = conn.execute(
            "SELECT attempt, lease_token, status FROM jobforge.job_runs WHERE job_id = %s",
            (job_id,),
        ).fetchall()
    assert runs == [(1, lease_id(old), "lease_lost")]

    assert worker.record_run("w1", job_id, old, run_write(record("succeeded")), now=at(12)) is False
    assert state(jobforge_db, job_id) == after
    assert worker.record_run("w1", job_id, new, run_write(record("succeeded")), now=at(12)) is True
    assert [r["status"] for r in tenant.runs(job_id)] == ["lease_lost", "succeeded"]


@pytest.mark.parametrize("stale_first", [True, False], ids=["stale-first", "new-first"])
def test_stale_and_new_tokens_in_one_heartbeat_are_answered_each_in_order(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient, stale_first: bool
) -> None:
    job_id, old, new = self_takeover(tenant, worker)
    leases = [(job_id, old), (job_id, new)] if stale_first else [(job_id, new), (job_id, old)]
    answers = worker.heartbeat_each("w1", leases, lease_s=LEASE_S, now=at(11))
    assert answers == (["lost", "ok"] if stale_first else ["ok", "lost"])
    job = tenant.get(job_id)
    assert job.lease_expires_at == at(11 + LEASE_S)  # extended once, for the new lease
    assert job.lease_token == lease_id(new)


@pytest.mark.parametrize("stale_first", [True, False], ids=["stale-first", "new-first"])
def test_stale_and_new_tokens_in_one_finish_are_answered_each_in_order(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient, stale_first: bool
) -> None:
    job_id, old, new = self_takeover(tenant, worker)
    stale = Outcome(job_id=job_id, lease_token=old, outcome="failed", error={"m": "stale"})
    fresh = succeeded(job_id, new)
    outcomes = [stale, fresh] if stale_first else [fresh, stale]
    answers = worker.finish_each("w1", outcomes, now=at(11))
    assert answers == (["lost", "succeeded"] if stale_first else ["succeeded", "lost"])
    job = tenant.get(job_id)
    assert (job.status, job.error) == ("succeeded", None)  # the stale 'failed' left no trace
    assert tenant.result(job_id) == {"ok": True}
    assert [a.outcome for a in tenant.attempts(job_id)] == ["lease_expired", "succeeded"]
    assert [e.kind for e in tenant.events(job_id)].count("succeeded") == 1


@pytest.mark.parametrize("stale_first", [True, False], ids=["stale-first", "new-first"])
def test_stale_and_new_tokens_in_one_release_are_answered_each_in_order(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient, stale_first: bool
) -> None:
    job_id, old, new = self_takeover(tenant, worker)
    leases = [(job_id, old), (job_id, new)] if stale_first else [(job_id, new), (job_id, old)]
    answers = release_each(jobforge_db, "w1", leases, at(11))
    assert answers == (["lost", "released"] if stale_first else ["released", "lost"])
    job = tenant.get(job_id)
    assert (job.status, job.attempts) == ("queued", 1)  # released once: one attempt given back
    assert [a.outcome for a in tenant.attempts(job_id)] == ["lease_expired", "released"]


def test_two_taken_over_jobs_interleaved_in_one_batch(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    j1, j2 = enqueue(tenant, 2)
    olds = {j.id: token(j) for j in worker.claim("w1", 2, lease_s=LEASE_S, now=T0)}
    news = {j.id: token(j) for j in worker.claim("w1", 2, lease_s=LEASE_S, now=at(10))}
    leases = [(j1, olds[j1]), (j2, news[j2]), (j1, news[j1]), (j2, olds[j2])]
    assert worker.heartbeat_each("w1", leases, lease_s=LEASE_S, now=at(11)) == [
        "lost", "ok", "ok", "lost"]  # fmt: skip
    outcomes = [succeeded(i, t) for i, t in leases]
    assert worker.finish_each("w1", outcomes, now=at(12)) == [
        "lost", "succeeded", "succeeded", "lost"]  # fmt: skip
    assert [tenant.get(j).status for j in (j1, j2)] == ["succeeded", "succeeded"]


# (b) the right token under another worker's name


def test_the_right_token_under_another_worker_s_name_changes_nothing(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    [job_id] = enqueue(tenant)
    lease = token(claim_one(worker, "w1", T0))
    before = state(jobforge_db, job_id)
    now = at(1)

    assert worker.finish_each("w2", [succeeded(job_id, lease)], now=now) == ["lost"]
    assert state(jobforge_db, job_id) == before
    assert worker.heartbeat_each("w2", [(job_id, lease)], lease_s=LEASE_S, now=now) == ["lost"]
    assert state(jobforge_db, job_id) == before
    assert worker.progress("w2", job_id, lease, 10, "not mine", now=now) is False
    assert state(jobforge_db, job_id) == before
    assert worker.release("w2", [(job_id, lease)], now=now) == {job_id: "lost"}
    assert state(jobforge_db, job_id) == before
    assert worker.record_run("w2", job_id, lease, run_write(record()), now=now) is False
    assert state(jobforge_db, job_id) == before

    assert tenant.cancel(job_id, now=at(2)) == "canceled"
    canceled = state(jobforge_db, job_id)
    assert worker.acknowledge_cancel("w2", job_id, lease, {"compensation": "x"}, now=at(3)) is False
    assert state(jobforge_db, job_id) == canceled

    # the holder itself still may
    assert worker.acknowledge_cancel("w1", job_id, lease, {"compensation": "x"}, now=at(3)) is True
    assert worker.record_run("w1", job_id, lease, run_write(record("canceled")), now=at(3)) is True


# (c) a forged token: the digest the tables keep


def test_the_digest_a_worker_login_reads_is_not_a_token(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient, forger: str
) -> None:
    [job_id] = enqueue(tenant)
    lease = token(claim_one(worker, "w1", T0))
    with psycopg.connect(forger, autocommit=True) as conn:
        conn.execute("SET jobforge.scope = 'worker'")
        row = conn.execute("SELECT lease_token FROM jobforge.jobs WHERE id = %s", (job_id,))
        [(from_jobs,)] = row.fetchall()
        row = conn.execute(
            "SELECT lease_token FROM jobforge.job_attempts WHERE job_id = %s", (job_id,)
        )
        [(from_attempts,)] = row.fetchall()
    assert from_jobs == from_attempts == lease_id(lease)  # readable, but only the digest

    before = state(jobforge_db, job_id)
    now = at(1)
    with QueueClient.connect(forger) as evil:
        for forged in (from_jobs, from_attempts):
            assert evil.finish_each("w1", [succeeded(job_id, forged)], now=now) == ["lost"]
            assert state(jobforge_db, job_id) == before
            assert evil.heartbeat_each("w1", [(job_id, forged)], lease_s=99, now=now) == ["lost"]
            assert state(jobforge_db, job_id) == before
            assert evil.progress("w1", job_id, forged, 99, "forged", now=now) is False
            assert state(jobforge_db, job_id) == before
            assert evil.release("w1", [(job_id, forged)], now=now) == {job_id: "lost"}
            assert state(jobforge_db, job_id) == before
            assert evil.record_run("w1", job_id, forged, run_write(record()), now=now) is False
            assert state(jobforge_db, job_id) == before

        assert tenant.cancel(job_id, now=at(2)) == "canceled"
        canceled = state(jobforge_db, job_id)
        for forged in (from_jobs, from_attempts):
            ack = evil.acknowledge_cancel("w1", job_id, forged, {"compensation": "x"}, now=at(3))
            assert ack is False
            assert state(jobforge_db, job_id) == canceled

        # the same login with the secret itself is accepted: the refusals were the token's
        assert evil.acknowledge_cancel("w1", job_id, lease, {"compensation": "x"}, now=at(3))


# (d) duplicates and late replays


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "retry"])
def test_a_duplicate_finish_changes_nothing(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient, outcome: str
) -> None:
    [job_id] = enqueue(tenant)
    lease = token(claim_one(worker, "w1", T0))
    done = Outcome.model_validate(
        {"job_id": job_id, "lease_token": lease, "outcome": outcome,
         "result": {"ok": True} if outcome == "succeeded" else None,
         "error": None if outcome == "succeeded" else {"message": "first"}}
    )  # fmt: skip
    first = worker.finish_each("w1", [done], now=at(1))
    assert first == [{"retry": "retry_scheduled"}.get(outcome, outcome)]
    before = state(jobforge_db, job_id)
    again = done.model_copy(update={"result": {"ok": "again"}, "error": {"message": "again"}})
    assert worker.finish_each("w1", [again], now=at(2)) == ["lost"]
    assert state(jobforge_db, job_id) == before


def test_a_finish_listed_twice_in_one_batch_is_done_once(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    [job_id] = enqueue(tenant)
    lease = token(claim_one(worker, "w1", T0))
    done = succeeded(job_id, lease)
    assert worker.finish_each("w1", [done, done], now=at(1)) == ["succeeded", "lost"]
    assert [e.kind for e in tenant.events(job_id)] == ["created", "claimed", "succeeded"]


def test_a_duplicate_release_changes_nothing(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    [job_id] = enqueue(tenant)
    lease = token(claim_one(worker, "w1", T0))
    assert release_each(jobforge_db, "w1", [(job_id, lease), (job_id, lease)], at(1)) == [
        "released", "lost"]  # fmt: skip
    before = state(jobforge_db, job_id)
    assert tenant.get(job_id).attempts == 0  # given back once, not twice
    assert worker.release("w1", [(job_id, lease)], now=at(2)) == {job_id: "lost"}
    assert state(jobforge_db, job_id) == before


def test_a_duplicate_record_run_changes_nothing(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    [job_id] = enqueue(tenant)
    lease = token(claim_one(worker, "w1", T0))
    assert worker.record_run("w1", job_id, lease, run_write(record("succeeded")), now=at(1)) is True
    before = state(jobforge_db, job_id)
    assert worker.record_run("w1", job_id, lease, run_write(record("failed")), now=at(2)) is False
    assert state(jobforge_db, job_id) == before


def test_a_duplicate_acknowledge_cancel_changes_nothing(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    [job_id] = enqueue(tenant)
    lease = token(claim_one(worker, "w1", T0))
    assert tenant.cancel(job_id, now=at(1)) == "canceled"
    assert worker.acknowledge_cancel("w1", job_id, lease, {"compensation": "a"}, now=at(2))
    before = state(jobforge_db, job_id)
    assert not worker.acknowledge_cancel("w1", job_id, lease, {"compensation": "b"}, now=at(3))
    assert state(jobforge_db, job_id) == before


def test_a_duplicate_heartbeat_at_the_same_instant_changes_nothing(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    [job_id] = enqueue(tenant)
    lease = token(claim_one(worker, "w1", T0))
    assert worker.heartbeat_each("w1", [(job_id, lease)], lease_s=LEASE_S, now=at(1)) == ["ok"]
    before = state(jobforge_db, job_id)
    assert worker.heartbeat_each("w1", [(job_id, lease)], lease_s=LEASE_S, now=at(1)) == ["ok"]
    assert state(jobforge_db, job_id) == before


def test_every_write_replayed_after_the_finish_changes_nothing(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    """A late duplicate of each write, once the job is done: refused, and nothing moves."""
    [job_id] = enqueue(tenant)
    lease = token(claim_one(worker, "w1", T0))
    assert worker.progress("w1", job_id, lease, 50, "half", now=at(1)) is True
    assert worker.record_run("w1", job_id, lease, run_write(record()), now=at(2)) is True
    assert worker.finish_each("w1", [succeeded(job_id, lease)], now=at(2)) == ["succeeded"]
    before = state(jobforge_db, job_id)
    now = at(3)
    assert worker.heartbeat_each("w1", [(job_id, lease)], lease_s=LEASE_S, now=now) == ["lost"]
    assert worker.progress("w1", job_id, lease, 50, "half", now=now) is False
    assert worker.finish_each("w1", [succeeded(job_id, lease)], now=now) == ["lost"]
    assert worker.release("w1", [(job_id, lease)], now=now) == {job_id: "lost"}
    assert worker.record_run("w1", job_id, lease, run_write(record()), now=now) is False
    assert worker.acknowledge_cancel("w1", job_id, lease, {"compensation": "x"}, now=now) is False
    assert state(jobforge_db, job_id) == before


# the secret never reaches a table


def test_the_tables_never_hold_the_secret_the_claim_returned(
    jobforge_db: Database, tenant: QueueClient, worker: QueueClient
) -> None:
    job_ids = enqueue(tenant, 3)
    claimed = worker.claim("w1", 3, lease_s=LEASE_S, now=T0)
    assert sorted(j.id for j in claimed) == job_ids
    leases = {j.id: token(j) for j in claimed}
    for job_id, lease in leases.items():
        assert worker.record_run("w1", job_id, lease, run_write(record()), now=at(1))
    with jobforge_db.connect() as conn:
        for job_id, lease in leases.items():
            digest = lease_id(lease)
            assert digest != lease
            assert conn.execute("SELECT jobforge.lease_id(%s)", (lease,)).fetchone() == (digest,)
            for table, column in (("jobs", "id"), ("job_attempts", "job_id"),
                                  ("job_runs", "job_id")):  # fmt: skip
                query = sql.SQL("SELECT lease_token FROM jobforge.{} WHERE {} = %s").format(
                    sql.Identifier(table), sql.Identifier(column))  # fmt: skip
                stored = conn.execute(query, (job_id,)).fetchall()
                assert stored == [(digest,)], table
        # and nowhere else either: no row of any jobforge table holds a secret's text
        tables = conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c "
            "WHERE c.relnamespace = 'jobforge'::regnamespace AND c.relkind IN ('r', 'p')"
        ).fetchall()
        assert len(tables) >= 6
        for (table,) in tables:
            text = conn.execute(
                sql.SQL("SELECT coalesce(string_agg(to_jsonb(x)::text, ''), '') FROM {} x").format(
                    sql.SQL(table))).fetchone()  # fmt: skip
            assert text is not None
            for lease in leases.values():
                assert str(lease) not in text[0], table
                assert lease.hex not in text[0], table
