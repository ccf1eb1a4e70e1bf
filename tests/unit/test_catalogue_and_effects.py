"""Without a database: requests checked against a catalogue entry (one line naming the field),
`ctx.enqueue` refusing a bad follow-up in the runner's own code, how follow-ups travel with a
finish, and how golden cases write and compare them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from jobforge import errors
from jobforge.golden.case import EffectExpect, Expect, GoldenCase, case_text, expectation_of
from jobforge.golden.compare import differences
from jobforge.queue import FollowUp, Outcome
from jobforge.queue import calls as queue_calls
from jobforge.queue.catalogue import Cache, CatalogueEntry, check_request
from jobforge.runtime.context import ClockSpec, Environment, RunContext

SCHEMA = {
    "type": "object",
    "properties": {
        "target": {"type": "string"},
        "threshold": {"type": "number", "maximum": 1},
        "items": {"type": "array", "items": {"type": "object", "required": ["name"]}},
    },
    "required": ["target"],
    "additionalProperties": False,
}


def entry(enabled: bool = True, schema: dict[str, Any] = SCHEMA) -> CatalogueEntry:
    return CatalogueEntry("ops.scan", "1.2.0", schema, {"type": "object"}, "sha256:" + "a" * 64,
                          enabled, datetime(2026, 1, 1, tzinfo=UTC), "ops")  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "(root): 'target' is a required property"),
        ({"target": 1}, "target: 1 is not of type 'string'"),
        ({"target": "a", "threshold": 2}, "threshold: 2 is greater than the maximum of 1"),
        ({"target": "a", "items": [{"name": "x"}, {}]},
         "items[1]: 'name' is a required property"),
        ({"target": "a", "extra": True},
         "(root): Additional properties are not allowed ('extra' was unexpected)"),
    ],
)  # fmt: skip
def test_an_invalid_request_names_the_field(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidJob) as info:
        check_request(entry(), "ops.scan", payload)
    assert str(info.value) == f"the input of ops.scan 1.2.0 is invalid: {message}"


def test_unknown_disabled_and_non_objects_are_one_line() -> None:
    with pytest.raises(errors.UnknownRunner, match=r"^runner 'ops\.nope' is not in the runner "):
        check_request(None, "ops.nope", {})
    with pytest.raises(errors.RunnerDisabled, match=r"jobforge runners enable ops\.scan\)$"):
        check_request(entry(enabled=False), "ops.scan", {"target": "a"})
    with pytest.raises(errors.InvalidJob, match="must be a JSON object, not str"):
        check_request(entry(), "ops.scan", "a")
    assert check_request(entry(), "ops.scan", {"target": "a"}) == {"target": "a"}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(payload=st.dictionaries(st.text(), JSON, max_size=5))
def test_any_payload_is_accepted_or_refused_in_one_line(payload: dict[str, Any]) -> None:
    try:
        check_request(entry(), "ops.scan", payload)
    except errors.InvalidJob as exc:
        text = str(exc)
        assert "\n" not in text
        assert text.startswith("the input of ops.scan 1.2.0 is invalid: ")
        assert len(text) < 400


def test_the_cache_trusts_an_entry_for_its_ttl() -> None:
    cache = Cache(ttl_s=60)
    assert cache.get("ops.scan") == (False, None)
    cache.put("ops.scan", None)  # not catalogued: remembered too
    assert cache.get("ops.scan") == (True, None)
    expired = Cache(ttl_s=0)
    expired.put("ops.scan", entry())
    assert expired.get("ops.scan") == (False, None)


def ctx(check: Any = None) -> RunContext:
    env = Environment(clock=ClockSpec(start=datetime(2026, 1, 1, tzinfo=UTC)), seed=1,
                      tenant_id="acme")  # fmt: skip
    return RunContext(env, job_id=7, check_followup=check)


class ChildIn(BaseModel):
    value: int


def test_enqueue_records_effects_in_order() -> None:
    run = ctx()
    first = run.enqueue("ops.child", {"value": 1})
    second = run.enqueue("ops.child", ChildIn(value=2), key="k", priority=4, max_attempts=2)
    assert (first.index, first.key, first.input) == (0, None, {"value": 1})
    assert (second.index, second.key, second.priority, second.max_attempts) == (1, "k", 4, 2)
    assert second.input == {"value": 2}
    assert [e.index for e in run.effects] == [0, 1]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("Bad Id", {}), {}, "follow-up runner id 'Bad Id' is invalid"),
        (("ops.child", [1]), {}, "the input must be a JSON object (a mapping or a model), not"),
        (("ops.child", {"x": float("nan")}), {}, "follow-up ops.child: the input is not JSON"),
        (("ops.child", {}), {"key": ""}, "the key must be a string of 1-255 characters"),
        (("ops.child", {}), {"key": "k" * 256}, "the key must be a string of 1-255 characters"),
        (("ops.child", {}), {"key": "k\x00"}, "without NUL or lone surrogates"),
        (("ops.child", {"x": "\ud800"}), {}, "the input is not JSON: string holding a lone"),
        (("ops.child", {"x": "a\x00"}), {}, "the input holds a NUL character or a lone surrogate"),
        (("ops.child", {}), {"run_at": 1}, "unknown field(s) run_at"),
        (("ops.child", {}), {"priority": 99999}, "follow-up ops.child: 1 validation error"),
    ],
)  # fmt: skip
def test_a_bad_follow_up_is_a_contract_violation_in_the_runner(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    run = ctx()
    with pytest.raises(errors.ContractViolation) as info:
        run.enqueue(*args, **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert run.effects == []


def test_the_check_of_a_known_runner_applies() -> None:
    def check(runner_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        raise errors.ContractViolation(f"follow-up {runner_id}: the input is invalid: value")

    with pytest.raises(errors.ContractViolation, match="the input is invalid: value"):
        ctx(check).enqueue("ops.child", {})


def _outcome(kind: str, *keys: str) -> Outcome:
    follow = tuple(FollowUp(type="ops.child", payload={"k": k}, idempotency_key=k) for k in keys)
    return Outcome(job_id=1, lease_token=uuid4(), outcome=kind, followups=follow)  # type: ignore[arg-type]


def test_a_batch_without_follow_ups_calls_finish_v1_as_before() -> None:
    name, params = queue_calls.finish("w", [_outcome("succeeded"), _outcome("retry", "x")],
                                      None, 1.0, 60.0)  # fmt: skip
    assert name == "job_finish_many"
    assert "followups" not in params


def test_only_succeeded_outcomes_send_their_follow_ups() -> None:
    name, params = queue_calls.finish("w", [_outcome("failed", "a"), _outcome("succeeded", "b")],
                                      None, 1.0, 60.0)  # fmt: skip
    assert name == "job_finish_followups"
    assert params["followups"].obj == [
        {"job": 2, "type": "ops.child", "payload": {"k": "b"}, "key": "b"}]  # fmt: skip


EFFECT = {"kind": "enqueue", "index": 0, "runner_id": "ops.child", "input": {"v": 1},
          "key": None, "priority": None, "max_attempts": None}  # fmt: skip


def record(*effects: dict[str, Any]) -> dict[str, Any]:
    return {"status": "succeeded", "output": {"canonical": "{}"}, "trace": [], "artifacts": [],
            "effects": list(effects)}  # fmt: skip


def test_a_case_writes_effects_only_when_there_are_some() -> None:
    quiet = GoldenCase(input={}, expect=expectation_of(record()))
    assert "effects" not in json.loads(case_text(quiet))["expect"]
    busy = GoldenCase(input={}, expect=expectation_of(record(EFFECT)))
    assert json.loads(case_text(busy))["expect"]["effects"] == [
        {"kind": "enqueue", "runner_id": "ops.child", "input": {"v": 1}}]  # fmt: skip


def test_effects_are_compared_aligned() -> None:
    def expect(*inputs: int) -> Expect:
        return Expect(status="succeeded", effects=[
            EffectExpect(runner_id="ops.child", input={"v": i}) for i in inputs])  # fmt: skip

    assert differences(expect(1, 2), expect(1, 2)) == []
    inserted = differences(expect(1, 3), expect(1, 2, 3))
    assert [d.path for d in inserted] == [
        "effects[1] (a follow-up of ops.child the case does not expect)"]  # fmt: skip
    dropped = differences(expect(1, 2, 3), expect(1, 3))
    assert [d.path for d in dropped] == [
        "effects[1] (a follow-up of ops.child the run no longer asks for)"]  # fmt: skip
    changed = differences(expect(1, 2), expect(1, 5))
    assert [d.render() for d in changed] == ["effects[1] (ops.child).input.v: expected 2, got 5"]


def test_a_recorded_effect_has_its_secrets_redacted() -> None:
    from jobforge.runtime.record import REDACTED, Redactor, redacted_effects

    run = ctx()
    run.enqueue("ops.child", {"api_key": "s3cret", "value": 1})
    (stored,) = redacted_effects(run.effects, Redactor(key=None))
    assert stored.input == {"api_key": REDACTED, "value": 1}
    assert run.effects[0].input["api_key"] == "s3cret"  # what the worker enqueues is untouched


def test_inputs_and_outputs_are_held_to_their_own_schema_of_one_entry() -> None:
    """One validator per runner, contract and side: the output schema is never applied to an
    input of the same contract (the cache key names the side)."""
    from datetime import UTC, datetime

    from jobforge.queue.catalogue import CatalogueEntry, input_problem, output_problem

    entry = CatalogueEntry(
        "cat.sides", "1.0.0",
        {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}},
        {"type": "object", "required": ["status"], "properties": {"status": {"type": "integer"}}},
        "sha256:" + "5" * 64, True, datetime.now(UTC), "test",
    )  # fmt: skip
    assert input_problem(entry, {"url": "https://a.example"}) is None
    assert output_problem(entry, {"status": 200}) is None
    assert input_problem(entry, {"status": 200}) == "(root): 'url' is a required property"
    assert output_problem(entry, {"url": "x"}) == "(root): 'status' is a required property"
    assert output_problem(entry, {"status": "ok"}) == "status: 'ok' is not of type 'integer'"


def test_a_producer_without_the_code_applies_the_runner_s_declared_attempts() -> None:
    """`catalogue.with_declared_attempts`, shared by `request` and `jobforge enqueue`."""
    from jobforge.queue import NewJob
    from jobforge.queue.catalogue import CatalogueEntry, with_declared_attempts
    from jobforge.queue.models import JobSignature

    now = datetime(2026, 1, 1, tzinfo=UTC)

    def entry(max_attempts: int | None) -> CatalogueEntry:
        return CatalogueEntry(runner_id="ops.hook", version="1.0.0", input_schema={},
                              output_schema={}, contract_sha256="0" * 64, enabled=True,
                              synced_at=now, synced_by="ci", max_attempts=max_attempts)  # fmt: skip

    job = NewJob(type="ops.hook", payload={})
    assert with_declared_attempts(entry(8), job, given=False).max_attempts == 8
    assert with_declared_attempts(entry(8), job, given=True).max_attempts == 3  # the producer's
    assert with_declared_attempts(entry(None), job, given=False).max_attempts == 3
    assert with_declared_attempts(None, job, given=False).max_attempts == 3
    signature = (JobSignature(key_id="k1", signature="A" * 86),)
    signed = NewJob(type="ops.hook", payload={}, issued_at=now, signatures=signature)
    # a signed job is never changed: the declared number, or the producer's own, or refused
    with pytest.raises(errors.InvalidJob, match="sign it with max_attempts=8, or give"):
        with_declared_attempts(entry(8), signed, given=False)
    assert with_declared_attempts(entry(8), signed, given=True) is signed
    eight = NewJob(type="ops.hook", payload={}, issued_at=now, signatures=signature,
                   max_attempts=8)  # fmt: skip
    assert with_declared_attempts(entry(8), eight, given=False) is eight
