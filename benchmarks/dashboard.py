"""The dashboard's overview with 1,000,000 jobs in the table: how long one request takes.

Usage: `python benchmarks/dashboard.py [--jobs N] [--tenants T] [--types K] [--requests R]`.

The jobs are written by set-based INSERTs as the owner, in the mix of a busy queue (that of
benchmarks/queue_stats.py: 2 % due, 1 % scheduled, 0.5 % waiting out a retry, 0.2 % running,
0.5 % dead, 0.3 % failed, 0.2 % canceled, the rest succeeded, finished over the last 48 hours),
spread over T tenants (default 10) and K types, then VACUUM ANALYZE. The overview of one tenant
(counts by type and state, oldest due job, throughput per minute over the last hour) is then
requested R times through the real app (Starlette's TestClient: routing, the session, the three
reads under row-level security, the template) after one warm-up; the figures are the median and
the 95th percentile, and the share of each read.

Runs on a throwaway server (fsync on). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from jobforge import db
from jobforge.dashboard import reads
from jobforge.dashboard.app import DashboardConfig, create_app
from jobforge.dashboard.auth import Identity
from jobforge.provision import Template, provide_server
from jobforge.queue import QueueClient

#: One set-based INSERT of jobs `first` to `last`: `g % 1000` picks the state, each block of
#: 1,000 belongs to one tenant (so every tenant has the whole mix).
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
       now() - interval '2 days', now(),
       CASE WHEN x.status IN ('succeeded', 'failed', 'dead', 'canceled')
            THEN now() - (g %% 172800) * interval '1 second' END,
       CASE WHEN x.status IN ('failed', 'dead')
            THEN '{"type": "RuntimeError", "message": "boom"}'::jsonb END
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


def seed(dsn: str, jobs: int, tenants: int, types: int) -> float:
    began = time.perf_counter()
    with db.connect(dsn) as conn:
        step = 200_000
        for first in range(1, jobs + 1, step):
            last = min(jobs, first + step - 1)
            conn.execute(SEED, {"first": first, "last": last, "tenants": tenants, "types": types})
            print(f"  {last} jobs", flush=True)
        conn.execute("VACUUM ANALYZE jobforge.jobs")
    return round(time.perf_counter() - began, 1)


def timed(call: Callable[[], object], runs: int) -> list[float]:
    call()  # warm-up: connection, plans, caches
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return times


def p95(times: list[float]) -> float:
    return round(statistics.quantiles(times, n=20)[-1], 1)


def measure(dsn: str, runs: int) -> dict[str, object]:
    figures: dict[str, object] = {}
    app = create_app(DashboardConfig(database_url=dsn, tenant=Identity("t1", "bench")))
    with TestClient(app) as web:
        page = web.get("/")
        assert page.status_code == 200, page.text[:500]
        times = timed(lambda: web.get("/"), runs)
    figures["overview_ms_median"] = round(statistics.median(times), 1)
    figures["overview_ms_p95"] = p95(times)
    since = datetime.now(UTC) - timedelta(minutes=reads.WINDOW_MIN)
    with QueueClient.connect(dsn, tenant="t1", max_size=1) as client:
        for name, call in (
            ("stats", lambda: client.stats()),
            ("oldest_due", lambda: reads._rows(client, "dashboard_oldest_due", {"now": None})),
            ("throughput", lambda: reads._rows(client, "dashboard_throughput", {"since": since})),
        ):  # fmt: skip
            figures[f"{name}_ms_median"] = round(statistics.median(timed(call, runs)), 1)
        view = reads.overview(client)
        figures["tenant_jobs"] = sum(view.stats.totals.values())
        figures["finished_last_hour"] = view.finished_last_hour
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--types", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25)
    args = parser.parse_args()
    server = provide_server(durable=True)
    results: dict[str, object] = {"jobs": args.jobs, "tenants": args.tenants,
                                  "types": args.types, "requests": args.requests}  # fmt: skip
    try:
        template = Template(server.dsn).ensure()
        database = template.create()
        try:
            print(f"seeding {args.jobs} jobs", flush=True)
            results["seed_s"] = seed(database.dsn, args.jobs, args.tenants, args.types)
            results.update(measure(database.dsn, args.requests))
        finally:
            template.drop(database)
    finally:
        server.stop()
    print(f"overview of one tenant ({results['tenant_jobs']} of {args.jobs} jobs): median "
          f"{results['overview_ms_median']} ms, p95 {results['overview_ms_p95']} ms "
          f"(stats {results['stats_ms_median']} ms, oldest due "
          f"{results['oldest_due_ms_median']} ms, throughput "
          f"{results['throughput_ms_median']} ms)")  # fmt: skip
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
