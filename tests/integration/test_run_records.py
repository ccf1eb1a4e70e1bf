"""Runners through the real worker with the recorder: one run record per attempt, contract
checks, redaction, and runs that repeat exactly under the same recorded environment."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from jobforge import canonical
from jobforge.contracts import runner
from jobforge.golden import Recorder
from jobforge.provision import Database
from jobforge.queue import NewJob, QueueClient
from jobforge.runtime.context import ClockSpec, Environment, RunContext
from jobforge.worker import JobContext, Next, Registry, WorkerConfig, drain
from jobforge.worker.runners import register_runner


class ScanIn(BaseModel):
    target: str
    threshold: float = 0.2
    api_key: str | None = None
    options: dict[str, Any] = {}


class ScanOut(BaseModel):
    findings: list[str]
    picked: int
    at: str
    ticket: str


@runner("rr.scan", version="1.0.0", input=ScanIn, output=ScanOut,
        trace_keys=["threshold", "picked"], artifacts=["report.md"])  # fmt: skip
def scan(inp: ScanIn, ctx: RunContext) -> ScanOut:
    ctx.decide("threshold", inp.threshold, reason="taken from input", token="t-123")
    picked = ctx.random.randint(1, 1_000_000)
    ctx.decide("picked", picked)
    ctx.artifact("report.md", f"# Scan of {inp.target}\npicked {picked}\n")
    ctx.artifact("data.json", {"picked": picked, "b": [1, 2]})
    return ScanOut(findings=[inp.target], picked=picked, at=ctx.now().isoformat(),
                   ticket=str(ctx.uuid()))  # fmt: skip


@runner("rr.async", version="0.1.0", input=ScanIn, output=ScanOut)
async def scan_async(inp: ScanIn, ctx: RunContext) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"findings": [], "picked": 0, "at": ctx.now().isoformat(), "ticket": str(ctx.uuid())}


@runner("rr.bad-output", version="1.0.0", input=ScanIn, output=ScanOut)
def bad_output(inp: ScanIn, ctx: RunContext) -> dict[str, Any]:
    return {"findings": "not a list", "picked": 1}


@runner("rr.no-trace", version="1.0.0", input=ScanIn, output=ScanOut, trace_keys=["must"])
def no_trace(inp: ScanIn, ctx: RunContext) -> ScanOut:
    return ScanOut(findings=[], picked=0, at="", ticket="")


@runner("rr.no-artifact", version="1.0.0", input=ScanIn, output=ScanOut, artifacts=["out.csv"])
def no_artifact(inp: ScanIn, ctx: RunContext) -> ScanOut:
    return ScanOut(findings=[], picked=0, at="", ticket="")


@runner("rr.set-decision", version="1.0.0", input=ScanIn, output=ScanOut)
def set_decision(inp: ScanIn, ctx: RunContext) -> ScanOut:
    ctx.decide("choices", {"b", "a"})
    return ScanOut(findings=[], picked=0, at="", ticket="")


@runner("rr.flaky", version="1.0.0", input=ScanIn, output=ScanOut, max_attempts=2)
def flaky(inp: ScanIn, ctx: RunContext) -> ScanOut:
    ctx.decide("attempt", ctx.attempt)
    raise RuntimeError("upstream unavailable")


def _registry(*ids: str) -> Registry:
    from jobforge.contracts import RUNNERS

    registry = Registry()
    for runner_id in ids:
        register_runner(registry, RUNNERS[runner_id])
    return registry


@pytest.fixture
def queue(jobforge_db: Database) -> Iterator[QueueClient]:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        yield client


def _runs(queue: QueueClient, job_id: int) -> list[dict[str, Any]]:
    return queue.runs(job_id)


PAYLOAD = {"target": "db-1", "api_key": "sk-live-SECRET", "options": {"db_password": "hunter2"}}


def test_a_successful_run_is_recorded_with_hashes_and_secrets_redacted(
    jobforge_db: Database, queue: QueueClient
) -> None:
    job = queue.enqueue("rr.scan", PAYLOAD, trace_id="trace-7")
    report = drain(jobforge_db.dsn, _registry("rr.scan"), middleware=[Recorder()])
    assert report.counts["succeeded"] == 1
    (record,) = _runs(queue, job.job_id)
    assert record["status"] == "succeeded"
    assert record["runner_id"] == "rr.scan"
    assert record["runner_version"] == "1.0.0"
    # the input snapshot: canonical, redacted, and hashed over exactly those bytes
    snap = record["input"]
    assert "SECRET" not in snap["canonical"]
    assert "hunter2" not in snap["canonical"]
    assert snap["canonical"] == canonical.canonical_text(
        {"target": "db-1", "api_key": "[redacted]", "options": {"db_password": "[redacted]"}}
    )
    assert snap["sha256"] == canonical.sha256_of(snap["canonical"].encode())
    # the trace, in order, its secret-looking reason redacted
    assert [s["key"] for s in record["trace"]] == ["threshold", "picked"]
    assert record["trace"][0]["why"] == {"reason": "taken from input", "token": "[redacted]"}
    assert record["trace_sha256"] == canonical.hash_of(record["trace"])
    # the output matches the job's result and its hash
    result = queue.result(job.job_id)
    assert record["output"]["canonical"] == canonical.canonical_text(result)
    assert record["output"]["sha256"] == canonical.hash_of(result)
    # artifacts: bytes hashed, sizes, inline content
    names = {a["name"]: a for a in record["artifacts"]}
    assert set(names) == {"data.json", "report.md"}
    report_md = names["report.md"]
    assert report_md["sha256"] == canonical.sha256_of(report_md["content"].encode())
    assert report_md["size"] == len(report_md["content"].encode())
    data_json = canonical.canonical_text({"b": [1, 2], "picked": result["picked"]})
    assert names["data.json"]["content"] == data_json
    # the environment makes the run repeatable; provenance stays outside the hashes
    env = record["environment"]
    assert env["tenant_id"] == "acme"
    assert env["trace_id"] == "trace-7"
    assert isinstance(env["seed"], int)
    start = datetime.fromisoformat(env["clock"]["start"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(result["at"]) == start  # the first ctx.now() is the start
    prov = record["provenance"]
    assert prov["job_id"] == job.job_id
    assert prov["attempt"] == 1
    assert prov["fingerprints"]["code_sha256"].startswith("sha256:")


def _environment(seed: int, start: datetime) -> Environment:
    return Environment(clock=ClockSpec(start=start), seed=seed, tenant_id="acme")


def _run_with(dsn: str, queue: QueueClient, runner_id: str, env: Environment) -> dict[str, Any]:
    """Run one job of `runner_id` under a given environment (as replay will)."""

    async def inject(ctx: JobContext, call_next: Next) -> Any:
        ctx.run.environment = env
        return await call_next(ctx)

    job = queue.enqueue(runner_id, {"target": "db-1"})
    drain(dsn, _registry(runner_id), middleware=[inject, Recorder()])
    (record,) = queue.runs(job.job_id)
    return record


def _hashes(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "output": record["output"]["sha256"],
        "trace": record["trace_sha256"],
        "artifacts": {a["name"]: a["sha256"] for a in record["artifacts"]},
    }


def test_the_same_environment_gives_byte_identical_runs_and_another_differs(
    jobforge_db: Database, queue: QueueClient
) -> None:
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    first = _run_with(jobforge_db.dsn, queue, "rr.scan", _environment(7, t0))
    second = _run_with(jobforge_db.dsn, queue, "rr.scan", _environment(7, t0))
    assert first["output"]["canonical"] == second["output"]["canonical"]
    assert _hashes(first) == _hashes(second)

    reseeded = _run_with(jobforge_db.dsn, queue, "rr.scan", _environment(8, t0))
    assert reseeded["output"]["sha256"] != first["output"]["sha256"]
    assert reseeded["trace_sha256"] != first["trace_sha256"]  # "picked" came from ctx.random
    assert reseeded["trace"][0] == first["trace"][0]  # the threshold did not use the seed

    later = _run_with(jobforge_db.dsn, queue, "rr.scan", _environment(7, t0.replace(hour=13)))
    assert later["trace_sha256"] == first["trace_sha256"]  # the trace never read the clock
    assert later["output"]["sha256"] != first["output"]["sha256"]  # the output's "at" did


def test_async_runners_get_the_same_context(jobforge_db: Database, queue: QueueClient) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    record = _run_with(jobforge_db.dsn, queue, "rr.async", _environment(1, t0))
    assert record["status"] == "succeeded"
    assert "2026-01-01T00:00:00" in record["output"]["canonical"]


@pytest.mark.parametrize(
    ("runner_id", "payload", "status", "message"),
    [
        ("rr.scan", {"threshold": "high"}, "invalid_input", "the input of rr.scan is invalid"),
        ("rr.bad-output", {"target": "x"}, "contract_violation", "violates its contract"),
        ("rr.no-trace", {"target": "x"}, "contract_violation", "trace keys never decided: must"),
        ("rr.no-artifact", {"target": "x"}, "contract_violation", "never written: out.csv"),
        ("rr.set-decision", {"target": "x"}, "contract_violation", "decision 'choices'"),
    ],
)
def test_each_contract_failure_is_recorded_and_not_retried(
    jobforge_db: Database,
    queue: QueueClient,
    runner_id: str,
    payload: dict[str, Any],
    status: str,
    message: str,
) -> None:
    job = queue.enqueue(runner_id, payload)
    report = drain(jobforge_db.dsn, _registry(runner_id), middleware=[Recorder()])
    assert report.counts["failed"] == 1
    stored = queue.get(job.job_id)
    assert stored.status == "failed"
    assert message in stored.error["message"]
    assert queue.result(job.job_id) is None  # nothing else written for the job
    (record,) = queue.runs(job.job_id)
    assert record["status"] == status
    assert message in record["error"]["message"]
    assert record["output"] is None
    if status == "invalid_input":
        assert stored.error["kind"] == "invalid_input"
        assert record["error"]["details"][0]["loc"] in (["target"], ["threshold"])


def test_a_retried_runner_gets_one_record_per_attempt(
    jobforge_db: Database, queue: QueueClient
) -> None:
    from datetime import timedelta

    job = queue.enqueue_many([NewJob(type="rr.flaky", payload={"target": "x"}, max_attempts=2)])[0]
    registry = _registry("rr.flaky")
    drain(jobforge_db.dsn, registry, middleware=[Recorder()])
    with jobforge_db.connect() as conn:  # the retry waits for its backoff: bring it forward
        conn.execute("SELECT set_config('jobforge.tenant', 'acme', false)")
        conn.execute(
            "UPDATE jobforge.jobs SET run_at = now() - %s WHERE id = %s",
            (timedelta(seconds=1), job.job_id),
        )
    drain(jobforge_db.dsn, registry, middleware=[Recorder()])
    assert queue.get(job.job_id).status == "dead"
    records = queue.runs(job.job_id)
    assert [r["status"] for r in records] == ["retry", "retry"]
    assert [r["provenance"]["attempt"] for r in records] == [1, 2]
    assert [r["trace"][0]["value"] for r in records] == [1, 2]
    assert all(r["error"]["message"] == "upstream unavailable" for r in records)


def test_plain_handlers_are_not_recorded(jobforge_db: Database, queue: QueueClient) -> None:
    registry = Registry()
    registry.register("plain.job", lambda payload, ctx: {"ok": True})
    job = queue.enqueue("plain.job", {})
    drain(jobforge_db.dsn, registry, WorkerConfig(concurrency=2), middleware=[Recorder()])
    assert queue.get(job.job_id).status == "succeeded"
    assert queue.runs(job.job_id) == []
