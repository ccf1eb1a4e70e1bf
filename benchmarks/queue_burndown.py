"""Queue burn-down: enqueue N jobs (one by one and in batches), then drain them with K
concurrent consumers that claim and complete in batches. (Not named queue.py: run as a script,
that name would shadow the standard library's `queue` module, which psycopg imports.)

Usage: `python benchmarks/queue_burndown.py [--sizes N ...] [--consumers K] [--batch B]
[--enqueue-batch E]`. Runs on a throwaway server with default durability (fsync on), the kind
of server a peer queue is measured on, unless JOBFORGE_SCRATCH_DATABASE_URL is set. The drain is
timed from the moment every consumer is connected and waiting until the last one finds the queue
empty: interpreter start-up is not drain time. The last line is one JSON object.
Goals ([2/7]): drain >= 7,000 jobs/s; batch enqueue >= 50,000 jobs/s; drain at 100k within 20 %
of drain at 10k.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from jobforge import db
from jobforge.provision import Template, provide_server
from jobforge.queue import NewJob, Outcome, QueueClient

TENANT = "bench"


def consume(
    dsn: str, worker: str, batch: int, ready: Barrier, ends: Queue[tuple[float, int]]
) -> None:
    """Claim and complete until the queue is empty, once every consumer is ready."""
    done = 0
    with QueueClient(db.ConnectionPool(dsn, min_size=1, max_size=1, open=True)) as client:
        client.claim(worker, 1, types=["bench.warmup"])  # connection and plans warmed
        ready.wait()
        while jobs := client.claim(worker, batch, lease_s=60):
            outcomes = [
                Outcome(job_id=j.id, lease_token=j.lease_token, outcome="succeeded")  # type: ignore[arg-type]
                for j in jobs
            ]
            states = client.finish(worker, outcomes)
            done += sum(state == "succeeded" for state in states.values())
        ends.put((time.perf_counter(), done))


def burn_down(
    dsn: str, size: int, consumers: int, batch: int, enqueue_batch: int
) -> dict[str, float]:
    figures: dict[str, float] = {}
    with QueueClient.connect(dsn, tenant=TENANT, max_size=1) as client:
        singles = min(size, 1000)
        began = time.perf_counter()
        for i in range(singles):
            client.enqueue("bench.noop", {"i": i})
        figures["enqueue_single_jobs_per_s"] = round(singles / (time.perf_counter() - began))
        rest = size - singles
        began = time.perf_counter()
        for start in range(0, rest, enqueue_batch):
            count = min(enqueue_batch, rest - start)
            client.enqueue_many(
                [NewJob(type="bench.noop", payload={"i": start + k}) for k in range(count)]
            )
        if rest:
            figures["enqueue_batch_jobs_per_s"] = round(rest / (time.perf_counter() - began))
    ctx = multiprocessing.get_context("spawn")
    ready, ends = ctx.Barrier(consumers + 1), ctx.Queue()
    procs = [
        ctx.Process(target=consume, args=(dsn, f"w{k}", batch, ready, ends))
        for k in range(consumers)
    ]
    for proc in procs:
        proc.start()
    ready.wait(timeout=120)
    began = time.perf_counter()
    marks = [ends.get(timeout=600) for _ in range(consumers)]
    for proc in procs:
        proc.join()
    elapsed = max(end for end, _ in marks) - began
    counts = [done for _, done in marks]
    if sum(counts) != size:
        raise SystemExit(f"drained {sum(counts)} jobs, expected {size}")
    figures["drain_jobs_per_s"] = round(size / elapsed)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100, help="jobs per claim and per finish")
    parser.add_argument("--enqueue-batch", type=int, default=1000, help="jobs per enqueue_many")
    args = parser.parse_args()

    server = provide_server(durable=True)
    results: dict[str, object] = {
        "consumers": args.consumers,
        "batch": args.batch,
        "enqueue_batch": args.enqueue_batch,
    }
    try:
        template = Template(server.dsn).ensure()
        with db.connect(server.dsn) as conn:
            results["postgres_version"] = db.scalar(conn, "server_version")
            results["fsync"] = conn.execute("SHOW fsync").fetchone()[0]  # type: ignore[index]
        print(f"on {server.describe()} (fsync {results['fsync']})", flush=True)
        for size in args.sizes:
            database = template.create()
            try:
                figures = burn_down(
                    database.dsn, size, args.consumers, args.batch, args.enqueue_batch
                )
            finally:
                template.drop(database)
            print(f"  N={size}: {figures}", flush=True)
            results.update(
                {f"{k.replace('_per_s', '')}_{size}_per_s": v for k, v in figures.items()}
            )
    finally:
        server.stop()
    drains = [v for k, v in results.items() if k.startswith("drain_jobs_") and isinstance(v, int)]
    if len(drains) >= 2:
        results["drain_ratio_largest_vs_smallest"] = round(drains[-1] / drains[0], 3)
    print("\nsummary")
    print(f"  drain: {drains} jobs/s (goal >= 7000)")
    batch_rates = [
        v for k, v in results.items() if k.startswith("enqueue_batch_") and k.endswith("_per_s")
    ]
    print(f"  batch enqueue: {batch_rates} jobs/s (goal >= 50000)")
    print(f"  median drain: {statistics.median(drains) if drains else None}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
