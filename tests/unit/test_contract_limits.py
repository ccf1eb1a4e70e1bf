"""Queue limits declared in a runner's contract (`@runner(limits=Limits(...))`): checked when
declared with the ranges the database takes, locked with the burst the database will keep, and
absent from locks that declare none, so locks written before limits existed read and compare as
they did. The drift rules over them are in tests/unit/test_contract_drift.py."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from jobforge import errors
from jobforge import formats as schemas
from jobforge.config import ProjectConfig
from jobforge.contracts import RUNNERS, Contract, Limits, RunnerDef, contract_of, runner
from jobforge.contracts.drift import compare_contracts
from jobforge.contracts.gate import check_project, lock_project
from jobforge.contracts.locks import read_lock, render, write_lock
from jobforge.report import Outcome
from jobforge.runtime.context import RunContext

OLD_LOCKS = Path(__file__).parent / "test_contract_generator_locks"


class In(BaseModel):
    target: str


class Out(BaseModel):
    done: bool


def crawl(inp: In, ctx: RunContext) -> Out:
    return Out(done=True)


@pytest.fixture
def rid() -> Iterator[str]:
    """A runner id of its own; the process-wide registry restored after the test."""
    before = dict(RUNNERS)
    yield f"ut-limits.{uuid.uuid4().hex[:12]}"
    RUNNERS.clear()
    RUNNERS.update(before)


def declare(runner_id: str, limits: Any) -> RunnerDef:
    runner(runner_id, version="1.0.0", input=In, output=Out, limits=limits)(crawl)
    return RUNNERS[runner_id]


def refused(runner_id: str, limits: Any) -> str:
    """The one-line error a bad declaration gets; nothing registered."""
    with pytest.raises(errors.ConfigurationError) as caught:
        declare(runner_id, limits)
    message = str(caught.value)
    assert runner_id not in RUNNERS
    assert caught.value.exit_code == 2
    assert message.startswith(f"runner {runner_id!r} ({__name__}.crawl): "), message
    assert "\n" not in message
    return message.split("): ", 1)[1]


def test_declared_limits_are_kept_and_locked_with_the_burst_the_database_keeps(rid: str) -> None:
    definition = declare(rid, Limits(max_running=4, rate_per_s=2.5))
    assert definition.limits == Limits(max_running=4, rate_per_s=2.5)
    locked = contract_of(definition).queue_limits
    assert locked is not None
    assert locked.model_dump() == {"max_running": 4, "rate_per_s": 2.5, "burst": 2.5}


def test_a_slow_rate_gets_a_burst_of_one(rid: str) -> None:
    locked = contract_of(declare(rid, Limits(rate_per_s=0.25))).queue_limits
    assert locked is not None
    assert (locked.max_running, locked.rate_per_s, locked.burst) == (None, 0.25, 1.0)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (Limits(), "limits declare nothing: give max_running or rate_per_s (or both)"),
        (Limits(max_running=0), "limits max_running 0 is out of range: give 1-1000000"),
        (Limits(max_running=1_000_001),
         "limits max_running 1000001 is out of range: give 1-1000000"),
        (Limits(max_running=2.5),  # type: ignore[arg-type]
         "limits max_running 2.5 is out of range: give 1-1000000"),
        (Limits(max_running=True), "limits max_running True is out of range: give 1-1000000"),
        (Limits(max_running="3"),  # type: ignore[arg-type]
         "limits max_running '3' is out of range: give 1-1000000"),
        (Limits(rate_per_s=0), "limits rate_per_s 0 is out of range: give 0.000001-1000000"),
        (Limits(rate_per_s=0.0000009),
         "limits rate_per_s 9e-07 is out of range: give 0.000001-1000000"),
        (Limits(rate_per_s=-1.0), "limits rate_per_s -1.0 is out of range: give 0.000001-1000000"),
        (Limits(rate_per_s=1_000_001),
         "limits rate_per_s 1000001 is out of range: give 0.000001-1000000"),
        (Limits(rate_per_s=math.nan),
         "limits rate_per_s nan is out of range: give 0.000001-1000000"),
        (Limits(rate_per_s=math.inf),
         "limits rate_per_s inf is out of range: give 0.000001-1000000"),
        (Limits(max_running=2, burst=5), "limits burst needs rate_per_s"),
        (Limits(rate_per_s=1, burst=0.5), "limits burst 0.5 is out of range: give 1-1000000"),
        (Limits(rate_per_s=1, burst=1_000_001),
         "limits burst 1000001 is out of range: give 1-1000000"),
        ({"max_running": 4},
         "limits must be a Limits(max_running=..., rate_per_s=..., burst=...), not "
         "{'max_running': 4}"),
    ],
)  # fmt: skip
def test_a_bad_limit_is_one_line_naming_the_runner(rid: str, limits: Any, message: str) -> None:
    assert refused(rid, limits) == message


def test_every_bad_value_is_told_at_once(rid: str) -> None:
    said = refused(rid, Limits(max_running=0, rate_per_s=0, burst=0))
    assert said == (
        "limits max_running 0 is out of range: give 1-1000000; limits rate_per_s 0 is out of "
        "range: give 0.000001-1000000; limits burst 0 is out of range: give 1-1000000"
    )


@pytest.mark.parametrize(
    "limits",
    [Limits(max_running=1), Limits(max_running=1_000_000), Limits(rate_per_s=0.000001),
     Limits(rate_per_s=1_000_000, burst=1_000_000), Limits(rate_per_s=3, burst=1)],
)  # fmt: skip
def test_the_bounds_are_inclusive(rid: str, limits: Limits) -> None:
    assert declare(rid, limits).limits == limits


# -- the lock ---------------------------------------------------------------------------------


def test_a_lock_without_limits_has_no_key_for_them(rid: str) -> None:
    contract = contract_of(declare(rid, None))
    assert contract.queue_limits is None
    assert "queue_limits" not in json.loads(render(contract))
    assert "queue_limits" not in contract.model_dump(mode="json")


def test_a_lock_with_limits_round_trips(rid: str, tmp_path: Path) -> None:
    contract = contract_of(declare(rid, Limits(max_running=3, rate_per_s=10, burst=20)))
    path = write_lock(tmp_path, contract)
    assert json.loads(path.read_text())["queue_limits"] == {
        "max_running": 3, "rate_per_s": 10.0, "burst": 20.0,
    }  # fmt: skip
    assert read_lock(path) == contract


@pytest.mark.parametrize("folder", sorted(p.name for p in OLD_LOCKS.iterdir()))
def test_locks_written_before_limits_existed_read_as_declaring_none(folder: str) -> None:
    for path in sorted((OLD_LOCKS / folder).glob("*.json")):
        lock = read_lock(path)
        assert lock.queue_limits is None
        assert "queue_limits" not in path.read_text()
        assert "queue_limits" not in render(lock)  # rewriting it adds no key


def test_an_old_lock_of_a_runner_without_limits_shows_no_drift(rid: str) -> None:
    declared = contract_of(declare(rid, None))
    old_text = render(declared)
    assert "queue_limits" not in old_text  # as every lock written before limits existed
    old = Contract.model_validate_json(old_text)
    compared = compare_contracts(old, declared)
    assert compared.changes == ()
    assert not compared.stale


@pytest.mark.parametrize(
    ("queue_limits", "where"),
    [
        ({"max_running": 0}, "queue_limits.max_running"),
        ({"rate_per_s": 0, "burst": 1}, "queue_limits.rate_per_s"),
        ({"max_running": 2, "burst": 3}, "queue_limits"),
        ({"rate_per_s": 2}, "queue_limits"),
        ({}, "queue_limits"),
        ({"max_running": 2, "cap": 1}, "queue_limits.cap"),
    ],
)
def test_a_bad_limit_in_a_lock_is_one_line_naming_the_file(
    rid: str, tmp_path: Path, queue_limits: dict[str, Any], where: str
) -> None:
    data = contract_of(declare(rid, None)).model_dump(mode="json")
    path = tmp_path / f"{rid}.json"
    path.write_text(json.dumps({**data, "queue_limits": queue_limits}))
    with pytest.raises(errors.ConfigurationError) as caught:
        read_lock(path, f"contracts/{rid}.json")
    message = str(caught.value)
    assert message.startswith(f"invalid lock file contracts/{rid}.json: {where}: "), message
    assert "\n" not in message


def test_locks_with_and_without_limits_fit_the_contract_schema(rid: str) -> None:
    schema = json.loads((schemas.directory() / "contract.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    without = contract_of(declare(rid, None)).model_dump(mode="json")
    with_limits = {**without, "queue_limits": {"max_running": 2, "rate_per_s": 1.0, "burst": 1.0}}
    assert list(validator.iter_errors(without)) == []
    assert list(validator.iter_errors(with_limits)) == []
    bad = {**without, "queue_limits": {"max_running": 0}}
    assert list(validator.iter_errors(bad))


# -- the gate over them -----------------------------------------------------------------------


def _project(tmp_path: Path, definition: RunnerDef) -> ProjectConfig:
    config = ProjectConfig(root=tmp_path)
    write_lock(tmp_path / config.contracts_dir, contract_of(definition))
    return config


def test_check_fails_on_a_limit_change_and_lock_takes_it_without_a_bump(tmp_path: Path) -> None:
    locked = RunnerDef(id="ops.crawl", version="1.2.0", fn=crawl, input=In, output=Out,
                       limits=Limits(max_running=8))  # fmt: skip
    config = _project(tmp_path, locked)
    declared = replace(locked, limits=Limits(max_running=4, rate_per_s=2))
    (item,) = check_project(config, {"ops.crawl": declared}).items
    assert item.outcome is Outcome.failed  # reviewed where it is made, like any drift
    assert [(f.rule, f.severity, f.path, f.message) for f in item.findings] == [
        ("queue_limits.tightened", "compatible", "queue_limits.max_running", "max_running 8 → 4"),
        ("queue_limits.tightened", "compatible", "queue_limits.rate_per_s",
         "rate_per_s none → 2/s"),
        ("queue_limits.tightened", "compatible", "queue_limits.burst", "burst none → 2"),
    ]  # fmt: skip
    assert item.summary == (
        "3 changes (0 breaking, 3 compatible); version still 1.2.0 (none bump) covers the changes"
    )
    (outcome,) = lock_project(config, {"ops.crawl": declared}).outcomes
    assert outcome.action == "written"
    assert check_project(config, {"ops.crawl": declared}).ok
    assert read_lock(tmp_path / "contracts" / "ops.crawl.json").queue_limits is not None
