"""End-to-end drain through the real worker: N no-op jobs enqueued, then P worker processes
(`jobforge.worker.Worker`, concurrency C each) run them until the queue is empty.

Usage: `python benchmarks/worker.py [--jobs N] [--processes P] [--concurrency C]
[--handler async|sync]`. Runs on a throwaway server with default durability (fsync on) unless
JOBFORGE_SCRATCH_DATABASE_URL is set. The drain is timed from the moment every worker process is
connected and waiting until the last one finds nothing left; worker overhead per job is the
worker processes' CPU time (user + system) divided by the jobs they ran. Last line: JSON.
Goal ([3/7]): drain >= 7,000 jobs/s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from jobforge import db
from jobforge.provision import Template, provide_server
from jobforge.queue import AsyncQueueClient, NewJob, QueueClient
from jobforge.worker import JobContext, Registry, Worker, WorkerConfig

TYPE = "bench.noop"


def registry(kind: str) -> Registry:
    handlers = Registry()
    if kind == "async":

        async def noop_async(payload: dict[str, Any], ctx: JobContext) -> None:
            return None

        handlers.register(TYPE, noop_async)
    else:

        def noop_sync(payload: dict[str, Any], ctx: JobContext) -> None:
            return None

        handlers.register(TYPE, noop_sync)
    return handlers


def work(
    dsn: str, k: int, concurrency: int, kind: str, ready: Barrier, out: Queue[tuple[float, ...]]
) -> None:
    async def main() -> tuple[float, ...]:
        client = await AsyncQueueClient.connect(dsn, max_size=4)
        config = WorkerConfig(
            name=f"bench-{k}", concurrency=concurrency, exit_when_idle=True, listen=False
        )
        worker = Worker(client, registry(kind), config)
        await client.claim("warmup", 1, types=["bench.warmup"])
        ready.wait()
        cpu = time.process_time()
        report = await worker.run()
        ended = time.perf_counter()
        await client.close()
        return ended, time.process_time() - cpu, report.counts["succeeded"]

    out.put(asyncio.run(main()))


def drain(dsn: str, jobs: int, processes: int, concurrency: int, kind: str) -> dict[str, float]:
    with QueueClient.connect(dsn, tenant="bench", max_size=1) as client:
        for start in range(0, jobs, 5000):
            count = min(5000, jobs - start)
            client.enqueue_many([NewJob(type=TYPE, payload={"i": start + i}) for i in range(count)])
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [
        ctx.Process(target=work, args=(dsn, k, concurrency, kind, ready, out))
        for k in range(processes)
    ]
    for proc in procs:
        proc.start()
    ready.wait(timeout=120)
    began = time.perf_counter()
    marks = [out.get(timeout=900) for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = max(m[0] for m in marks) - began
    done = sum(m[2] for m in marks)
    if done != jobs:
        raise SystemExit(f"the workers ran {done} jobs, expected {jobs}")
    cpu = sum(m[1] for m in marks)
    return {
        "drain_jobs_per_s": round(jobs / elapsed),
        "worker_cpu_us_per_job": round(cpu / jobs * 1e6, 1),
        "elapsed_s": round(elapsed, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--handler", choices=["async", "sync", "both"], default="both")
    args = parser.parse_args()

    kinds = ["async", "sync"] if args.handler == "both" else [args.handler]
    server = provide_server(durable=True)
    results: dict[str, object] = {
        "jobs": args.jobs,
        "processes": args.processes,
        "concurrency": args.concurrency,
    }
    try:
        template = Template(server.dsn).ensure()
        with db.connect(server.dsn) as conn:
            results["fsync"] = conn.execute("SHOW fsync").fetchone()[0]  # type: ignore[index]
        print(f"on {server.describe()} (fsync {results['fsync']})", flush=True)
        for kind in kinds:
            database = template.create()
            try:
                figures = drain(database.dsn, args.jobs, args.processes, args.concurrency, kind)
            finally:
                template.drop(database)
            print(f"  {kind} no-op handlers: {figures}", flush=True)
            results.update({f"{kind}_{k}": v for k, v in figures.items()})
    finally:
        server.stop()
    print("\nsummary")
    for kind in kinds:
        print(
            f"  {kind}: {results[f'{kind}_drain_jobs_per_s']} jobs/s (goal >= 7000), "
            f"worker CPU {results[f'{kind}_worker_cpu_us_per_job']} us/job"
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
