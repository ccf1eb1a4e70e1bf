"""jobforge beside its peers: pgqueuer 1.6.0, procrastinate 3.10.0 and a bare-SQL floor, in one
run, on one throwaway server, with one harness: the project's peer harness.

Usage: `python benchmarks/peers.py [-n N] [--runs R] [--only LIB[,LIB]]`, LIB among floor,
pgqueuer, procrastinate, jobforge, table. The peers come with the `bench` extra. Runs on a throwaway
server with default durability (fsync on) unless JOBFORGE_SCRATCH_DATABASE_URL is set; that
server is jobforge's own throwaway, reached by its Unix socket (the harness says 127.0.0.1) with
its data on tmpfs when there is room: every library sees the same server, so the ratios hold.

Every case gets a fresh empty database (CREATE DATABASE; its library's schema installed
untimed; DROP DATABASE after) and runs in a subprocess of its own on this same interpreter, so no
case inherits another's event loop, driver state, imports or heap. A case enqueues N no-op jobs,
timed (`single`: one library call per job; `batch`: 1,000 jobs per call), then drains them with
the library's own worker in that one process, with an async no-op handler, timed from the
worker's start until it returns with the queue empty (connections are opened before the clock).
It then counts the finished jobs in the database and refuses to report fewer than N. A library's
drain figure is its batch case's; its single case is drained and counted too (`drain_after_single`).

- pgqueuer (asyncpg): `Queries.enqueue` (list form for batch); drain
  `QueueManager(Queries).run(mode=QueueExecutionMode.drain)` at its defaults (batch of 10 per
  dequeue, no cap on concurrent tasks).
- procrastinate (psycopg): `defer_async` / `batch_defer_async`; drain
  `run_worker_async(wait=False)` at its default concurrency 1.
- floor (psycopg): `INSERT ... SELECT unnest(...)` per batch; drain by 4 async loops, each claiming
  100 with FOR UPDATE SKIP LOCKED in one transaction and marking them done in a second.
- jobforge: `AsyncQueueClient.enqueue` / `enqueue_many` of 1,000; drain `Worker` with
  exit_when_idle, LISTEN off, at the CLI's default concurrency, 100 and 10.
- table (psycopg): jobforge's own table with none of its enqueue: bare `INSERT`s into
  `jobforge.jobs` by the server's superuser, one per job (prepared, autocommit) or one
  `INSERT ... SELECT unnest(...)` per 1,000 with the arrays as jobforge's client sends them; the
  columns `enqueue` writes and the payload's hash, without its checks, its tenant binding, its
  catalogue and idempotency handling or its client. Drained by jobforge's `Worker` at the CLI
  default, which also proves the rows are whole jobs. Its enqueue figures are the ceiling the
  `jobs` table (its indexes, constraints and column types) sets for any enqueue through it.

Medians of the runs with min-max beside them; ratios of medians (libraries measured in one run
move together, absolute figures drift by 30 % on a shared machine). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from jobforge import db
from jobforge.worker.loop import DEFAULT_CONCURRENCY

LIBRARIES = ("floor", "pgqueuer", "procrastinate", "jobforge", "table")
PEERS = {"pgqueuer": ("pgqueuer", "asyncpg"), "procrastinate": ("procrastinate",)}
INSTALL_HINT = (
    "pip install 'jobforge[bench]' (or: pip install pgqueuer==1.6.0 procrastinate==3.10.0 "
    "'asyncpg>=0.29')"
)
CLI_DEFAULT_CONCURRENCY = DEFAULT_CONCURRENCY  # jobforge worker --concurrency
BATCH = 1000
TYPE = "noop"
TENANT = "bench"


@dataclass(frozen=True)
class Case:
    library: str
    enqueue: str  # "single" | "batch"
    concurrency: int = 0  # jobforge's worker slots; 0 for the others (their defaults)

    @property
    def key(self) -> str:
        return f"{self.library}:{self.enqueue}:{self.concurrency}"

    @classmethod
    def parse(cls, key: str) -> Case:
        library, enqueue, concurrency = key.split(":")
        return cls(library, enqueue, int(concurrency))


def cases(libraries: list[str]) -> list[Case]:
    """The cases of one run: each library's batch case (its drain figure) and single case."""
    chosen: list[Case] = []
    for library in libraries:
        if library == "floor":
            chosen.append(Case("floor", "batch"))
        elif library == "table":
            chosen += [Case("table", "batch"), Case("table", "single")]
        elif library == "jobforge":
            for concurrency in (CLI_DEFAULT_CONCURRENCY, 100, 10):
                chosen.append(Case("jobforge", "batch", concurrency))
            chosen.append(Case("jobforge", "single", CLI_DEFAULT_CONCURRENCY))
        else:
            chosen += [Case(library, "batch"), Case(library, "single")]
    return chosen


