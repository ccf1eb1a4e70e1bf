"""A prune of F finished jobs (with their events, attempts, results and run records) while a
worker drains a backlog: the worker's drain rate while the prune runs, against its rate while it
does not.

Usage: `python benchmarks/prune.py [--finished 1000000] [--backlog N] [--batch 1000]
[--throttle 2] [--segment 2]`. One throwaway server with default durability (fsync on; the
first line says where its data lives). The database holds the F finished jobs, 40 days old,
spread over 10 tenants, 3 types and the four finished states, each with 3 events, an attempt, a
result (the succeeded ones) and a run record of about 400 bytes, written in bulk as the queue
leaves them, then VACUUM ANALYZE (a production table has statistics); and a backlog of queued
no-op jobs (default: enough for the whole run).

One worker (the default WorkerConfig, its own periodic prune off) drains the backlog, while
`jobforge prune --older-than 30d` runs as a subprocess that is stopped and continued (SIGSTOP,
SIGCONT) every `--segment` seconds, so the drain alternates between segments with the prune
running and without it until the prune is done. Alternating makes the two rates share whatever
else the machine does meanwhile; each is the jobs the worker finished in its segments over their
time. The prune's reported counts are checked against the rows that went, and the backlog must
outlast the run. Last line: JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from jobforge import db
from jobforge.provision import Template, provide_server
from jobforge.queue import NewJob, QueueClient
from jobforge.queue.retention import DEFAULT_THROTTLE
from jobforge.worker import JobContext, Registry, Worker, WorkerConfig

TYPE = "bench.noop"
SEED_CHUNK = 100_000

#: One chunk of finished jobs (%(n)s of them, from %(start)s) with their rows, 40 days old: the
#: statements run in order in one transaction (only the first takes parameters).
SEED = """
CREATE TEMP TABLE seeded ON COMMIT DROP AS
WITH ins AS (
    INSERT INTO jobforge.jobs (tenant_id, type, payload, payload_hash, status, run_at, attempts,
                               max_attempts, created_at, updated_at, finished_at, error)
    SELECT 't' || mod(g, 10), 'bench.done-' || mod(g, 3), jsonb_build_object('i', g),
           'sha256:' || repeat('0', 64), s.status, at, 1, 1, at, at, at,
           CASE WHEN s.status <> 'succeeded' THEN '{"kind": "bench"}'::jsonb END
    FROM generate_series(%(start)s::bigint, %(start)s::bigint + %(n)s - 1) g
    CROSS JOIN LATERAL (SELECT now() - interval '40 days' + g * interval '1 ms' AS at) t
    CROSS JOIN LATERAL (
        SELECT (CASE WHEN mod(g, 100) < 90 THEN 'succeeded' WHEN mod(g, 100) < 95 THEN 'failed'
                     WHEN mod(g, 100) < 98 THEN 'dead' ELSE 'canceled' END)::jobforge.job_status
               AS status
    ) s
    RETURNING id, tenant_id, status, finished_at
)
SELECT * FROM ins;
INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker)
SELECT s.id, s.tenant_id, k.kind, s.finished_at, 1, 'bench'
FROM seeded s CROSS JOIN LATERAL (VALUES ('created'), ('claimed'), (s.status::text)) k(kind)
ORDER BY s.id;
INSERT INTO jobforge.job_attempts (job_id, tenant_id, attempt, worker, lease_token, started_at,
                                   finished_at, outcome)
SELECT s.id, s.tenant_id, 1, 'bench', gen_random_uuid(), s.finished_at, s.finished_at,
       CASE WHEN s.status = 'canceled' THEN 'canceled' ELSE s.status::text END
FROM seeded s;
INSERT INTO jobforge.job_results (job_id, tenant_id, result, created_at)
SELECT s.id, s.tenant_id, '{"ok": true}', s.finished_at FROM seeded s WHERE s.status = 'succeeded';
INSERT INTO jobforge.job_runs (job_id, tenant_id, attempt, lease_token, runner_id,
                               runner_version, status, record, recorded_at)
SELECT s.id, s.tenant_id, 1, gen_random_uuid(), 'bench.done', '1.0.0',
       CASE WHEN s.status = 'succeeded' THEN 'succeeded' ELSE 'failed' END,
       jsonb_build_object('format', 'jobforge.run/1', 'log', repeat('x', 400)), s.finished_at
