"""A lane: the database golden cases run on, kept warm from one case to the next.

Every case must start from the template's state, and a clone per case gives that, but each
clone also brings a cold backend: the first statements of a new database pay for catalog caches
and plpgsql compilation, about 20 ms against 5 ms for the case itself on a warm connection
(benchmarks/golden.py). A lane takes one fresh clone, keeps one event loop and its connections
open across cases, and after each case puts the clone back into the template's state: the rows
of every tenant the case ran under are deleted (their attempts, events, results and run records
go with the jobs, by trigger) and the identity sequences are set back to where the clone had
them, so job ids repeat from case to case as they do on fresh clones. The event loop is cleaned
as `asyncio.run` would clean it: tasks a runner left behind are canceled, and each case runs in
a copy of the caller's context.

A lane never reuses a clone whose state it could not vouch for: an error while running or
resetting drops the clone, and the next case gets a new one. After `recycle_after` cases it
changes clones anyway, which bounds the dead rows a clone collects.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Any

from jobforge import db
from jobforge.contracts import RunnerDef
from jobforge.golden.case import GoldenCase
from jobforge.golden.execute import RunOptions, execute_case
from jobforge.sql import query

#: Gives a fresh clone of the migrated template: a context manager yielding its DSN.
Databases = Callable[[], AbstractContextManager[str]]

#: Cases one clone serves before the lane takes a new one.
RECYCLE_AFTER = 200


@dataclass
class _Clone:
    """One clone in use: its connections and the state a reset returns it to."""

    pool: db.AsyncConnectionPool
    sequences: list[tuple[str, int, bool]]
    tasks: set[asyncio.Task[Any]]  #: the pool's own tasks, which outlive each case
    exits: ExitStack
    cases: int = 0
    tenants: set[str] = field(default_factory=set)


class Lane:
    """Runs golden cases one after another, each on a clone in the template's state."""

    def __init__(self, databases: Databases, *, recycle_after: int | None = RECYCLE_AFTER) -> None:
        self._databases = databases
        self._recycle_after = recycle_after
        self._loop = asyncio.Runner()
        self._clone: _Clone | None = None

    def run(
        self, definition: RunnerDef, case: GoldenCase, options: RunOptions = RunOptions()
    ) -> dict[str, Any]:
        """The case's run record, unredacted under `UNREDACTED` (`execute_case`)."""
        clone = self._clone or self._open()
        clone.tenants.add(case.run_environment().tenant_id)
        clone.cases += 1
        try:
            record = self._loop.run(
                self._case(clone, definition, case, options),
                context=contextvars.copy_context(),
            )
        except BaseException:
            self._discard()
            raise
        if self._recycle_after is not None and clone.cases >= self._recycle_after:
            self._discard()
        return record

    def close(self) -> None:
        self._discard()
        self._loop.close()

    async def _case(self, clone: _Clone, definition: RunnerDef, case: GoldenCase,
                    options: RunOptions) -> dict[str, Any]:  # fmt: skip
        try:
            return await execute_case(clone.pool, definition, case, options)
        finally:
            await _cancel_strays(clone.tasks)
            await self._reset(clone)

    async def _reset(self, clone: _Clone) -> None:
        # One statement per tenant: its rows go, and the sequences are set back (idempotent).
        params = {
            "names": [name for name, _, _ in clone.sequences],
            "values": [value for _, value, _ in clone.sequences],
            "called": [called for _, _, called in clone.sequences],
        }
        async with clone.pool.connection() as conn:
            for tenant in sorted(clone.tenants) or [""]:
                async with db.tenant_transaction_async(conn, tenant or None):
                    await conn.execute(query("lane_reset"), params)
        clone.tenants.clear()

    def _open(self) -> _Clone:
        exits = ExitStack()
        try:
            dsn = exits.enter_context(self._databases())
            pool, sequences, tasks = self._loop.run(_connect(dsn))
        except BaseException:
            exits.close()
            raise
        self._clone = _Clone(pool, sequences, tasks, exits)
        return self._clone

    def _discard(self) -> None:
        clone, self._clone = self._clone, None
        if clone is None:
            return
        try:
            self._loop.run(clone.pool.close())
        finally:
            clone.exits.close()


async def _connect(dsn: str) -> tuple[db.AsyncConnectionPool, list[Any], set[asyncio.Task[Any]]]:
    await db.check_reachable_async(dsn)
    pool = db.AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False)
    await pool.open()
    async with pool.connection() as conn:
        rows = await (await conn.execute(query("lane_sequences"))).fetchall()
    current = asyncio.current_task()
    return pool, [tuple(r) for r in rows], asyncio.all_tasks() - {current} if current else set()


async def _cancel_strays(keep: set[asyncio.Task[Any]]) -> None:
    """Cancel what the case left running (a runner's background tasks), as asyncio.run does."""
    current = asyncio.current_task()
    strays = [t for t in asyncio.all_tasks() if t is not current and t not in keep]
    for task in strays:
        task.cancel()
    if strays:
        await asyncio.gather(*strays, return_exceptions=True)