# ---------------------------------------------------------------- one case, in its subprocess


class Clock:
    """Seconds spent enqueueing and draining."""

    def __init__(self) -> None:
        self.enqueue_s = 0.0
        self.drain_s = 0.0


async def run_floor(dsn: str, n: int, case: Case, clock: Clock) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE floor_jobs (id bigserial PRIMARY KEY, payload jsonb NOT NULL,"
            " status text NOT NULL DEFAULT 'queued', finished_at timestamptz);"
            " CREATE INDEX floor_jobs_queued ON floor_jobs (id) WHERE status = 'queued'"
        )
        began = time.perf_counter()
        for start in range(0, n, BATCH):
            payloads = [db.Jsonb({"i": i}) for i in range(start, min(n, start + BATCH))]
            await conn.execute(
                "INSERT INTO floor_jobs (payload) SELECT unnest(%s::jsonb[])", (payloads,)
            )
        clock.enqueue_s = time.perf_counter() - began

    async def noop(payload: Any) -> None:
        return None

    async def loop(conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            async with conn.transaction():
                rows = await (
                    await conn.execute(
                        "UPDATE floor_jobs SET status = 'running' WHERE id IN (SELECT id FROM"
                        " floor_jobs WHERE status = 'queued' ORDER BY id LIMIT 100"
                        " FOR UPDATE SKIP LOCKED) RETURNING id, payload"
                    )
                ).fetchall()
            if not rows:
                return
            for _, payload in rows:
                await noop(payload)
            async with conn.transaction():
                await conn.execute(
                    "UPDATE floor_jobs SET status = 'done', finished_at = now() WHERE id = ANY(%s)",
                    ([row[0] for row in rows],),
                )

    conns = [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(4)]
    try:
        began = time.perf_counter()
        await asyncio.gather(*(loop(conn) for conn in conns))
        clock.drain_s = time.perf_counter() - began
        cursor = await conns[0].execute("SELECT count(*) FROM floor_jobs WHERE status = 'done'")
        row = await cursor.fetchone()
    finally:
        for conn in conns:
            await conn.close()
    return int(row[0]) if row else 0


async def run_pgqueuer(dsn: str, n: int, case: Case, clock: Clock) -> int:
    import asyncpg
    from pgqueuer import Job, QueueManager
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    # asyncpg takes no libpq key=value string: the same parameters, by name
    params = conninfo_to_dict(dsn)
    connect = {
        "host": params.get("host"),
        "port": int(str(params["port"])) if params.get("port") else None,
        "user": params.get("user"),
        "password": params.get("password"),
        "database": params.get("dbname"),
    }
    enqueuing = await asyncpg.connect(**connect)
    working = await asyncpg.connect(**connect)
    try:
        queries = Queries(AsyncpgDriver(enqueuing))
        await queries.install()
        began = time.perf_counter()
        if case.enqueue == "single":
            for i in range(n):
                await queries.enqueue(TYPE, json.dumps({"i": i}).encode())
        else:
            for start in range(0, n, BATCH):
                count = min(BATCH, n - start)
                await queries.enqueue(
                    [TYPE] * count,
                    [json.dumps({"i": start + k}).encode() for k in range(count)],
                    [0] * count,
                )
        clock.enqueue_s = time.perf_counter() - began

        began = time.perf_counter()
        qm = QueueManager(Queries(AsyncpgDriver(working)))

        @qm.entrypoint(TYPE)
        async def noop(job: Job) -> None:
            return None

        await qm.run(mode=QueueExecutionMode.drain)
        clock.drain_s = time.perf_counter() - began
        finished = await enqueuing.fetchval(
            "SELECT count(DISTINCT job_id) FROM pgqueuer_log WHERE status = 'successful'"
        )
        left = await enqueuing.fetchval("SELECT count(*) FROM pgqueuer")
    finally:
        await enqueuing.close()
        await working.close()
    return int(finished) if not left else 0


async def run_procrastinate(dsn: str, n: int, case: Case, clock: Clock) -> int:
    import procrastinate

    # Its one warning here is that the App lives in the __main__ module, which is this script.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name=TYPE)
    async def noop(i: int) -> None:
        return None

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        began = time.perf_counter()
        if case.enqueue == "single":
            for i in range(n):
                await noop.defer_async(i=i)
        else:
            for start in range(0, n, BATCH):
                jobs: list[dict[str, Any]] = [{"i": i} for i in range(start, min(n, start + BATCH))]
                await noop.batch_defer_async(*jobs)
        clock.enqueue_s = time.perf_counter() - began
        began = time.perf_counter()
        await app.run_worker_async(wait=False)
        clock.drain_s = time.perf_counter() - began
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        )
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def run_jobforge(dsn: str, n: int, case: Case, clock: Clock) -> int:
    from jobforge import migrate
    from jobforge.queue import AsyncQueueClient, NewJob

    await asyncio.to_thread(migrate.migrate, dsn)
    client = await AsyncQueueClient.connect(dsn, tenant=TENANT, max_size=1, check=False)
    try:
        # its connection made before the clock, as the other cases' are: the pool opens it in
        # the background, and the first call would otherwise wait for it
        await client.pool.wait()
        began = time.perf_counter()
        if case.enqueue == "single":
            for i in range(n):
                await client.enqueue(TYPE, {"i": i})
        else:
            for start in range(0, n, BATCH):
                await client.enqueue_many(
                    [
                        NewJob(type=TYPE, payload={"i": i})
                        for i in range(start, min(n, start + BATCH))
                    ]
                )
        clock.enqueue_s = time.perf_counter() - began
    finally:
        await client.close()
    return await drain_jobforge(dsn, case.concurrency, clock)


