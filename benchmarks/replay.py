"""Replay throughput: recorded runs of trivial runners re-executed and compared, per second.

Usage: `python benchmarks/replay.py [--runs N] [--concurrency C]`. Runs on a throwaway server
unless JOBFORGE_SCRATCH_DATABASE_URL is set (default durability: fsync on). N runs of a trivial
sync and async runner are recorded by the real worker with the recorder, read back and turned into
bundles (not timed); then `jobforge.replay.engine.replay` re-executes them on a fresh clone
(enqueue, worker drain with each run's recorded environment, run records read back, compared
with the recording). Timed: the replay call alone, and with the clone acquired from the pool.

Goal ([7/7]): >= 200 replays/s. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from pydantic import BaseModel

from jobforge import db
from jobforge.contracts import RUNNERS, runner
from jobforge.golden import Recorder
from jobforge.provision import ClonePool, Template, provide_server
from jobforge.queue import NewJob, QueueClient
from jobforge.replay.bundle import from_record
from jobforge.replay.engine import Target, replay
from jobforge.runtime.context import RunContext
from jobforge.worker import Registry, WorkerConfig, drain
from jobforge.worker.runners import register_runner

GOAL_PER_S = 200.0


class In(BaseModel):
    n: int


class Out(BaseModel):
    doubled: int
    pick: int


@runner("bench.replay.sync", version="1.0.0", input=In, output=Out, trace_keys=["n"])
def trivial_sync(inp: In, ctx: RunContext) -> Out:
    ctx.decide("n", inp.n)
    return Out(doubled=inp.n * 2, pick=ctx.random.randint(0, 100))


@runner("bench.replay.async", version="1.0.0", input=In, output=Out, trace_keys=["n"])
async def trivial_async(inp: In, ctx: RunContext) -> Out:
    ctx.decide("n", inp.n)
    return Out(doubled=inp.n * 2, pick=ctx.random.randint(0, 100))


IDS = ("bench.replay.sync", "bench.replay.async")


def record(dsn: str, runs: int) -> list[Target]:
    """N recorded runs (half sync, half async) through the real worker, as replay targets."""
    jobs = [NewJob(type=IDS[i % 2], payload={"n": i}) for i in range(runs)]
    with QueueClient.connect(dsn, tenant="bench") as client:
        client.enqueue_many(jobs)
        registry = Registry()
        for runner_id in IDS:
            register_runner(registry, RUNNERS[runner_id])
        report = drain(dsn, registry, WorkerConfig(concurrency=16), middleware=[Recorder()])
        if report.counts.get("succeeded") != runs:
            raise SystemExit(f"recording failed: {report.counts}")
        rows = client.find_runs(limit=runs)
    return [Target(f"job {r.job_id}", from_record(r.record)) for r in reversed(rows)]


def timed_replay(pool: ClonePool, targets: list[Target], concurrency: int) -> dict[str, Any]:
    began = time.perf_counter()
    database = pool.acquire()
    acquired = time.perf_counter()
    try:
        results = replay(targets, {i: RUNNERS[i] for i in IDS}, database.dsn,
                         concurrency=concurrency)  # fmt: skip
    finally:
        done = time.perf_counter()
        pool.release(database)
    bad = [r for r in results if not r.ok]
    if bad:
        raise SystemExit(f"{len(bad)} replays were not identical; first:\n{bad[0].report()}")
    return {
        "replay_s": done - acquired,
        "with_clone_s": done - began,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000, help="recorded runs to replay")
    parser.add_argument("--concurrency", type=int, default=16, help="the replay worker's slots")
    parser.add_argument("--repeat", type=int, default=3, help="timed replays of the batch")
    args = parser.parse_args()

    server = provide_server()
    results: dict[str, Any] = {"runs": args.runs, "concurrency": args.concurrency}
    try:
        template = Template(server.dsn).ensure()
        with db.connect(server.dsn) as conn:
            results["postgres_version"] = db.scalar(conn, "server_version")
        results["provider"] = server.origin
        print(f"on {server.describe()}", flush=True)
        pool = ClonePool(template)
        try:
            source = pool.acquire()
            began = time.perf_counter()
            targets = record(source.dsn, args.runs)
            print(f"  recorded {len(targets)} runs in {time.perf_counter() - began:.2f} s")
            pool.release(source)
            small = targets[:200]
            timed_replay(pool, small, args.concurrency)  # warm-up: imports, first connections
            figures = [timed_replay(pool, targets, args.concurrency) for _ in range(args.repeat)]
            best_small = min(
                (timed_replay(pool, small, args.concurrency) for _ in range(args.repeat)),
                key=lambda f: f["replay_s"],
            )
        finally:
            pool.close()
    finally:
        server.stop()

    rates = sorted(args.runs / f["replay_s"] for f in figures)
    with_clone = sorted(args.runs / f["with_clone_s"] for f in figures)
    results["replays_per_s_median"] = round(rates[len(rates) // 2], 1)
    results["replays_per_s_min"] = round(rates[0], 1)
    results["replays_per_s_with_clone_median"] = round(with_clone[len(with_clone) // 2], 1)
    results["replays_per_s_200_batch"] = round(200 / best_small["replay_s"], 1)
    results["replays_per_s_200_batch_with_clone"] = round(200 / best_small["with_clone_s"], 1)
    met = results["replays_per_s_median"] >= GOAL_PER_S
    print("\nsummary")
    print(f"  {args.runs} recorded runs replayed and compared: "
          f"{results['replays_per_s_median']} replays/s median of {args.repeat} "
          f"(min {results['replays_per_s_min']}; {results['replays_per_s_with_clone_median']} "
          f"with the clone acquired)")  # fmt: skip
    print(f"  a batch of 200: {results['replays_per_s_200_batch']} replays/s "
          f"({results['replays_per_s_200_batch_with_clone']} with the clone)")  # fmt: skip
    print(f"  goal >= {GOAL_PER_S:.0f} replays/s: {'met' if met else 'NOT met'}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
