"""The harness: the one way golden cases, the fresh interpreter and replay run a runner.

A batch of runs (a runner, an input, the environment to run it in) is enqueued on a database,
one worker with the recorder drains them, each job in its own environment (replay mode: clock
and seed from the environment, HTTP only from its recorded exchanges), and each run's record is
read back as stored, with the same record unredacted beside it (kept in memory, never stored)
for comparing runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from jobforge import db, errors
from jobforge.config import ProjectConfig
from jobforge.contracts import RunnerDef
from jobforge.golden.case import GoldenCase
from jobforge.queue import AsyncQueueClient, NewJob
from jobforge.runtime.context import Environment
from jobforge.runtime.http.policy import HttpPolicy
from jobforge.worker import JobContext, Next, Recorder, Registry, Worker, WorkerConfig
from jobforge.worker.runners import register_runner
from jobforge.worker.slot import RunSlot

#: Key of a case's returned record holding the same record unredacted (memory only).
UNREDACTED = "unredacted"


@dataclass(frozen=True)
class Run:
    """One run: the runner, its input, and the environment it runs in (clock, seed, tenant,
    trace id, recorded HTTP exchanges)."""

    definition: RunnerDef
    input: dict[str, Any]
    environment: Environment


@dataclass(frozen=True)
class RunOptions:
    """How a batch runs."""

    #: Watch the runner's module for uncontrolled calls (clock, randomness, globals).
    strict: bool = True
    #: Under strict mode, seconds the wall clock the runner's code sees is moved by.
    clock_shift_s: float = 0.0
    #: Hosts treated as allowed, and how a refusal says to allow one (`replay_policy`).
    http_policy: HttpPolicy | None = None
    #: Runs at a time.
    concurrency: int = 1


@dataclass(frozen=True)
class Ran:
    """What one run left: its run record as stored (redacted), and as the run produced it."""

    record: dict[str, Any]
    unredacted: dict[str, Any]

    def joined(self) -> dict[str, Any]:
        """The stored record with the unredacted one under `UNREDACTED`."""
        return {**self.record, UNREDACTED: self.unredacted}


def replay_policy(config: ProjectConfig, hosts: tuple[str, ...] | list[str],
                  hint: str) -> HttpPolicy:  # fmt: skip
    """The HTTP policy of runs that replay recorded exchanges (golden, replay, certify).

    A recorded exchange is served whatever the policy says (nothing goes out); the allowed hosts
    (the project's `http_allow_hosts` and `hosts`) decide only what a request *without* a
    recording to a private literal address gets: `HttpRefused`, as a worker without the host
    allowed would have raised, or `UnrecordedRequest`, as one with it would have sent it.
    """
    return HttpPolicy(allow_hosts=frozenset((*config.http_allow_hosts, *hosts)), allow_hint=hint)


async def execute(
    pool: db.AsyncConnectionPool, runs: Sequence[Run], options: RunOptions = RunOptions()
) -> list[Ran]:
    """Every run of `runs` on `pool`'s database; what each left, in the order of `runs`."""
    if not runs:
        return []
    job_ids = await _enqueue(pool, runs)
    registry = Registry()
    for definition in {run.definition.id: run.definition for run in runs}.values():
        register_runner(registry, definition, http_policy=options.http_policy)
    client = AsyncQueueClient(pool)
    kept: list[dict[str, Any]] = []
    config = WorkerConfig(
        concurrency=max(1, options.concurrency),
        max_jobs=len(runs),  # the batch's jobs: done once they are recorded, with no claim after
        exit_when_idle=True, listen=False, poll_min_s=0.001, completion_flush_s=0.0,
        lease_s=300.0, prune_every_s=None,  # the harness's worker is no part of a fleet
        verify=False,  # recorded inputs run as recorded: no signature or token to check
    )  # fmt: skip
    environments = dict(zip(job_ids, (run.environment for run in runs), strict=True))
    injector = _injector(environments, options)
    await Worker(client, registry, config, middleware=[injector, Recorder(client, keep=kept)]).run()
    stored = await _stored(pool, runs, job_ids)
    whole = {record["provenance"]["job_id"]: record for record in kept}
    missing = [i for i in job_ids if len(stored.get(i, ())) != 1 or i not in whole]
    if missing:
        raise errors.JobforgeError(
            f"{len(missing)} of {len(runs)} runs left no run record, or more than one (jobs "
            f"{', '.join(map(str, missing[:5]))}; the worker's log says why)"
        )
    return [Ran(stored[i][0], whole[i]) for i in job_ids]


@asynccontextmanager
async def connected(dsn: str, max_size: int = 1) -> AsyncIterator[db.AsyncConnectionPool]:
    """A pool on `dsn` for `execute`, closed afterwards."""
    # On a fresh database every new backend pays for its first statements (catalog caches,
    # plans): a pool of one connection pays that once.
    pool = db.AsyncConnectionPool(dsn, min_size=1, max_size=max_size, open=False)
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


async def execute_case(
    pool: db.AsyncConnectionPool,
    definition: RunnerDef,
    case: GoldenCase,
    options: RunOptions = RunOptions(),
) -> dict[str, Any]:
    """A golden case through the harness: its run record, unredacted under `UNREDACTED`."""
    (ran,) = await execute(pool, [Run(definition, case.input, case.run_environment())], options)
    return ran.joined()


def run_case(
    dsn: str, definition: RunnerDef, case: GoldenCase, options: RunOptions = RunOptions()
) -> dict[str, Any]:
    """`execute_case` on the database at `dsn`, through a connection of its own."""

    async def main() -> dict[str, Any]:
        async with connected(dsn) as pool:
            return await execute_case(pool, definition, case, options)

    return asyncio.run(main())


async def _enqueue(pool: db.AsyncConnectionPool, runs: Sequence[Run]) -> list[int]:
    """Each run as a job of one attempt, enqueued for its environment's tenant; the job ids."""
    by_tenant: dict[str, list[int]] = {}
    for position, run in enumerate(runs):
        by_tenant.setdefault(run.environment.tenant_id, []).append(position)
    job_ids = [0] * len(runs)
    for tenant, positions in by_tenant.items():
        jobs = [_job(runs[p]) for p in positions]
        enqueued = await AsyncQueueClient(pool, tenant=tenant).enqueue_many(jobs)
        for position, job in zip(positions, enqueued, strict=True):
            job_ids[position] = job.job_id
    return job_ids


def _job(run: Run) -> NewJob:
    return NewJob(type=run.definition.id, payload=run.input, max_attempts=1,
                  trace_id=run.environment.trace_id)  # fmt: skip


async def _stored(pool: db.AsyncConnectionPool, runs: Sequence[Run],
                  job_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:  # fmt: skip
    """The stored records of the jobs, by job id, read as each job's tenant."""
    by_tenant: dict[str, list[int]] = {}
    for run, job_id in zip(runs, job_ids, strict=True):
        by_tenant.setdefault(run.environment.tenant_id, []).append(job_id)
    found: dict[int, list[dict[str, Any]]] = {}
    for tenant, ids in by_tenant.items():
        client = AsyncQueueClient(pool, tenant=tenant)
        for row in await client.find_runs(job_ids=ids, limit=len(ids) + 1):
            found.setdefault(row.job_id, []).append(row.record)
    return found


def _injector(environments: Mapping[int, Environment], options: RunOptions) -> Any:
    async def inject(ctx: JobContext, call_next: Next) -> Any:
        ctx.run = RunSlot(environment=environments[ctx.job_id], mode="replay",
                          strict=options.strict, clock_shift_s=options.clock_shift_s)  # fmt: skip
        return await call_next(ctx)

    return inject
