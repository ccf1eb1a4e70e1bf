"""Golden cases of rejected input in the drift gate's recorded-input check: a case that expects
`invalid_input` is not an input that "no longer validates" (it never did); it must still be
rejected, and one the model now accepts is drift of its own (`input.recorded_rejection_accepted`).
A case expecting acceptance that is now rejected stays `input.recorded_inputs_invalid`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from jobforge.config import ProjectConfig
from jobforge.contracts import RunnerDef, contract_of
from jobforge.contracts.gate import check_project, compare_project
from jobforge.contracts.locks import write_lock
from jobforge.contracts.samples import check_samples, golden_inputs
from jobforge.report import Outcome
from jobforge.runtime.context import RunContext


class In(BaseModel):
    amount: int = Field(ge=0)


class InWider(BaseModel):
    amount: int  # negative amounts accepted now


class InNarrower(BaseModel):
    amount: int = Field(ge=10)


class Out(BaseModel):
    ok: bool


def pay(inp: In, ctx: RunContext) -> Out:
    return Out(ok=True)


PAY = RunnerDef(id="billing.pay", version="1.0.0", fn=pay, input=In, output=Out)

REJECTED = {
    "status": "invalid_input",
    "error": {
        "type": "InvalidInput",
        "message": "the input of billing.pay is invalid: amount: Input should be greater than or "
        "equal to 0",
    },
}


@pytest.fixture
def config(tmp_path: Path) -> ProjectConfig:
    project = ProjectConfig(root=tmp_path)
    write_lock(project.root / project.contracts_dir, contract_of(PAY))
    return project


def case(config: ProjectConfig, name: str, data: dict[str, Any],
         expect: dict[str, Any] | None = None) -> None:  # fmt: skip
    folder = config.root / config.golden_dir / "billing.pay"
    folder.mkdir(parents=True, exist_ok=True)
    body = {"input": data} if expect is None else {"input": data, "expect": expect}
    (folder / f"{name}.json").write_text(json.dumps(body))


def test_a_case_expecting_its_input_rejected_passes_the_check(config: ProjectConfig) -> None:
    case(config, "ok", {"amount": 5}, {"status": "succeeded", "output": {"ok": True}})
    case(config, "negative", {"amount": -1}, REJECTED)
    report = check_project(config, {"billing.pay": PAY})
    (item,) = report.items
    assert item.outcome is Outcome.passed, item.summary
    (drift,) = compare_project(config, {"billing.pay": PAY})
    assert drift.samples is not None
    assert drift.samples.ok
    assert drift.samples.message() == (
        "all 1 recorded inputs validate; 1 recorded as rejected still are"
    )


def test_a_rejected_input_the_model_now_accepts_is_drift(config: ProjectConfig) -> None:
    case(config, "negative", {"amount": -1}, REJECTED)
    wider = replace(PAY, input=InWider, version="1.1.0")
    (drift,) = compare_project(config, {"billing.pay": wider})
    assert [c.rule for c in drift.sample_changes] == ["input.recorded_rejection_accepted"]
    assert drift.samples is not None
    assert drift.samples.message() == (
        "1 of 1 inputs recorded as rejected now validate (their cases expect status "
        "invalid_input); first: golden/billing.pay/negative.json"
    )
    assert not drift.passes("check")
    assert not drift.passes("against")  # no version bump makes a failing case pass
    (item,) = check_project(config, {"billing.pay": wider}, against=None).items
    assert item.outcome is Outcome.failed
    assert "input.recorded_rejection_accepted" in {f.rule for f in item.findings}


def test_an_accepted_input_the_model_now_rejects_is_still_drift(config: ProjectConfig) -> None:
    case(config, "ok", {"amount": 5}, {"status": "succeeded", "output": {"ok": True}})
    case(config, "negative", {"amount": -1}, REJECTED)
    narrower = replace(PAY, input=InNarrower, version="2.0.0")
    (drift,) = compare_project(config, {"billing.pay": narrower})
    assert [c.rule for c in drift.sample_changes] == ["input.recorded_inputs_invalid"]
    assert drift.samples is not None
    assert drift.samples.message().startswith(
        "1 of 1 recorded inputs no longer validate; first: golden/billing.pay/ok.json: amount:"
    )


def test_both_directions_at_once_are_both_reported(config: ProjectConfig) -> None:
    case(config, "ok", {"amount": 5}, {"status": "succeeded", "output": {"ok": True}})
    case(config, "negative", {"amount": -1}, REJECTED)

    class Flipped(BaseModel):
        amount: int = Field(le=0)

    (drift,) = compare_project(config, {"billing.pay": replace(PAY, input=Flipped)})
    assert [c.rule for c in drift.sample_changes] == [
        "input.recorded_inputs_invalid",
        "input.recorded_rejection_accepted",
    ]


def test_a_case_without_expect_or_with_another_failure_must_validate(
    config: ProjectConfig,
) -> None:
    """Only invalid_input says "this input is refused": a case expecting a runner's own failure
    (status failed or retry) still has an input that must validate."""
    case(config, "new", {"amount": -1})
    case(config, "boom", {"amount": -2}, {"status": "retry", "error": {"type": "X", "message": ""}})
    (drift,) = compare_project(config, {"billing.pay": PAY})
    assert drift.samples is not None
    assert [label for label, _ in drift.samples.failures] == [
        "golden/billing.pay/boom.json",
        "golden/billing.pay/new.json",
    ]


def test_golden_inputs_split_by_what_the_case_expects(config: ProjectConfig) -> None:
    case(config, "ok", {"amount": 5})
    case(config, "negative", {"amount": -1}, REJECTED)
    golden = config.root / "golden"
    assert golden_inputs(golden, "billing.pay", config.root) == [
        ("golden/billing.pay/ok.json", {"amount": 5})
    ]
    assert golden_inputs(golden, "billing.pay", config.root, rejected=True) == [
        ("golden/billing.pay/negative.json", {"amount": -1})
    ]


def test_check_samples_library_function_both_ways() -> None:
    checked = check_samples(
        In, [("a", {"amount": 1})], [("b", {"amount": -1}), ("c", {"amount": 2})]
    )
    assert (checked.total, checked.rejected_total, checked.accepted) == (1, 2, ("c",))
    assert not checked.ok
    assert check_samples(In, [], [("b", {"amount": -1})]).ok
