"""RunContext (virtual clock, seeded random and ids, decisions, artifacts, progress), the
environment that makes a run replayable, and the run record's redaction, hashing and
fingerprints (`jobforge.runtime.record`). No database, no network."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import platform
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from jobforge import canonical, errors
from jobforge.runtime.context import (
    INLINE_LIMIT_BYTES,
    ClockSpec,
    DecisionStep,
    Environment,
    RunContext,
)
from jobforge.runtime.http import HttpPolicy, RecordedHttp
from jobforge.runtime.record import (
    REDACTED,
    Redactor,
    fingerprints,
    redacted_trace,
    snapshot,
    trace_hash,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def env(seed: int = 7, **fields: Any) -> Environment:
    clock = fields.pop("clock", ClockSpec(start=T0))
    return Environment(clock=clock, seed=seed, tenant_id=fields.pop("tenant_id", "acme"), **fields)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# time


def test_now_starts_at_the_clock_start_and_advances_a_millisecond_per_call() -> None:
    ctx = RunContext(env())
    assert [ctx.now() for _ in range(4)] == [T0 + timedelta(milliseconds=n) for n in range(4)]


def test_now_advances_by_the_configured_step() -> None:
    ctx = RunContext(env(clock=ClockSpec(start=T0, step_us=250)))
    assert [ctx.now() for _ in range(3)] == [T0 + timedelta(microseconds=250 * n) for n in range(3)]


def test_a_zero_step_freezes_the_clock() -> None:
    ctx = RunContext(env(clock=ClockSpec(start=T0, step_us=0)))
    assert {ctx.now() for _ in range(5)} == {T0}


def test_the_clock_does_not_depend_on_how_long_the_code_takes() -> None:
    first, second = RunContext(env()), RunContext(env())
    a = [first.now() for _ in range(3)]
    sum(range(200_000))  # work between the calls of one run only
    b = [second.now() for _ in range(3)]
    assert a == b


def test_the_clock_start_is_aware_and_kept_in_utc() -> None:
    plus_two = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    ctx = RunContext(env(clock=ClockSpec(start=plus_two)))
    first = ctx.now()
    assert first == T0
    assert first.utcoffset() == timedelta(0)


def test_a_naive_clock_start_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs a timezone"):
        ClockSpec(start=datetime(2026, 3, 1, 12, 0))


@pytest.mark.parametrize("step", [-1, 3_600_000_001])
def test_the_clock_step_is_bounded(step: int) -> None:
    with pytest.raises(ValidationError):
        ClockSpec(start=T0, step_us=step)


# ---------------------------------------------------------------------------------------------
# randomness and ids


def test_random_is_a_random_random_seeded_with_the_seed() -> None:
    ctx, reference = RunContext(env(seed=1234)), random.Random(1234)
    assert isinstance(ctx.random, random.Random)
    assert [ctx.random.random() for _ in range(5)] == [reference.random() for _ in range(5)]
    assert ctx.random.randint(1, 10**9) == reference.randint(1, 10**9)
    assert ctx.random.choice("abcdefgh") == reference.choice("abcdefgh")
    mine, theirs = list(range(20)), list(range(20))
    ctx.random.shuffle(mine)
    reference.shuffle(theirs)
    assert mine == theirs


def test_uuids_are_deterministic_per_seed_and_version_4() -> None:
    first, again = RunContext(env(seed=5)), RunContext(env(seed=5))
    ids = [first.uuid() for _ in range(3)]
    assert [again.uuid() for _ in range(3)] == ids
    assert len(set(ids)) == 3
    for value in ids:
        assert isinstance(value, uuid.UUID)
        assert value.version == 4
        assert value.variant == uuid.RFC_4122


def test_taking_ids_and_drawing_random_numbers_do_not_disturb_each_other() -> None:
    quiet, busy = RunContext(env(seed=9)), RunContext(env(seed=9))
    for _ in range(100):
        busy.random.random()
    assert [busy.uuid() for _ in range(3)] == [quiet.uuid() for _ in range(3)]
    # and the ids taken above did not shift either random stream
    reference = random.Random(9)
    assert quiet.random.random() == reference.random()


def test_different_seeds_give_different_streams() -> None:
    a, b = RunContext(env(seed=1)), RunContext(env(seed=2))
    assert a.uuid() != b.uuid()
    assert a.random.random() != b.random.random()


def test_ids_are_not_the_random_stream_reinterpreted() -> None:
    ctx = RunContext(env(seed=11))
    plain = random.Random(11)
    assert ctx.uuid() != uuid.UUID(int=plain.getrandbits(128), version=4)


# ---------------------------------------------------------------------------------------------
# decisions


class Choice(BaseModel):
    name: str
    weight: float


def test_decide_returns_its_value_and_records_ordered_steps_with_why() -> None:
    ctx = RunContext(env())
    value = {"b": [1, 2], "a": None}
    assert ctx.decide("first", value, reason="from input") is value
    assert ctx.decide("second", 0.5) == 0.5
    assert ctx.decide("first", "again", because="retry", score=3) == "again"
    assert ctx.trace == [
        DecisionStep(key="first", value={"b": [1, 2], "a": None}, why={"reason": "from input"}),
        DecisionStep(key="second", value=0.5, why={}),
        DecisionStep(key="first", value="again", why={"because": "retry", "score": 3}),
    ]


def test_decision_values_are_stored_as_plain_json() -> None:
    ctx = RunContext(env())
    moment = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    choice = Choice(name="x", weight=0.5)
    assert ctx.decide("model", choice) is choice
    ctx.decide("when", moment, among=("a", "b"))
    ctx.decide("id", uuid.UUID(int=1))
    model, when, ident = ctx.trace
    assert model.value == {"name": "x", "weight": 0.5}
    assert when.value == "2026-03-01T12:00:00Z"
    assert when.why == {"among": ["a", "b"]}
    assert ident.value == "00000000-0000-0000-0000-000000000001"


def test_the_trace_handed_out_is_a_copy() -> None:
    ctx = RunContext(env())
    ctx.decide("k", 1)
    ctx.trace.clear()
    assert len(ctx.trace) == 1


@pytest.mark.parametrize(
    "bad",
    [{"a", "b"}, frozenset({1}), b"raw", object(), math.nan, math.inf, {"deep": [1, {2}]}, 2**60],
    ids=["set", "frozenset", "bytes", "object", "nan", "inf", "nested-set", "big-int"],
)
def test_a_value_that_is_not_json_is_refused_naming_the_key(bad: Any) -> None:
    ctx = RunContext(env())
    with pytest.raises(errors.ContractViolation, match=r"decision 'the-key'"):
        ctx.decide("the-key", bad)
    assert ctx.trace == []


def test_a_reason_that_is_not_json_is_refused_naming_the_key() -> None:
    ctx = RunContext(env())
    with pytest.raises(errors.ContractViolation, match=r"decision 'k'"):
        ctx.decide("k", 1, seen={"a"})
    assert ctx.trace == []


@pytest.mark.parametrize("bad", ["", 3, None])
def test_a_decision_key_must_be_a_non_empty_string(bad: Any) -> None:
    with pytest.raises(errors.ContractViolation, match="decision key"):
        RunContext(env()).decide(bad, 1)


def test_a_contract_violation_is_not_retried() -> None:
    assert issubclass(errors.ContractViolation, errors.NonRetryable)


# ---------------------------------------------------------------------------------------------
# artifacts


def test_a_text_artifact_is_kept_as_utf8_with_its_hash_and_size() -> None:
    ctx = RunContext(env())
    text = "# Scan of café\n"
    record = ctx.artifact("report.md", text)
    raw = text.encode("utf-8")
    assert record.name == "report.md"
    assert record.media == "text"
    assert record.sha256 == sha256(raw)
    assert record.size == len(raw) == len(text) + 1  # bytes, not characters
    assert (record.content, record.encoding) == (text, "utf-8")
    assert ctx.artifact_bytes("report.md") == raw
    assert ctx.artifacts == {"report.md": record}


@pytest.mark.parametrize(
    "data", [b"\x00\xffbinary", bytearray(b"\x00\xffbinary"), memoryview(b"\x00\xffbinary")]
)
def test_a_bytes_artifact_is_kept_as_base64(data: bytes | bytearray | memoryview) -> None:
    record = RunContext(env()).artifact("blob.bin", data)
    assert record.media == "bytes"
    assert record.sha256 == sha256(b"\x00\xffbinary")
    assert record.size == 8
    assert record.encoding == "base64"
    assert record.content is not None
    assert base64.b64decode(record.content) == b"\x00\xffbinary"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"b": 1.0, "a": [True, None, "x"]}, '{"a":[true,null,"x"],"b":1}'),
        ([3, 2, 1], "[3,2,1]"),
        (Choice(name="n", weight=2.5), '{"name":"n","weight":2.5}'),
        (None, "null"),
        (42, "42"),
    ],
)
def test_a_json_artifact_is_kept_in_canonical_form(data: Any, text: str) -> None:
    ctx = RunContext(env())
    record = ctx.artifact("data.json", data)
    assert record.media == "json"
    assert ctx.artifact_bytes("data.json") == text.encode()
    assert record.sha256 == sha256(text.encode())
    assert record.size == len(text)
    assert (record.content, record.encoding) == (text, "utf-8")


def test_a_json_artifact_must_be_json() -> None:
    ctx = RunContext(env())
    with pytest.raises(errors.ContractViolation, match=r"artifact 'data\.json' is not JSON"):
        ctx.artifact("data.json", {"when": {1, 2}})
    assert ctx.artifacts == {}


@pytest.mark.parametrize(
    ("data", "size"),
    [
        ("x" * INLINE_LIMIT_BYTES, INLINE_LIMIT_BYTES),
        (b"\x01" * INLINE_LIMIT_BYTES, INLINE_LIMIT_BYTES),
        ("é" * (INLINE_LIMIT_BYTES // 2), INLINE_LIMIT_BYTES),
    ],
    ids=["text", "bytes", "multibyte-text"],
)
def test_an_artifact_at_the_inline_limit_is_inline_and_one_byte_more_is_not(
    data: str | bytes, size: int
) -> None:
    ctx = RunContext(env())
    at = ctx.artifact("at", data)
    assert at.size == size
    assert at.content is not None
    if isinstance(data, str):
        over, raw = ctx.artifact("over", data + "y"), (data + "y").encode()
    else:
        over, raw = ctx.artifact("over", data + b"y"), data + b"y"
    assert over.size == size + 1
    assert (over.content, over.encoding) == (None, None)
    assert over.sha256 == sha256(raw)
    assert ctx.artifact_bytes("over") == raw  # still available to the recorder


def test_an_artifact_name_is_written_once() -> None:
    ctx = RunContext(env())
    first = ctx.artifact("report.md", "one")
    with pytest.raises(errors.ContractViolation, match=r"'report\.md' was already written"):
        ctx.artifact("report.md", "two")
    assert ctx.artifacts["report.md"] == first
    assert ctx.artifact_bytes("report.md") == b"one"


@pytest.mark.parametrize(
    "bad", ["", "..", "../x", "a/../b", "/etc/passwd", ".", "a//b", "a/", "a\\b", "a b", 3, None]
)
def test_a_bad_artifact_name_is_refused(bad: Any) -> None:
    ctx = RunContext(env())
    with pytest.raises(errors.ContractViolation, match="artifact name"):
        ctx.artifact(bad, "x")
    assert ctx.artifacts == {}


@pytest.mark.parametrize("good", ["report.md", "out/data.json", ".hidden", "a-b_c.1"])
def test_relative_artifact_names_are_accepted(good: str) -> None:
    assert RunContext(env()).artifact(good, "x").name == good


# ---------------------------------------------------------------------------------------------
# progress, ids of the run


def test_progress_is_passed_on_within_bounds() -> None:
    seen: list[tuple[float, str | None]] = []
    ctx = RunContext(env(), progress=lambda pct, message: seen.append((pct, message)))
    ctx.progress(0)
    ctx.progress(42.5, "halfway")
    ctx.progress(100, "done")
    assert seen == [(0, None), (42.5, "halfway"), (100, "done")]
    for bad in (-0.1, 100.1, math.nan):
        with pytest.raises(ValueError, match="between 0 and 100"):
            ctx.progress(bad)
    assert len(seen) == 3


def test_progress_without_a_listener_is_fine() -> None:
    RunContext(env()).progress(50, "nobody listens")


def test_the_run_ids() -> None:
    ctx = RunContext(env(tenant_id="globex", trace_id="trace-9"), job_id=12, attempt=3)
    assert (ctx.tenant_id, ctx.trace_id, ctx.job_id, ctx.attempt) == ("globex", "trace-9", 12, 3)
    plain = RunContext(env())
    assert (plain.trace_id, plain.job_id, plain.attempt, plain.mode) == (None, None, 1, "record")


# ---------------------------------------------------------------------------------------------
# the environment


@pytest.mark.parametrize("seed", [-1, 2**63])
def test_the_seed_is_within_63_bits(seed: int) -> None:
    with pytest.raises(ValidationError, match="seed"):
        env(seed=seed)


@pytest.mark.parametrize("seed", [0, 2**63 - 1])
def test_the_seed_bounds_are_inclusive(seed: int) -> None:
    assert RunContext(env(seed=seed)).random.random() == random.Random(seed).random()


def test_the_environment_is_strict() -> None:
    data = env().model_dump(mode="json")
    assert Environment.model_validate(data) == env()
    with pytest.raises(ValidationError, match="surprise"):
        Environment.model_validate({**data, "surprise": 1})
    with pytest.raises(ValidationError, match="tz"):
        Environment.model_validate({**data, "clock": {**data["clock"], "tz": "UTC"}})
    with pytest.raises(ValidationError, match="tenant_id"):
        Environment.model_validate({k: v for k, v in data.items() if k != "tenant_id"})
    with pytest.raises(ValidationError, match="needs a timezone"):
        Environment.model_validate({**data, "clock": {"start": "2026-03-01T12:00:00"}})


def test_the_environment_round_trips_through_json() -> None:
    original = env(seed=2**62, trace_id="t")
    again = Environment.model_validate_json(original.model_dump_json())
    assert again == original
    assert RunContext(again).now() == RunContext(original).now()
    assert RunContext(again).uuid() == RunContext(original).uuid()


def test_a_fresh_environment_starts_now_to_the_millisecond_with_a_random_seed() -> None:
    before = datetime.now(UTC)
    first = Environment.fresh("acme", "trace-1")
    second = Environment.fresh("acme")
    after = datetime.now(UTC)
    assert before - timedelta(milliseconds=1) <= first.clock.start <= after
    assert first.clock.start.microsecond % 1000 == 0
    assert first.clock.start.utcoffset() == timedelta(0)
    assert first.clock.step_us == 1000
    assert (first.tenant_id, first.trace_id, second.trace_id) == ("acme", "trace-1", None)
    assert 0 <= first.seed < 2**63
    assert first.seed != second.seed
    assert first.http == []


# ---------------------------------------------------------------------------------------------
# recorded HTTP in the environment


def _recording(ctx: RunContext, calls: list[str]) -> None:
    """Give `ctx` a recorder over a mock transport: RunContext takes no transport itself."""

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json={"price": len(calls)})

    policy = HttpPolicy(allow_hosts=frozenset({"prices.example"}))
    ctx.http = RecordedHttp("record", policy=policy, transport=httpx.MockTransport(answer))


def test_the_recorded_environment_carries_the_http_exchanges_and_replays_them() -> None:
    calls: list[str] = []
    live = RunContext(env())
    _recording(live, calls)
    with live.http:
        first = live.http.get("https://prices.example/sku/1").json()
        second = live.http.get("https://prices.example/sku/1").json()
    assert (first, second) == ({"price": 1}, {"price": 2})
    recorded = live.recorded_environment()
    assert [e["url"] for e in recorded.http] == ["https://prices.example/sku/1"] * 2
    assert [e["response_body"] for e in recorded.http] == ['{"price":1}', '{"price":2}']
    assert live.environment.http == []  # the environment the run started with is unchanged
    assert recorded.model_copy(update={"http": []}) == live.environment

    stored = Environment.model_validate_json(recorded.model_dump_json())
    replay = RunContext(stored, mode="replay")
    assert replay.http.get("https://prices.example/sku/1").json() == first
    assert replay.http.get("https://prices.example/sku/1").json() == second
    assert len(calls) == 2  # replay never reached the transport
    with pytest.raises(errors.UnrecordedRequest):
        replay.http.get("https://prices.example/sku/2")


def test_a_run_without_http_records_no_exchanges() -> None:
    ctx = RunContext(env())
    assert ctx.recorded_environment() == ctx.environment
    assert ctx.recorded_environment().http == []


def test_replay_returns_the_environment_it_was_given() -> None:
    stored = env()
    ctx = RunContext(stored, mode="replay")
    assert ctx.recorded_environment() is stored


# ---------------------------------------------------------------------------------------------
# redaction


@pytest.mark.parametrize(
    "key",
    [
        "password", "PASSWORD", "passwd", "secret", "token", "apikey", "apiKey", "API-KEY",
        "api_key", "x-api-key", "Authorization", "cookie", "db_password", "DB-Password",
        "client_secret", "refresh_token", "GITHUB_TOKEN", "private_key", "credentials",
        "aws_secret_access_key", "AWS_ACCESS_KEY", "aws_secret_key", "session_token",
        "proxy_authorization",
    ],
)  # fmt: skip
def test_secret_keys_are_redacted(key: str) -> None:
    redact = Redactor()
    assert redact.is_secret(key)
    assert redact({key: "s3cr3t", "plain": "kept"}) == {key: REDACTED, "plain": "kept"}


@pytest.mark.parametrize(
    "key",
    ["token_count", "max_tokens", "tokens", "password_policy", "author", "keyboard", "sort_key",
     "secretary_name", "target", "passing"],
)  # fmt: skip
def test_ordinary_keys_are_kept(key: str) -> None:
    redact = Redactor()
    assert not redact.is_secret(key)
    assert redact({key: 12}) == {key: 12}


def test_redaction_reaches_into_nested_lists_and_dicts_without_mutating() -> None:
    value = {
        "hosts": [{"name": "db", "password": "p1"}, {"name": "cache", "options": {"apiKey": "k"}}],
        "credentials": {"user": "u", "pass": "p"},  # a secret table goes whole
        "matrix": [[{"token": "t"}], "token"],
        "secret": None,  # nothing to hide
    }
    original = json.loads(json.dumps(value))
    assert Redactor()(value) == {
        "hosts": [{"name": "db", "password": REDACTED},
                  {"name": "cache", "options": {"apiKey": REDACTED}}],
        "credentials": REDACTED,
        "matrix": [[{"token": REDACTED}], "token"],
        "secret": None,
    }  # fmt: skip
    assert value == original


def test_a_custom_redactor_uses_its_own_lists() -> None:
    redact = Redactor(keys=["SSN"], suffixes=["_pin"])
    assert redact({"ssn": 1, "card-PIN": 2, "password": 3}) == {
        "ssn": REDACTED, "card-PIN": REDACTED, "password": 3,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# snapshots, trace hashes, fingerprints


def test_a_snapshot_hashes_exactly_its_canonical_redacted_text() -> None:
    value = {"target": "db-1", "api_key": "sk-live", "n": 1.0, "when": T0}
    snap = snapshot(value, Redactor())
    text = '{"api_key":"[redacted]","n":1,"target":"db-1","when":"2026-03-01T12:00:00Z"}'
    assert snap.canonical == text
    assert snap.sha256 == sha256(text.encode("utf-8"))
    # the secret never reaches the hash: runs differing only in it hash the same
    assert snapshot({**value, "api_key": "other"}, Redactor()) == snap
    assert snapshot(dict(reversed(value.items())), Redactor()) == snap
    assert snapshot({**value, "target": "db-2"}, Redactor()).sha256 != snap.sha256


def test_a_snapshot_of_a_model() -> None:
    snap = snapshot(Choice(name="a", weight=1.5), Redactor())
    assert snap.canonical == '{"name":"a","weight":1.5}'
    assert snap.sha256 == sha256(snap.canonical.encode())


def test_a_snapshot_refuses_what_is_not_json() -> None:
    with pytest.raises(errors.CanonicalError):
        snapshot({"a": {1, 2}}, Redactor())


def test_the_trace_hash_covers_the_ordered_steps() -> None:
    steps = [
        DecisionStep(key="threshold", value=0.2, why={"reason": "input"}),
        DecisionStep(key="picked", value=[1, "b"]),
    ]
    text = (
        '[{"key":"threshold","value":0.2,"why":{"reason":"input"}},'
        '{"key":"picked","value":[1,"b"],"why":{}}]'
    )
    assert trace_hash(steps) == sha256(text.encode())
    assert trace_hash(list(reversed(steps))) != trace_hash(steps)
    assert trace_hash([]) == sha256(b"[]")
    assert trace_hash(steps) == canonical.hash_of(json.loads(text))


def test_a_run_context_trace_hashes_the_same_when_repeated() -> None:
    def run(ctx: RunContext) -> str:
        ctx.decide("pick", ctx.random.randint(1, 100), at=ctx.now(), id=str(ctx.uuid()))
        return trace_hash(ctx.trace)

    assert run(RunContext(env(seed=3))) == run(RunContext(env(seed=3)))
    assert run(RunContext(env(seed=3))) != run(RunContext(env(seed=4)))


def test_a_redacted_trace_hides_secret_keys_values_and_reasons() -> None:
    steps = [
        DecisionStep(key="api_token", value="tok", why={"from": "env"}),
        DecisionStep(key="config", value={"db_password": "p", "size": 3}, why={"secret": "s"}),
        DecisionStep(key="plain", value="kept", why={}),
    ]
    assert redacted_trace(steps, Redactor()) == [
        DecisionStep(key="api_token", value=REDACTED, why={"from": "env"}),
        DecisionStep(key="config", value={"db_password": REDACTED, "size": 3},
                     why={"secret": REDACTED}),
        DecisionStep(key="plain", value="kept", why={}),
    ]  # fmt: skip


def _defined_here(inp: object, ctx: object) -> None:
    return None


def test_fingerprints_name_the_code_and_the_python() -> None:
    found = fingerprints(_defined_here)
    assert found.code_sha256 == sha256(Path(__file__).read_bytes())
    assert found.python == platform.python_version()
    assert found.packages == {
        "jobforge": metadata.version("jobforge"),
        "pydantic": metadata.version("pydantic"),
    }


def test_fingerprints_skip_what_they_cannot_know() -> None:
    found = fingerprints(len, packages=["pydantic", "no-such-package-jf"])
    assert found.code_sha256 is None  # a builtin has no source file
    assert found.packages == {"pydantic": metadata.version("pydantic")}
