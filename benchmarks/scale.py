"""Claim, finish, drain and prune with a large history against a small one: does a queue whose
tables hold 10,000,000 finished jobs (and three times as many events) still claim and finish at
the cost it has with 10,000?

Usage: `python benchmarks/scale.py [--large 10000000] [--small 10000] [--segments 6]
[--rounds 500] [--claim 10] [--drain 20000] [--prune-batch 1000] [--tmpfs]
[--shared-buffers 4GB] [--explain FILE]`. One throwaway
server with default durability holds two databases: the small one with `--small` finished jobs,
the large one with `--large`, each with the rows the queue leaves behind a finished job (3
events, an attempt, a result for the succeeded ones, a run record of about 400 bytes: the
seeding of `benchmarks/prune.py`), spread over 10 tenants and 40 days old, then VACUUM ANALYZE
(a production table has statistics). The server's data lives on disk (the temp dir), where 10
million jobs fit and a commit pays a real fsync; `--tmpfs` puts it where the other benchmarks'
servers live. The first line says where.

The measurements alternate between the two databases, segment by segment (which goes first
alternates too), so both share whatever else the machine does meanwhile. In each segment, on
each database:
- claim/finish: `--rounds` times, one connection claims `--claim` jobs (`claim_v1`, worker
  side) and finishes them as succeeded (`finish_v1`): the latency of each call; the two
  databases take turns call by call, so a burst of other work lands on both alike;
- drain: one `Worker` (default configuration, no LISTEN, no prune pass) drains `--drain` no-op
  jobs: jobs per second from its start to its return;
- prune: one batch of `--prune-batch` finished jobs older than 30 days, with their rows
  (`prune_v1`, as `jobforge prune` runs it): its time.
The segment's jobs are enqueued just before (untimed) and deleted after it, followed by a VACUUM,
so the small database holds its `--small` history and no more than one segment's jobs.
Figures: medians over the whole run (p95 beside the call latencies), and the ratio large/small
of each. Last line: JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any

from prune import SEED, SEED_CHUNK  # this folder's prune benchmark seeds the same history

from jobforge import db
from jobforge.provision import Template, provide_server
from jobforge.queue import NewJob, Outcome, QueueClient
from jobforge.worker import JobContext, Registry, Worker, WorkerConfig

TYPE = "bench.noop"
SIZES = ("jobs", "job_events", "job_attempts", "job_results", "job_runs")


def registry() -> Registry:
    handlers = Registry()

    async def noop(payload: dict[str, Any], ctx: JobContext) -> None:
        return None

    handlers.register(TYPE, noop)
    return handlers


def seed(dsn: str, finished: int, label: str) -> None:
    """The finished history in chunks of SEED_CHUNK, then VACUUM ANALYZE."""
    began = time.perf_counter()
    first, *rest = SEED.split(";")
    with db.connect(dsn) as conn:
        for start in range(1, finished + 1, SEED_CHUNK):
            n = min(SEED_CHUNK, finished - start + 1)
            with conn.transaction():
                conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
                conn.execute(first.encode(), {"start": start, "n": n})
                for statement in rest:
                    if statement.strip():
                        conn.execute(statement.encode())
            done = start + n - 1
            if done % 1_000_000 < SEED_CHUNK or done == finished:
                took = time.perf_counter() - began
                print(f"  {label}: {done:,} finished jobs after {took:.0f} s", flush=True)
        conn.execute("VACUUM ANALYZE")
    print(f"  {label}: seeded in {time.perf_counter() - began:.0f} s", flush=True)


def enqueue(dsn: str, jobs: int) -> None:
    with QueueClient.connect(dsn, tenant="bench", max_size=1) as client:
        for start in range(0, jobs, 5000):
            count = min(5000, jobs - start)
            client.enqueue_many([NewJob(type=TYPE, payload={"i": start + i}) for i in range(count)])


def clear(dsn: str) -> None:
    """The segment's jobs go (with their rows, by the queue's own delete trigger), then VACUUM:
    the next segment finds the history as seeded."""
    with db.connect(dsn) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
            conn.execute("DELETE FROM jobforge.jobs WHERE tenant_id = 'bench'")
        conn.execute("VACUUM ANALYZE")


def sizes(dsn: str) -> dict[str, Any]:
    with db.connect(dsn) as conn:
        out: dict[str, Any] = {}
        for table in SIZES:
            row = conn.execute(
                "SELECT reltuples::bigint, pg_total_relation_size(oid) FROM pg_class"
                f" WHERE oid = 'jobforge.{table}'::regclass"
            ).fetchone()
            assert row is not None
            out[table] = {"rows": int(row[0]), "mb": round(row[1] / 1e6)}
    return out


def claim_finish(
    dsns: dict[str, str], rounds: int, limit: int, into: dict[str, dict[str, list[float]]]
) -> None:
    """`rounds` claims of `limit` jobs on each database, each followed by the finish of what it
    claimed, the databases taking turns call by call (who goes first alternating): a burst of
    other work on the machine lands on both alike."""
    clients = {name: QueueClient.connect(dsn, max_size=1) for name, dsn in dsns.items()}
    try:
        for round_ in range(rounds):
            names = list(clients) if round_ % 2 == 0 else list(reversed(list(clients)))
            for name in names:
                client = clients[name]
                began = time.perf_counter()
                jobs = client.claim("bench", limit, types=[TYPE])
                claimed = time.perf_counter()
                if len(jobs) != limit:
                    raise SystemExit(f"the claim found {len(jobs)} jobs, not {limit}")
                client.finish("bench", [Outcome(job_id=j.id, lease_token=j.lease_token,  # type: ignore[arg-type]
                                                outcome="succeeded") for j in jobs])  # fmt: skip
                into[name]["claim"].append(claimed - began)
                into[name]["finish"].append(time.perf_counter() - claimed)
    finally:
        for client in clients.values():
            client.close()


def drain(dsn: str, jobs: int) -> float:
    """Jobs per second of one default worker draining `jobs` no-op jobs."""

    async def main() -> float:
        config = WorkerConfig(name="drain", exit_when_idle=True, listen=False, prune_every_s=None)
        began = time.perf_counter()
        report = await Worker(dsn, registry(), config).run()
        elapsed = time.perf_counter() - began
        if report.counts["succeeded"] != jobs:
            raise SystemExit(f"the worker ran {report.counts['succeeded']:.0f} jobs of {jobs}")
        return jobs / elapsed

    return asyncio.run(main())


def explain(dsn: str, limit: int) -> str:
    """The plans, with buffers, of every statement inside one claim of `limit` jobs and their
    finish (auto_explain's nested statements, sent to this client as LOG notices): where a
    claim spends its pages on this database."""
    enqueue(dsn, limit)
    notes: list[str] = []
    with db.connect(dsn) as conn:
        conn.add_notice_handler(lambda d: notes.append(d.message_primary or ""))
        for setting in (
            "auto_explain.log_min_duration = 0",
            "auto_explain.log_analyze = on",
            "auto_explain.log_buffers = on",
            "auto_explain.log_timing = on",
            "auto_explain.log_nested_statements = on",
            "client_min_messages = log",
        ):
            conn.execute(f"SET {setting}".encode())  # fmt: skip
        conn.execute("LOAD 'auto_explain'")
        with conn.transaction():
            conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
            rows = conn.execute(
                "SELECT id, lease_token FROM jobforge.claim_v1('bench', %s, ARRAY[%s])",
                (limit, TYPE),
            ).fetchall()
        notes.append(f"-- claimed {len(rows)}")
    clear(dsn)
    return "\n".join(notes)


def prune(dsn: str, batch: int) -> float:
    """Seconds one batch of the prune takes (the oldest finished jobs, 30 days and older)."""
    with QueueClient.connect(dsn, max_size=1) as client:
        began = time.perf_counter()
        pruned, _ = client.prune_batch(older_than=timedelta(days=30), batch=batch)
        took = time.perf_counter() - began
    if pruned.jobs != batch:
        raise SystemExit(f"the prune found {pruned.jobs} jobs, not {batch}: give more --small")
    return took


def quantiles(values: list[float], scale: float) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered) * scale, 1),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))] * scale, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--segments", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--claim", type=int, default=10)
    parser.add_argument("--drain", type=int, default=20_000)
    parser.add_argument("--prune-batch", type=int, default=1000)
    parser.add_argument("--tmpfs", action="store_true", help="the server's data in memory")
    parser.add_argument("--shared-buffers", help="e.g. 4GB (default: the server's, 128MB)")
    parser.add_argument("--explain", help="write the plans inside one claim on each database here")
    args = parser.parse_args()
    if args.small < args.segments * args.prune_batch:
        parser.error("--small must hold --segments batches of --prune-batch")
    if not args.tmpfs:
        os.environ["JOBFORGE_SCRATCH_DIR"] = tempfile.gettempdir()
    settings = {"shared_buffers": args.shared_buffers} if args.shared_buffers else None
    server = provide_server(durable=True, settings=settings)
    results: dict[str, Any] = {"large": args.large, "small": args.small, "claim": args.claim,
                               "rounds": args.rounds, "segments": args.segments,
                               "shared_buffers": args.shared_buffers or "default"}  # fmt: skip
    try:
        template = Template(server.dsn).ensure()
        print(f"on {server.describe()}", flush=True)
        dsns = {"small": template.create().dsn, "large": template.create().dsn}
        seed(dsns["small"], args.small, "small")
        seed(dsns["large"], args.large, "large")
        results["tables"] = {name: sizes(dsn) for name, dsn in dsns.items()}
        calls: dict[str, dict[str, list[float]]] = {n: {"claim": [], "finish": []} for n in dsns}
        drains: dict[str, list[float]] = {n: [] for n in dsns}
        prunes: dict[str, list[float]] = {n: [] for n in dsns}
        for segment in range(args.segments):
            order = ("small", "large") if segment % 2 == 0 else ("large", "small")
            for name in order:
                enqueue(dsns[name], args.rounds * args.claim)
            claim_finish({n: dsns[n] for n in order}, args.rounds, args.claim, calls)
            for name in order:
                enqueue(dsns[name], args.drain)
                drains[name].append(drain(dsns[name], args.drain))
                prunes[name].append(prune(dsns[name], args.prune_batch))
                clear(dsns[name])
            print(f"  segment {segment + 1}/{args.segments}: " + ", ".join(
                f"{n} claim {statistics.median(calls[n]['claim'][-args.rounds:]) * 1e6:.0f} µs "
                f"finish {statistics.median(calls[n]['finish'][-args.rounds:]) * 1e6:.0f} µs "
                f"drain {drains[n][-1]:,.0f}/s prune {prunes[n][-1] * 1e3:.0f} ms"
                for n in ("small", "large")), flush=True)  # fmt: skip
        for name in dsns:
            results[name + "_figures"] = {
                "claim_us": quantiles(calls[name]["claim"], 1e6),
                "finish_us": quantiles(calls[name]["finish"], 1e6),
                "drain_jobs_per_s": round(statistics.median(drains[name])),
                "prune_batch_ms": round(statistics.median(prunes[name]) * 1e3, 1),
            }
        small, large = results["small_figures"], results["large_figures"]
        if args.explain:
            with open(args.explain, "w", encoding="utf-8") as out:
                for name, dsn in dsns.items():
                    out.write(f"==== {name}\n{explain(dsn, args.claim)}\n")
        results["ratio_large_vs_small"] = {
            "claim": round(large["claim_us"]["median"] / small["claim_us"]["median"], 3),
            "finish": round(large["finish_us"]["median"] / small["finish_us"]["median"], 3),
            "drain": round(large["drain_jobs_per_s"] / small["drain_jobs_per_s"], 3),
            "prune": round(large["prune_batch_ms"] / small["prune_batch_ms"], 3),
        }
        print(f"\n  {args.large:,} finished jobs against {args.small:,} (large/small, cost: "
              f"lower is better; drain: higher is better): "
              f"{results['ratio_large_vs_small']}", flush=True)  # fmt: skip
    finally:
        server.stop()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
