"""What the drift gate tells a reader to do is what works, and its counts agree with its table.

`contracts check` lists one table row per change, the recorded inputs that no longer validate
among them: the summary's "N changes (B breaking, C compatible)" counts the same rows. Failing
recorded inputs are not fixed by a version: the summary says so rather than "matches its lock"
alone. The next step is the one `contracts lock` accepts: the bump it needs, then the lock.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import BaseModel, create_model

from jobforge.config import ProjectConfig
from jobforge.contracts import RunnerDef, contract_of
from jobforge.contracts.drift import version_verdict
from jobforge.contracts.gate import check_project, lock_project
from jobforge.contracts.locks import write_lock
from jobforge.contracts.schema_diff import Change
from jobforge.runtime.context import RunContext


class In(BaseModel):
    subject: str


# the same model with one more required field (named alike: only the field differs)
InCustomer = create_model("In", subject=(str, ...), customer=(str, ...))


def triage(inp: In, ctx: RunContext) -> In:
    return inp


TRIAGE = RunnerDef(id="example.triage", version="1.0.0", fn=triage, input=In, output=In)


@pytest.fixture
def config(tmp_path: Path) -> ProjectConfig:
    config = ProjectConfig(root=tmp_path)
    write_lock(tmp_path / "contracts", contract_of(TRIAGE))
    case = tmp_path / "golden" / "example.triage" / "basic.json"
    case.parent.mkdir(parents=True)
    case.write_text(json.dumps({"input": {"subject": "hi"}}))
    return config


def test_the_summary_counts_every_row_of_the_table(config: ProjectConfig) -> None:
    changed = replace(TRIAGE, input=InCustomer)  # a new required field; the case lacks it
    (item,) = check_project(config, {"example.triage": changed}).items
    rows = [f for f in item.findings if f.severity != "notice"]
    assert [f.rule for f in rows] == ["input.required_added", "input.recorded_inputs_invalid"]
    assert item.summary.startswith("2 changes (2 breaking, 0 compatible); version still 1.0.0")
    assert "bump the version to 2.0.0 or later" in item.summary
    assert "whatever the version, fix the cases that hold them or undo the change" in item.summary


def test_recorded_inputs_that_fail_under_a_matching_lock_say_what_fixes_them(
    config: ProjectConfig,
) -> None:
    bumped = replace(TRIAGE, input=InCustomer, version="2.0.0")
    assert lock_project(config, {"example.triage": bumped}).exit_code == 0
    (item,) = check_project(config, {"example.triage": bumped}).items
    assert item.summary.startswith(
        "its contract (2.0.0) matches its lock, but 1 of 1 recorded inputs no longer validate; "
        "first: golden/example.triage/basic.json: customer: Field required; "
    )
    assert item.summary.endswith("whatever the version, fix the cases that hold them or undo the "
                                 "change")  # fmt: skip


def test_the_next_step_is_what_lock_accepts() -> None:
    breaking = [Change("input.required_added", "input.properties.customer", "new field")]
    assert version_verdict("1.0.0", "1.0.0", breaking).next_step() == (
        "bump the version to 2.0.0 or later, then run `jobforge contracts lock`"
    )
    assert version_verdict("0.3.0", "0.3.0", breaking).next_step() == (
        "bump the version to 0.4.0 or later, then run `jobforge contracts lock`"
    )
    assert version_verdict("1.0.0", "2.0.0", breaking).next_step() == (
        "review, then run `jobforge contracts lock`"
    )
    assert version_verdict("2.0.0", "1.0.0", breaking).remedy() == (
        "restore a version above the locked one"
    )