#: The columns `enqueue` writes for a job of default fields, and the payload's hash as it stores
#: it; the tenant, project and times as literals. The superuser the harness connects as is
#: exempt from row-level security.
_TABLE_COLUMNS = (
    "INSERT INTO jobforge.jobs (tenant_id, project, type, payload, payload_hash, priority, run_at,"
    " max_attempts, created_at, updated_at)"
)
_TABLE_HASH = "'sha256:' || encode(sha256(convert_to({p}::text, 'UTF8')), 'hex')"
_TABLE_SINGLE = (
    f"{_TABLE_COLUMNS} VALUES ('{TENANT}', 'default', %(type)s, %(payload)s::jsonb,"
    f" {_TABLE_HASH.format(p='%(payload)s::jsonb')}, 0, now(), 3, now(), now()) RETURNING id"
)
_TABLE_BATCH = (
    f"{_TABLE_COLUMNS} SELECT '{TENANT}', 'default', u.t, u.p, {_TABLE_HASH.format(p='u.p')},"
    " 0, now(), 3, now(), now() FROM unnest(%(types)b::text[], ARRAY(SELECT e FROM"
    " jsonb_array_elements(%(payloads)s::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n))"
    " WITH ORDINALITY AS u(t, p, i) ORDER BY u.i RETURNING id"
)


async def run_table(dsn: str, n: int, case: Case, clock: Clock) -> int:
    from jobforge import migrate

    await asyncio.to_thread(migrate.migrate, dsn)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        began = time.perf_counter()
        if case.enqueue == "single":
            for i in range(n):
                cursor = await conn.execute(
                    _TABLE_SINGLE, {"type": TYPE, "payload": db.Jsonb({"i": i})}, prepare=True
                )
                await cursor.fetchall()
        else:
            for start in range(0, n, BATCH):
                count = min(BATCH, n - start)
                cursor = await conn.execute(
                    _TABLE_BATCH,
                    {
                        "types": [TYPE] * count,
                        "payloads": db.Jsonb([{"i": start + k} for k in range(count)]),
                    },
                    prepare=True,
                )
                await cursor.fetchall()
        clock.enqueue_s = time.perf_counter() - began
    return await drain_jobforge(dsn, CLI_DEFAULT_CONCURRENCY, clock)


