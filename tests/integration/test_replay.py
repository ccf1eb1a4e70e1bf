"""Replay of runs recorded through the real worker: identical when nothing changed, and each way a
replay can go wrong reported as such (never a crash), on real throwaway Postgres databases."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from jobforge import canonical, errors
from jobforge.contracts import RUNNERS, RunnerDef, runner
from jobforge.golden import Recorder
from jobforge.golden.case import load_case
from jobforge.provision import ClonePool, Database, Template
from jobforge.queue import QueueClient
from jobforge.replay.bundle import Bundle, from_record, load_bundle, promote, write_bundle
from jobforge.replay.engine import Target, first_divergent_step, replay
from jobforge.runtime.context import RunContext
from jobforge.worker import Registry, drain
from jobforge.worker.runners import register_runner


class PriceIn(BaseModel):
    sku: str
    qty: int = 1
    fetch: bool = False


class PriceOut(BaseModel):
    total: float
    picked: int


@runner("rp.price", version="1.0.0", input=PriceIn, output=PriceOut,
        trace_keys=["unit", "discount"])  # fmt: skip
def price(inp: PriceIn, ctx: RunContext) -> PriceOut:
    unit = ctx.decide("unit", 10.0, source="catalog")
    discount = ctx.decide("discount", 0.1 if inp.qty >= 10 else 0.0, rule="bulk >= 10")
    if inp.fetch:
        ctx.http.get("https://prices.example.test/v1/" + inp.sku)
    picked = ctx.random.randint(1, 1_000_000)
    ctx.artifact("quote.txt", f"{inp.sku} x{inp.qty} at {ctx.now().isoformat()}\n")
    return PriceOut(total=unit * inp.qty * (1 - discount), picked=picked)


def price_changed(inp: PriceIn, ctx: RunContext) -> PriceOut:
    """The same runner after someone changed the bulk rule."""
    unit = ctx.decide("unit", 10.0, source="catalog")
    discount = ctx.decide("discount", 0.2 if inp.qty >= 5 else 0.0, rule="bulk >= 5")
    picked = ctx.random.randint(1, 1_000_000)
    ctx.artifact("quote.txt", f"{inp.sku} x{inp.qty} at {ctx.now().isoformat()}\n")
    return PriceOut(total=unit * inp.qty * (1 - discount), picked=picked)


def price_with_wall_clock(inp: PriceIn, ctx: RunContext) -> PriceOut:
    unit = ctx.decide("unit", 10.0, source="catalog")
    ctx.decide("discount", 0.0, rule="none")
    return PriceOut(total=unit, picked=int(time.time() * 1000) % 1_000_000)


class StricterIn(BaseModel):
    sku: str
    qty: int = 1
    fetch: bool = False
    region: str  # new and required: old payloads lack it


@pytest.fixture
def recorded(jobforge_db: Database) -> list[Bundle]:
    """Two runs of rp.price recorded by the real worker, as bundles."""
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        client.enqueue("rp.price", {"sku": "A-1", "qty": 12}, trace_id="t-1")
        client.enqueue("rp.price", {"sku": "B-2", "qty": 3})
        registry = Registry()
        register_runner(registry, RUNNERS["rp.price"])
        report = drain(jobforge_db.dsn, registry, middleware=[Recorder()])
        assert report.counts["succeeded"] == 2
        rows = client.find_runs(runner_ids=["rp.price"])
    assert len(rows) == 2
    return [from_record(row.record) for row in sorted(rows, key=lambda r: r.job_id)]


@pytest.fixture
def fresh_dsn(jobforge_template: Template) -> Iterator[str]:
    """Another fresh database: replays never run where the runs were recorded."""
    pool = ClonePool(jobforge_template, ahead=1, threads=1)
    database = pool.acquire()
    try:
        yield database.dsn
    finally:
        pool.release(database)
        pool.close()


def _targets(bundles: list[Bundle]) -> list[Target]:
    return [Target(f"run-{i}", b) for i, b in enumerate(bundles)]


def _with(fn: object = None, **changes: object) -> dict[str, RunnerDef]:
    definition = RUNNERS["rp.price"]
    if fn is not None:
        changes["fn"] = fn
    return {"rp.price": dataclasses.replace(definition, **changes)}  # type: ignore[arg-type]


def test_recorded_runs_replay_identically(recorded: list[Bundle], fresh_dsn: str) -> None:
    results = replay(_targets(recorded), {"rp.price": RUNNERS["rp.price"]}, fresh_dsn)
    assert [r.verdict for r in results] == ["identical", "identical"]
    assert results[0].context == []
    assert results[0].record is not None
    replayed = results[0].record
    assert json.loads(replayed["output"]["canonical"]) == recorded[0].expect.output
    assert replayed["trace_sha256"] == canonical.hash_of(
        [s.model_dump(mode="json") for s in recorded[0].expect.trace]
    )


def test_changed_logic_is_reported_at_the_first_divergent_decision(
    recorded: list[Bundle], fresh_dsn: str
) -> None:
    results = replay(_targets(recorded), _with(price_changed), fresh_dsn)
    first, second = results
    assert first.verdict == "diverged"
    assert first.step is not None
    assert first.step.index == 1
    assert first.step.recorded == {"key": "discount", "value": 0.1, "why": {"rule": "bulk >= 10"}}
    assert first.step.replayed == {"key": "discount", "value": 0.2, "why": {"rule": "bulk >= 5"}}
    assert [(d.path, d.expected, d.actual) for d in first.differences] == [
        ("output.total", 108.0, 96.0)
    ]
    report = first.report()
    assert "first divergent decision: trace[1]" in report
    assert "recorded: discount = 0.1  why: {'rule': 'bulk >= 10'}" in report
    assert "replayed: discount = 0.2  why: {'rule': 'bulk >= 5'}" in report
    # qty 3 takes no discount under either rule: same value and output, but the decision's
    # reason changed, and a reason is part of the trace
    assert second.verdict == "diverged"
    assert second.step is not None
    assert second.step.index == 1
    assert second.differences == []


def test_a_runner_gone_is_reported_not_raised(recorded: list[Bundle], fresh_dsn: str) -> None:
    results = replay(_targets(recorded[:1]), {}, fresh_dsn)
    assert results[0].verdict == "runner_missing"
    assert "no runner 'rp.price' is declared any more" in results[0].message


def test_an_input_the_current_contract_rejects_is_contract_drift(
    recorded: list[Bundle], fresh_dsn: str
) -> None:
    results = replay(_targets(recorded[:1]), _with(input=StricterIn, version="2.0.0"), fresh_dsn)
    (result,) = results
    assert result.verdict == "input_rejected"
    assert "contract drift" in result.message
    assert "rp.price 2.0.0 (recorded under 1.0.0)" in result.message
    assert "region: Field required" in result.message
    assert "runner version 1.0.0 when recorded, 2.0.0 now" in result.context


def test_an_unrecorded_http_request_is_reported(recorded: list[Bundle], fresh_dsn: str) -> None:
    changed = recorded[0].model_copy(update={"input": {**recorded[0].input, "fetch": True}})
    (result,) = replay([Target("fetching", changed)], {"rp.price": RUNNERS["rp.price"]}, fresh_dsn)
    assert result.verdict == "unrecorded_http"
    assert "prices.example.test" in result.message


def test_fingerprint_changes_are_context_not_failures(
    recorded: list[Bundle], fresh_dsn: str
) -> None:
    provenance = recorded[0].provenance
    old = provenance.fingerprints.model_copy(
        update={"code_sha256": "sha256:" + "0" * 64, "packages": {"pydantic": "1.0"}}
    )
    bundle = recorded[0].model_copy(
        update={"provenance": provenance.model_copy(update={"fingerprints": old})}
    )
    (result,) = replay([Target("old", bundle)], {"rp.price": RUNNERS["rp.price"]}, fresh_dsn)
    assert result.verdict == "identical"
    assert any("source file changed" in c for c in result.context)
    assert any(c.startswith("pydantic 1.0 when recorded") for c in result.context)


def test_a_divergence_from_the_wall_clock_is_explained_by_strict_mode(
    recorded: list[Bundle], fresh_dsn: str
) -> None:
    (result,) = replay(_targets(recorded[:1]), _with(price_with_wall_clock), fresh_dsn)
    assert result.verdict == "diverged"
    calls = [c["call"] for c in result.uncontrolled]
    assert "time.time" in calls
    assert "time.time() at " in result.report()


def test_bundles_round_trip_through_files_and_promote_to_golden_cases(
    recorded: list[Bundle], tmp_path: Path
) -> None:
    path = write_bundle(tmp_path / "bundles", recorded[0])
    assert path.name == f"rp.price-job{recorded[0].provenance.job_id}-a1.json"
    assert load_bundle(path) == recorded[0]
    case_path = promote(tmp_path / "golden", recorded[0])
    assert case_path.parent.name == "rp.price"
    case = load_case(case_path)
    assert case.input == recorded[0].input
    assert case.expect == recorded[0].expect


def test_first_divergent_step_covers_a_trace_that_stops_early() -> None:
    a = [{"key": "x", "value": 1, "why": {}}]
    assert first_divergent_step(a, a) is None
    step = first_divergent_step(a, [])
    assert step is not None
    assert step.index == 0
    assert step.replayed is None
    assert "<no step: the trace ended here>" in "\n".join(step.lines())


@pytest.mark.parametrize("forged", ["../../escaped", "/abs/olute", "..", ".hidden", "a..b"])
def test_a_forged_runner_id_never_becomes_a_path(
    recorded: list[Bundle], tmp_path: Path, forged: str
) -> None:
    """A run record whose runner_id a forged write set to a path: refused by name, and
    nothing is written outside the folder (issue [2/10], point 5)."""
    record = recorded[0].model_dump(mode="json")
    with pytest.raises(ValidationError, match="runner_id"):
        Bundle.model_validate({**record, "runner_id": forged})
    bundle_file = tmp_path / "forged.json"
    bundle_file.write_text(json.dumps({**record, "runner_id": forged}))
    with pytest.raises(errors.ConfigurationError, match=r"forged.json is invalid: runner_id"):
        load_bundle(bundle_file)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["forged.json"]


def test_promote_refuses_a_folder_that_resolves_outside_the_golden_folder(
    recorded: list[Bundle], tmp_path: Path
) -> None:
    golden, outside = tmp_path / "golden", tmp_path / "outside"
    golden.mkdir()
    outside.mkdir()
    (golden / "rp.price").symlink_to(outside)  # planted by someone who can write the folder
    with pytest.raises(errors.ConfigurationError, match="resolves outside the golden folder"):
        promote(golden, recorded[0])
    assert list(outside.iterdir()) == []
