"""The golden lane on a real throwaway Postgres: after every case its clone is back in the
template's state (rows, sequences), the event loop is as clean as `asyncio.run` leaves it, and a
clone it cannot vouch for is never used again."""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from jobforge import db
from jobforge.contracts import RUNNERS as CONTRACTS
from jobforge.contracts import RunnerDef, runner
from jobforge.golden.case import DEFAULT_ENVIRONMENT, GoldenCase
from jobforge.golden.explain import divergences
from jobforge.golden.lane import Lane
from jobforge.provision import Template
from jobforge.runtime.context import RunContext
from tests.integration.clones import Clones


class In(BaseModel):
    n: int
    fail: bool = False


class Out(BaseModel):
    n: int
    seen: str


SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")
STRAYS: list[asyncio.Task[None]] = []


@runner("lane.sync", version="1.0.0", input=In, output=Out)
def sync_runner(inp: In, ctx: RunContext) -> Out:
    ctx.decide("n", inp.n)
    ctx.artifact("n.txt", str(inp.n))
    if inp.fail:
        raise ValueError("asked to fail")
    return Out(n=inp.n, seen="sync")


@runner("lane.async", version="1.0.0", input=In, output=Out)
async def async_runner(inp: In, ctx: RunContext) -> Out:
    """Leaves a task behind and sets a context variable: neither may reach the next case."""
    seen = SEEN.get()
    SEEN.set(f"case {inp.n}")
    STRAYS.append(asyncio.ensure_future(asyncio.sleep(3600)))
    ctx.decide("n", inp.n)
    return Out(n=inp.n, seen=seen)


RUNNERS: dict[str, RunnerDef] = {key: CONTRACTS[key] for key in ("lane.sync", "lane.async")}


def state(dsn: str) -> dict[str, Any]:
    """Every table's row count and every sequence's position in the jobforge schema (as the
    server's superuser, which row-level security does not filter)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'jobforge' ORDER BY 1"
        ).fetchall()
        counts = {
            name: conn.execute(
                psycopg.sql.SQL("SELECT count(*) FROM jobforge.{}").format(
                    psycopg.sql.Identifier(name)
                )
            ).fetchone()
            for (name,) in tables
        }
        sequences = conn.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'jobforge' "
            "ORDER BY 1"
        ).fetchall()
    return {"tables": counts, "sequences": sequences}


def case(n: int, *, tenant: str = "golden", fail: bool = False) -> GoldenCase:
    environment = DEFAULT_ENVIRONMENT.model_copy(update={"tenant_id": tenant})
    return GoldenCase(input={"n": n, "fail": fail}, environment=environment)


def test_after_each_case_the_clone_is_in_the_template_state(
    clones: Clones, jobforge_template: Template
) -> None:
    pristine = state(jobforge_template.create().dsn)
    lane = Lane(clones)
    try:
        first = lane.run(RUNNERS["lane.sync"], case(1))
        (dsn,) = clones.taken
        assert state(dsn) == pristine
        # a failed run, another tenant, an async runner: each leaves nothing behind either
        failed = lane.run(RUNNERS["lane.sync"], case(2, fail=True))
        assert failed["status"] != "succeeded"
        lane.run(RUNNERS["lane.sync"], case(3, tenant="other-tenant"))
        lane.run(RUNNERS["lane.async"], case(4))
        assert state(dsn) == pristine
        again = lane.run(RUNNERS["lane.sync"], case(1))
        assert clones.taken == [dsn]  # all on one clone
    finally:
        lane.close()
    # job ids repeat as they do on fresh clones, and the runs agree as the determinism check sees it
    assert first["provenance"]["job_id"] == again["provenance"]["job_id"] == 1
    assert divergences(first, again) == []
    assert clones.returned == [dsn]


def test_the_event_loop_is_left_as_asyncio_run_leaves_it(clones: Clones) -> None:
    STRAYS.clear()
    lane = Lane(clones)
    try:
        first = lane.run(RUNNERS["lane.async"], case(1))
        second = lane.run(RUNNERS["lane.async"], case(2))
    finally:
        lane.close()
    # what a case set in its context is gone in the next one
    assert json.loads(first["output"]["canonical"])["seen"] == "unset"
    assert json.loads(second["output"]["canonical"])["seen"] == "unset"
    # the task the runner left behind was canceled when its case ended
    assert len(STRAYS) == 2
    assert all(task.cancelled() for task in STRAYS)


def test_a_clone_is_changed_after_recycle_after_cases(clones: Clones) -> None:
    lane = Lane(clones, recycle_after=2)
    try:
        records = [lane.run(RUNNERS["lane.sync"], case(1)) for _ in range(5)]
    finally:
        lane.close()
    assert len(clones.taken) == 3
    assert clones.returned == clones.taken
    assert all(divergences(records[0], r) == [] for r in records)
    assert {r["provenance"]["job_id"] for r in records} == {1}


def test_a_clone_that_failed_under_a_case_is_dropped_and_the_next_case_gets_another(
    clones: Clones, jobforge_template: Template
) -> None:
    lane = Lane(clones)
    try:
        lane.run(RUNNERS["lane.sync"], case(1))
        (dsn,) = clones.taken
        # the server ends the lane's connections (a restart, an administrator): its state
        # after that is unknown
        name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        with db.connect(jobforge_template.server_dsn) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        with pytest.raises(psycopg.OperationalError):
            lane.run(RUNNERS["lane.sync"], case(2))
        assert clones.returned == [dsn]
        record = lane.run(RUNNERS["lane.sync"], case(3))
    finally:
        lane.close()
    assert record["status"] == "succeeded"
    assert len(clones.taken) == 2
    assert clones.taken[1] != dsn