async def drain_jobforge(dsn: str, concurrency: int, clock: Clock) -> int:
    """Drain the database's jobs with jobforge's `Worker`; the count of succeeded jobs."""
    from jobforge.queue import AsyncQueueClient
    from jobforge.worker import JobContext, Registry, Worker, WorkerConfig

    async def noop(payload: dict[str, Any], ctx: JobContext) -> None:
        return None

    handlers = Registry()
    handlers.register(TYPE, noop)
    working = await AsyncQueueClient.connect(dsn, max_size=4, check=False)
    try:
        await working.pool.wait()
        began = time.perf_counter()
        config = WorkerConfig(
            name="bench", concurrency=concurrency, exit_when_idle=True, listen=False
        )
        await Worker(working, handlers, config).run()
        clock.drain_s = time.perf_counter() - began
    finally:
        await working.close()
    with db.connect(dsn) as conn, db.tenant_transaction(conn, TENANT):
        row = conn.execute(
            "SELECT count(*) FROM jobforge.jobs WHERE status = 'succeeded'"
        ).fetchone()
    return int(row[0]) if row else 0


RUNNERS = {
    "floor": run_floor,
    "pgqueuer": run_pgqueuer,
    "procrastinate": run_procrastinate,
    "jobforge": run_jobforge,
    "table": run_table,
}


def run_case(dsn: str, n: int, case: Case) -> dict[str, Any]:
    """One case in this process; its JSON line, or SystemExit when fewer than N finished."""
    clock = Clock()
    finished = asyncio.run(RUNNERS[case.library](dsn, n, case, clock))
    if finished < n:
        raise SystemExit(f"{case.key}: {finished} of {n} jobs finished; not reporting this run")
    return {
        "library": case.library,
        "enqueue_mode": case.enqueue,
        "concurrency": case.concurrency or None,
        "n": n,
        "finished": finished,
        "enqueue_jobs_per_s": round(n / clock.enqueue_s),
        "process_jobs_per_s": round(n / clock.drain_s),
    }


# ---------------------------------------------------------------- the run, in the parent


