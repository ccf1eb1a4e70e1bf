"""Every queue call once, as a generator of the statements it runs: the core the sync and the
async client share (`QueueClient`, `AsyncQueueClient`), which does no I/O itself.

An operation yields `Statement`s and is sent back each one's rows; what it returns is the call's
answer. A client runs the statements of one operation in one transaction, scoped as they ask: the
client's tenant (under row-level security as `jobforge_app` when the login may take that role),
or the worker scope across tenants. The transaction travels in one round trip (`db.flight`): a
statement's rows are read after the commit, unless it says `more` (another statement may follow
it in the transaction, chosen by its rows), which costs a round trip of its own. What a call
sends, in which order and how its answer is read is written here once; the clients only execute
the statements, one blocking, one awaiting, the way psycopg's sync and async connections drive the
same generators.
"""

from __future__ import annotations

import copy
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

from pydantic import BaseModel

from jobforge import db
from jobforge.queue import audit, bulk, calls, catalogue, projects
from jobforge.queue import connectors as conn
from jobforge.queue import events as ev
from jobforge.queue import schedules as sched
from jobforge.queue import triggers as trig
from jobforge.queue.bulk import Action
from jobforge.queue.models import (
    Attempt,
    Enqueued,
    Event,
    FinishState,
    HeartbeatState,
    Job,
    NewJob,
    Outcome,
    Page,
    PruneCursor,
    Pruned,
    ReleaseState,
    RunRow,
    RunWrite,
)
from jobforge.queue.stats import DEFAULT_EXPIRING_S, RECENT_S, QueueStats
from jobforge.queue.stats import parse as parse_stats
from jobforge.sql import query
from jobforge.states import JobState

P = TypeVar("P", db.ConnectionPool, db.AsyncConnectionPool)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of an operation, and the scope of the transaction it runs in."""

    call: calls.Call
    worker: bool = False  #: the worker scope across tenants, not the client's tenant
    #: Load the rows one by one (`db.load_each`), keeping these columns' raw text of a row that
    #: cannot be loaded; None: fetch them all at once.
    keep: tuple[str, ...] | None = None
    #: Another statement may follow in the same transaction: its rows are read before the commit
    #: (a round trip of its own). Without it the transaction ends here, its rows read after
    #: COMMIT; a statement the operation yields next runs in a transaction of its own.
    more: bool = False
    #: The statement carries the client's scope as arguments (`db.solo_scope`) and runs alone in
    #: autocommit: one message, no BEGIN, session_scope or COMMIT around it (`db.solo`).
    solo: bool = False

    def query(self) -> tuple[str, dict[str, Any]]:
        """The statement text and the parameters a cursor executes."""
        return query(self.call[0]), self.call[1]


#: An operation: sent each statement's rows (dict rows, or `db.Loaded` with `keep`).
Steps = Generator[Statement, Any, T]


class Stepper(Generic[T]):
    """An operation as a client runs it: `statement` is the one to run next, until the operation
    has answered (`answer`; `statement` None). `worker`: the scope of its transaction."""

    def __init__(self, op: Steps[T]) -> None:
        self._op = op
        self.statement: Statement | None = None
        self.answer: T
        self.send(None)  # to its first statement
        self.worker = self.statement is not None and self.statement.worker

    def send(self, rows: Any) -> None:
        """Hand the operation the rows of `statement`: on to the next one, or to its answer."""
        try:
            statement = self._op.send(rows)
        except StopIteration as done:
            self.statement, self.answer = None, done.value
            return
        if self.statement is not None and statement.worker != self.statement.worker:
            raise AssertionError("the statements of an operation share its transaction's scope")
        self.statement = statement


class ClientBase(Generic[P]):
    """What both clients hold: the pool, the tenant they act for, the queue's limits."""

    def __init__(
        self,
        pool: P,
        *,
        tenant: str | None = None,
        max_payload_bytes: int = calls.DEFAULT_MAX_PAYLOAD_BYTES,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 3600.0,
        actor: str | None = None,
        reason: str | None = None,
        project: str | None = None,
    ) -> None:
        self.pool: P = pool
        self.tenant = tenant
        #: The project scope of every transaction (None: every project of the tenant).
        self.project = projects.checked(project)
        self.max_payload_bytes = max_payload_bytes
        self.backoff = (backoff_base_s, backoff_cap_s)
        self.acting = audit.acting(actor, reason)
        #: Runner catalogue entries this client read, trusted for a few seconds (`request`).
        self.catalogue = catalogue.Cache()

    def acting_as(self, actor: str | None = None, *, reason: str | None = None) -> Self:
        """This client (same pool and tenant) with another actor (None: this one's) and reason:
        every event its calls write records them (migrations/0014), e.g.
        `client.acting_as("alice", reason="duplicate").cancel(job_id)`. An actor too long or
        with control characters is one line (`ConfigurationError`) before anything is sent."""
        other = copy.copy(self)
        other.acting = audit.acting(actor if actor is not None else self.acting.actor, reason)
        return other

    def in_project(self, project: str | None) -> Self:
        """This client (same pool, tenant and actor) scoped to `project` (None: every project):
        its calls see and change that project's jobs only (row-level security, migrations/0016),
        and the jobs it enqueues without a project go there. A bad name is one line
        (`ConfigurationError`) before anything is sent."""
        other = copy.copy(self)
        other.project = projects.checked(project)
        return other

    def _app_role(self, worker: bool) -> bool:
        """Whether a transaction takes the role jobforge_app: when acting for a tenant."""
        return self.tenant is not None and not worker


