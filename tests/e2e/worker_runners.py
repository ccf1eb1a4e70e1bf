"""Handlers the process-level worker tests run through `jobforge worker --runners worker_runners`.

Every handler records its side effects in the test database's `side_effects` table (created by
the test), through its own connection to `JOBFORGE_TEST_DSN`, so a test can count how often a
job's work really started and completed:

- `e2e.hold` (sync, in a worker thread) and `e2e.hold.async` (on the loop) record `started`;
  when the worker's name is in the payload's `hold_in`, they then wait (checking
  `ctx.cancelled`, up to `hold_s` seconds) and record `interrupted` when told to stop; otherwise
  they sleep `seconds` and record `completed`. With `ignore_cancel`, the sync one holds by
  sleeping, deaf to `ctx.cancelled` (a stuck handler).
- `e2e.fast` (async) records `completed` at once, batched with the rows of the jobs that finish
  at the same moment (see `_GroupCommit`).

The handlers live in a registry of their own, so importing this module elsewhere leaves
jobforge's default registry alone.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import psycopg

from jobforge.worker import JobContext, Registry

DSN_ENV = "JOBFORGE_TEST_DSN"

HOLD = "e2e.hold"
HOLD_ASYNC = "e2e.hold.async"
FAST = "e2e.fast"

#: The table the tests create in their database before starting workers.
SIDE_EFFECTS_DDL = """
CREATE TABLE side_effects (
    job_id  bigint NOT NULL,
    attempt integer NOT NULL,
    worker  text NOT NULL,
    phase   text NOT NULL CHECK (phase IN ('started', 'completed', 'interrupted')),
    at      timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""

_INSERT = "INSERT INTO side_effects (job_id, attempt, worker, phase) VALUES (%s, %s, %s, %s)"

registry = Registry()


def _dsn() -> str:
    return os.environ[DSN_ENV]


def _record(ctx: JobContext, phase: str) -> None:
    with psycopg.connect(_dsn(), autocommit=True) as conn:
        conn.execute(_INSERT, (ctx.job_id, ctx.attempt, ctx.worker, phase))


async def _record_async(ctx: JobContext, phase: str) -> None:
    async with await psycopg.AsyncConnection.connect(_dsn(), autocommit=True) as conn:
        await conn.execute(_INSERT, (ctx.job_id, ctx.attempt, ctx.worker, phase))


def _held(payload: dict[str, Any], ctx: JobContext) -> bool:
    return ctx.worker in payload.get("hold_in", [])


@registry.handler(HOLD)
def hold(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    _record(ctx, "started")
    if _held(payload, ctx) and payload.get("ignore_cancel"):
        time.sleep(float(payload.get("hold_s", 120)))  # a handler that never looks at ctx
    elif _held(payload, ctx):
        deadline = time.monotonic() + float(payload.get("hold_s", 120))
        while time.monotonic() < deadline:
            if ctx.cancelled.wait(0.05):
                _record(ctx, "interrupted")
                return {"interrupted": True}
    else:
        time.sleep(float(payload.get("seconds", 0)))
    _record(ctx, "completed")
    return {"worker": ctx.worker, "attempt": ctx.attempt}


@registry.handler(HOLD_ASYNC)
async def hold_async(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    await _record_async(ctx, "started")
    if _held(payload, ctx):
        deadline = time.monotonic() + float(payload.get("hold_s", 120))
        while time.monotonic() < deadline:
            if ctx.cancelled.is_set():
                await _record_async(ctx, "interrupted")
                return {"interrupted": True}
            await asyncio.sleep(0.05)
    else:
        await asyncio.sleep(float(payload.get("seconds", 0)))
    await _record_async(ctx, "completed")
    return {"worker": ctx.worker, "attempt": ctx.attempt}


class _GroupCommit:
    """Side-effect rows of concurrent jobs written together: a job's handler returns once the
    statement holding its row has committed, so each completed job still has its row, but a
    burst of jobs costs one round trip (one connection per worker process, opened on first use).
    """

    def __init__(self) -> None:
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._pending: list[tuple[tuple[int, int, str], asyncio.Future[None]]] = []
        self._flushing = False
        self._task: asyncio.Future[None] | None = None

    async def record(self, ctx: JobContext) -> None:
        done = asyncio.get_running_loop().create_future()
        self._pending.append(((ctx.job_id, ctx.attempt, ctx.worker), done))
        if not self._flushing:
            self._flushing = True
            self._task = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = await psycopg.AsyncConnection.connect(_dsn(), autocommit=True)
                    await self._conn.execute(
                        "INSERT INTO side_effects (job_id, attempt, worker, phase) "
                        "SELECT j, a, w, 'completed' "
                        "FROM unnest(%s::bigint[], %s::integer[], %s::text[]) AS u(j, a, w)",
                        tuple(map(list, zip(*(row for row, _ in batch), strict=True))),
                    )
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():  # not given up on (a canceled handler)
                            done.set_exception(exc)
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._flushing = False


_group = _GroupCommit()


@registry.handler(FAST)
async def fast(payload: dict[str, Any], ctx: JobContext) -> None:
    await _group.record(ctx)
