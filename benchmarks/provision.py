"""Provisioning figures: server cold start, template build, fresh database per test.

Runs standalone (`python benchmarks/provision.py [--runs N] [--starts K]`), starting its own
throwaway servers unless JOBFORGE_SCRATCH_DATABASE_URL is set. The last line is one JSON object.
Goals ([1/7]): server start <= 0.2 s with a cached cluster; fresh database <= 20 ms; stretch
<= 5 ms (clones prepared ahead in the background).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

from jobforge import db
from jobforge.provision import ClonePool, Server, Template, provide_server


def _ms(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(s * 1000 for s in seconds)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return round(statistics.median(ordered), 2), round(p90, 2)


def _timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def server_starts(starts: int) -> dict[str, float | None]:
    if os.environ.get("JOBFORGE_SCRATCH_DATABASE_URL"):
        return {"server_first_start_s": None, "server_start_s_median": None,
                "server_stop_s_median": None}  # fmt: skip
    # The default path (provider "auto"), as a user's session pays it, Docker check included.
    first = provide_server()
    first_s = first.started_in_s
    first.stop()
    start_times, stop_times = [], []
    for i in range(starts):
        began = time.perf_counter()
        server = provide_server()
        start_times.append(time.perf_counter() - began)
        stop_times.append(_timed(server.stop))
        print(f"  start {i + 1}/{starts}: {start_times[-1] * 1000:.0f} ms", flush=True)
    return {
        "server_first_start_s": round(first_s, 3),
        "server_start_s_median": round(statistics.median(start_times), 3),
        "server_stop_s_median": round(statistics.median(stop_times), 3),
    }


def test_body(dsn: str) -> None:
    """A small realistic test: its own connection, a table, a few rows, a query."""
    with db.connect(dsn) as conn:
        conn.execute("CREATE TABLE bench (id int PRIMARY KEY, v text)")
        for i in range(5):
            conn.execute("INSERT INTO bench VALUES (%s, %s)", (i, f"row {i}"))
        conn.execute("SELECT count(*) FROM bench").fetchone()


def per_test(server: Server, runs: int, ahead: int, threads: int) -> dict[str, float | None]:
    figures: dict[str, float | None] = {}
    template = Template(server.dsn)
    figures["template_build_s"] = round(_timed(template.ensure), 3)

    with db.connect(server.dsn) as admin:
        plain, connected = [], []
        for _ in range(runs):
            began = time.perf_counter()
            clone = template.clone(admin)
            db.execute_ddl(admin, "database_drop", db=clone.name)
            plain.append(time.perf_counter() - began)
        for _ in range(runs):
            began = time.perf_counter()
            clone = template.clone(admin)
            with db.connect(clone.dsn) as conn:
                conn.execute("SELECT 1")
            db.execute_ddl(admin, "database_drop", db=clone.name)
            connected.append(time.perf_counter() - began)
    figures["fresh_db_ms_median"], figures["fresh_db_ms_p90"] = _ms(plain)
    figures["fresh_db_connect_ms_median"], _ = _ms(connected)
    print(f"  fresh database (clone + drop): {figures['fresh_db_ms_median']} ms", flush=True)

    pool = ClonePool(template, ahead=ahead, threads=threads)
    waits, bodies = [], []
    try:
        for _ in range(runs):
            began = time.perf_counter()
            database = pool.acquire()
            acquired = time.perf_counter()
            test_body(database.dsn)
            body_done = time.perf_counter()
            pool.release(database)
            waits.append((acquired - began) + (time.perf_counter() - body_done))
            bodies.append(body_done - acquired)
    finally:
        pool.close()
    figures["prepared_db_ms_median"], figures["prepared_db_ms_p90"] = _ms(waits)
    figures["test_body_ms_median"], _ = _ms(bodies)
    print(f"  prepared database (acquire + release): {figures['prepared_db_ms_median']} ms "
          f"with a {figures['test_body_ms_median']} ms test body", flush=True)  # fmt: skip

    clone = template.create()
    try:
        with db.connect(clone.dsn, autocommit=False) as conn:
            overheads = []
            for _ in range(runs):
                began = time.perf_counter()
                with conn.transaction(force_rollback=True):
                    conn.execute("SELECT 1")
                overheads.append(time.perf_counter() - began)
    finally:
        template.drop(clone)
    figures["rollback_tx_ms_median"], _ = _ms(overheads)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50, help="databases per figure (default 50)")
    parser.add_argument("--starts", type=int, default=5, help="server starts (default 5)")
    parser.add_argument("--ahead", type=int, default=2, help="clones the pool keeps ready")
    parser.add_argument("--threads", type=int, default=2, help="pool threads preparing clones")
    args = parser.parse_args()

    print("server cold starts (cached cluster, tmpfs, direct postgres start)", flush=True)
    figures: dict[str, object] = dict(server_starts(args.starts))
    server = provide_server()
    try:
        with db.connect(server.dsn) as conn:
            figures["postgres_version"] = db.scalar(conn, "server_version")
        figures["provider"] = server.origin
        print(f"per-test databases on {server.describe()}", flush=True)
        figures["pool_threads"] = args.threads
        figures.update(per_test(server, args.runs, args.ahead, args.threads))
    finally:
        server.stop()

    goals = [
        ("server start", figures["server_start_s_median"], 0.2, "s"),
        ("fresh database", figures["fresh_db_ms_median"], 20.0, "ms"),
        ("prepared database (stretch)", figures["prepared_db_ms_median"], 5.0, "ms"),
    ]
    print("\nsummary")
    for name, value, goal, unit in goals:
        verdict = "n/a" if value is None else ("met" if float(str(value)) <= goal else "NOT met")
        print(f"  {name:<28} {value} {unit:<3} goal <= {goal} {unit}: {verdict}")
    print(f"  rollback-transaction fixture {figures['rollback_tx_ms_median']} ms")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
