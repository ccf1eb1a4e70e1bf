"""The queue as a state machine: hypothesis drives the real client against a Python model.

Every rule calls `jobforge.queue.QueueClient` on a real database with an explicit `now=` (the
test owns the clock) and applies the same step to a model of each job: its status, attempts,
lease, timestamps, attempt rows, result and event log. After every step the invariants read the
database back and compare it with the model, and also check properties that hold whatever the
model says: one valid lease per running job and none otherwise, `finished_at` iff terminal,
attempts within bounds, dead only when attempts are exhausted, and an event log per job that
replays through the transition table of `jobforge.states` to the job's status.

One database serves the whole test; each example gets a tenant and a job type of its own (row
level security keeps tenants apart, and claims are limited to the example's type because a
worker claims across tenants), so an example costs no database clone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from jobforge import db, errors
from jobforge.provision import Database
from jobforge.queue import NewJob, Outcome, QueueClient, lease_id
from jobforge.states import TERMINAL, TRANSITIONS, JobState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WORKERS = ("w1", "w2", "w3")
KEYS = ("k1", "k2", "k3", "k4")
PAYLOADS: tuple[dict[str, Any], ...] = ({"n": 0}, {"n": 1}, {"n": 2, "tags": ["a", "b"]})
LEASES_S = (5.0, 10.0, 30.0)
CLOCK_STEPS_S = (0.5, 1.0, 2.0, 4.0, 6.0, 11.0, 31.0, 3600.0)
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 3600.0
NO_SUCH_JOB = 10**15  # an id no example ever reaches
PRECISION = timedelta(microseconds=1)  # timestamptz resolution

RUNNING = JobState.RUNNING
QUEUED = JobState.QUEUED

#: Failures replay stably: every draw is a position or a value the database cannot change (job
#: ids, tokens and times differ from run to run; which tied lease the claim takes does not, see
#: migrations/0008), and the example database is this run's own, so a failure stored by an
#: earlier version of the code is never replayed against this one. print_blob gives the
#: @reproduce_failure line to replay a failure found elsewhere.
SETTINGS = settings(
    max_examples=100, stateful_step_count=50, deadline=None,
    database=InMemoryExampleDatabase(), print_blob=True,
)  # fmt: skip

_examples = itertools.count()

#: (kind, attempt, worker, at, data) of one event, as the model expects it.
Event = tuple[str, int | None, str | None, datetime, Any]


@dataclass
class Try:
    """One expected row of jobforge.job_attempts."""

    attempt: int
    worker: str
    token: UUID
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str | None = None
    error: Any = None


@dataclass
class ModelJob:
    """What the database should hold for one job."""

    id: int
    payload: dict[str, Any]
    key: str | None
    priority: int
    max_attempts: int
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    status: JobState = QUEUED
    attempts: int = 0
    token: UUID | None = None
    holder: str | None = None
    lease_expires_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None
    error: Any = None
    progress_pct: float | None = None
    progress_message: str | None = None
    tries: list[Try] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def holds(self, worker: str, token: UUID) -> bool:
        return self.status is RUNNING and self.token == token and self.holder == worker

    def lease(self) -> tuple[str, UUID]:
        """The holder and token of a running job's lease."""
        assert self.holder is not None, f"job {self.id} has no holder"
        assert self.token is not None, f"job {self.id} has no lease token"
        return self.holder, self.token

    def tokens(self) -> list[UUID]:
        return [t.token for t in self.tries]

    def open_try(self) -> Try:
        assert self.tries, f"job {self.id}: no attempt row to close"
        assert self.tries[-1].finished_at is None, f"job {self.id}: last attempt already closed"
        return self.tries[-1]

    def release(self, status: JobState, now: datetime) -> None:
        self.status = status
        self.token = self.holder = self.lease_expires_at = None
        self.updated_at = now
        self.finished_at = now if status in TERMINAL else None

    def view(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "payload": self.payload,
            "idempotency_key": self.key,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "run_at": self.run_at,
            "attempts": self.attempts,
            "lease_token": None if self.token is None else lease_id(self.token),
            "lease_holder": self.holder,
            "lease_expires_at": self.lease_expires_at,
            "heartbeat_at": self.heartbeat_at,
            "finished_at": self.finished_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "error": self.error,
            "progress_pct": self.progress_pct,
            "progress_message": self.progress_message,
        }


