"""What the runner catalogue's disabled-runner check costs a batch enqueue (migrations/0019).

A before/after of two processes on a shared machine is mostly noise; this compares the two
functions side by side in one database instead: `enqueue_v1` as migration 0019 defines it, and
its previous definition (migration 0008's text, installed under another name), called in
alternation with the same batches, so both meet the same load at the same moment. Three
catalogue states: empty, 50 enabled runners, and 50 runners of which one (not among the batch's
types) is disabled, the case where the check reads the batch's types.

Usage: `python benchmarks/catalogue_check.py [--batch 1000] [--rounds 40]`. Each round enqueues
one batch through each function (in alternating order); the figure is the median per batch.
Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

from jobforge import db
from jobforge.provision import Template, provide_server

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench"


def previous_enqueue() -> str:
    """Migration 0008's enqueue_v1, renamed jobforge.enqueue_v1_before_0019."""
    text = (ROOT / "migrations" / "0008_hostile_callers.sql").read_text()
    start = text.index("CREATE OR REPLACE FUNCTION jobforge.enqueue_v1(")
    end = text.index("END $$;", start) + len("END $$;")
    return re.sub(r"jobforge\.enqueue_v1\(", "jobforge.enqueue_v1_before_0019(",
                  text[start:end], count=1)  # fmt: skip


CALL = (
    "SELECT count(*) FROM jobforge.{fn}(%(types)s, ARRAY(SELECT e FROM "
    "jsonb_array_elements(%(payloads)s::jsonb) e))"
)


def one_batch(conn: db.Connection, fn: str, batch: int, n: int) -> float:
    types = [f"bench.type{i % 10}" for i in range(batch)]
    payloads = db.Jsonb([{"n": n, "i": i} for i in range(batch)])
    with db.tenant_transaction(conn, TENANT):
        began = time.perf_counter()
        conn.execute(CALL.format(fn=fn), {"types": types, "payloads": payloads})
        took = time.perf_counter() - began
    return took * 1000


def catalogue(conn: db.Connection, state: str) -> None:
    with db.tenant_transaction(conn, None, worker=True):
        conn.execute("DELETE FROM jobforge.runner_catalogue")
        if state == "empty":
            return
        for i in range(50):
            conn.execute(
                "SELECT jobforge.catalogue_sync_v1(%s, '1.0.0', '{}', '{}', %s)",
                (f"bench.catalogued{i}", "sha256:" + "0" * 64),
            )
        if state == "one_disabled":
            conn.execute("SELECT jobforge.catalogue_enable_v1('bench.catalogued0', false)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    server = provide_server(durable=True)
    results: dict[str, object] = {"batch": args.batch, "rounds": args.rounds}
    try:
        template = Template(server.dsn).ensure()
        print(f"on {server.describe()}", flush=True)
        database = template.create()
        try:
            with db.connect(database.dsn) as conn:
                conn.execute(previous_enqueue())
                for _ in range(3):  # plans and caches warmed for both
                    one_batch(conn, "enqueue_v1", args.batch, 0)
                    one_batch(conn, "enqueue_v1_before_0019", args.batch, 0)
                for state in ("empty", "enabled_50", "one_disabled"):
                    catalogue(conn, state)
                    times: dict[str, list[float]] = {"before": [], "after": []}
                    for n in range(args.rounds):
                        order = [("after", "enqueue_v1"), ("before", "enqueue_v1_before_0019")]
                        for side, fn in order if n % 2 else order[::-1]:
                            times[side].append(one_batch(conn, fn, args.batch, n))
                    before = statistics.median(times["before"])
                    after = statistics.median(times["after"])
                    ratio = after / before
                    print(f"  catalogue {state}: before {before:.2f} ms, after {after:.2f} ms "
                          f"per batch of {args.batch} ({ratio:.3f}x)", flush=True)  # fmt: skip
                    results[f"{state}_before_ms"] = round(before, 3)
                    results[f"{state}_after_ms"] = round(after, 3)
        finally:
            template.drop(database)
    finally:
        server.stop()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