Client = ClientBase[Any]


def _tenant(call: calls.Call, *, more: bool = False) -> Statement:
    return Statement(call, more=more)


def _worker(call: calls.Call, *, more: bool = False) -> Statement:
    return Statement(call, worker=True, more=more)


def _of_job(job_id: int, name: str) -> Steps[calls.Rows]:
    """Rows about one job (events, attempts, result, runs); JobNotFound if it is not visible."""
    job = yield _tenant(calls.get(job_id), more=True)
    rows: calls.Rows = yield _tenant(calls.by_job(name, job_id))
    calls.found(job_id, job)
    return rows


# tenant-scoped
def enqueue(
    client: Client,
    /,  # only positional: `**fields` would take a keyword `client`
    type: str,
    payload: dict[str, Any],
    *,
    now: datetime | None = None,
    **fields: Any,
) -> Steps[Enqueued]:
    new = NewJob(type=type, payload=payload, **fields)
    return (yield from enqueue_one(client, new, now=now))


def enqueue_one(client: Client, job: NewJob, *, now: datetime | None = None) -> Steps[Enqueued]:
    """One job in one statement (migrations/0025: enqueue_one_v1), the client's scope passed
    as its arguments."""
    rows = yield Statement(calls.enqueue_one(job, now, client.max_payload_bytes), solo=True)
    return calls.enqueued_one(rows)


def enqueue_many(
    client: Client, jobs: Sequence[NewJob], *, now: datetime | None = None
) -> Steps[list[Enqueued]]:
    return calls.enqueued((yield _tenant(calls.enqueue_many(jobs, now, client.max_payload_bytes))))


def request(
    client: Client,
    /,  # only positional: `**fields` would take a keyword `client`
    runner_id: str,
    input: Any,
    *,
    now: datetime | None = None,
    **fields: Any,
) -> Steps[Enqueued]:
    """Enqueue a job of a catalogued runner by its id, without the runner's code: the runner
    must be in the catalogue (`jobforge runners sync`) and enabled, and `input` (a mapping or a
    pydantic model) valid against its synced input schema, else one line naming the problem
    (`UnknownRunner`, `RunnerDisabled`, `InvalidJob` with the field's path) and nothing is
    stored. The entry is read at most every few seconds (`client.catalogue`); the database
    refuses a disabled runner's job itself, whatever a cached entry says. `fields` as for
    `enqueue` (idempotency_key, priority, run_at, max_attempts, trace_id)."""
    entry = yield from catalogue_entry(client, runner_id)
    payload = input.model_dump(mode="json") if isinstance(input, BaseModel) else input
    checked = catalogue.check_request(entry, runner_id, payload)
    new = NewJob(type=runner_id, payload=checked, **fields)
    new = catalogue.with_declared_attempts(entry, new, given="max_attempts" in fields)
    return (yield from enqueue_one(client, new, now=now))


