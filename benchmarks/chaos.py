"""Draining under faults: P `jobforge worker` processes drain N jobs while one random worker is
killed with SIGKILL every few seconds (and started again), and the database server is restarted
once mid-run. Every job must end `succeeded` with its side effect applied exactly once, none lost,
none left running; the drain rate under chaos is reported as a ratio of the calm rate measured in
the same run, on the same server, with the same workers.

Usage: `python benchmarks/chaos.py [--jobs N] [--calm-jobs M] [--processes P] [--concurrency C]
[--kill-every S] [--lease L]`. A throwaway local server with default durability (fsync on); local
PostgreSQL binaries are needed, since the server is restarted by its postmaster. Not a CI test:
it takes minutes and its point is the figure. Last line: JSON.

How "exactly once" is counted: the handler writes its side effect keyed by job id
(`INSERT … ON CONFLICT DO NOTHING`, the effect an idempotent consumer applies) and logs every
execution in a second table. A job whose worker is killed after the effect but before the outcome
commits runs again (at-least-once delivery, as every queue that survives a crash has it), so
`executions - jobs` counts re-runs; `effects` must equal `jobs` exactly.

Why the jobs get 10 attempts (`--max-attempts`, the queue's default is 3): a lease that runs out
is an attempt, so that a job that kills its worker cannot run forever, and every kill strands
the jobs the victim held. With a kill every 5 s and leases of 10 s, a killed worker's jobs come
free ~10 s after their claim, a fraction of a second before the kill after next, and the
worker that takes them over is that kill's victim one time in four; a job's handler here holds
it ~0.5 s (100 handlers share 4 connections). So a group of jobs stranded three times in a row,
and dead with 3 attempts, turned up in 5 runs of 10 (3 to 83 jobs dead each, 2026-11-30).
That is the attempt policy doing its work, not a job lost; the benchmark is about crash safety,
so it gives the jobs more attempts than the chaos can use and reports the most any job needed
(`most_attempts`) and the attempts the kills cost (`stranded_attempts`). A job that still ends
dead, failed or canceled stops the run at once with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from jobforge import db
from jobforge.provision import Template, provide_server
from jobforge.provision.local import LocalServer, _shutdown, spawn_postgres, wait_ready
from jobforge.queue import NewJob, QueueClient

TYPE = "chaos.effect"
TENANT = "chaos"

RUNNERS = textwrap.dedent(
    '''
    """The chaos benchmark's handler: an idempotent side effect and a log of every execution."""
    from __future__ import annotations

    import os
    from typing import Any

    import psycopg
    from psycopg_pool import AsyncConnectionPool

    from jobforge.worker import JobContext, handler

    _pool: AsyncConnectionPool | None = None


    async def _conn_pool() -> AsyncConnectionPool:
        global _pool
        if _pool is None:
            _pool = AsyncConnectionPool(os.environ["CHAOS_DSN"], min_size=1, max_size=4,
                                        open=False, kwargs={"autocommit": True})
            await _pool.open()
        return _pool


    @handler("chaos.effect")
    async def effect(payload: dict[str, Any], ctx: JobContext) -> None:
        pool = await _conn_pool()
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO chaos_executions (job_id, attempt, worker) VALUES (%s, %s, %s)",
                (ctx.job_id, ctx.attempt, ctx.worker),
            )
            await conn.execute(
                "INSERT INTO chaos_effects (job_id) VALUES (%s) ON CONFLICT DO NOTHING",
                (ctx.job_id,),
            )
    '''
)

TABLES = """
CREATE TABLE chaos_effects (job_id bigint PRIMARY KEY);
CREATE TABLE chaos_executions (job_id bigint NOT NULL, attempt integer NOT NULL,
                               worker text NOT NULL);
"""


@dataclass
class Fleet:
    """The worker processes, each started again (a new generation) after it dies."""

    dsn: str
    workdir: Path
    concurrency: int
    lease_s: float
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    generation: dict[int, int] = field(default_factory=dict)
    killed: int = 0
    died_on_their_own: int = 0

    def start(self, k: int) -> None:
        self.generation[k] = self.generation.get(k, 0) + 1
        env = {**os.environ, "CHAOS_DSN": self.dsn, "PYTHONPATH": _pythonpath(self.workdir)}
        self.procs[k] = subprocess.Popen(
            [
                sys.executable, "-m", "jobforge.cli.app", "worker",
                "--runners", "chaos_runners", "--database-url", self.dsn,
                "--concurrency", str(self.concurrency), "--lease", str(self.lease_s),
                "--name", f"chaos-{k}-{self.generation[k]}", "--no-record", "--grace", "2",
            ],
            cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / f"worker-{k}.log", "ab"),  # noqa: SIM115
        )  # fmt: skip

    def revive(self) -> None:
        """Start again any worker that exited without being killed by us."""
        for k, proc in list(self.procs.items()):
            if proc.poll() is not None:
                self.died_on_their_own += 1
                self.start(k)

    def kill_one(self, rng: random.Random) -> None:
        k = rng.choice(sorted(self.procs))
        self.procs[k].send_signal(signal.SIGKILL)
        self.procs[k].wait()
        self.killed += 1
        self.start(k)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _pythonpath(workdir: Path) -> str:
    here = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join(p for p in (str(workdir), here, os.environ.get("PYTHONPATH")) if p)


def restart(server: LocalServer) -> float:
    """Fast shutdown of the postmaster and a start on the same data directory; seconds down."""
    began = time.perf_counter()
    args = [str(a) for a in server.process.args]  # type: ignore[union-attr]
    _shutdown(server.process)
    log = server.run_dir / "server.log"
    server.process = spawn_postgres(args, server.user, log, append=True)
    wait_ready(server.process, server.data_dir, log, 60.0)
    return time.perf_counter() - began


def counts(dsn: str) -> dict[str, int]:
    try:
        with db.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT status::text, count(*) FROM jobforge.jobs GROUP BY 1"
            ).fetchall()
            effects = conn.execute("SELECT count(*) FROM chaos_effects").fetchone()
            executions = conn.execute("SELECT count(*) FROM chaos_executions").fetchone()
    except Exception:
        return {}
    out = {str(status): int(n) for status, n in rows}
    out["effects"] = int(effects[0]) if effects else 0
    out["executions"] = int(executions[0]) if executions else 0
    return out


def enqueue(dsn: str, n: int, max_attempts: int) -> list[int]:
    with QueueClient.connect(dsn, tenant=TENANT) as client:
        ids: list[int] = []
        for start in range(0, n, 1000):
            batch = [
                NewJob(type=TYPE, payload={"i": i}, max_attempts=max_attempts)
                for i in range(start, min(n, start + 1000))
            ]
            ids += [e.job_id for e in client.enqueue_many(batch)]
        return ids


def drain(server: LocalServer, dsn: str, args: argparse.Namespace, n: int, chaos: bool,
          workdir: Path) -> dict[str, float | int]:  # fmt: skip
    """Enqueue n (untimed), then drain with the fleet, faults on or off; the figures."""
    with db.connect(dsn) as conn:
        conn.execute("TRUNCATE chaos_effects, chaos_executions")
    first_id = min(enqueue(dsn, n, args.max_attempts))
    fleet = Fleet(dsn, workdir, args.concurrency, args.lease)
    rng = random.Random(args.seed)
    restarted_at = down_s = None
    began = time.perf_counter()
    for k in range(args.processes):
        fleet.start(k)
    next_kill = began + args.kill_every
    try:
        while True:
            time.sleep(0.25)
            now = time.perf_counter()
            seen = counts(dsn)
            done = seen.get("succeeded", 0)
            if done >= n:
                break
            if lost := {k: seen[k] for k in ("dead", "failed", "canceled") if seen.get(k)}:
                # final states: these jobs will never succeed, so waiting out the timeout is moot
                try:
                    figures: object = holding(dsn, first_id)
                except Exception as exc:  # the server restarting: the states say enough
                    figures = f"(no holding figures: {type(exc).__name__})"
                raise SystemExit(f"chaos: jobs ended {lost} after {now - began:.0f} s: {seen};"
                                 f" {figures}")  # fmt: skip
            if now - began > args.timeout:
                raise SystemExit(f"chaos: not drained after {args.timeout:.0f} s: {seen}")
            if not chaos:
                continue
            fleet.revive()
            if now >= next_kill:
                fleet.kill_one(rng)
                next_kill = now + args.kill_every
            if restarted_at is None and done >= n * args.restart_at:
                restarted_at = now - began
                down_s = restart(server)
                print(f"    server restarted at {restarted_at:.1f} s ({down_s:.2f} s down)")
        elapsed = time.perf_counter() - began
    finally:
        fleet.stop()
    final = counts(dsn)
    held = holding(dsn, first_id)
    problems = []
    if final.get("succeeded", 0) != n or any(k not in ("succeeded", "effects", "executions")
                                              for k in final if final[k]):  # fmt: skip
        problems.append(f"job states {final}")
    if final.get("effects") != n:
        problems.append(f"{final.get('effects')} side effects for {n} jobs")
    if problems:
        raise SystemExit("chaos: " + "; ".join(problems))
    return {
        "jobs": n,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(n / elapsed),
        "effects": final["effects"],
        "reruns": final["executions"] - n,
        "killed": fleet.killed,
        "died_on_their_own": fleet.died_on_their_own,
        "server_restarted_at_s": round(restarted_at, 1) if restarted_at is not None else -1,
        "server_down_s": round(down_s, 2) if down_s is not None else -1,
        **held,
    }


def holding(dsn: str, first_id: int) -> dict[str, float | int]:
    """How long workers held the jobs they finished (claim to outcome), and how many attempts a
    killed worker stranded until their leases expired: each of those cost its job an attempt."""
    with db.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE outcome = 'lease_expired'),"
            " percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM"
            "   finished_at - started_at)) FILTER (WHERE outcome = 'succeeded'),"
            " max(extract(epoch FROM finished_at - started_at))"
            "   FILTER (WHERE outcome = 'succeeded'),"
            " max(attempt) FROM jobforge.job_attempts WHERE job_id >= %s",
            (first_id,),
        ).fetchone()
    assert row is not None
    expired, (p50, p99), most, attempts = row[0], row[1] or (0.0, 0.0), row[2] or 0.0, row[3]
    return {"stranded_attempts": int(expired), "held_p50_s": round(float(p50), 3),
            "held_p99_s": round(float(p99), 3), "held_max_s": round(float(most), 3),
            "most_attempts": int(attempts or 0)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--calm-jobs", type=int, default=0, help="default: the same as --jobs")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--kill-every", type=float, default=5.0)
    parser.add_argument("--max-attempts", type=int, default=10,
                        help="each job's attempts (see the module's docstring)")  # fmt: skip
    parser.add_argument("--lease", type=float, default=10.0,
                        help="lease seconds: a killed worker's jobs wait this long")  # fmt: skip
    parser.add_argument("--restart-at", type=float, default=0.5,
                        help="restart the server when this fraction is done")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    calm_n = args.calm_jobs or args.jobs

    server = provide_server(durable=True, provider="local")
    if not isinstance(server, LocalServer):
        server.stop()
        print("chaos: needs local PostgreSQL binaries (it restarts the server)", file=sys.stderr)
        return 2
    results: dict[str, object] = {
        "processes": args.processes, "concurrency": args.concurrency,
        "kill_every_s": args.kill_every, "lease_s": args.lease, "max_attempts": args.max_attempts,
    }  # fmt: skip
    try:
        template = Template(server.dsn).ensure()
        with tempfile.TemporaryDirectory(prefix="jobforge-chaos-") as tmp:
            workdir = Path(tmp)
            (workdir / "chaos_runners.py").write_text(RUNNERS)
            for mode, n in (("calm", calm_n), ("chaos", args.jobs)):
                database = template.create()
                try:
                    with db.connect(database.dsn) as conn:
                        conn.execute(TABLES)
                    print(f"  {mode}: {n} jobs, {args.processes} workers x {args.concurrency}")
                    figures = drain(server, database.dsn, args, n, mode == "chaos", workdir)
                finally:
                    template.drop(database)
                print(f"  {mode}: {figures}", flush=True)
                results.update({f"{mode}_{k}": v for k, v in figures.items()})
    finally:
        server.stop()
    ratio = int(results["chaos_jobs_per_s"]) / max(1, int(results["calm_jobs_per_s"]))  # type: ignore[call-overload]
    results["chaos_over_calm"] = round(ratio, 3)
    print(
        f"\nevery job succeeded, each side effect once; chaos drain {results['chaos_jobs_per_s']} "
        f"jobs/s against calm {results['calm_jobs_per_s']} (x{ratio:.2f}), "
        f"{results['chaos_killed']} workers killed, {results['chaos_reruns']} re-runs"
    )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
