"""Declared queue limits applied to a real database (`jobforge.declared_limits.apply_limits`,
what `jobforge limits apply` runs): the rows it writes, what a claim then does with them, a
dry run that writes nothing, a hand-set row reported and replaced only when applied, an
unchanged row left untouched (its bucket keeps its tokens), and rows nothing declares left
alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from jobforge import db, errors
from jobforge.contracts import Limits, RunnerDef
from jobforge.declared_limits import apply_limits
from jobforge.provision import Database
from jobforge.queue import NewJob, QueueClient
from jobforge.queue.limits import list_limits, set_limit
from jobforge.runtime.context import RunContext

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class In(BaseModel):
    i: int


class Out(BaseModel):
    ok: bool


def handler(inp: In, ctx: RunContext) -> Out:
    return Out(ok=True)


def runner_def(runner_id: str, limits: Limits | None) -> RunnerDef:
    return RunnerDef(id=runner_id, version="1.0.0", fn=handler, input=In, output=Out,
                     limits=limits)  # fmt: skip


CAPPED = runner_def("ops.capped", Limits(max_running=2))
RATED = runner_def("ops.rated", Limits(rate_per_s=0.001, burst=3))
FREE = runner_def("ops.free", None)
RUNNERS = {r.id: r for r in (CAPPED, RATED, FREE)}


@pytest.fixture
def conn(jobforge_db: Database) -> Iterator[db.Connection]:
    with jobforge_db.connect() as connection:
        yield connection


def enqueue(dsn: str, job_type: str, n: int) -> None:
    with QueueClient.connect(dsn, tenant="acme", max_size=1) as client:
        client.enqueue_many(
            [NewJob(type=job_type, payload={"i": i}, run_at=T0) for i in range(n)], now=T0
        )


def claim(conn: db.Connection, limit: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("SELECT * FROM jobforge.claim_v1('w1', %s, NULL, 30, %s)",
                       (limit, T0)).fetchall()  # fmt: skip


def rows(conn: db.Connection) -> dict[str, tuple[Any, ...]]:
    return {x.key: (x.scope, x.max_running, x.rate_per_s, x.burst) for x in list_limits(conn)}


def test_apply_writes_the_declared_limits_and_the_claim_honours_them(
    jobforge_db: Database, conn: db.Connection
) -> None:
    found = apply_limits(conn, RUNNERS)
    assert [(x.runner_id, x.action) for x in found] == [
        ("ops.capped", "added"), ("ops.rated", "added"),
    ]  # fmt: skip
    assert rows(conn) == {
        "ops.capped": ("type", 2, None, None),
        "ops.rated": ("type", None, 0.001, 3.0),
    }
    enqueue(jobforge_db.dsn, "ops.capped", 5)
    enqueue(jobforge_db.dsn, "ops.rated", 5)
    enqueue(jobforge_db.dsn, "ops.free", 4)
    got = sorted(j["type"] for j in claim(conn, 50))
    assert got == ["ops.capped"] * 2 + ["ops.free"] * 4 + ["ops.rated"] * 3
    assert claim(conn, 50) == []  # the cap is full and the bucket empty (0.001 a second)


def test_a_dry_run_writes_nothing(conn: db.Connection) -> None:
    found = apply_limits(conn, RUNNERS, dry_run=True)
    assert [(x.runner_id, x.action) for x in found] == [
        ("ops.capped", "added"), ("ops.rated", "added"),
    ]  # fmt: skip
    assert found[0].describe(dry_run=True) == "would set max_running 2"
    assert list_limits(conn) == []


def test_a_row_set_by_hand_is_reported_and_replaced_only_when_applied(
    conn: db.Connection,
) -> None:
    set_limit(conn, "type", "ops.capped", max_running=10)
    (planned,) = [x for x in apply_limits(conn, RUNNERS, dry_run=True) if x.runner_id == CAPPED.id]
    assert planned.action == "changed"
    assert planned.describe(dry_run=True) == (
        "would replace max_running 10 (in the database) with max_running 2"
    )
    assert rows(conn)["ops.capped"] == ("type", 10, None, None)  # still the hand-set value
    (done,) = [x for x in apply_limits(conn, RUNNERS) if x.runner_id == CAPPED.id]
    assert done.describe() == "replaced max_running 10 (in the database) with max_running 2"
    assert rows(conn)["ops.capped"] == ("type", 2, None, None)


def test_an_unchanged_row_is_not_written_again(conn: db.Connection) -> None:
    apply_limits(conn, RUNNERS)
    before = conn.execute(
        "SELECT key, tokens, updated_at FROM jobforge.queue_limits ORDER BY key"
    ).fetchall()
    again = apply_limits(conn, RUNNERS)
    assert {x.action for x in again} == {"unchanged"}
    assert again[1].describe() == "rate_per_s 0.001/s, burst 3 already in the database"
    after = conn.execute(
        "SELECT key, tokens, updated_at FROM jobforge.queue_limits ORDER BY key"
    ).fetchall()
    assert after == before


def test_a_default_burst_matches_the_databases_default(conn: db.Connection) -> None:
    slow = runner_def("ops.slow", Limits(rate_per_s=0.5))  # the database's burst: 1
    set_limit(conn, "type", "ops.slow", rate_per_s=0.5)
    (sync,) = apply_limits(conn, {slow.id: slow})
    assert sync.action == "unchanged"


def test_rows_nothing_declares_are_left_alone(conn: db.Connection) -> None:
    set_limit(conn, "type", "ops.free", max_running=7)  # its runner declares none
    set_limit(conn, "type", "other.type", max_running=1)  # no runner of ours
    set_limit(conn, "tenant", "ops.capped", max_running=3)  # a tenant that shares a type's name
    found = apply_limits(conn, RUNNERS)
    (free,) = [x for x in found if x.runner_id == "ops.free"]
    assert free.action == "undeclared"
    assert free.describe() == (
        "max_running 7 in the database, no limits declared: left as it is "
        "(`jobforge limits clear type ops.free` removes it)"
    )
    assert "other.type" not in {x.runner_id for x in found}
    assert {(x.scope, x.key, x.max_running) for x in list_limits(conn)} == {
        ("type", "ops.free", 7), ("type", "other.type", 1), ("tenant", "ops.capped", 3),
        ("type", "ops.capped", 2), ("type", "ops.rated", None),
    }  # fmt: skip


def test_applying_is_all_or_nothing(conn: db.Connection) -> None:
    """A runner the database refuses (a type name it does not take), applied after the others
    (runners go by id), leaves none of them written."""
    odd = runner_def("zz not a type", Limits(max_running=1))
    with pytest.raises(errors.InvalidJob, match="'zz not a type' is not a valid job type"):
        apply_limits(conn, {**RUNNERS, odd.id: odd})
    assert list_limits(conn) == []


def test_the_sync_reads_as_json(conn: db.Connection) -> None:
    set_limit(conn, "type", "ops.rated", rate_per_s=2)
    found = {x.runner_id: x.as_dict() for x in apply_limits(conn, RUNNERS, dry_run=True)}
    assert found["ops.rated"] == {
        "runner": "ops.rated", "action": "changed",
        "declared": {"max_running": None, "rate_per_s": 0.001, "burst": 3},
        "database": {"max_running": None, "rate_per_s": 2.0, "burst": 2.0},
    }  # fmt: skip