def catalogue_entry(client: Client, runner_id: str) -> Steps[catalogue.CatalogueEntry | None]:
    """The runner's catalogue entry (None: not catalogued), read at most every few seconds."""
    fresh, entry = client.catalogue.get(runner_id)
    if not fresh:
        rows = yield _tenant(("catalogue_get", {"id": runner_id}))
        entry = catalogue.entry_of(rows[0]) if rows else None
        client.catalogue.put(runner_id, entry)
    return entry


def get(client: Client, job_id: int) -> Steps[Job]:
    return calls.found(job_id, (yield _tenant(calls.get(job_id))))


def list_jobs(
    client: Client,
    *,
    status: Sequence[JobState | str] | None = None,
    type: Sequence[str] | None = None,
    before: int | None = None,
    limit: int = 50,
    project: str | None = None,
) -> Steps[Page]:
    """The tenant's jobs, newest first, filtered by status, type and `project` (within the
    client's project scope, when it has one)."""
    rows = yield _tenant(calls.listing(status, type, before, limit, project))
    return calls.page(calls.jobs(rows), limit)


def events(client: Client, job_id: int) -> Steps[list[Event]]:
    return calls.events((yield from _of_job(job_id, "job_events")))


def attempts(client: Client, job_id: int) -> Steps[list[Attempt]]:
    return calls.attempts((yield from _of_job(job_id, "job_attempts")))


def result(client: Client, job_id: int) -> Steps[Any]:
    return calls.result((yield from _of_job(job_id, "job_result")))


def audit_list(
    client: Client,
    *,
    since: datetime,
    kind: Sequence[str] | None = None,
    actor: str | None = None,
    job_id: int | None = None,
    limit: int = 100,
) -> Steps[list[audit.AuditEvent]]:
    """The tenant's events that carry an actor, since a time, newest first."""
    rows = yield _tenant(audit.list_call(since, kind, actor, job_id, limit))
    return audit.events_of(rows)


def audit_summary(
    client: Client,
    *,
    since: datetime,
    kind: Sequence[str] | None = None,
    actor: str | None = None,
) -> Steps[list[audit.AuditCount]]:
    """How many events of each kind each actor caused since a time, for the tenant."""
    return audit.counts_of((yield _tenant(audit.summary_call(since, kind, actor))))


def cancel(client: Client, job_id: int, *, now: datetime | None = None) -> Steps[JobState]:
    return JobState(calls.single((yield _tenant(calls.cancel(job_id, now)))))


def reschedule(
    client: Client,
    job_id: int,
    *,
    reset_attempts: bool = False,
    run_at: datetime | None = None,
    now: datetime | None = None,
) -> Steps[JobState]:
    call = calls.reschedule(job_id, reset_attempts, run_at, now)
    return JobState(calls.single((yield _tenant(call))))


