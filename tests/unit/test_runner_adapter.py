"""A declared runner as a worker handler (`jobforge.worker.runners.runner_handler`), called
directly with a hand-built JobContext: input validated before, output, trace keys and artifacts
checked after, and what it leaves in the job context's run slot for the recorder. No database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from jobforge import errors
from jobforge.contracts import RUNNERS, RunnerDef, runner
from jobforge.queue import Job
from jobforge.runtime.context import ClockSpec, Environment, RunContext
from jobforge.worker import JobContext, Registry
from jobforge.worker.runners import register_runner, runner_handler

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class ScanIn(BaseModel):
    target: str
    threshold: float = 0.2


class ScanOut(BaseModel):
    findings: list[str]
    picked: int
    at: datetime
    ticket: str


def job_context(payload: dict[str, Any] | None = None, **fields: Any) -> JobContext:
    row: dict[str, Any] = {
        "id": 41,
        "tenant_id": "acme",
        "project": "default",
        "type": "ut-adapter.scan",
        "payload": payload if payload is not None else {"target": "db-1"},
        "payload_hash": "sha256:" + "0" * 64,
        "status": "running",
        "priority": 0,
        "run_at": T0,
        "attempts": 2,
        "max_attempts": 3,
        "lease_token": str(uuid.uuid4()),
        "trace_id": "trace-5",
        "created_at": T0,
        "updated_at": T0,
    }
    row.update(fields)
    return JobContext(job=Job.model_validate(row), worker="worker-1")


def environment(seed: int = 7) -> Environment:
    return Environment(clock=ClockSpec(start=T0), seed=seed, tenant_id="acme", trace_id="trace-5")


@pytest.fixture
def declared() -> Iterator[dict[str, RunnerDef]]:
    """Runners declared for one test under unique ids; the registry is restored after."""
    before = dict(RUNNERS)
    yield RUNNERS
    RUNNERS.clear()
    RUNNERS.update(before)


def _id() -> str:
    return f"ut-adapter.{uuid.uuid4().hex[:12]}"


def scan_runner(**options: Any) -> RunnerDef:
    """The ScanIn -> ScanOut runner of DESIGN §3, declared afresh."""
    runner_id = _id()

    def scan(inp: ScanIn, ctx: RunContext) -> ScanOut:
        ctx.decide("threshold", inp.threshold, reason="taken from input")
        picked = ctx.decide("picked", ctx.random.randint(1, 1_000_000))
        ctx.artifact("report.md", f"# Scan of {inp.target}\npicked {picked}\n")
        ctx.progress(50, "half")
        return ScanOut(findings=[inp.target], picked=picked, at=ctx.now(), ticket=str(ctx.uuid()))

    defaults: dict[str, Any] = {
        "version": "1.0.0", "input": ScanIn, "output": ScanOut,
        "trace_keys": ["threshold", "picked"], "artifacts": ["report.md"],
    }  # fmt: skip
    runner(runner_id, **{**defaults, **options})(scan)
    return RUNNERS[runner_id]


def declare(fn: Any, **options: Any) -> RunnerDef:
    runner_id = _id()
    runner(runner_id, **{"version": "1.0.0", "input": ScanIn, "output": ScanOut, **options})(fn)
    return RUNNERS[runner_id]


def run(definition: RunnerDef, job: JobContext) -> Any:
    handler = runner_handler(definition)
    result = handler(job.job.payload, job)
    return asyncio.run(result) if definition.is_async else result


# ---------------------------------------------------------------------------------------------
# success


def test_a_successful_run_returns_the_output_json_and_leaves_its_run_behind(
    declared: dict[str, RunnerDef],
) -> None:
    definition = scan_runner()
    job = job_context({"target": "db-1", "threshold": "0.5"})
    output = run(definition, job)

    assert output == job.run.output
    assert output["findings"] == ["db-1"]
    assert isinstance(output["picked"], int)
    assert uuid.UUID(output["ticket"]).version == 4
    assert job.run.definition is definition

    ctx = job.run.run
    assert isinstance(ctx, RunContext)
    assert [(s.key, s.value) for s in ctx.trace] == [
        ("threshold", 0.5),
        ("picked", output["picked"]),
    ]
    assert list(ctx.artifacts) == ["report.md"]
    assert (ctx.job_id, ctx.attempt, ctx.tenant_id, ctx.trace_id) == (41, 2, "acme", "trace-5")
    assert ctx.mode == "record"
    assert job.take_progress() == (50.0, "half")  # ctx.progress reaches the worker's job

    env = job.run.environment
    assert isinstance(env, Environment)
    assert ctx.environment is env
    assert (env.tenant_id, env.trace_id) == ("acme", "trace-5")
    assert abs(env.clock.start - datetime.now(UTC)) < timedelta(minutes=5)  # a fresh one
    assert datetime.fromisoformat(output["at"]) == env.clock.start  # JSON, from the run's clock


def test_a_preset_environment_is_used_and_the_same_seed_gives_the_same_output(
    declared: dict[str, RunnerDef],
) -> None:
    definition = scan_runner()
    outputs = []
    for seed in (7, 7, 8):
        job = job_context()
        preset = environment(seed)
        job.run.environment = preset
        outputs.append(run(definition, job))
        assert _run(job).environment is preset
        assert job.run.environment is preset
    assert outputs[0] == outputs[1]
    assert outputs[0]["at"] == "2026-03-01T12:00:00Z"
    assert outputs[0]["picked"] != outputs[2]["picked"]
    assert outputs[0]["ticket"] != outputs[2]["ticket"]


def test_the_run_mode_comes_from_the_run_slot(declared: dict[str, RunnerDef]) -> None:
    job = job_context()
    job.run.environment = environment()
    job.run.mode = "replay"
    run(scan_runner(), job)
    assert _run(job).mode == "replay"


def test_an_output_returned_as_a_dict_is_validated_and_normalized(
    declared: dict[str, RunnerDef],
) -> None:
    def as_dict(inp: ScanIn, ctx: RunContext) -> dict[str, Any]:
        return {"findings": ("a", "b"), "picked": "3", "at": "2026-03-01T13:00:00+01:00",
                "ticket": "t"}  # fmt: skip

    output = run(declare(as_dict), job_context())
    assert output == {"findings": ["a", "b"], "picked": 3, "at": "2026-03-01T13:00:00+01:00",
                      "ticket": "t"}  # fmt: skip


class Wider(BaseModel):
    findings: list[str]
    picked: int
    at: datetime
    ticket: str
    internal: str


def test_an_output_model_of_another_class_is_checked_against_the_declared_one(
    declared: dict[str, RunnerDef],
) -> None:
    def wider(inp: ScanIn, ctx: RunContext) -> Wider:
        return Wider(findings=[], picked=1, at=T0, ticket="t", internal="x")

    output = run(declare(wider), job_context())
    assert output == {"findings": [], "picked": 1, "at": "2026-03-01T12:00:00Z", "ticket": "t"}


def test_async_runners_run_too(declared: dict[str, RunnerDef]) -> None:
    async def scan_async(inp: ScanIn, ctx: RunContext) -> ScanOut:
        await asyncio.sleep(0)
        ctx.decide("k", inp.target)
        return ScanOut(findings=[inp.target], picked=1, at=ctx.now(), ticket=str(ctx.uuid()))

    definition = declare(scan_async, trace_keys=["k"])
    handler = runner_handler(definition)
    assert asyncio.iscoroutinefunction(handler)
    job = job_context()
    job.run.environment = environment()
    output = asyncio.run(handler(job.job.payload, job))
    assert output["findings"] == ["db-1"]
    assert output == job.run.output
    assert [s.key for s in _run(job).trace] == ["k"]


def test_a_sync_runner_gives_a_sync_handler(declared: dict[str, RunnerDef]) -> None:
    assert not asyncio.iscoroutinefunction(runner_handler(scan_runner()))


def test_register_runner_registers_under_the_id_with_the_timeout(
    declared: dict[str, RunnerDef],
) -> None:
    definition = scan_runner(timeout_s=12.5)
    spec = register_runner(Registry(), definition)
    assert (spec.type, spec.timeout_s, spec.is_async) == (definition.id, 12.5, False)
    job = job_context()
    assert spec.fn(job.job.payload, job)["findings"] == ["db-1"]


# ---------------------------------------------------------------------------------------------
# contract checks


def test_invalid_input_is_refused_with_details_before_the_runner_runs(
    declared: dict[str, RunnerDef],
) -> None:
    calls: list[object] = []

    def never(inp: ScanIn, ctx: RunContext) -> None:
        calls.append(inp)

    definition = declare(never)
    job = job_context({"threshold": "high", "extra": 1})
    with pytest.raises(errors.InvalidInput) as caught:
        run(definition, job)
    assert calls == []
    error = caught.value
    assert isinstance(error, errors.NonRetryable)
    assert f"the input of {definition.id} is invalid" in str(error)
    assert "target: Field required" in str(error)
    assert "threshold:" in str(error)
    details = error.details
    assert isinstance(details, list)
    assert sorted(d["loc"][0] for d in details) == ["target", "threshold"]
    for detail in details:
        assert set(detail) == {"loc", "msg", "type"}
        assert all(isinstance(part, str) for part in detail["loc"])
    assert {d["type"] for d in details} == {"missing", "float_parsing"}
    assert job.run.output is None
    assert isinstance(job.run.run, RunContext)  # the recorder still finds the run


class Nested(BaseModel):
    items: list[ScanIn]


def test_invalid_input_details_locate_nested_fields(declared: dict[str, RunnerDef]) -> None:
    def never(inp: Nested, ctx: RunContext) -> None:
        return None

    definition = declare(never, input=Nested)
    with pytest.raises(errors.InvalidInput) as caught:
        run(definition, job_context({"items": [{"target": "a"}, {"threshold": 1}]}))
    assert caught.value.details == [
        {"loc": ["items", "1", "target"], "msg": "Field required", "type": "missing"}
    ]
    assert "items.1.target: Field required" in str(caught.value)


def test_the_error_summary_is_capped_at_five(declared: dict[str, RunnerDef]) -> None:
    class Many(BaseModel):
        a: int
        b: int
        c: int
        d: int
        e: int
        f: int
        g: int

    def never(inp: Many, ctx: RunContext) -> None:
        return None

    with pytest.raises(errors.InvalidInput, match=r"\(and 2 more\)") as caught:
        run(declare(never, input=Many), job_context({}))
    details = caught.value.details
    assert isinstance(details, list)
    assert len(details) == 7  # the details keep every error


@pytest.mark.parametrize(
    "result",
    [
        {"findings": "not a list", "picked": 1, "at": "2026-03-01T12:00:00Z", "ticket": "t"},
        {"findings": []},
        None,
        ScanIn(target="wrong model"),
        "text",
    ],
    ids=["wrong-type", "missing", "none", "other-model", "str"],
)
def test_an_output_that_breaks_the_contract_is_a_violation_with_details(
    declared: dict[str, RunnerDef], result: Any
) -> None:
    def bad(inp: ScanIn, ctx: RunContext) -> Any:
        return result

    definition = declare(bad)
    job = job_context()
    with pytest.raises(errors.ContractViolation) as caught:
        run(definition, job)
    assert f"the output of {definition.id} violates its contract" in str(caught.value)
    details = caught.value.details
    assert isinstance(details, list)
    assert details
    assert all(set(d) == {"loc", "msg", "type"} for d in details)
    assert job.run.output is None


def test_the_output_details_name_the_field(declared: dict[str, RunnerDef]) -> None:
    def bad(inp: ScanIn, ctx: RunContext) -> dict[str, Any]:
        return {"findings": "x", "picked": 1, "at": "2026-03-01T12:00:00Z", "ticket": "t"}

    with pytest.raises(errors.ContractViolation) as caught:
        run(declare(bad), job_context())
    assert caught.value.details == [
        {"loc": ["findings"], "msg": "Input should be a valid list", "type": "list_type"}
    ]


def test_missing_trace_keys_and_artifacts_are_a_violation_listing_them(
    declared: dict[str, RunnerDef],
) -> None:
    def lazy(inp: ScanIn, ctx: RunContext) -> ScanOut:
        ctx.decide("b", 1)
        ctx.artifact("other.txt", "not the declared one")
        return ScanOut(findings=[], picked=0, at=T0, ticket="t")

    definition = declare(lazy, trace_keys=["a", "b", "c"], artifacts=["report.md", "data.json"])
    job = job_context()
    with pytest.raises(errors.ContractViolation) as caught:
        run(definition, job)
    message = str(caught.value)
    assert message.startswith(f"{definition.id} broke its contract: ")
    assert "required trace keys never decided: a, c" in message
    assert "required artifacts never written: report.md, data.json" in message
    assert caught.value.details == {
        "problems": [
            "required trace keys never decided: a, c",
            "required artifacts never written: report.md, data.json",
        ]
    }
    assert job.run.output is None


def test_only_missing_trace_keys(declared: dict[str, RunnerDef]) -> None:
    def lazy(inp: ScanIn, ctx: RunContext) -> ScanOut:
        return ScanOut(findings=[], picked=0, at=T0, ticket="t")

    with pytest.raises(errors.ContractViolation) as caught:
        run(declare(lazy, trace_keys=["must"]), job_context())
    assert "required trace keys never decided: must" in str(caught.value)
    assert "artifacts" not in str(caught.value)


def test_an_error_of_the_runner_itself_passes_through(declared: dict[str, RunnerDef]) -> None:
    def failing(inp: ScanIn, ctx: RunContext) -> ScanOut:
        ctx.decide("attempt", ctx.attempt)
        raise RuntimeError("upstream unavailable")

    job = job_context()
    with pytest.raises(RuntimeError, match="upstream unavailable"):
        run(declare(failing), job)
    assert [s.value for s in _run(job).trace] == [2]
    assert job.run.output is None


def test_an_async_runner_is_checked_the_same_way(declared: dict[str, RunnerDef]) -> None:
    async def lazy(inp: ScanIn, ctx: RunContext) -> dict[str, Any]:
        return {"findings": [], "picked": 0, "at": "2026-03-01T12:00:00Z", "ticket": "t"}

    with pytest.raises(errors.ContractViolation, match=r"never written: report\.md"):
        run(declare(lazy, artifacts=["report.md"]), job_context())
    with pytest.raises(errors.InvalidInput):
        run(declare(lazy), job_context({"nope": 1}))


def _run(job: JobContext) -> RunContext:
    """The RunContext the adapter left in the job's run slot."""
    assert job.run.run is not None
    return job.run.run