def in_subprocess(dsn: str, n: int, case: Case) -> dict[str, Any]:
    """`run_case` in a fresh interpreter (this one), importing the jobforge this one imports."""
    import jobforge

    env = dict(os.environ)
    root = str(Path(jobforge.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, __file__, "--case", case.key, "--dsn", dsn, "-n", str(n)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=3600,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{case.key} failed (exit {done.returncode}); no figures reported")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def on_fresh_database(server_dsn: str, n: int, case: Case) -> dict[str, Any]:
    name = f"peers_{case.library}_{secrets.token_hex(4)}"
    with db.connect(server_dsn, autocommit=True) as conn:
        db.execute_ddl(conn, "database_create", db=name)
    try:
        return in_subprocess(db.with_dbname(server_dsn, name), n, case)
    finally:
        with db.connect(server_dsn, autocommit=True) as conn:
            db.execute_ddl(conn, "database_drop", db=name)


def figure_names(case: Case) -> list[tuple[str, str]]:
    """(figure, field of the case's result) pairs this case contributes."""
    lib = case.library
    if lib == "table":  # its drain is jobforge's worker again: counted, not a figure
        return [(f"table.enqueue_{case.enqueue}", "enqueue_jobs_per_s")]
    if case.enqueue == "single":
        return [
            (f"{lib}.enqueue_single", "enqueue_jobs_per_s"),
            (f"{lib}.drain_after_single", "process_jobs_per_s"),
        ]
    if lib == "jobforge":
        drain = [(f"jobforge.drain_c{case.concurrency}", "process_jobs_per_s")]
        if case.concurrency == CLI_DEFAULT_CONCURRENCY:
            drain.append(("jobforge.enqueue_batch", "enqueue_jobs_per_s"))
        return drain
    return [(f"{lib}.enqueue_batch", "enqueue_jobs_per_s"), (f"{lib}.drain", "process_jobs_per_s")]


RATIOS = [
    (
        f"jobforge/pgqueuer drain (jobforge at {CLI_DEFAULT_CONCURRENCY}, the CLI default)",
        f"jobforge.drain_c{CLI_DEFAULT_CONCURRENCY}",
        "pgqueuer.drain",
    ),
    ("jobforge/pgqueuer drain (jobforge at 100)", "jobforge.drain_c100", "pgqueuer.drain"),
    ("jobforge/pgqueuer drain (jobforge at 10)", "jobforge.drain_c10", "pgqueuer.drain"),
    ("jobforge/pgqueuer batch enqueue", "jobforge.enqueue_batch", "pgqueuer.enqueue_batch"),
    ("jobforge/pgqueuer single enqueue", "jobforge.enqueue_single", "pgqueuer.enqueue_single"),
    ("jobforge/floor drain (jobforge at 100)", "jobforge.drain_c100", "floor.drain"),
    (
        "bare INSERT into jobforge.jobs/pgqueuer batch enqueue",
        "table.enqueue_batch",
        "pgqueuer.enqueue_batch",
    ),
    (
        "bare INSERT into jobforge.jobs/pgqueuer single enqueue",
        "table.enqueue_single",
        "pgqueuer.enqueue_single",
    ),
    (
        "jobforge/bare INSERT into jobforge.jobs, batch",
        "jobforge.enqueue_batch",
        "table.enqueue_batch",
    ),
    (
        "jobforge/bare INSERT into jobforge.jobs, single",
        "jobforge.enqueue_single",
        "table.enqueue_single",
    ),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=10_000, help="jobs per case (default 10,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of every case (default 3)")
    parser.add_argument(
        "--only",
        default=",".join(LIBRARIES),
        help=f"libraries to measure, comma-separated (default: {','.join(LIBRARIES)})",
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)  # the subprocess of one case
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.libraries = [lib.strip() for lib in args.only.split(",") if lib.strip()]
    unknown = sorted(set(args.libraries) - set(LIBRARIES))
    if unknown or not args.libraries:
        parser.error(f"--only takes some of {', '.join(LIBRARIES)}; got {args.only!r}")
    if args.n < 1 or args.runs < 1:
        parser.error("-n and --runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.dsn, args.n, Case.parse(args.case))), flush=True)
        return 0
    missing = sorted(
        {m for lib in args.libraries for m in PEERS.get(lib, ()) if not importlib.util.find_spec(m)}
    )
    if missing:
        print(f"{', '.join(missing)} not installed: {INSTALL_HINT}", file=sys.stderr)
        return 2

    from jobforge.provision import provide_server

    server = provide_server(durable=True)
    samples: dict[str, list[int]] = {}
    results: dict[str, Any] = {"n": args.n, "runs": args.runs, "batch": BATCH}
    try:
        with db.connect(server.dsn) as conn:
            results["postgres_version"] = db.scalar(conn, "server_version")
            results["fsync"] = conn.execute("SHOW fsync").fetchone()[0]  # type: ignore[index]
        print(f"on {server.describe()} (fsync {results['fsync']}), N={args.n}", flush=True)
        for run in range(1, args.runs + 1):
            for case in cases(args.libraries):
                result = on_fresh_database(server.dsn, args.n, case)
                print(
                    f"  run {run} {case.key:<28} enqueue {result['enqueue_jobs_per_s']:>7} "
                    f"jobs/s   drain {result['process_jobs_per_s']:>6} jobs/s",
                    flush=True,
                )
                for figure, field in figure_names(case):
                    samples.setdefault(figure, []).append(int(result[field]))
    finally:
        server.stop()

    medians = {k: statistics.median(v) for k, v in samples.items()}
    print(f"\n{'figure (jobs/s)':<34}{'median':>10}{'min-max':>20}")
    for figure, values in samples.items():
        span = f"{min(values)}-{max(values)}"
        print(f"{figure:<34}{medians[figure]:>10.0f}{span:>20}")
        results[figure] = {"median": medians[figure], "min": min(values), "max": max(values)}
    ratios: dict[str, float] = {}
    print()
    for label, top, bottom in RATIOS:
        if top in medians and bottom in medians:
            ratios[f"{top}/{bottom}"] = round(medians[top] / medians[bottom], 3)
            print(f"{label:<58}{ratios[f'{top}/{bottom}']:>8.2f}")
    results["ratios"] = ratios
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
