"""What verifying a signed job (and a policy token) adds to the worker, per job.

Two figures:
- in process, no database: the worker's checks of one job's signature (the signing payload
  rebuilt from the row, RFC 8785, ed25519 verify, the key's validity and the signed window),
  timed over many jobs; and of one HS256 policy token (PyJWT, claims checked);
- through the real worker: a drain of jobs of a no-op handler declared `signed=True` against the
  same jobs of the same handler unsigned, alternated, on one throwaway database. The signed
  drain also reads each job's key from the registry (one indexed query per job), which the
  in-process figure leaves out: the difference is the whole cost a signed job pays.

Usage: `python benchmarks/signing.py [--jobs 2000] [--rounds 3]`. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from jobforge import db, trust
from jobforge.produce import sign_job
from jobforge.provision import Template, provide_server
from jobforge.queue import NewJob, QueueClient, signing
from jobforge.worker import Registry, WorkerConfig, drain

TENANT = "bench"
#: the worker's per-job budget the issue sets for verification
TARGET_US = 100.0


def in_process(jobs: int, rounds: int) -> dict[str, float]:
    """Median µs per job of the signature checks, of the token checks and of the ed25519
    primitive alone, each as wall time and as this process's CPU time (what the checks cost,
    whatever else the machine runs meanwhile)."""
    key = trust.generate_private_key()
    now = datetime.now(UTC)
    record = trust.KeyRecord("k1", trust.public_key_bytes(key), now - timedelta(days=1))
    keys = {"k1": record}
    signed = [sign_job(NewJob(type="bench.signed", payload={"n": i, "target": f"host-{i}"}),
                       TENANT, key, "k1") for i in range(jobs)]  # fmt: skip
    rows = [
        trust.SignedFields(tenant=TENANT, type=j.type, input=j.payload,
                           max_attempts=j.max_attempts, issued_at=now)
        for j in signed
    ]  # fmt: skip
    envelopes = [j.envelope() for j in signed]
    secret = trust.TokenKeys({"t1": b"s" * 32}, "t1", "bench")
    tokens = [trust.issue_token(secret, tenant=TENANT, action="bench.signed", scopes=["a:b"])
              for _ in range(jobs)]  # fmt: skip
    data = [trust.signing_bytes(row) for row in rows[:1]] * jobs
    signature = trust.sign_bytes(key, data[0])
    public = trust.public_key_bytes(key)

    def signatures() -> None:
        for row, envelope in zip(rows, envelopes, strict=True):
            trust.verify_signatures(row, envelope, keys, now)

    def tokens_() -> None:
        for token in tokens:
            trust.verify_token(token, secret, tenant=TENANT, project="default",
                               action="bench.signed", required_scopes=["a:b"])  # fmt: skip

    def primitive() -> None:
        for one in data:
            trust.keys.verify_bytes(public, signature, one)

    found: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, run in (("signature", signatures), ("token", tokens_),
                          ("ed25519", primitive)):  # fmt: skip
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            found.setdefault(f"{name}_wall", []).append((time.perf_counter() - wall) / jobs * 1e6)
            found.setdefault(f"{name}_cpu", []).append((time.process_time() - cpu) / jobs * 1e6)
    return {name: statistics.median(values) for name, values in found.items()}


def drained(dsn: str, registry: Registry, jobs: list[NewJob]) -> float:
    """Seconds a worker takes to drain `jobs` (enqueued first, not timed)."""
    with QueueClient.connect(dsn, tenant=TENANT) as queue:
        for start in range(0, len(jobs), 1000):
            queue.enqueue_many(jobs[start : start + 1000])
    config = WorkerConfig(prune_every_s=None, schedules_every_s=None, concurrency=32)
    began = time.perf_counter()
    report = drain(dsn, registry, config, timeout_s=600)
    took = time.perf_counter() - began
    assert report.counts["succeeded"] == len(jobs), report.counts
    return took


def through_worker(dsn: str, jobs: int, rounds: int) -> tuple[float, float]:
    """Median µs per job of an unsigned and of a signed drain."""
    key = trust.generate_private_key()
    with db.connect(dsn) as conn:
        signing.add_key(conn, TENANT, "k1", trust.public_key_bytes(key), "bench")

    async def noop(payload: dict[str, Any], ctx: object) -> None:
        return None

    plain, signed = Registry(), Registry()
    plain.register("bench.job", noop)
    signed.register("bench.job", noop, signed=True)
    times: dict[str, list[float]] = {"plain": [], "signed": []}
    for n in range(rounds + 1):  # the first round warms both up and is not counted
        batch = [NewJob(type="bench.job", payload={"n": i, "round": n}) for i in range(jobs)]
        sides = [("plain", plain, batch),
                 ("signed", signed, [sign_job(j, TENANT, key, "k1") for j in batch])]  # fmt: skip
        for side, registry, given in sides if n % 2 else sides[::-1]:
            took = drained(dsn, registry, given)
            if n:
                times[side].append(took / jobs * 1e6)
                print(f"  round {n} {side}: {took / jobs * 1e6:.1f} µs per job", flush=True)
    return statistics.median(times["plain"]), statistics.median(times["signed"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = in_process(args.jobs, args.rounds)
    sig_us = figures["signature_cpu"]
    for name, what in (("signature", "signature checks"), ("token", "policy token checks"),
                       ("ed25519", "the ed25519 verify alone")):  # fmt: skip
        print(f"in process: {what} {figures[f'{name}_cpu']:.1f} µs CPU per job "
              f"({figures[f'{name}_wall']:.1f} µs wall)", flush=True)  # fmt: skip
    own = sig_us - figures["ed25519_cpu"]
    print(f"  target ≤ {TARGET_US:g} µs per job; of the signature checks, jobforge's own part "
          f"(payload, times, key) is {own:.1f} µs CPU", flush=True)  # fmt: skip
    server = provide_server(durable=True)
    try:
        template = Template(server.dsn).ensure()
        print(f"on {server.describe()}", flush=True)
        database = template.create()
        try:
            plain_us, signed_us = through_worker(database.dsn, args.jobs, args.rounds)
        finally:
            template.drop(database)
    finally:
        server.stop()
    added = signed_us - plain_us
    print(f"through the worker: unsigned {plain_us:.1f} µs per job, signed {signed_us:.1f} µs "
          f"per job: +{added:.1f} µs wall (key look-up included)", flush=True)  # fmt: skip
    print(json.dumps({
        "jobs": args.jobs, "rounds": args.rounds,
        "verify_signature_cpu_us_per_job": round(sig_us, 2),
        "verify_signature_wall_us_per_job": round(figures["signature_wall"], 2),
        "ed25519_verify_cpu_us": round(figures["ed25519_cpu"], 2),
        "verify_own_part_cpu_us_per_job": round(sig_us - figures["ed25519_cpu"], 2),
        "verify_token_cpu_us_per_job": round(figures["token_cpu"], 2),
        "drain_unsigned_us_per_job": round(plain_us, 2),
        "drain_signed_us_per_job": round(signed_us, 2),
        "drain_signed_added_us_per_job": round(added, 2),
        "target_us_per_job": TARGET_US,
        "signature_within_target": sig_us <= TARGET_US,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