def bulk_batch(
    client: Client,
    action: Action,
    flt: bulk.Filter,
    *,
    reset_attempts: bool = False,
    after_id: int = 0,
    limit: int = bulk.DEFAULT_BATCH,
    dry_run: bool = False,
    ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> Steps[bulk.Batch]:
    """One batch of a bulk retry or cancel of the tenant's jobs (see `jobforge.queue.bulk`):
    at most `limit` matching jobs with ids above `after_id` (and among `ids`, when given); dry,
    the count of all that match."""
    call = bulk.call(action, flt, reset_attempts=reset_attempts, after_id=after_id, limit=limit,
                     dry_run=dry_run, ids=ids, now=now)  # fmt: skip
    (row,) = yield _tenant(call)
    last = row["last_id"]
    return bulk.Batch(
        matched=int(row["matched"]),
        changed=int(row["changed"]),
        skipped=int(row["skipped"]),
        last_id=None if last is None else int(last),
        busy_ids=tuple(int(i) for i in row["busy_ids"] or ()),
    )


# schedules (migrations/0018): the tenant's
def schedule_add(
    client: Client, new: sched.NewSchedule, *, now: datetime | None = None
) -> Steps[sched.Schedule]:
    """Add a schedule for the client's tenant (refused while the tenant's `schedules` feature
    is off: `errors.FeatureDisabled`). Its expression and zone are checked here first."""
    new.check()
    return sched.schedule((yield _tenant(sched.add(new, now))))


def schedule_pause(
    client: Client, name: str, *, paused: bool = True, now: datetime | None = None
) -> Steps[sched.Schedule]:
    """Pause a schedule, or (`paused=False`) resume it: its slots count from now again."""
    return sched.schedule((yield _tenant(sched.pause(name, paused, now))), name)


def schedule_remove(client: Client, name: str) -> Steps[int]:
    """Remove a schedule and its firing log (its jobs stay); its id."""
    return int(calls.single((yield _tenant(sched.remove(name)))))


def schedule_list(client: Client) -> Steps[list[sched.Schedule]]:
    """The tenant's schedules, by name."""
    return [sched.Schedule.model_validate(r) for r in (yield _tenant(sched.listing()))]


# connector configs (the table of migrations/0002): the tenant's
def connector_set(client: Client, name: str, config: dict[str, Any]) -> Steps[conn.Connector]:
    """Create or replace the tenant's connector config `name`."""
    return conn.connector((yield _tenant(conn.set_call(name, config))), name)


def connector_get(client: Client, name: str) -> Steps[conn.Connector]:
    """The tenant's connector config `name` (`JobNotFound` when it has none)."""
    return conn.connector((yield _tenant(conn.get_call(name))), name)


def connector_find(client: Client, name: str) -> Steps[conn.Connector | None]:
    """The tenant's connector config `name`, None when it has none."""
    rows = yield _tenant(conn.get_call(name))
    return conn.from_row(rows[0]) if rows else None


def connector_list(client: Client) -> Steps[list[conn.Connector]]:
    """The tenant's connector configs, by name."""
    return [conn.from_row(r) for r in (yield _tenant(conn.list_call()))]


def connector_remove(client: Client, name: str) -> Steps[bool]:
    """Remove the tenant's connector config `name`; False when there was none."""
    return bool((yield _tenant(conn.remove_call(name))))


def schedule_get(client: Client, name: str) -> Steps[sched.Schedule]:
    return sched.schedule((yield _tenant(sched.get(name))), name)


def schedule_firings(
    client: Client, name: str, *, limit: int = sched.DEFAULT_FIRINGS
) -> Steps[list[sched.Firing]]:
    """The newest entries of a schedule's firing log, newest first."""
    schedule = yield _tenant(sched.get(name), more=True)
    sched.schedule(schedule, name)
    rows = yield _tenant(sched.firings(name, limit))
    return [sched.Firing.model_validate(r) for r in rows]


# events and triggers (migrations/0020): the tenant's
def event_submit(
    client: Client, new: ev.NewEvent, *, dry_run: bool = False, now: datetime | None = None
) -> Steps[ev.Submitted]:
    """Submit an event for the client's tenant and evaluate its triggers in the same transaction
    (the event and the jobs it fires commit together). Refused while the tenant's `events`
    feature is off (`errors.FeatureDisabled`); a dedupe key used before returns that event
    (`created` False), and with another body is refused (`errors.IdempotencyConflict`).
    `dry_run`: everything is checked and evaluated, then undone; nothing is kept."""
    return ev.submitted((yield _tenant(ev.submit(new, dry_run, now))), dry_run)


def event_list(
    client: Client,
    *,
    type: str | None = None,
    since: datetime | None = None,
    limit: int = ev.DEFAULT_LIST,
) -> Steps[list[ev.StoredEvent]]:
    """The tenant's events, newest first: of one type, submitted since an instant."""
    rows = yield _tenant(ev.listing(type, since, limit))
    return [ev.StoredEvent.model_validate(r) for r in rows]


def trigger_add(
    client: Client, new: trig.NewTrigger, *, now: datetime | None = None
) -> Steps[trig.Trigger]:
    """Add a trigger for the client's tenant (refused while its `triggers` feature is off)."""
    new.check()
    return trig.trigger((yield _tenant(trig.add(new, now))))


def trigger_pause(
    client: Client, name: str, *, paused: bool = True, now: datetime | None = None
) -> Steps[trig.Trigger]:
    """Pause a trigger (its evaluations are logged as skipped), or resume it."""
    call = "trigger_pause", {"name": name, "paused": paused, "now": now}
    return trig.trigger((yield _tenant(call)), name)


def trigger_remove(client: Client, name: str) -> Steps[int]:
    """Remove a trigger and its evaluation log (its jobs stay); its id."""
    return int(calls.single((yield _tenant(("trigger_remove", {"name": name})))))


def trigger_list(client: Client) -> Steps[list[trig.Trigger]]:
    """The tenant's triggers, by name."""
    return [trig.Trigger.model_validate(r) for r in (yield _tenant(("trigger_list", {})))]


def trigger_get(client: Client, name: str) -> Steps[trig.Trigger]:
    return trig.trigger((yield _tenant(("trigger_get", {"name": name}))), name, client.tenant)


def trigger_test(client: Client, name: str, event: ev.NewEvent) -> Steps[trig.TestResult]:
    """Evaluate a trigger on an event without storing anything: whether it matches, why not, or
    the job it would enqueue (its cooldown and hourly cap aside)."""
    envelope = event.model_dump(mode="json", exclude={"dedupe_key"})
    rows = yield _tenant(trig.test(name, envelope))
    return trig.TestResult.model_validate(rows[0])


def trigger_evaluations(
    client: Client, name: str | None = None, *, limit: int = trig.DEFAULT_EVALUATIONS
) -> Steps[list[trig.Evaluation]]:
    """The newest entries of a trigger's evaluation log (None: of all the tenant's)."""
    if name is not None:
        rows = yield _tenant(("trigger_get", {"name": name}), more=True)
        trig.trigger(rows, name, client.tenant)
    rows = yield _tenant(trig.evaluations(name, limit))
    return [trig.Evaluation.model_validate(r) for r in rows]


# the tenant's, or (without one, for a login allowed the worker scope) every tenant's
def stats(
    client: Client,
    *,
    succeeded: bool = True,
    expiring_s: float = DEFAULT_EXPIRING_S,
    now: datetime | None = None,
) -> Steps[QueueStats]:
    """Jobs by tenant, type and state, with the health figures (`jobforge.queue.stats`).
    `succeeded=False` leaves out the one count that reads the whole table."""
    call = "job_stats", {"succeeded": succeeded, "expiring_s": expiring_s,
                         "recent_s": RECENT_S, "now": now}  # fmt: skip
    if client.tenant is not None:
        rows = yield _tenant(call)
    else:
        scopes = yield _worker(calls.login_scopes(), more=True)
        calls.require_worker_scope(scopes, "read every tenant's counts")
        rows = yield _worker(call)
    return parse_stats(rows, tenant=client.tenant, succeeded=succeeded, expiring_s=expiring_s)


# worker side: across tenants, fenced on the lease
def claim(
    client: Client,
    worker: str,
    limit: int,
    *,
    types: Sequence[str] | None = None,
    lease_s: float = calls.DEFAULT_LEASE_S,
    now: datetime | None = None,
) -> Steps[list[Job]]:
    call = calls.claim(worker, limit, types, lease_s, now)
    # One round trip: the claim commits before its rows are loaded (no lock waits on the
    # client's decoding). Rows that cannot be loaded are failed right after, in a transaction of
    # their own, fenced by the lease just taken; should the worker die in between, the lease
    # expires and the next claim takes the row over and fails it then.
    claimed = yield Statement(call, worker=True, keep=calls.CLAIM_KEEP)
    jobs, poisoned = calls.claimed(claimed)
    if poisoned:
        yield _worker(calls.finish(worker, poisoned, now, *client.backoff))
    calls.report_quarantined(worker, poisoned)
    return jobs


def heartbeat(
    client: Client,
    worker: str,
    leases: Sequence[tuple[int, UUID]],
    *,
    lease_s: float = calls.DEFAULT_LEASE_S,
    now: datetime | None = None,
) -> Steps[dict[int, HeartbeatState]]:
    """Per job; see `heartbeat_each` for one answer per lease."""
    answers = yield from heartbeat_each(client, worker, leases, lease_s=lease_s, now=now)
    return calls.first_per_job([i for i, _ in leases], answers)


def heartbeat_each(
    client: Client,
    worker: str,
    leases: Sequence[tuple[int, UUID]],
    *,
    lease_s: float = calls.DEFAULT_LEASE_S,
    now: datetime | None = None,
) -> Steps[list[HeartbeatState]]:
    """Renew the leases; one answer per lease, in order (two leases of one job: one each)."""
    return calls.answers((yield _worker(calls.heartbeat(worker, leases, lease_s, now))))


def finish(
    client: Client, worker: str, outcomes: Sequence[Outcome], *, now: datetime | None = None
) -> Steps[dict[int, FinishState]]:
    """Per job; see `finish_each` for one answer per outcome."""
    answers = yield from finish_each(client, worker, outcomes, now=now)
    return calls.first_per_job([o.job_id for o in outcomes], answers)


def finish_each(
    client: Client, worker: str, outcomes: Sequence[Outcome], *, now: datetime | None = None
) -> Steps[list[FinishState]]:
    """Record the outcomes; one answer per outcome, in order."""
    batches = calls.finish_batches(worker, outcomes, now, client.backoff)
    found = []
    for index, (call, _) in enumerate(batches):
        found.append((yield _worker(call, more=index < len(batches) - 1)))
    return calls.in_order(len(outcomes), [p for _, p in batches], found)


def reap(client: Client, *, limit: int = 1000, now: datetime | None = None) -> Steps[int]:
    """Expire stale leases of every job type (back to the queue, or dead); how many."""
    return int(calls.single((yield _worker(calls.reap(limit, now)))))


def prune_batch(
    client: Client,
    *,
    older_than: timedelta | None = None,
    statuses: Sequence[str] | None = None,
    tenant: str | None = None,
    types: Sequence[str] | None = None,
    runs_only: bool = False,
    dry_run: bool = False,
    batch: int = calls.DEFAULT_PRUNE_BATCH,
    after: PruneCursor | None = None,
    now: datetime | None = None,
    project: str | None = None,
) -> Steps[tuple[Pruned, PruneCursor | None]]:
    """One batch of a prune (an operator's: a member of jobforge_worker), in its own
    transaction: finished jobs `older_than` ago (default: each type's retention), of `tenant`
    (default: the client's tenant, else every tenant) and of `project` (default: the client's
    project scope, else every project); what it deleted, and the cursor to give
    the next batch (None: done). `jobforge.queue.retention.prune` runs them all."""
    call = calls.prune(older_than, statuses, tenant or client.tenant, types, runs_only, dry_run,
                       batch, after, now, project or client.project)  # fmt: skip
    rows = yield _worker(call)
    return calls.pruned(rows), calls.prune_cursor(rows)


def schedule_pass(
    client: Client,
    worker: str,
    *,
    limit: int = sched.DEFAULT_PASS_LIMIT,
    now: datetime | None = None,
) -> Steps[tuple[list[sched.Fired], bool]]:
    """One pass over the due schedules, in one transaction: take up to `limit` of them (locked,
    SKIP LOCKED: another worker's pass fires its own), compute their slots here, enqueue each
    slot's job and move each schedule on. What it fired, and whether it took `limit` (more may
    be due: pass again)."""
    rows = yield _worker(sched.due(limit, now), more=True)
    if not rows:
        return [], False
    fired = yield _worker(sched.fire(sched.plans(rows), worker, now))
    return sched.fired(fired), len(rows) >= limit


def prune_pass(
    client: Client,
    worker: str,
    *,
    every_s: float,
    batch: int = calls.DEFAULT_PRUNE_BATCH,
    hold_s: float = 60.0,
    now: datetime | None = None,
) -> Steps[tuple[Pruned, bool]]:
    """One batch of the workers' periodic prune under the retention settings, when it is this
    worker's turn (one worker at a time, a pass at most every `every_s`); what it deleted, and
    whether the pass has more to do (call again soon) or not (nothing to do, or not our turn)."""
    rows = yield _worker(calls.prune_pass(worker, every_s, batch, hold_s, now))
    return calls.pruned(rows), bool(rows[0]["more"])


def prune_token_uses(
    client: Client, *, batch: int = calls.DEFAULT_PRUNE_BATCH, now: datetime | None = None
) -> Steps[int]:
    """Forget up to `batch` policy-token and signed-envelope uses that can no longer be presented
    (a day and an hour past their expiry: the largest clock skew a worker allows, and a day for
    clocks that disagree; never a use that names no expiry); how many went. A worker's call (the
    workers' periodic prune makes it)."""
    rows = yield _worker(calls.prune_token_uses(batch, now))
    return int(rows[0]["pruned"])


def progress(
    client: Client,
    worker: str,
    job_id: int,
    lease_token: UUID,
    pct: float,
    message: str | None = None,
    *,
    now: datetime | None = None,
) -> Steps[bool]:
    call = calls.progress(worker, job_id, lease_token, pct, message, now)
    return bool(calls.single((yield _worker(call))))


def release(
    client: Client, worker: str, leases: Sequence[tuple[int, UUID]], *, now: datetime | None = None
) -> Steps[dict[int, ReleaseState]]:
    """Give leases back at shutdown: the jobs are due again and keep their attempt."""
    answers = calls.answers((yield _worker(calls.release(worker, leases, now))))
    return calls.first_per_job([i for i, _ in leases], answers)


def acknowledge_cancel(
    client: Client,
    worker: str,
    job_id: int,
    lease_token: UUID,
    data: Any,
    *,
    now: datetime | None = None,
) -> Steps[bool]:
    """Record how a canceled job's handler took the cancellation (once per attempt)."""
    call = calls.acknowledge_cancel(worker, job_id, lease_token, data, now)
    return bool(calls.single((yield _worker(call))))


# run records
def runs(client: Client, job_id: int) -> Steps[list[dict[str, Any]]]:
    """The run records of the job's attempts (format jobforge.run/1), oldest first."""
    return calls.runs((yield from _of_job(job_id, "job_runs")))


def find_runs(
    client: Client,
    *,
    job_ids: Sequence[int] | None = None,
    runner_ids: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
    project: str | None = None,
) -> Steps[list[RunRow]]:
    """Stored run records, newest first: the client's tenant, or every tenant without one
    (only for a login allowed the worker scope: `TenantRequired` otherwise); of `project` only
    when given (and always within the client's project scope)."""
    call = calls.find_runs(job_ids, runner_ids, statuses, since, before_id, limit, project)
    if client.tenant is not None:
        return calls.run_rows((yield _tenant(call)))
    scopes = yield _worker(calls.login_scopes(), more=True)
    rows = yield _worker(call)
    calls.require_worker_scope(scopes, "read every tenant's runs")
    return calls.run_rows(rows)


def record_run(
    client: Client,
    worker: str,
    job_id: int,
    lease_token: UUID,
    run: RunWrite,
    *,
    now: datetime | None = None,
) -> Steps[bool]:
    """Store the record of the attempt `lease_token` (only its worker may, once)."""
    call = calls.record_run(worker, job_id, lease_token, run, now)
    return bool(calls.single((yield _worker(call))))
