"""The asynchronous queue client: `jobforge.queue.operations` run, awaiting, over a psycopg async
pool; the same calls, scoped the same way, as `QueueClient`."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from jobforge import db
from jobforge.queue import agents, blobs, signing
from jobforge.queue import operations as ops
from jobforge.queue.operations import Client, ClientBase, Stepper, Steps

A = ParamSpec("A")
T = TypeVar("T")


def _awaiting(
    op: Callable[Concatenate[Client, A], Steps[T]],
) -> Callable[Concatenate[AsyncQueueClient, A], Coroutine[Any, Any, T]]:
    """The operation as a coroutine method of `AsyncQueueClient`."""

    @functools.wraps(op)
    async def method(self: AsyncQueueClient, /, *args: A.args, **kwargs: A.kwargs) -> T:
        return await self._drive(op(self, *args, **kwargs))

    return method


async def _rows(cursor: Any, keep: tuple[str, ...] | None) -> Any:
    """The rows of an executed cursor, as `Statement.keep` asks them."""
    return await cursor.fetchall() if keep is None else await db.load_each_async(cursor, keep)


class AsyncQueueClient(ClientBase[db.AsyncConnectionPool]):
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

    @asynccontextmanager
    async def transaction(self, *, worker: bool = False) -> AsyncIterator[db.AsyncConnection]:
        """`QueueClient.transaction` for an async connection."""
        async with (
            self.pool.connection() as conn,
            db.tenant_transaction_async(
                conn,
                self.tenant,
                worker=worker,
                app_role=self._app_role(worker),
                acting=self.acting,
                project=self.project,
            ),
        ):
            yield conn

    async def _drive(self, op: Steps[T]) -> T:
        """`QueueClient._drive`, awaiting."""
        step = Stepper(op)
        while (statement := step.statement) is not None:
            if statement.solo:
                text, params = statement.query()
                scope = db.solo_scope(self.tenant, self.acting, self.project)
                # getconn and putconn, not `pool.connection()`: its `async with conn` commits
                # a connection a solo statement leaves idle, ~10 us of a ~115 us call; putconn
                # still rolls back or closes one left in a transaction or mid-statement
                conn = await self.pool.getconn()
                try:
                    rows = await db.solo_async(conn, text, {**params, **scope})
                finally:
                    await self.pool.putconn(conn)
                step.send(rows)
                continue
            app_role = self._app_role(step.worker)
            async with (
                self.pool.connection() as conn,
                db.flight_async(
                    conn,
                    self.tenant,
                    worker=step.worker,
                    app_role=app_role,
                    acting=self.acting,
                    project=self.project,
                ) as flight,
            ):
                while True:
                    cursor = await flight.send(*statement.query())
                    if not statement.more:
                        break  # the transaction's last: its rows come back with the commit
                    step.send(await _rows(cursor, statement.keep))  # waits, in the transaction
                    if step.statement is None:  # answered: nothing left to read
                        return step.answer  # (after the commit: leaving the flight sends it)
                    statement = step.statement
            step.send(await _rows(cursor, statement.keep))
        return step.answer

    # tenant-scoped
    enqueue = _awaiting(ops.enqueue)
    enqueue_many = _awaiting(ops.enqueue_many)
    request = _awaiting(ops.request)
    catalogue_entry = _awaiting(ops.catalogue_entry)
    get = _awaiting(ops.get)
    list_jobs = _awaiting(ops.list_jobs)
    events = _awaiting(ops.events)
    attempts = _awaiting(ops.attempts)
    result = _awaiting(ops.result)
    cancel = _awaiting(ops.cancel)
    audit_list = _awaiting(ops.audit_list)
    audit_summary = _awaiting(ops.audit_summary)
    reschedule = _awaiting(ops.reschedule)
    bulk_batch = _awaiting(ops.bulk_batch)
    stats = _awaiting(ops.stats)
    connector_set = _awaiting(ops.connector_set)
    connector_get = _awaiting(ops.connector_get)
    connector_find = _awaiting(ops.connector_find)
    connector_list = _awaiting(ops.connector_list)
    connector_remove = _awaiting(ops.connector_remove)
    schedule_add = _awaiting(ops.schedule_add)
    schedule_pause = _awaiting(ops.schedule_pause)
    schedule_remove = _awaiting(ops.schedule_remove)
    schedule_list = _awaiting(ops.schedule_list)
    schedule_get = _awaiting(ops.schedule_get)
    schedule_firings = _awaiting(ops.schedule_firings)
    event_submit = _awaiting(ops.event_submit)
    event_list = _awaiting(ops.event_list)
    trigger_add = _awaiting(ops.trigger_add)
    trigger_pause = _awaiting(ops.trigger_pause)
    trigger_remove = _awaiting(ops.trigger_remove)
    trigger_list = _awaiting(ops.trigger_list)
    trigger_get = _awaiting(ops.trigger_get)
    trigger_test = _awaiting(ops.trigger_test)
    trigger_evaluations = _awaiting(ops.trigger_evaluations)

    # worker side: across tenants, fenced on the lease
    claim = _awaiting(ops.claim)
    heartbeat = _awaiting(ops.heartbeat)
    heartbeat_each = _awaiting(ops.heartbeat_each)
    finish = _awaiting(ops.finish)
    finish_each = _awaiting(ops.finish_each)
    reap = _awaiting(ops.reap)
    prune_pass = _awaiting(ops.prune_pass)
    prune_token_uses = _awaiting(ops.prune_token_uses)
    schedule_pass = _awaiting(ops.schedule_pass)
    progress = _awaiting(ops.progress)
    release = _awaiting(ops.release)
    acknowledge_cancel = _awaiting(ops.acknowledge_cancel)

    # agents (`jobforge mcp`, migrations/0023): a claim held to the client's tenant; a session
    check_tenant = _awaiting(agents.check_tenant)
    claim_tenant = _awaiting(agents.claim_tenant)
    session = _awaiting(agents.session)

    # run records
    runs = _awaiting(ops.runs)
    find_runs = _awaiting(ops.find_runs)
    record_run = _awaiting(ops.record_run)

    # artifacts (migrations/0017): stored by a worker, fenced; read by the tenant
    # a tenant's signing keys, and token uses (the worker's)
    signing_keys = _awaiting(signing.list_keys)
    tenant_signing_keys = _awaiting(signing.keys_of)
    consume_token = _awaiting(signing.consume_token)
    store_blob = _awaiting(blobs.store)
    blob = _awaiting(blobs.blob)
    blob_chunk = _awaiting(blobs.chunk)
    job_artifacts = _awaiting(blobs.job_artifacts)
    prune_blobs = _awaiting(blobs.prune_batch)

    # retention (operators: members of jobforge_worker)
    prune_batch = _awaiting(ops.prune_batch)
