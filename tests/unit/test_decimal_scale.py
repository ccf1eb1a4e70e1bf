"""A Decimal keeps its scale wherever a run records it: `ctx.decide("fee", Decimal("18.00"))`
is recorded as "18.00" (not "18"), in the trace, its hash, a JSON artifact and canonical JSON
alike, and reads as the same string a pydantic model writes for the same Decimal. A recording
made when Decimals were normalized differs from a new run only in that scale, and the reports
say so."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from jobforge import canonical
from jobforge.golden.case import Expect
from jobforge.golden.compare import Difference, differences, only_rescaled, rescaled
from jobforge.replay.engine import first_divergent_step
from jobforge.runtime.context import ClockSpec, DecisionStep, Environment, RunContext
from jobforge.runtime.record import trace_hash


def _ctx() -> RunContext:
    return RunContext(
        Environment(clock=ClockSpec(start=datetime(2026, 1, 1, tzinfo=UTC)), seed=1, tenant_id="t")
    )


def test_a_decided_decimal_keeps_its_scale_in_the_trace() -> None:
    ctx = _ctx()
    returned = ctx.decide("fee", Decimal("18.00"), rate=Decimal("0.190"))
    assert returned == Decimal("18.00")
    (step,) = ctx.trace
    assert step.value == "18.00"
    assert step.why == {"rate": "0.190"}


def test_the_trace_hash_is_over_the_scaled_text() -> None:
    ctx = _ctx()
    ctx.decide("fee", Decimal("18.00"))
    expected = canonical.sha256_of(b'[{"key":"fee","value":"18.00","why":{}}]')
    assert trace_hash(ctx.trace) == expected
    other = _ctx()
    other.decide("fee", Decimal("18"))
    assert trace_hash(other.trace) != expected  # 18 and 18.00 are recorded apart


def test_a_json_artifact_keeps_the_scale() -> None:
    ctx = _ctx()
    record = ctx.artifact("invoice.json", {"total": Decimal("18.00")})
    assert record.content == '{"total":"18.00"}'


class Priced(BaseModel):
    fee: Decimal


@pytest.mark.parametrize("text", ["18.00", "18", "0.10", "-0.00", "1E+2", "1E-7", "0E-7"])
def test_a_bare_decimal_reads_as_a_model_field_of_it_does(text: str) -> None:
    value = Decimal(text)
    assert canonical.jsonable(value) == Priced(fee=value).model_dump(mode="json")["fee"]
    assert canonical.canonical_text({"fee": value}) == canonical.canonical_text(Priced(fee=value))


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_the_text_reads_back_as_the_same_sign_digits_and_exponent(value: Decimal) -> None:
    text = canonical.jsonable(value)
    assert isinstance(text, str)
    assert Decimal(text).as_tuple() == value.as_tuple()
    assert canonical.canonical_text(value) == json.dumps(text)


# -- recordings made when a Decimal was normalized --------------------------------------------


def test_rescaled_knows_the_same_number_written_with_another_scale() -> None:
    assert rescaled("18", "18.00")
    assert rescaled("1e-7", "1E-7")
    assert rescaled("100", "1E+2")
    assert not rescaled("18", "18.01")
    assert not rescaled("18.00", "18.00")  # equal: no difference at all
    assert not rescaled("1_8", "18")  # Decimal() reads underscores; a recording never has them
    assert not rescaled(" 18", "18")
    assert not rescaled(18, "18.00")
    assert not rescaled("NaN", "NaN ")


def test_a_golden_difference_in_scale_only_says_so() -> None:
    old = Expect(status="succeeded", trace=[DecisionStep(key="fee", value="18")])
    new = Expect(status="succeeded", trace=[DecisionStep(key="fee", value="18.00")])
    (difference,) = differences(old, new)
    rendered = difference.render()
    assert rendered.startswith("trace[0] (fee).value: expected '18', got '18.00' (the same number")
    assert "refresh the expectation" in rendered
    plain = Difference("output.total", "18", "19").render()
    assert plain == "output.total: expected '18', got '19'"


def test_a_replayed_step_that_differs_only_in_scale_is_recognized() -> None:
    recorded: list[dict[str, Any]] = [{"key": "fee", "value": "18", "why": {"rate": "0.19"}}]
    replayed: list[dict[str, Any]] = [{"key": "fee", "value": "18.00", "why": {"rate": "0.190"}}]
    step = first_divergent_step(recorded, replayed)
    assert step is not None
    assert only_rescaled(step.recorded, step.replayed)
    assert not only_rescaled(recorded[0], recorded[0])
    assert not only_rescaled(recorded[0], {"key": "fee", "value": "19.00", "why": {"rate": "0.19"}})
    assert not only_rescaled(recorded[0], {"key": "tax", "value": "18.00", "why": {"rate": "0.19"}})
