"""Replay compares follow-up jobs instead of performing them: a recorded production run's
effects travel in its bundle, a replay that asks for the same ones is identical, one that asks
for another is a divergence naming it, and the replay's database holds no follow-up job."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from jobforge.contracts import RUNNERS, RunnerDef, runner
from jobforge.golden import Recorder
from jobforge.provision import ClonePool, Database, Template
from jobforge.queue import QueueClient
from jobforge.replay.bundle import Bundle, from_record
from jobforge.replay.engine import Target, replay
from jobforge.runtime.context import RunContext
from jobforge.worker import Registry, drain
from jobforge.worker.runners import register_runner


class OrderIn(BaseModel):
    order: str
    amount: int


class OrderOut(BaseModel):
    ok: bool


@runner("rpe.order", version="1.0.0", input=OrderIn, output=OrderOut)
def order(inp: OrderIn, ctx: RunContext) -> OrderOut:
    ctx.enqueue("rpe.invoice", {"order": inp.order, "amount": inp.amount})
    if inp.amount > 100:
        ctx.enqueue("rpe.review", {"order": inp.order}, key=f"review-{inp.order}")
    return OrderOut(ok=True)


def order_changed(inp: OrderIn, ctx: RunContext) -> OrderOut:
    """After a change: the invoice carries cents, and nothing goes to review."""
    ctx.enqueue("rpe.invoice", {"order": inp.order, "amount": inp.amount * 100})
    return OrderOut(ok=True)


@pytest.fixture
def recorded(jobforge_db: Database) -> Bundle:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        client.enqueue("rpe.order", {"order": "o-1", "amount": 250})
        registry = Registry()
        register_runner(registry, RUNNERS["rpe.order"])
        drain(jobforge_db.dsn, registry, middleware=[Recorder()])
        (row,) = client.find_runs(runner_ids=["rpe.order"])
        # production performed them: two follow-up jobs exist
        assert sorted(
            j.type for j in client.list_jobs(type=["rpe.invoice", "rpe.review"]).jobs
        ) == ["rpe.invoice", "rpe.review"]
    return from_record(row.record)


@pytest.fixture
def fresh(jobforge_template: Template) -> Iterator[Database]:
    pool = ClonePool(jobforge_template, ahead=1, threads=1)
    database = pool.acquire()
    try:
        yield database
    finally:
        pool.release(database)
        pool.close()


def _types(database: Database) -> list[str]:
    with database.connect() as conn:
        conn.execute("SELECT set_config('jobforge.scope', 'worker', false)")
        return [r[0] for r in conn.execute("SELECT type FROM jobforge.jobs ORDER BY id")]


def test_the_bundle_holds_the_effects(recorded: Bundle) -> None:
    assert [(e.runner_id, e.input, e.key) for e in recorded.expect.effects] == [
        ("rpe.invoice", {"order": "o-1", "amount": 250}, None),
        ("rpe.review", {"order": "o-1"}, "review-o-1"),
    ]


def test_the_same_effects_replay_identically_and_nothing_is_enqueued(
    recorded: Bundle, fresh: Database
) -> None:
    (result,) = replay([Target("run", recorded)], {"rpe.order": RUNNERS["rpe.order"]}, fresh.dsn)
    assert result.verdict == "identical", result.report()
    assert set(_types(fresh)) == {"rpe.order"}  # the replayed job only: no follow-up performed


def test_a_changed_effect_is_a_divergence(recorded: Bundle, fresh: Database) -> None:
    changed: dict[str, RunnerDef] = {
        "rpe.order": dataclasses.replace(RUNNERS["rpe.order"], fn=order_changed)}  # fmt: skip
    (result,) = replay([Target("run", recorded)], changed, fresh.dsn)
    assert result.verdict == "diverged"
    assert result.step is None  # the decisions agree: the effects do not
    assert [(d.path, d.expected, d.actual) for d in result.differences] == [
        ("effects[0] (rpe.invoice).input.amount", 250, 25000),
        ("effects[1] (a follow-up of rpe.review the run no longer asks for)",
         {"kind": "enqueue", "runner_id": "rpe.review", "input": {"order": "o-1"},
          "key": "review-o-1"}, result.differences[1].actual),
    ]  # fmt: skip
    report = result.report()
    assert "effects[0] (rpe.invoice).input.amount: expected 250, got 25000" in report
    assert set(_types(fresh)) == {"rpe.order"}