@dataclass(frozen=True)
class Spec:
    """One job of an enqueue batch, as drawn."""

    payload: int
    key: str | None
    priority: int
    max_attempts: int
    delay_s: float | None


SPECS = st.builds(
    Spec,
    payload=st.just(0) | st.integers(0, len(PAYLOADS) - 1),
    key=st.none() | st.sampled_from(KEYS),
    priority=st.integers(0, 2),
    max_attempts=st.sampled_from((1, 1, 2, 3, 4)),  # often 1: exhausted by one expiry or retry
    delay_s=st.none() | st.sampled_from((0.0, 2.0, 10.0)),
)


@dataclass
class Snapshot:
    """The example's tenant as the database holds it."""

    jobs: dict[int, dict[str, Any]]
    events: dict[int, list[dict[str, Any]]]
    tries: dict[int, list[dict[str, Any]]]
    results: dict[int, Any]


def _error_view(error: Any) -> Any:
    """A job error as compared: the queue's own errors by their kind only, not their wording."""
    if isinstance(error, dict) and "kind" in error:
        return {"kind": error["kind"]}
    return error


def _event_view(row: dict[str, Any]) -> Event:
    data = row["data"]
    if row["kind"] == "retry_scheduled" and isinstance(data, dict) and "run_at" in data:
        data = {**data, "run_at": datetime.fromisoformat(data["run_at"])}
    return (row["kind"], row["attempt"], row["worker"], row["at"], data)


def _by_job(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["job_id"], []).append(row)
    return grouped


def _claim_order(job: ModelJob) -> tuple[int, datetime, int]:
    return (job.priority, job.run_at, job.id)


