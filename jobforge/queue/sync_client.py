"""The synchronous queue client: `jobforge.queue.operations` run, blocking, over a psycopg pool.

Every call runs in its own transaction with the tenant (and for worker calls, the worker scope)
set for that transaction only. A client acting for a tenant also takes the role `jobforge_app`
for the transaction when its login may (a superuser may), so row-level security, not only the
queries' own filters, keeps it to its tenant however privileged the login. Errors raised by the
SQL functions arrive as typed `jobforge.errors` exceptions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from jobforge import db
from jobforge.queue import agents, blobs, signing
from jobforge.queue import bulk as bulk_actions
from jobforge.queue import operations as ops
from jobforge.queue.operations import Client, ClientBase, Stepper, Steps

A = ParamSpec("A")
T = TypeVar("T")


def _blocking(
    op: Callable[Concatenate[Client, A], Steps[T]],
) -> Callable[Concatenate[QueueClient, A], T]:
    """The operation as a method of `QueueClient` (its parameters, answer and docstring)."""

    @functools.wraps(op)
    def method(self: QueueClient, /, *args: A.args, **kwargs: A.kwargs) -> T:
        return self._drive(op(self, *args, **kwargs))

    return method


def _rows(cursor: Any, keep: tuple[str, ...] | None) -> Any:
    """The rows of an executed cursor, as `Statement.keep` asks them."""
    return cursor.fetchall() if keep is None else db.load_each(cursor, keep)


class QueueClient(ClientBase[db.ConnectionPool]):
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

    @contextmanager
    def transaction(self, *, worker: bool = False) -> Iterator[db.Connection]:
        """A transaction scoped as the client's calls are, for SQL of your own: the client's
        tenant (and project scope, when it has one), under row-level security as `jobforge_app`
        when the login may take that role; with `worker=True`, the worker scope across tenants
        (for a login allowed it).

        A scope, not a sandbox: SQL run here on a privileged login can leave it (`RESET ROLE`,
        `COMMIT`, `set_config`). Run SQL you do not trust on a login bound to its tenant
        (`jobforge.tenant_logins`) that is no member of jobforge_worker."""
        with (
            self.pool.connection() as conn,
            db.tenant_transaction(
                conn,
                self.tenant,
                worker=worker,
                app_role=self._app_role(worker),
                acting=self.acting,
                project=self.project,
            ),
        ):
            yield conn

    def _drive(self, op: Steps[T]) -> T:
        """The operation's statements, each transaction (none without one) sent in one round
        trip (`db.flight`), and one more per statement that says `more`; its answer. A statement
        after one without `more` opens a new transaction."""
        step = Stepper(op)
        while (statement := step.statement) is not None:
            if statement.solo:  # its own transaction, the scope in its arguments
                text, params = statement.query()
                scope = db.solo_scope(self.tenant, self.acting, self.project)
                with self.pool.connection() as conn:
                    step.send(db.solo(conn, text, {**params, **scope}))
                continue
            app_role = self._app_role(step.worker)
            with (
                self.pool.connection() as conn,
                db.flight(
                    conn,
                    self.tenant,
                    worker=step.worker,
                    app_role=app_role,
                    acting=self.acting,
                    project=self.project,
                ) as flight,
            ):
                while True:
                    cursor = flight.send(*statement.query())
                    if not statement.more:
                        break  # the transaction's last: its rows come back with the commit
                    step.send(_rows(cursor, statement.keep))  # waits for them, in the transaction
                    if step.statement is None:  # answered: nothing left to read
                        return step.answer  # (after the commit: leaving the flight sends it)
                    statement = step.statement
            step.send(_rows(cursor, statement.keep))
        return step.answer

    # tenant-scoped
    enqueue = _blocking(ops.enqueue)
    enqueue_many = _blocking(ops.enqueue_many)
    request = _blocking(ops.request)
    catalogue_entry = _blocking(ops.catalogue_entry)
    get = _blocking(ops.get)
    list_jobs = _blocking(ops.list_jobs)
    events = _blocking(ops.events)
    attempts = _blocking(ops.attempts)
    result = _blocking(ops.result)
    cancel = _blocking(ops.cancel)
    audit_list = _blocking(ops.audit_list)
    audit_summary = _blocking(ops.audit_summary)
    reschedule = _blocking(ops.reschedule)
    bulk_batch = _blocking(ops.bulk_batch)
    stats = _blocking(ops.stats)
    connector_set = _blocking(ops.connector_set)
    connector_get = _blocking(ops.connector_get)
    connector_find = _blocking(ops.connector_find)
    connector_list = _blocking(ops.connector_list)
    connector_remove = _blocking(ops.connector_remove)
    schedule_add = _blocking(ops.schedule_add)
    schedule_pause = _blocking(ops.schedule_pause)
    schedule_remove = _blocking(ops.schedule_remove)
    schedule_list = _blocking(ops.schedule_list)
    schedule_get = _blocking(ops.schedule_get)
    schedule_firings = _blocking(ops.schedule_firings)
    event_submit = _blocking(ops.event_submit)
    event_list = _blocking(ops.event_list)
    trigger_add = _blocking(ops.trigger_add)
    trigger_pause = _blocking(ops.trigger_pause)
    trigger_remove = _blocking(ops.trigger_remove)
    trigger_list = _blocking(ops.trigger_list)
    trigger_get = _blocking(ops.trigger_get)
    trigger_test = _blocking(ops.trigger_test)
    trigger_evaluations = _blocking(ops.trigger_evaluations)

    def bulk(
        self,
        action: bulk_actions.Action,
        flt: bulk_actions.Filter,
        *,
        reset_attempts: bool = False,
        batch: int = bulk_actions.DEFAULT_BATCH,
        dry_run: bool = False,
        patience_s: float = bulk_actions.DEFAULT_PATIENCE_S,
        on_batch: Callable[[bulk_actions.BulkResult], None] | None = None,
    ) -> bulk_actions.BulkResult:
        """Retry or cancel every job of the tenant that matches `flt`, one transaction per
        `batch` jobs (`jobforge.queue.bulk`); dry, only count them. Jobs other transactions
        hold are tried again for up to `patience_s`, then counted as `busy`. `on_batch` hears
        the running totals after each batch (progress for a long action)."""

        def one(after_id: int, ids: Sequence[int] | None) -> bulk_actions.Batch:
            return self.bulk_batch(action, flt, reset_attempts=reset_attempts, after_id=after_id,
                                   limit=batch, dry_run=dry_run, ids=ids)  # fmt: skip

        return bulk_actions.run(action, one, dry_run=dry_run, batch=batch,
                                patience_s=patience_s, on_batch=on_batch)  # fmt: skip

    # worker side: across tenants, fenced on the lease
    claim = _blocking(ops.claim)
    heartbeat = _blocking(ops.heartbeat)
    heartbeat_each = _blocking(ops.heartbeat_each)
    finish = _blocking(ops.finish)
    finish_each = _blocking(ops.finish_each)
    reap = _blocking(ops.reap)
    prune_pass = _blocking(ops.prune_pass)
    prune_token_uses = _blocking(ops.prune_token_uses)
    schedule_pass = _blocking(ops.schedule_pass)
    progress = _blocking(ops.progress)
    release = _blocking(ops.release)
    acknowledge_cancel = _blocking(ops.acknowledge_cancel)

    # agents (`jobforge mcp`, migrations/0023): a claim held to the client's tenant; a session
    check_tenant = _blocking(agents.check_tenant)
    claim_tenant = _blocking(agents.claim_tenant)
    session = _blocking(agents.session)

    # run records
    runs = _blocking(ops.runs)
    find_runs = _blocking(ops.find_runs)
    record_run = _blocking(ops.record_run)

    # artifacts (migrations/0017): stored by a worker, fenced; read by the tenant
    # a tenant's signing keys, and token uses (the worker's)
    signing_keys = _blocking(signing.list_keys)
    tenant_signing_keys = _blocking(signing.keys_of)
    consume_token = _blocking(signing.consume_token)
    store_blob = _blocking(blobs.store)
    blob = _blocking(blobs.blob)
    blob_chunk = _blocking(blobs.chunk)
    job_artifacts = _blocking(blobs.job_artifacts)
    prune_blobs = _blocking(blobs.prune_batch)

    # retention (operators: members of jobforge_worker)
    prune_batch = _blocking(ops.prune_batch)