FROM seeded s;
"""

COUNTS = (
    "SELECT (SELECT count(*) FROM jobforge.jobs WHERE finished_at < now() - interval '30 days'),"
    " (SELECT count(*) FROM jobforge.job_events WHERE job_id <= %(last)s),"
    " (SELECT count(*) FROM jobforge.job_attempts WHERE job_id <= %(last)s),"
    " (SELECT count(*) FROM jobforge.job_results WHERE job_id <= %(last)s),"
    " (SELECT count(*) FROM jobforge.job_runs WHERE job_id <= %(last)s)"
)
KINDS = ("jobs", "events", "attempts", "results", "runs")


def registry() -> Registry:
    handlers = Registry()

    async def noop(payload: dict[str, Any], ctx: JobContext) -> None:
        return None

    handlers.register(TYPE, noop)
    return handlers


def seed(dsn: str, finished: int, backlog: int) -> None:
    """The finished jobs and their rows, then the backlog, then VACUUM ANALYZE."""
    with db.connect(dsn) as conn:
        for start in range(1, finished + 1, SEED_CHUNK):
            with conn.transaction():
                conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
                n = min(SEED_CHUNK, finished - start + 1)
                first, *rest = SEED.split(";")
                conn.execute(first.encode(), {"start": start, "n": n})
                for statement in rest:
                    if statement.strip():
                        conn.execute(statement.encode())
            print(f"  seeded {min(start + SEED_CHUNK - 1, finished):,} finished jobs", flush=True)
    with QueueClient.connect(dsn, tenant="bench", max_size=1) as client:
        for start in range(0, backlog, 5000):
            count = min(5000, backlog - start)
            client.enqueue_many([NewJob(type=TYPE, payload={"i": start + i}) for i in range(count)])
    with db.connect(dsn) as conn:
        conn.execute("VACUUM ANALYZE")


def counts(dsn: str, last: int) -> dict[str, int]:
    with db.connect(dsn) as conn:
        row = conn.execute(COUNTS, {"last": last}).fetchone()
    assert row is not None
    return dict(zip(KINDS, (int(n) for n in row), strict=True))


async def alternate(dsn: str, prune: list[str], segment_s: float) -> dict[str, Any]:
    """Drain while the prune runs every other segment; the figures of each kind of segment."""
    worker = Worker(dsn, registry(), WorkerConfig(name="drain", listen=False, prune_every_s=None))
    running = asyncio.ensure_future(worker.run())
    await asyncio.sleep(segment_s)  # warm up: pool, first claims
    proc = await asyncio.create_subprocess_exec(
        *prune, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    os.kill(proc.pid, signal.SIGSTOP)
    output = asyncio.ensure_future(proc.communicate())
    spent = {"on": [0, 0.0], "off": [0, 0.0]}  # jobs, seconds
    pruning = False
    while not output.done():
        before, began = worker.metrics.counts["succeeded"], time.perf_counter()
        if pruning:
            os.kill(proc.pid, signal.SIGCONT)
        await asyncio.wait([output], timeout=segment_s)
        if pruning and not output.done():
            os.kill(proc.pid, signal.SIGSTOP)
        kind = "on" if pruning else "off"
        spent[kind][0] += worker.metrics.counts["succeeded"] - before
        spent[kind][1] += time.perf_counter() - began
        pruning = not pruning
    worker.stop()
    await running
    out, err = output.result()
    if proc.returncode != 0:
        raise SystemExit(f"jobforge prune failed ({proc.returncode}): {err.decode()}")
    with QueueClient.connect(dsn, tenant="bench", max_size=1) as client:
        if not client.list_jobs(status=["queued"], limit=1).jobs:
            raise SystemExit(
                "the backlog ran out before the prune was done: give a larger --backlog"
            )
    return {"reported": json.loads(out), "spent": spent}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--backlog", type=int, default=None)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--throttle", type=float, default=DEFAULT_THROTTLE)
    parser.add_argument("--segment", type=float, default=2.0)
    args = parser.parse_args()
    # throttled, the prune runs at some 7,000 jobs/s on 2 cores, the worker drains up to some
    # 5,000 jobs/s, for twice the prune's time: three times the finished jobs lasts
    backlog = args.backlog or max(100_000, 3 * args.finished)

    server = provide_server(durable=True)
    results: dict[str, Any] = {"finished_jobs": args.finished, "batch": args.batch,
                               "throttle": args.throttle}  # fmt: skip
    try:
        template = Template(server.dsn).ensure()
        print(f"on {server.describe()}", flush=True)
        database = template.create()
        began = time.perf_counter()
        seed(database.dsn, args.finished, backlog)
        print(f"  seeded {args.finished:,} finished jobs and a backlog of {backlog:,} in "
              f"{time.perf_counter() - began:.0f} s", flush=True)  # fmt: skip
        before = counts(database.dsn, args.finished)
        prune = [sys.executable, "-m", "jobforge.cli.app", "prune", "--older-than", "30d",
                 "--batch", str(args.batch), "--throttle", str(args.throttle), "--json",
                 "--database-url", database.dsn]  # fmt: skip
        ran = asyncio.run(alternate(database.dsn, prune, args.segment))
        reported, spent = ran["reported"], ran["spent"]
        after = counts(database.dsn, args.finished)
        went = {k: before[k] - after[k] for k in KINDS}
        if {k: reported[k] for k in KINDS} != went or after["jobs"] != 0:
            raise SystemExit(f"the prune reported {reported}, but {went} went")
        (on_jobs, on_s), (off_jobs, off_s) = spent["on"], spent["off"]
        on_rate, off_rate = on_jobs / on_s, off_jobs / off_s
        print(
            f"  pruned {reported['jobs']:,} jobs ({reported['events']:,} events, "
            f"{reported['attempts']:,} attempts, {reported['results']:,} results, "
            f"{reported['runs']:,} run records) in {on_s:.1f} s of running; the worker drained "
            f"{on_rate:,.0f} jobs/s meanwhile and {off_rate:,.0f} jobs/s in the {off_s:.1f} s "
            f"between ({on_rate / off_rate:.2f}x)",
            flush=True,
        )
        results.update({
            "prune_s": round(on_s, 1),
            "prune_jobs_per_s": round(reported["jobs"] / on_s),
            "drain_calm_jobs_per_s": round(off_rate),
            "drain_pruning_jobs_per_s": round(on_rate),
            "drain_ratio": round(on_rate / off_rate, 3),
        })  # fmt: skip
    finally:
        server.stop()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
