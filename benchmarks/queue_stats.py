"""Queue stats on a big table: what `jobforge jobs stats`, `jobforge health` and the worker's
gauges cost with N jobs (default 1,000,000), and a bulk retry of the dead ones.

Usage: `python benchmarks/queue_stats.py [--jobs N] [--tenants T] [--types K] [--runs R]`.

The jobs are written by one set-based INSERT as the owner (the queue's functions would take
minutes to make a million jobs go through claim and finish; the stats read only the jobs table),
in the mix of a busy queue: 2 % due, 1 % scheduled, 0.5 % waiting out a retry, 0.2 % running,
0.5 % dead, 0.3 % failed, 0.2 % canceled, the rest succeeded, spread over T tenants and K types,
then VACUUM ANALYZE (what autovacuum does to a table that size). Each figure is the median of R
calls through `QueueClient.stats` (round trip included) after one warm-up call:

* `stats_live_ms`: without the succeeded count, every tenant (the health check and the gauges);
* `stats_all_ms`: with it (it reads the whole table);
* `stats_tenant_live_ms` / `stats_tenant_all_ms`: the same for one tenant;
* `group_by_scan_ms`: the naive `GROUP BY tenant_id, type, status` over the table, for scale;
* `bulk_retry_dead_s`: `QueueClient.bulk` retrying one tenant's dead jobs, one event each.

Runs on a throwaway server (fsync on) unless JOBFORGE_SCRATCH_DATABASE_URL is set. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

from jobforge import db
from jobforge.provision import Template, provide_server
from jobforge.queue import QueueClient, bulk

#: One set-based INSERT of jobs `first` to `last`: `g % 1000` picks the state (see the module
#: docstring), each block of 1,000 belongs to one tenant (so every tenant has the whole mix).
SEED = """
INSERT INTO jobforge.jobs (tenant_id, type, payload, payload_hash, status, priority, run_at,
    attempts, max_attempts, lease_token, lease_holder, lease_expires_at, heartbeat_at,
    created_at, updated_at, finished_at, error)
SELECT 't' || (g / 1000 %% %(tenants)s), 'bench.type' || (g / 7 %% %(types)s),
       jsonb_build_object('i', g, 'target', 'https://example.com/' || g),
       'sha256:' || encode(sha256(g::text::bytea), 'hex'), x.status::jobforge.job_status, 0,
       CASE x.role WHEN 'scheduled' THEN now() + interval '1 hour'
                   WHEN 'retry' THEN now() + interval '5 minutes'
                   ELSE now() - (g %% 600) * interval '1 second' END,
       CASE x.role WHEN 'due' THEN 0 WHEN 'scheduled' THEN 0 WHEN 'dead' THEN 3 ELSE 1 END, 3,
       CASE x.status WHEN 'running' THEN gen_random_uuid() END,
       CASE x.status WHEN 'running' THEN 'bench-worker' END,
       CASE x.status WHEN 'running' THEN now() + interval '25 seconds' END,
       CASE x.status WHEN 'running' THEN now() END,
       now() - interval '2 hours', now(),
       CASE WHEN x.status IN ('succeeded', 'failed', 'dead', 'canceled')
            THEN now() - (g %% 172800) * interval '1 second' END,
       CASE WHEN x.status IN ('failed', 'dead')
            THEN '{"kind": "error", "message": "boom"}'::jsonb END
FROM generate_series(%(first)s, %(last)s) AS g
CROSS JOIN LATERAL (
    SELECT CASE WHEN r < 20 THEN 'queued' WHEN r < 30 THEN 'queued' WHEN r < 35 THEN 'queued'
                WHEN r < 37 THEN 'running' WHEN r < 42 THEN 'dead' WHEN r < 45 THEN 'failed'
                WHEN r < 47 THEN 'canceled' ELSE 'succeeded' END AS status,
           CASE WHEN r < 20 THEN 'due' WHEN r < 30 THEN 'scheduled' WHEN r < 35 THEN 'retry'
                WHEN r BETWEEN 37 AND 41 THEN 'dead' ELSE 'other' END AS role
    FROM (SELECT g %% 1000 AS r) AS m
) AS x
"""

NAIVE = "SELECT tenant_id, type, status, count(*) FROM jobforge.jobs GROUP BY 1, 2, 3"


def median_ms(call: Callable[[], object], runs: int) -> float:
    call()  # warm-up: connection, plans, caches
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 1)


def seed(dsn: str, jobs: int, tenants: int, types: int) -> float:
    began = time.perf_counter()
    with db.connect(dsn) as conn:
        step = 200_000
        for first in range(1, jobs + 1, step):
            last = min(jobs, first + step - 1)
            params = {"first": first, "last": last, "tenants": tenants, "types": types}
            conn.execute(SEED, params)
        conn.execute("VACUUM ANALYZE jobforge.jobs")
    return round(time.perf_counter() - began, 1)


def measure(dsn: str, runs: int) -> dict[str, object]:
    figures: dict[str, object] = {}
    with QueueClient.connect(dsn, max_size=1) as operator:
        live = operator.stats(succeeded=False)
        figures["jobs_counted_live"] = sum(v for k, v in live.totals.items() if k != "succeeded")
        figures["stats_live_ms"] = median_ms(lambda: operator.stats(succeeded=False), runs)
        figures["stats_all_ms"] = median_ms(lambda: operator.stats(succeeded=True), runs)
        figures["jobs_counted_all"] = sum(operator.stats().totals.values())
        with operator.transaction(worker=True) as conn:
            figures["group_by_scan_ms"] = median_ms(lambda: conn.execute(NAIVE).fetchall(), runs)
    with QueueClient.connect(dsn, tenant="t1", max_size=1) as one:
        figures["stats_tenant_live_ms"] = median_ms(lambda: one.stats(succeeded=False), runs)
        figures["stats_tenant_all_ms"] = median_ms(lambda: one.stats(succeeded=True), runs)
        dead = bulk.check_filter("retry", ["dead"], None, None)
        began = time.perf_counter()
        done = one.bulk("retry", dead, reset_attempts=True)
        figures["bulk_retry_dead_s"] = round(time.perf_counter() - began, 2)
        figures["bulk_retried"] = done.changed
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--types", type=int, default=20)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    server = provide_server(durable=True)
    results: dict[str, object] = {"jobs": args.jobs, "tenants": args.tenants, "types": args.types,
                                  "runs": args.runs}  # fmt: skip
    try:
        template = Template(server.dsn).ensure()
        database = template.create()
        try:
            with db.connect(database.dsn) as conn:
                results["postgres_version"] = db.scalar(conn, "server_version")
            results["seed_s"] = seed(database.dsn, args.jobs, args.tenants, args.types)
            with db.connect(database.dsn) as conn:
                size = conn.execute("SELECT pg_total_relation_size('jobforge.jobs')").fetchone()
            results["jobs_table_mb"] = round(int(size[0]) / 2**20) if size else None
            print(f"seeded {args.jobs} jobs in {results['seed_s']} s", flush=True)
            results.update(measure(database.dsn, args.runs))
        finally:
            template.drop(database)
    finally:
        server.stop()
    for key in ("stats_live_ms", "stats_all_ms", "stats_tenant_live_ms", "stats_tenant_all_ms",
                "group_by_scan_ms", "bulk_retry_dead_s"):  # fmt: skip
        print(f"  {key}: {results[key]}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
