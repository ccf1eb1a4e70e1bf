"""The queue client: tenant-scoped operations and the worker-side calls, sync and async.

Every call runs in its own transaction with the tenant (and for worker calls, the worker scope)
set for that transaction only. A client acting for a tenant also takes the role `jobforge_app`
for the transaction when its login may (a superuser may), so row-level security, not only the
queries' own filters, keeps it to its tenant however privileged the login. Errors raised by the
SQL functions arrive as typed `jobforge.errors` exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from jobforge import db
from jobforge.queue import calls
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
    ReleaseState,
    RunRow,
    RunWrite,
)
from jobforge.sql import query
from jobforge.states import JobState

P = TypeVar("P", db.ConnectionPool, db.AsyncConnectionPool)


def _q(call: calls.Call) -> tuple[str, dict[str, Any]]:
    """A call as the statement text and parameters a cursor executes."""
    return query(call[0]), call[1]


class _Base(Generic[P]):
    def __init__(
        self,
        pool: P,
        *,
        tenant: str | None = None,
        max_payload_bytes: int = calls.DEFAULT_MAX_PAYLOAD_BYTES,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 3600.0,
    ) -> None:
        self.pool: P = pool
        self.tenant = tenant
        self.max_payload_bytes = max_payload_bytes
        self.backoff = (backoff_base_s, backoff_cap_s)

    def _app_role(self, worker: bool) -> bool:
        """Whether a transaction takes the role jobforge_app: when acting for a tenant."""
        return self.tenant is not None and not worker


class QueueClient(_Base[db.ConnectionPool]):
    """Synchronous client over a psycopg connection pool."""

    @classmethod
    def connect(
        cls,
        dsn: str,
        *,
        tenant: str | None = None,
        max_size: int = 4,
        check: bool = True,
        **kw: Any,
    ) -> QueueClient:
        """A client with its own pool. An unreachable server, a wrong password or a missing
        database fails here within seconds, naming the server (`DatabaseUnreachable`), instead of
        the pool retrying in the background until a first call times out; `check=False` skips
        that probe (for a database just made, known to be up)."""
        if check:
            db.check_reachable(dsn)
        return cls(
            db.ConnectionPool(dsn, min_size=1, max_size=max_size, open=True), tenant=tenant, **kw
        )

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> QueueClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, call: calls.Call, *, worker: bool = False) -> list[dict[str, Any]]:
        return self._run_all(call, worker=worker)[0]

    @contextmanager
    def transaction(self, *, worker: bool = False) -> Iterator[db.Connection]:
        """A transaction scoped as the client's calls are, for SQL of your own: the client's
        tenant, under row-level security as `jobforge_app` when the login may take that role;
        with `worker=True`, the worker scope across tenants (for a login allowed it).

        A scope, not a sandbox: SQL run here on a privileged login can leave it (`RESET ROLE`,
        `COMMIT`, `set_config`). Run SQL you do not trust on a login bound to its tenant
        (`jobforge.tenant_logins`) that is no member of jobforge_worker."""
        with (
            self.pool.connection() as conn,
            db.tenant_transaction(
                conn, self.tenant, worker=worker, app_role=self._app_role(worker)
            ),
        ):
            yield conn

    def _run_all(self, *batch: calls.Call, worker: bool = False) -> list[list[dict[str, Any]]]:
        """The calls' rows, from one transaction."""
        with self.transaction(worker=worker) as conn:
            cursor = conn.cursor(row_factory=db.dict_row)
            return [cursor.execute(query(name), params).fetchall() for name, params in batch]

    def _of_job(self, job_id: int, name: str) -> list[dict[str, Any]]:
        """Rows about one job (events, attempts, result, runs); JobNotFound if it is not visible."""
        job, rows = self._run_all(calls.get(job_id), calls.by_job(name, job_id))
        calls.found(job_id, job)
        return rows

    # tenant-scoped
    def enqueue(
        self, type: str, payload: dict[str, Any], *, now: datetime | None = None, **fields: Any
    ) -> Enqueued:
        return self.enqueue_many([NewJob(type=type, payload=payload, **fields)], now=now)[0]

    def enqueue_many(
        self, jobs: Sequence[NewJob], *, now: datetime | None = None
    ) -> list[Enqueued]:
        return calls.enqueued(self._run(calls.enqueue_many(jobs, now, self.max_payload_bytes)))

    def get(self, job_id: int) -> Job:
        return calls.found(job_id, self._run(calls.get(job_id)))

    def list_jobs(
        self,
        *,
        status: Sequence[JobState | str] | None = None,
        type: Sequence[str] | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> Page:
        return calls.page(calls.jobs(self._run(calls.listing(status, type, before, limit))), limit)

    def events(self, job_id: int) -> list[Event]:
        return calls.events(self._of_job(job_id, "job_events"))

    def attempts(self, job_id: int) -> list[Attempt]:
        return calls.attempts(self._of_job(job_id, "job_attempts"))

    def result(self, job_id: int) -> Any:
        return calls.result(self._of_job(job_id, "job_result"))

    def cancel(self, job_id: int, *, now: datetime | None = None) -> JobState:
        return JobState(calls.single(self._run(calls.cancel(job_id, now))))

    def reschedule(
        self,
        job_id: int,
        *,
        reset_attempts: bool = False,
        run_at: datetime | None = None,
        now: datetime | None = None,
    ) -> JobState:
        call = calls.reschedule(job_id, reset_attempts, run_at, now)
        return JobState(calls.single(self._run(call)))

    # worker side: across tenants, fenced on the lease
    def claim(
        self,
        worker: str,
        limit: int,
        *,
        types: Sequence[str] | None = None,
        lease_s: float = calls.DEFAULT_LEASE_S,
        now: datetime | None = None,
    ) -> list[Job]:
        name, params = calls.claim(worker, limit, types, lease_s, now)
        with self.transaction(worker=True) as conn:
            cursor = conn.cursor(row_factory=db.dict_row)
            cursor.execute(query(name), params)
            jobs, poisoned = calls.claimed(db.load_each(cursor, calls.CLAIM_KEEP))
            if poisoned:
                cursor.execute(*_q(calls.finish(worker, poisoned, now, *self.backoff)))
        calls.report_quarantined(worker, poisoned)
        return jobs

    def heartbeat(
        self,
        worker: str,
        leases: Sequence[tuple[int, UUID]],
        *,
        lease_s: float = calls.DEFAULT_LEASE_S,
        now: datetime | None = None,
    ) -> dict[int, HeartbeatState]:
        """Per job; see `heartbeat_each` for one answer per lease."""
        answers = self.heartbeat_each(worker, leases, lease_s=lease_s, now=now)
        return calls.first_per_job([i for i, _ in leases], answers)

    def heartbeat_each(
        self,
        worker: str,
        leases: Sequence[tuple[int, UUID]],
        *,
        lease_s: float = calls.DEFAULT_LEASE_S,
        now: datetime | None = None,
    ) -> list[HeartbeatState]:
        """Renew the leases; one answer per lease, in order (two leases of one job: one each)."""
        return calls.answers(self._run(calls.heartbeat(worker, leases, lease_s, now), worker=True))

    def finish(
        self, worker: str, outcomes: Sequence[Outcome], *, now: datetime | None = None
    ) -> dict[int, FinishState]:
        """Per job; see `finish_each` for one answer per outcome."""
        answers = self.finish_each(worker, outcomes, now=now)
        return calls.first_per_job([o.job_id for o in outcomes], answers)

    def finish_each(
        self, worker: str, outcomes: Sequence[Outcome], *, now: datetime | None = None
    ) -> list[FinishState]:
        """Record the outcomes; one answer per outcome, in order."""
        batches = calls.finish_batches(worker, outcomes, now, self.backoff)
        found = self._run_all(*(call for call, _ in batches), worker=True)
        return calls.in_order(len(outcomes), [p for _, p in batches], found)

    def reap(self, *, limit: int = 1000, now: datetime | None = None) -> int:
        """Expire stale leases of every job type (back to the queue, or dead); how many."""
        return int(calls.single(self._run(calls.reap(limit, now), worker=True)))

    def progress(
        self,
        worker: str,
        job_id: int,
        lease_token: UUID,
        pct: float,
        message: str | None = None,
        *,
        now: datetime | None = None,
    ) -> bool:
        call = calls.progress(worker, job_id, lease_token, pct, message, now)
        return bool(calls.single(self._run(call, worker=True)))

    def release(
        self, worker: str, leases: Sequence[tuple[int, UUID]], *, now: datetime | None = None
    ) -> dict[int, ReleaseState]:
        """Give leases back at shutdown: the jobs are due again and keep their attempt."""
        answers = calls.answers(self._run(calls.release(worker, leases, now), worker=True))
        return calls.first_per_job([i for i, _ in leases], answers)

    def acknowledge_cancel(
        self, worker: str, job_id: int, lease_token: UUID, data: Any, *, now: datetime | None = None
    ) -> bool:
        """Record how a canceled job's handler took the cancellation (once per attempt)."""
        call = calls.acknowledge_cancel(worker, job_id, lease_token, data, now)
        return bool(calls.single(self._run(call, worker=True)))

    def runs(self, job_id: int) -> list[dict[str, Any]]:
        """The run records of the job's attempts (format jobforge.run/1), oldest first."""
        return calls.runs(self._of_job(job_id, "job_runs"))

    def find_runs(
        self,
        *,
        job_ids: Sequence[int] | None = None,
        runner_ids: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[RunRow]:
        """Stored run records, newest first: the client's tenant, or every tenant without one
        (only for a login allowed the worker scope: `TenantRequired` otherwise)."""
        call = calls.find_runs(job_ids, runner_ids, statuses, since, before_id, limit)
        if self.tenant is not None:
            return calls.run_rows(self._run(call))
        scopes, rows = self._run_all(calls.login_scopes(), call, worker=True)
        calls.require_worker_scope(scopes, "read every tenant's runs")
        return calls.run_rows(rows)

    def record_run(
        self,
        worker: str,
        job_id: int,
        lease_token: UUID,
        run: RunWrite,
        *,
        now: datetime | None = None,
    ) -> bool:
        """Store the record of the attempt `lease_token` (only its worker may, once)."""
        call = calls.record_run(worker, job_id, lease_token, run, now)
        return bool(calls.single(self._run(call, worker=True)))


class AsyncQueueClient(_Base[db.AsyncConnectionPool]):
    """Asynchronous client over a psycopg async pool; the same calls as `QueueClient`."""

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        tenant: str | None = None,
        max_size: int = 4,
        check: bool = True,
        **kw: Any,
    ) -> AsyncQueueClient:
        """`check=False` skips the up-front probe (for a database just made, known to be up)."""
        if check:
            await db.check_reachable_async(dsn)
        pool = db.AsyncConnectionPool(dsn, min_size=1, max_size=max_size, open=False)
        await pool.open()
        return cls(pool, tenant=tenant, **kw)

    async def close(self) -> None:
        await self.pool.close()

    async def _run(self, call: calls.Call, *, worker: bool = False) -> list[dict[str, Any]]:
        return (await self._run_all(call, worker=worker))[0]

    @asynccontextmanager
    async def transaction(self, *, worker: bool = False) -> AsyncIterator[db.AsyncConnection]:
        """`QueueClient.transaction` for an async connection."""
        async with (
            self.pool.connection() as conn,
            db.tenant_transaction_async(
                conn, self.tenant, worker=worker, app_role=self._app_role(worker)
            ),
        ):
            yield conn

    async def _run_all(
        self, *batch: calls.Call, worker: bool = False
    ) -> list[list[dict[str, Any]]]:
        """The calls' rows, from one transaction."""
        async with self.transaction(worker=worker) as conn:
            cursor = conn.cursor(row_factory=db.dict_row)
            found = []
            for name, params in batch:
                await cursor.execute(query(name), params)
                found.append(await cursor.fetchall())
            return found

    async def _of_job(self, job_id: int, name: str) -> list[dict[str, Any]]:
        """Rows about one job (events, attempts, result, runs); JobNotFound if it is not visible."""
        job, rows = await self._run_all(calls.get(job_id), calls.by_job(name, job_id))
        calls.found(job_id, job)
        return rows

    async def enqueue(
        self, type: str, payload: dict[str, Any], *, now: datetime | None = None, **fields: Any
    ) -> Enqueued:
        return (await self.enqueue_many([NewJob(type=type, payload=payload, **fields)], now=now))[0]

    async def enqueue_many(
        self, jobs: Sequence[NewJob], *, now: datetime | None = None
    ) -> list[Enqueued]:
        rows = await self._run(calls.enqueue_many(jobs, now, self.max_payload_bytes))
        return calls.enqueued(rows)

    async def get(self, job_id: int) -> Job:
        return calls.found(job_id, await self._run(calls.get(job_id)))

    async def list_jobs(
        self,
        *,
        status: Sequence[JobState | str] | None = None,
        type: Sequence[str] | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> Page:
        rows = await self._run(calls.listing(status, type, before, limit))
        return calls.page(calls.jobs(rows), limit)

    async def events(self, job_id: int) -> list[Event]:
        return calls.events(await self._of_job(job_id, "job_events"))

    async def attempts(self, job_id: int) -> list[Attempt]:
        return calls.attempts(await self._of_job(job_id, "job_attempts"))

    async def result(self, job_id: int) -> Any:
        return calls.result(await self._of_job(job_id, "job_result"))

    async def cancel(self, job_id: int, *, now: datetime | None = None) -> JobState:
        return JobState(calls.single(await self._run(calls.cancel(job_id, now))))

    async def reschedule(
        self,
        job_id: int,
        *,
        reset_attempts: bool = False,
        run_at: datetime | None = None,
        now: datetime | None = None,
    ) -> JobState:
        call = calls.reschedule(job_id, reset_attempts, run_at, now)
        return JobState(calls.single(await self._run(call)))

    async def claim(
        self,
        worker: str,
        limit: int,
        *,
        types: Sequence[str] | None = None,
        lease_s: float = calls.DEFAULT_LEASE_S,
        now: datetime | None = None,
    ) -> list[Job]:
        name, params = calls.claim(worker, limit, types, lease_s, now)
        async with self.transaction(worker=True) as conn:
            cursor = conn.cursor(row_factory=db.dict_row)
            await cursor.execute(query(name), params)
            jobs, poisoned = calls.claimed(await db.load_each_async(cursor, calls.CLAIM_KEEP))
            if poisoned:
                await cursor.execute(*_q(calls.finish(worker, poisoned, now, *self.backoff)))
        calls.report_quarantined(worker, poisoned)
        return jobs

    async def heartbeat(
        self,
        worker: str,
        leases: Sequence[tuple[int, UUID]],
        *,
        lease_s: float = calls.DEFAULT_LEASE_S,
        now: datetime | None = None,
    ) -> dict[int, HeartbeatState]:
        """Per job; see `heartbeat_each` for one answer per lease."""
        answers = await self.heartbeat_each(worker, leases, lease_s=lease_s, now=now)
        return calls.first_per_job([i for i, _ in leases], answers)

    async def heartbeat_each(
        self,
        worker: str,
        leases: Sequence[tuple[int, UUID]],
        *,
        lease_s: float = calls.DEFAULT_LEASE_S,
        now: datetime | None = None,
    ) -> list[HeartbeatState]:
        """Renew the leases; one answer per lease, in order (two leases of one job: one each)."""
        call = calls.heartbeat(worker, leases, lease_s, now)
        return calls.answers(await self._run(call, worker=True))

    async def finish(
        self, worker: str, outcomes: Sequence[Outcome], *, now: datetime | None = None
    ) -> dict[int, FinishState]:
        """Per job; see `finish_each` for one answer per outcome."""
        answers = await self.finish_each(worker, outcomes, now=now)
        return calls.first_per_job([o.job_id for o in outcomes], answers)

    async def finish_each(
        self, worker: str, outcomes: Sequence[Outcome], *, now: datetime | None = None
    ) -> list[FinishState]:
        """Record the outcomes; one answer per outcome, in order."""
        batches = calls.finish_batches(worker, outcomes, now, self.backoff)
        found = await self._run_all(*(call for call, _ in batches), worker=True)
        return calls.in_order(len(outcomes), [p for _, p in batches], found)

    async def reap(self, *, limit: int = 1000, now: datetime | None = None) -> int:
        """Expire stale leases of every job type (back to the queue, or dead); how many."""
        return int(calls.single(await self._run(calls.reap(limit, now), worker=True)))

    async def progress(
        self,
        worker: str,
        job_id: int,
        lease_token: UUID,
        pct: float,
        message: str | None = None,
        *,
        now: datetime | None = None,
    ) -> bool:
        call = calls.progress(worker, job_id, lease_token, pct, message, now)
        return bool(calls.single(await self._run(call, worker=True)))

    async def release(
        self, worker: str, leases: Sequence[tuple[int, UUID]], *, now: datetime | None = None
    ) -> dict[int, ReleaseState]:
        """Give leases back at shutdown: the jobs are due again and keep their attempt."""
        answers = calls.answers(await self._run(calls.release(worker, leases, now), worker=True))
        return calls.first_per_job([i for i, _ in leases], answers)

    async def acknowledge_cancel(
        self, worker: str, job_id: int, lease_token: UUID, data: Any, *, now: datetime | None = None
    ) -> bool:
        """Record how a canceled job's handler took the cancellation (once per attempt)."""
        call = calls.acknowledge_cancel(worker, job_id, lease_token, data, now)
        return bool(calls.single(await self._run(call, worker=True)))

    async def runs(self, job_id: int) -> list[dict[str, Any]]:
        """The run records of the job's attempts (format jobforge.run/1), oldest first."""
        return calls.runs(await self._of_job(job_id, "job_runs"))

    async def find_runs(
        self,
        *,
        job_ids: Sequence[int] | None = None,
        runner_ids: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[RunRow]:
        """Stored run records, newest first: the client's tenant, or every tenant without one
        (only for a login allowed the worker scope: `TenantRequired` otherwise)."""
        call = calls.find_runs(job_ids, runner_ids, statuses, since, before_id, limit)
        if self.tenant is not None:
            return calls.run_rows(await self._run(call))
        scopes, rows = await self._run_all(calls.login_scopes(), call, worker=True)
        calls.require_worker_scope(scopes, "read every tenant's runs")
        return calls.run_rows(rows)

    async def record_run(
        self,
        worker: str,
        job_id: int,
        lease_token: UUID,
        run: RunWrite,
        *,
        now: datetime | None = None,
    ) -> bool:
        """Store the record of the attempt `lease_token` (only its worker may, once)."""
        call = calls.record_run(worker, job_id, lease_token, run, now)
        return bool(calls.single(await self._run(call, worker=True)))
