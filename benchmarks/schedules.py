"""What the workers' schedule pass costs: an idle pass (nothing due) against a table of S
schedules, and a pass that fires D due schedules; the figures behind the default interval
(`jobforge worker --schedules-every`, 1 s).

Usage: `python benchmarks/schedules.py [--schedules 10000] [--due 100] [--passes 2000]`. One
throwaway server with default durability (fsync on). The database holds S every-minute
schedules of 10 tenants (the feature on for all), their next slots computed and in the future,
then VACUUM ANALYZE. An idle pass is timed `--passes` times, one after another on one
connection (wall time, round trip included: an upper bound of what it costs the database). Then
D of them are made due and passes fire them all (D jobs enqueued, D log entries), timed. Last
line: JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from jobforge import db
from jobforge.provision import Template, provide_server
from jobforge.queue import QueueClient
from jobforge.queue.features import set_feature


def seed(dsn: str, n: int) -> None:
    with db.connect(dsn) as conn:
        set_feature(conn, "schedules", None, True)
        with db.tenant_transaction(conn, None, worker=True):
            conn.execute(
                "INSERT INTO jobforge.schedules (tenant_id, name, cron, timezone, type, input, "
                "anchor, next_slot, created_at, updated_at) "
                "SELECT 't' || mod(g, 10), 's' || g, '* * * * *', 'UTC', 'bench.tick', "
                "jsonb_build_object('i', g), now() - interval '1 day', "
                "date_trunc('minute', now()) + interval '1 hour', now(), now() "
                "FROM generate_series(1, %s) g",
                (n,),
            )
        conn.execute("VACUUM ANALYZE jobforge.schedules")


def idle(dsn: str, passes: int) -> list[float]:
    took = []
    with QueueClient.connect(dsn, max_size=1) as worker:
        for _ in range(50):  # warm: plans cached, pages in memory
            worker.schedule_pass("bench")
        for _ in range(passes):
            began = time.perf_counter()
            fired, _ = worker.schedule_pass("bench")
            took.append(time.perf_counter() - began)
            assert fired == []
    return took


def due(dsn: str, n: int) -> float:
    now = datetime.now(UTC)
    with db.connect(dsn) as conn, db.tenant_transaction(conn, None, worker=True):
        conn.execute(
            "UPDATE jobforge.schedules SET next_slot = %s WHERE id IN "
            "(SELECT id FROM jobforge.schedules ORDER BY id LIMIT %s)",
            (now.replace(second=0, microsecond=0), n),
        )
    with QueueClient.connect(dsn, max_size=1) as worker:
        began = time.perf_counter()
        total = 0
        while True:
            fired, more = worker.schedule_pass("bench", limit=100)
            total += len(fired)
            if not more:
                break
        spent = time.perf_counter() - began
    assert total == n, (total, n)
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--passes", type=int, default=2000)
    args = parser.parse_args()
    server = provide_server(durable=True)
    results: dict[str, Any] = {"schedules": args.schedules, "due": args.due}
    try:
        template = Template(server.dsn).ensure()
        print(f"on {server.describe()}", flush=True)
        database = template.create()
        seed(database.dsn, args.schedules)
        took = idle(database.dsn, args.passes)
        median, p99 = statistics.median(took), sorted(took)[int(len(took) * 0.99)]
        print(f"  idle pass over {args.schedules:,} schedules: median {median * 1e3:.2f} ms, "
              f"p99 {p99 * 1e3:.2f} ms (wall, round trip included)", flush=True)  # fmt: skip
        spent = due(database.dsn, args.due)
        print(f"  {args.due} due schedules fired in {spent * 1e3:.0f} ms "
              f"({spent / args.due * 1e3:.2f} ms each)", flush=True)  # fmt: skip
        results.update({"idle_median_ms": round(median * 1e3, 3),
                        "idle_p99_ms": round(p99 * 1e3, 3),
                        "fire_ms_each": round(spent / args.due * 1e3, 3)})  # fmt: skip
    finally:
        server.stop()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