class QueueMachine(RuleBasedStateMachine):
    def __init__(self, pool: db.ConnectionPool, conn: db.Connection) -> None:
        super().__init__()
        n = next(_examples)
        self.tenant = f"sm-{n}"
        self.type = f"sm.job-{n}"
        self.queue = QueueClient(
            pool, tenant=self.tenant, backoff_base_s=BACKOFF_BASE_S, backoff_cap_s=BACKOFF_CAP_S
        )
        self.conn = conn
        conn.execute("SELECT set_config('jobforge.tenant', %s, false)", (self.tenant,))
        self.now = T0
        self.jobs: dict[int, ModelJob] = {}
        self.results: dict[int, Any] = {}
        self._snapshot: Snapshot | None = None

    # helpers

    def _touch(self) -> None:
        """A rule is about to write: the cached snapshot is stale."""
        self._snapshot = None

    def _snap(self) -> Snapshot:
        if self._snapshot is None:
            cur = self.conn.cursor(row_factory=db.dict_row)
            tenant = (self.tenant,)
            jobs = cur.execute(
                "SELECT * FROM jobforge.jobs WHERE tenant_id = %s ORDER BY id", tenant
            ).fetchall()
            events = cur.execute(
                # the log as `jobs show` reads it: a plain `created` is derived from the row
                "SELECT job_id, kind, at, attempt, worker, data FROM jobforge.job_event_log"
                " WHERE tenant_id = %s ORDER BY job_id, id",
                tenant,
            ).fetchall()
            tries = cur.execute(
                "SELECT job_id, attempt, worker, lease_token, started_at, finished_at, outcome,"
                " error FROM jobforge.job_attempts WHERE tenant_id = %s ORDER BY id",
                tenant,
            ).fetchall()
            results = cur.execute(
                "SELECT job_id, result FROM jobforge.job_results WHERE tenant_id = %s", tenant
            ).fetchall()
            self._snapshot = Snapshot(
                jobs={r["id"]: r for r in jobs},
                events=_by_job(events),
                tries=_by_job(tries),
                results={r["job_id"]: r["result"] for r in results},
            )
        return self._snapshot

    def _running(self) -> list[ModelJob]:
        return [j for j in self.jobs.values() if j.status is RUNNING]

    def _pick(self, data: st.DataObject, jobs: list[ModelJob]) -> ModelJob:
        ordered = sorted(jobs, key=lambda j: j.id)
        return ordered[data.draw(st.integers(0, len(ordered) - 1), label="job (position)")]

    def _pick_preferring(self, data: st.DataObject, preferred: list[ModelJob]) -> ModelJob:
        """Half the time one of `preferred` (when there is one), else any job."""
        prefer: bool = data.draw(st.booleans(), label="preferred")
        return self._pick(data, preferred if prefer and preferred else list(self.jobs.values()))

    def _db_lease(self, ids: list[int]) -> dict[int, tuple[str, UUID | None]]:
        rows = self.conn.execute(
            "SELECT id, status::text, lease_token FROM jobforge.jobs WHERE id = ANY (%s)", (ids,)
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def _db_run_at(self, job_id: int) -> datetime:
        row = self.conn.execute("SELECT run_at FROM jobforge.jobs WHERE id = %s", (job_id,))
        value = row.fetchone()
        assert value is not None
        return value[0]  # type: ignore[no-any-return]

    def _expired_taken(self, expired: list[ModelJob], limit: int) -> list[ModelJob]:
        """The expired leases a claim handled: the `limit` that expired first.

        Leases that expire at the same instant tie; when the limit falls inside such a group,
        which of its members were handled is read back from the database (and only their count
        is checked).
        """
        if len(expired) <= limit:
            return expired
        boundary = expired[limit - 1].lease_expires_at
        sure = [j for j in expired[:limit] if j.lease_expires_at != boundary]
        tied = [j for j in expired if j.lease_expires_at == boundary]
        state = self._db_lease([j.id for j in tied])
        handled = [
            j for j in tied if state[j.id] != ("running", j.token and lease_id(j.token))
        ]  # fmt: skip
        assert len(handled) == limit - len(sure), (
            f"claim limit {limit}: {len(handled)} of the tied expired leases {[j.id for j in tied]}"
            f" were handled, expected {limit - len(sure)}"
        )
        return sure + handled

    def _finish(self, worker: str, entries: list[tuple[ModelJob, UUID, str]]) -> None:
        """Finish a batch (distinct jobs); each entry is expected to land or be 'lost'."""
        self._touch()
        now = self.now
        outcomes = [
            Outcome(
                job_id=job.id,
                lease_token=token,
                outcome=outcome,  # type: ignore[arg-type]
                result={"job": job.id, "by": worker} if outcome == "succeeded" else None,
                error=None if outcome == "succeeded" else {"m": f"{outcome} #{job.attempts}"},
            )
            for job, token, outcome in entries
        ]
        got = self.queue.finish(worker, outcomes, now=now)
        expected: dict[int, str] = {}
        for (job, token, outcome), sent in zip(entries, outcomes, strict=True):
            if not job.holds(worker, token):
                expected[job.id] = "lost"  # fenced: nothing of it may change
                continue
            if outcome == "retry":
                nxt = "dead" if job.attempts >= job.max_attempts else "retry_scheduled"
            else:
                nxt = outcome
            expected[job.id] = nxt
            attempt = job.open_try()
            attempt.finished_at, attempt.error = now, sent.error
            attempt.outcome = "retry" if nxt == "retry_scheduled" else nxt
            job.release(QUEUED if nxt == "retry_scheduled" else JobState(nxt), now)
            job.error = sent.error
            data: Any = None if sent.error is None else {"error": sent.error}
            if nxt == "retry_scheduled":
                # Backoff is deterministic but not modelled: read run_at back, check its bounds.
                job.run_at = self._db_run_at(job.id)
                full = BACKOFF_BASE_S * 2 ** (job.attempts - 1)
                low = now + timedelta(seconds=full * 0.5) - PRECISION
                high = now + timedelta(seconds=min(BACKOFF_CAP_S, full)) + PRECISION
                assert low <= job.run_at <= high, (
                    f"job {job.id}: retry after attempt {job.attempts} at {now} runs at"
                    f" {job.run_at}, outside [{low}, {high}]"
                )
                data = {"run_at": job.run_at}
            if nxt == "succeeded":
                self.results[job.id] = sent.result
            job.events.append((nxt, job.attempts, worker, now, data))
        assert got == expected

    # rules: tenant side

    @initialize(specs=st.lists(SPECS, min_size=1, max_size=6))
    def start_with_some_jobs(self, specs: list[Spec]) -> None:
        """Every example starts with jobs, even when it draws no enqueue rule."""
        self._enqueue(specs)

    @rule(specs=st.lists(SPECS, min_size=1, max_size=3))
    def enqueue(self, specs: list[Spec]) -> None:
        self._enqueue(specs)

    def _enqueue(self, specs: list[Spec]) -> None:
        self._touch()
        now = self.now
        keyed = {j.key: j for j in self.jobs.values() if j.key is not None}
        batch_keys: dict[str, int] = {}  # key -> position of the batch's first use
        answers: list[tuple[int | None, int | None]] = []  # (existing id, or position of new)
        conflict = False
        for i, spec in enumerate(specs):
            payload = PAYLOADS[spec.payload]
            if spec.key is not None and spec.key in keyed:
                conflict |= keyed[spec.key].payload != payload
                answers.append((keyed[spec.key].id, None))
            elif spec.key is not None and spec.key in batch_keys:
                first = batch_keys[spec.key]
                conflict |= PAYLOADS[specs[first].payload] != payload
                answers.append((None, first))
            else:
                if spec.key is not None:
                    batch_keys[spec.key] = i
                answers.append((None, i))
        new_jobs = [
            NewJob(
                type=self.type,
                payload=PAYLOADS[s.payload],
                idempotency_key=s.key,
                priority=s.priority,
                max_attempts=s.max_attempts,
                run_at=None if s.delay_s is None else now + timedelta(seconds=s.delay_s),
            )
            for s in specs
        ]
        if conflict:  # and nothing of the batch is written: the invariants check that
            with pytest.raises(errors.IdempotencyConflict, match="is already used by job"):
                self.queue.enqueue_many(new_jobs, now=now)
            return
        got = self.queue.enqueue_many(new_jobs, now=now)
        assert len(got) == len(specs)
        created: dict[int, int] = {}  # position -> new id
        for i, (answer, spec, new) in enumerate(zip(got, specs, new_jobs, strict=True)):
            existing, position = answers[i]
            if existing is not None:
                assert (answer.job_id, answer.created) == (existing, False)
            elif position != i:
                assert position is not None
                assert (answer.job_id, answer.created) == (created[position], False)
            else:
                assert answer.created, f"batch position {i} should have created a job"
                assert answer.job_id not in self.jobs
                assert answer.job_id not in created.values()
                created[i] = answer.job_id
                self.jobs[answer.job_id] = ModelJob(
                    id=answer.job_id,
                    payload=PAYLOADS[spec.payload],
                    key=spec.key,
                    priority=spec.priority,
                    max_attempts=spec.max_attempts,
                    run_at=new.run_at or now,
                    created_at=now,
                    updated_at=now,
                    events=[("created", None, None, now, None)],
                )

    @precondition(lambda self: any(j.key is not None for j in self.jobs.values()))
    @rule(data=st.data(), same_payload=st.booleans())
    def enqueue_an_existing_key(self, data: st.DataObject, same_payload: bool) -> None:
        self._touch()
        job = self._pick(data, [j for j in self.jobs.values() if j.key is not None])
        others = [p for p in PAYLOADS if p != job.payload]
        payload = job.payload if same_payload else data.draw(st.sampled_from(others))
        if same_payload:  # other fields differ and are ignored: the existing job is the answer
            answer = self.queue.enqueue(
                self.type, payload, idempotency_key=job.key, priority=2, max_attempts=1,
                now=self.now,
            )  # fmt: skip
            assert (answer.job_id, answer.created) == (job.id, False)
        else:
            with pytest.raises(errors.IdempotencyConflict, match=f"used by job {job.id} "):
                self.queue.enqueue(self.type, payload, idempotency_key=job.key, now=self.now)

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self._touch()
        if data.draw(st.integers(0, 9), label="unknown job") == 0:
            with pytest.raises(errors.JobNotFound):
                self.queue.cancel(NO_SUCH_JOB, now=self.now)
            return
        job = self._pick_preferring(data, self._running())
        if job.status not in (QUEUED, RUNNING, JobState.CANCELED):
            with pytest.raises(errors.InvalidTransition, match="only queued or running"):
                self.queue.cancel(job.id, now=self.now)
            return
        assert self.queue.cancel(job.id, now=self.now) is JobState.CANCELED
        if job.status is JobState.CANCELED:
            return  # a no-op: no event, nothing changes
        if job.status is RUNNING:
            attempt = job.open_try()
            attempt.finished_at, attempt.outcome = self.now, "canceled"
        job.release(JobState.CANCELED, self.now)
        job.events.append(("canceled", job.attempts or None, None, self.now, None))

    @precondition(lambda self: bool(self.jobs))
    @rule(
        data=st.data(),
        reset=st.booleans(),
        delay_s=st.none() | st.sampled_from((0.0, 3.0)),
    )
    def reschedule(self, data: st.DataObject, reset: bool, delay_s: float | None) -> None:
        self._touch()
        finals = (JobState.FAILED, JobState.DEAD, JobState.CANCELED)
        job = self._pick_preferring(data, [j for j in self.jobs.values() if j.status in finals])
        run_at = None if delay_s is None else self.now + timedelta(seconds=delay_s)
        allowed = job.status in finals and (reset or job.attempts < job.max_attempts)
        if not allowed:
            with pytest.raises(errors.InvalidTransition):
                self.queue.reschedule(job.id, reset_attempts=reset, run_at=run_at, now=self.now)
            return
        state = self.queue.reschedule(job.id, reset_attempts=reset, run_at=run_at, now=self.now)
        assert state is QUEUED
        source = job.status
        job.release(QUEUED, self.now)
        job.error = None
        job.run_at = run_at or self.now
        if reset:
            job.attempts = 0
        data_ = {"from": source.value, "reset_attempts": reset}
        job.events.append(("rescheduled", None, None, self.now, data_))

    # rules: worker side

    @rule(
        worker=st.sampled_from(WORKERS),
        limit=st.integers(1, 5),
        lease_s=st.sampled_from(LEASES_S),
    )
    def claim(self, worker: str, limit: int, lease_s: float) -> None:
        self._touch()
        now = self.now
        expired = sorted(
            (j for j in self._running() if j.lease_expires_at and j.lease_expires_at <= now),
            key=lambda j: (j.lease_expires_at, j.id),
        )
        got = self.queue.claim(worker, limit, types=[self.type], lease_s=lease_s, now=now)
        takeover: list[ModelJob] = []
        for job in self._expired_taken(expired, limit):
            attempt = job.open_try()
            attempt.finished_at, attempt.outcome = now, "lease_expired"
            job.events.append(("lease_expired", job.attempts, job.holder, now, None))
            if job.attempts >= job.max_attempts:
                job.release(JobState.DEAD, now)
                job.error = {"kind": "lease_expired"}
                job.events.append(("dead", job.attempts, None, now, None))
            else:
                takeover.append(job)
        due = sorted(
            (j for j in self.jobs.values() if j.status is QUEUED and j.run_at <= now),
            key=_claim_order,
        )
        claimed = takeover + due[: max(limit - len(takeover), 0)]
        assert [j.id for j in got] == [j.id for j in sorted(claimed, key=_claim_order)]
        seen = {t for j in self.jobs.values() for t in j.tokens()}
        for row in got:
            job = self.jobs[row.id]
            assert row.lease_token is not None
            assert row.lease_token not in seen, "a lease token issued twice"
            job.attempts += 1
            job.status, job.token, job.holder = RUNNING, row.lease_token, worker
            job.lease_expires_at = now + timedelta(seconds=lease_s)
            job.heartbeat_at = job.updated_at = now
            job.error = None
            job.tries.append(Try(job.attempts, worker, row.lease_token, now))
            job.events.append(("claimed", job.attempts, worker, now, None))
            assert (row.type, row.tenant_id, row.status) == (self.type, self.tenant, RUNNING)
            assert row.attempts == job.attempts
            assert (row.lease_holder, row.lease_expires_at) == (worker, job.lease_expires_at)

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data(), lease_s=st.sampled_from(LEASES_S))
    def heartbeat(self, data: st.DataObject, lease_s: float) -> None:
        """Beat some held leases of one worker mixed with stale, foreign and bogus ones."""
        self._touch()
        leases: list[tuple[int, UUID]] = []
        holders = sorted({str(j.holder) for j in self._running()})
        worker = data.draw(st.sampled_from(holders or WORKERS), label="worker")
        held = sorted(j.id for j in self._running() if j.holder == worker)
        beats = data.draw(st.lists(st.sampled_from(held), unique=True), "held") if held else []
        for job_id in beats:
            token = self.jobs[job_id].token
            assert token is not None
            leases.append((job_id, token))
        others = [*sorted(set(self.jobs) - {i for i, _ in leases}), NO_SUCH_JOB]
        extra = data.draw(st.lists(st.sampled_from(others), unique=True, max_size=3), "others")
        canceled = [
            j.id for j in self.jobs.values()
            if j.status is JobState.CANCELED and j.tries and j.id not in extra
        ]  # fmt: skip
        late: bool = data.draw(st.booleans(), label="a canceled job's worker")
        if canceled and late:
            extra.append(data.draw(st.sampled_from(canceled), label="canceled job"))
        for job_id in extra if extra or leases else others[-1:]:
            job = self.jobs.get(job_id)
            tokens = [*(job.tokens()[::-1] if job else []), UUID(int=job_id)]  # never issued
            leases.append((job_id, data.draw(st.sampled_from(tokens), label=f"token {job_id}")))
        got = self.queue.heartbeat(worker, leases, lease_s=lease_s, now=self.now)
        expected: dict[int, str] = {}
        for job_id, token in leases:
            job = self.jobs.get(job_id)
            if job is not None and job.holds(worker, token):
                expected[job_id] = "ok"
                job.lease_expires_at = self.now + timedelta(seconds=lease_s)
                job.heartbeat_at = self.now
            elif job is not None and job.status is JobState.CANCELED and token in job.tokens():
                expected[job_id] = "canceled"
            else:
                expected[job_id] = "lost"
        assert got == expected

    @precondition(lambda self: bool(self._running()))
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        job = self._pick(data, self._running())
        holder, token = job.lease()
        self._finish(holder, [(job, token, "succeeded")])

    @precondition(lambda self: bool(self._running()))
    @rule(data=st.data())
    def fail_retryable(self, data: st.DataObject) -> None:
        job = self._pick(data, self._running())
        holder, token = job.lease()
        self._finish(holder, [(job, token, "retry")])

    @precondition(lambda self: bool(self._running()))
    @rule(data=st.data())
    def fail_non_retryable(self, data: st.DataObject) -> None:
        job = self._pick(data, self._running())
        holder, token = job.lease()
        self._finish(holder, [(job, token, "failed")])

    @precondition(lambda self: bool(self._running()))
    @rule(data=st.data())
    def finish_a_batch(self, data: st.DataObject) -> None:
        """Several held jobs of one worker at once, with a late entry for another job mixed in."""
        holder = data.draw(st.sampled_from(sorted({str(j.holder) for j in self._running()})))
        held = sorted(j.id for j in self._running() if j.holder == holder)
        ids = data.draw(st.lists(st.sampled_from(held), min_size=1, unique=True), label="jobs")
        outcome = st.sampled_from(("succeeded", "retry", "failed"))
        entries: list[tuple[ModelJob, UUID, str]] = []
        for job_id in ids:
            job = self.jobs[job_id]
            assert job.token is not None
            entries.append((job, job.token, data.draw(outcome, label=f"outcome {job_id}")))
        stale = [j for j in self.jobs.values() if j.id not in ids and j.tries]
        late: bool = data.draw(st.booleans(), label="with a late entry")
        if stale and late:
            job = self._pick(data, stale)
            token = data.draw(st.sampled_from(job.tokens()), label="token")
            entries.append((job, token, data.draw(outcome, label="late outcome")))
        self._finish(holder, entries)

    def _late_leases(self) -> list[tuple[int, UUID, str]]:
        """Every (job, token, worker) ever issued that is not a valid lease now."""
        return [
            (job.id, token, worker)
            for job in self.jobs.values()
            for token in job.tokens()
            for worker in WORKERS
            if not job.holds(worker, token)
        ]

    @precondition(lambda self: bool(self._late_leases()))
    @rule(data=st.data(), outcome=st.sampled_from(("succeeded", "retry", "failed")))
    def late_finish(self, data: st.DataObject, outcome: str) -> None:
        """A duplicate, late or foreign finish (old token, or another worker): always 'lost'."""
        job_id, token, worker = data.draw(st.sampled_from(self._late_leases()), "late lease")
        self._finish(worker, [(self.jobs[job_id], token, outcome)])

    @precondition(lambda self: any(j.tries for j in self.jobs.values()))
    @rule(
        data=st.data(),
        pct=st.sampled_from((0.0, 25.0, 50.0, 100.0)),
        message=st.none() | st.just("halfway"),
        held=st.booleans(),
    )
    def progress(self, data: st.DataObject, pct: float, message: str | None, held: bool) -> None:
        """Progress of a held lease, or of a stale or foreign one (refused, nothing written)."""
        self._touch()
        if held and self._running():
            job = self._pick(data, self._running())
            worker, token = job.lease()
        else:
            job = self._pick(data, [j for j in self.jobs.values() if j.tries])
            token = data.draw(st.sampled_from(job.tokens()[::-1]), label="token")
            worker = data.draw(st.sampled_from(WORKERS), label="worker")
        fenced_in = job.holds(worker, token)
        assert self.queue.progress(worker, job.id, token, pct, message, now=self.now) is fenced_in
        if fenced_in:
            job.progress_pct, job.progress_message, job.updated_at = pct, message, self.now
            data_ = {"pct": pct, "message": message}
            job.events.append(("progress", job.attempts, worker, self.now, data_))

    @rule(seconds=st.sampled_from(CLOCK_STEPS_S))
    def advance_clock(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    @precondition(lambda self: bool(self._running()))
    @rule(data=st.data(), past_s=st.sampled_from((0.0, 0.5)))
    def advance_clock_to_a_lease_expiry(self, data: st.DataObject, past_s: float) -> None:
        """Exactly to (a lease expires at its instant) or just past a running job's expiry."""
        expires = self._pick(data, self._running()).lease_expires_at
        assert expires is not None
        self.now = max(self.now, expires + timedelta(seconds=past_s))

    # invariants

    @invariant()
    def the_database_holds_the_model_s_jobs(self) -> None:
        snap = self._snap()
        assert set(snap.jobs) == set(self.jobs), "jobs written or lost behind the model's back"
        for job_id, row in snap.jobs.items():
            assert (row["tenant_id"], row["type"]) == (self.tenant, self.type)
            actual = {name: row[name] for name in self.jobs[job_id].view()}
            actual["status"] = JobState(actual["status"])
            actual["error"] = _error_view(actual["error"])
            assert actual == self.jobs[job_id].view(), f"job {job_id}"
        assert snap.results == self.results

    @invariant()
    def attempt_rows_and_events_match_the_model(self) -> None:
        snap = self._snap()
        for job_id, job in self.jobs.items():
            tries = [
                Try(r["attempt"], r["worker"], r["lease_token"], r["started_at"],
                    r["finished_at"], r["outcome"], r["error"])
                for r in snap.tries.get(job_id, [])
            ]  # fmt: skip
            stored = [replace(t, token=lease_id(t.token)) for t in job.tries]
            assert tries == stored, f"attempt rows of job {job_id}"
            events = [_event_view(r) for r in snap.events.get(job_id, [])]
            assert events == job.events, f"event log of job {job_id}"

    @invariant()
    def one_valid_lease_per_running_job(self) -> None:
        snap = self._snap()
        running_tokens = []
        for job_id, row in snap.jobs.items():
            lease = (row["lease_token"], row["lease_holder"], row["lease_expires_at"])
            open_tries = [t for t in snap.tries.get(job_id, []) if t["finished_at"] is None]
            if row["status"] == RUNNING:
                assert None not in lease, f"running job {job_id} without a full lease"
                assert [(t["lease_token"], t["worker"]) for t in open_tries] == [lease[:2]]
                running_tokens.append(row["lease_token"])
            else:
                assert lease == (None, None, None), f"{row['status']} job {job_id} has a lease"
                assert open_tries == [], f"{row['status']} job {job_id} has an open attempt"
        assert len(running_tokens) == len(set(running_tokens)), "a lease token held twice"

    @invariant()
    def terminal_iff_finished_and_attempts_within_bounds(self) -> None:
        snap = self._snap()
        for job_id, row in snap.jobs.items():
            status = JobState(row["status"])
            assert (row["finished_at"] is not None) == (status in TERMINAL), f"job {job_id}"
            assert 0 <= row["attempts"] <= row["max_attempts"], f"job {job_id}"
            if status is QUEUED:
                assert row["attempts"] < row["max_attempts"], f"queued job {job_id} can't run"
            if status is JobState.DEAD:
                assert row["attempts"] == row["max_attempts"], f"dead job {job_id} had tries left"
            assert (job_id in snap.results) == (status is JobState.SUCCEEDED), f"job {job_id}"

    @invariant()
    def event_logs_replay_to_the_status(self) -> None:
        """Each job's log is a legal path through the transition table ending at its status."""
        snap = self._snap()
        for job_id, row in snap.jobs.items():
            events = snap.events.get(job_id, [])
            assert [e["kind"] for e in events[:1]] == ["created"], f"job {job_id}: {events}"
            state, attempts, expiring, claims = QUEUED, 0, False, []
            for previous, event in itertools.pairwise(events):
                kind, where = event["kind"], f"job {job_id} event {event['kind']}"
                assert event["at"] >= previous["at"], where
                assert not expiring or kind in ("claimed", "dead"), where
                if kind in ("progress", "lease_expired"):
                    assert state is RUNNING, where
                    assert event["attempt"] == attempts, where
                    expiring = kind == "lease_expired"
                    continue
                if kind == "claimed":
                    assert state is (RUNNING if expiring else QUEUED), where
                    attempts += 1
                    assert event["attempt"] == attempts, where
                    claims.append((event["attempt"], event["worker"]))
                    new = RUNNING
                elif kind == "retry_scheduled":
                    assert state is RUNNING, where
                    assert attempts < row["max_attempts"], where
                    new = QUEUED
                elif kind == "rescheduled":
                    assert state in (JobState.FAILED, JobState.DEAD, JobState.CANCELED), where
                    assert event["data"]["from"] == state.value, where
                    attempts = 0 if event["data"]["reset_attempts"] else attempts
                    new = QUEUED
                else:
                    new = JobState(kind)
                    assert new in TERMINAL, where
                    if new is JobState.DEAD:
                        assert attempts == row["max_attempts"], where
                if kind in ("retry_scheduled", "succeeded", "failed", "dead"):
                    assert event["attempt"] == attempts, where
                if kind == "canceled":
                    assert event["attempt"] == (attempts or None), where
                assert (state, new) in TRANSITIONS, f"{where}: {state} -> {new}"
                state, expiring = new, False
            assert not expiring, f"job {job_id}: a lease expired with no outcome"
            assert state is JobState(row["status"]), f"job {job_id}: log ends {state}"
            assert attempts == row["attempts"], f"job {job_id}"
            tries = [(t["attempt"], t["worker"]) for t in snap.tries.get(job_id, [])]
            assert claims == tries, f"job {job_id}: claimed events vs attempt rows"


def test_the_queue_behaves_like_its_model(jobforge_db: Database) -> None:
    with (
        QueueClient.connect(jobforge_db.dsn, max_size=2) as shared,
        jobforge_db.connect() as conn,
    ):
        # Given a factory, as hypothesis documents; its newest stubs ask for a class (and older
        # ones were untyped), so the call goes through Any.
        run: Any = run_state_machine_as_test
        run(lambda: QueueMachine(shared.pool, conn), settings=SETTINGS)


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [("succeeded", "succeeded"), ("retry", "retry_scheduled"), ("failed", "failed")],
)
def test_a_job_twice_in_one_finish_batch_is_finished_once(
    jobforge_db: Database, outcome: str, kind: str
) -> None:
    """A job listed twice in one finish batch is finished once: the first entry lands, the
    repeat is 'lost' (found by the state machine; before 0004's fix it was logged twice, or the
    batch failed on the results upsert)."""
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        queue.enqueue("ops.scan", {}, now=T0)
        (job,) = queue.claim("w1", 1, now=T0)
        assert job.lease_token is not None
        error = None if outcome == "succeeded" else {"m": "boom"}
        entry = Outcome(
            job_id=job.id, lease_token=job.lease_token, outcome=outcome,  # type: ignore[arg-type]
            result={"ok": True}, error=error,
        )  # fmt: skip
        assert queue.finish("w1", [entry, entry], now=T0) == {job.id: kind}
        assert [e.kind for e in queue.events(job.id)] == ["created", "claimed", kind]
        assert [a.outcome for a in queue.attempts(job.id)] == [outcome]
