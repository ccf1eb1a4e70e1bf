"""One worker in one process drains N no-op async jobs, at each concurrency given: the quick
figure for tuning the worker itself (its pipelining, `prefetch`, `claim_batch`, the defaults),
without the process fan-out of `benchmarks/worker.py` or the peers of `benchmarks/peers.py`.

Usage: `python benchmarks/worker_drain.py [--jobs N] [--concurrency 10,100,default]
[--prefetch P] [--claim-batch B] [--runs R]`. Each run gets a fresh database cloned from one
template on a throwaway server with default durability (fsync on; the first line says where
its data lives, which decides what a commit costs); the jobs are enqueued untimed, then the
drain (`exit_when_idle`, no LISTEN) is timed from the worker's start to its return. Last line:
JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from jobforge.provision import Template, provide_server
from jobforge.queue import NewJob, QueueClient
from jobforge.worker import JobContext, Registry, Worker, WorkerConfig

TYPE = "bench.noop"


def registry() -> Registry:
    handlers = Registry()

    async def noop(payload: dict[str, Any], ctx: JobContext) -> None:
        return None

    handlers.register(TYPE, noop)
    return handlers


def enqueue(dsn: str, jobs: int) -> None:
    with QueueClient.connect(dsn, tenant="bench", max_size=1) as client:
        for start in range(0, jobs, 5000):
            count = min(5000, jobs - start)
            client.enqueue_many([NewJob(type=TYPE, payload={"i": start + i}) for i in range(count)])


def drain(dsn: str, jobs: int, config: WorkerConfig) -> float:
    """Jobs per second of one drain."""

    async def main() -> float:
        began = time.perf_counter()
        report = await Worker(dsn, registry(), config).run()
        elapsed = time.perf_counter() - began
        if report.counts["succeeded"] != jobs:
            raise SystemExit(f"the worker ran {report.counts['succeeded']:.0f} jobs of {jobs}")
        return jobs / elapsed

    return asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", default="10,100,default")
    parser.add_argument("--prefetch", type=int, default=None)
    parser.add_argument("--claim-batch", type=int, default=None)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    server = provide_server(durable=True)
    results: dict[str, Any] = {"jobs": args.jobs, "prefetch": args.prefetch}
    try:
        template = Template(server.dsn).ensure()
        print(f"on {server.describe()}", flush=True)
        for concurrency in args.concurrency.split(","):
            fields: dict[str, Any] = {"prefetch": args.prefetch, "claim_batch": args.claim_batch}
            if concurrency != "default":
                fields["concurrency"] = int(concurrency)
            config = WorkerConfig(name="drain", exit_when_idle=True, listen=False, **fields)
            rates = []
            for _ in range(args.runs):
                database = template.create()
                try:
                    enqueue(database.dsn, args.jobs)
                    rates.append(drain(database.dsn, args.jobs, config))
                finally:
                    template.drop(database)
            shown = ", ".join(f"{rate:.0f}" for rate in rates)
            print(f"  concurrency {config.concurrency}: {shown} jobs/s", flush=True)
            results[f"c{config.concurrency}_jobs_per_s"] = round(statistics.median(rates))
    finally:
        server.stop()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
