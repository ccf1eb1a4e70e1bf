"""Run one golden case through the real queue and worker, with the recorder, and return the run
record: the case's input is enqueued, a worker claims and runs it in the case's environment
(replay mode: HTTP only from the recorded exchanges), and the record is read back, with the
same record unredacted beside it (under `UNREDACTED`) for comparing runs."""

from __future__ import annotations

import asyncio
from typing import Any

from jobforge import db, errors
from jobforge.contracts import RunnerDef
from jobforge.golden.case import GoldenCase
from jobforge.queue import AsyncQueueClient
from jobforge.runtime.context import Environment
from jobforge.runtime.http.policy import HttpPolicy
from jobforge.worker import JobContext, Next, Registry, Worker, WorkerConfig
from jobforge.worker.recorder import Recorder
from jobforge.worker.runners import register_runner
from jobforge.worker.slot import RunSlot

#: Key of the returned record holding the same record unredacted (memory only, never stored).
UNREDACTED = "unredacted"

_CONFIG = WorkerConfig(
    concurrency=1,
    max_jobs=1,  # the case's one job: done once it is recorded, with no claim after it
    exit_when_idle=True,
    listen=False,
    poll_min_s=0.001,
    completion_flush_s=0.0,
    lease_s=300.0,
)


def _injector(environment: Environment, strict: bool, clock_shift_s: float = 0.0) -> Any:
    async def inject(ctx: JobContext, call_next: Next) -> Any:
        ctx.run = RunSlot(
            environment=environment, mode="replay", strict=strict, clock_shift_s=clock_shift_s
        )
        return await call_next(ctx)

    return inject


async def execute_case(
    pool: db.AsyncConnectionPool,
    definition: RunnerDef,
    case: GoldenCase,
    *,
    http_policy: HttpPolicy | None = None,
    strict: bool = True,
    clock_shift_s: float = 0.0,
) -> dict[str, Any]:
    """The case through the queue and a worker on `pool`'s database; its run record. Under
    strict mode, `clock_shift_s` moves the wall clock the runner's code sees."""
    environment = case.run_environment()
    client = AsyncQueueClient(pool, tenant=environment.tenant_id)
    job = await client.enqueue(
        definition.id, case.input, trace_id=environment.trace_id, max_attempts=1
    )
    registry = Registry()
    register_runner(registry, definition, http_policy=http_policy)
    kept: list[dict[str, Any]] = []
    recorder = Recorder(client, keep=kept)
    worker = Worker(
        client,
        registry,
        _CONFIG,
        middleware=[_injector(environment, strict, clock_shift_s), recorder],
    )
    await worker.run()
    records = await client.runs(job.job_id)
    if len(records) != 1 or len(kept) != 1:
        raise errors.JobforgeError(
            f"the run of the case left {len(records)} run records, not one (the worker's log "
            "says why)"
        )
    return {**records[0], UNREDACTED: kept[0]}


async def run_case_async(
    dsn: str,
    definition: RunnerDef,
    case: GoldenCase,
    *,
    http_policy: HttpPolicy | None = None,
    strict: bool = True,
) -> dict[str, Any]:
    """The case on the database at `dsn`, through a connection of its own."""
    # One connection: on a fresh database every new backend pays for its first statements
    # (catalog caches, plans), so a second pooled connection only doubles that cost.
    pool = db.AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False)
    await pool.open()
    try:
        return await execute_case(pool, definition, case, http_policy=http_policy, strict=strict)
    finally:
        await pool.close()


def run_case(
    dsn: str,
    definition: RunnerDef,
    case: GoldenCase,
    *,
    http_policy: HttpPolicy | None = None,
    strict: bool = True,
) -> dict[str, Any]:
    return asyncio.run(
        run_case_async(dsn, definition, case, http_policy=http_policy, strict=strict)
    )
