"""Redaction (`jobforge.runtime.redact`) and the comparison of redacted expectations
(`jobforge.golden.compare`): a secret never reaches a file, and a redacted value never passes
for an equal one in silence."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobforge import errors
from jobforge.golden.case import Expect
from jobforge.golden.compare import differences, not_compared
from jobforge.runtime.context import DecisionStep
from jobforge.runtime.record import redacted_trace
from jobforge.runtime.redact import KEY_ENV, REDACTED, Redactor, comparable, marker

KEY = b"k" * 32
OTHER = b"o" * 32


def test_a_keyed_marker_changes_with_the_value_and_reveals_nothing() -> None:
    redact = Redactor(key=KEY)
    one = redact({"token": "hunter2"})["token"]
    assert re.fullmatch(r"\[redacted:[0-9a-f]{8}:[0-9a-f]{32}\]", one)
    assert "hunter2" not in one
    assert redact({"token": "hunter2"})["token"] == one  # deterministic
    assert redact({"token": "hunter3"})["token"] != one
    assert Redactor(key=OTHER)({"token": "hunter2"})["token"] != one
    mine, again = marker(one), marker(redact.mask("x"))
    assert mine is not None
    assert again is not None
    assert mine[0] == again[0]  # the key id is the key's, not the value's


def test_structured_secret_values_are_masked_canonically() -> None:
    redact = Redactor(key=KEY)
    first = redact({"credentials": {"b": 1, "a": [1, 2]}})["credentials"]
    second = redact({"credentials": {"a": [1, 2], "b": 1}})["credentials"]
    assert first == second  # key order is no change


def test_without_a_key_the_marker_is_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert Redactor()({"api_key": "s", "n": None, "token": None}) == {
        "api_key": REDACTED, "n": None, "token": None,
    }  # fmt: skip


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "x" * 16)
    assert Redactor().mask("v") == Redactor(key=b"x" * 16).mask("v")


@pytest.mark.parametrize("value", ["short", "x" * 15])
def test_a_short_key_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(KEY_ENV, value)
    with pytest.raises(errors.ConfigurationError, match=r"JOBFORGE_REDACTION_KEY must be at "
                       r"least 16 bytes \(it is \d+\)") as caught:  # fmt: skip
        Redactor()
    assert "\n" not in str(caught.value)


def test_a_runner_names_its_own_secret_and_public_keys() -> None:
    base = Redactor(key=None)
    mine = base.for_runner(["session", "X-Sig"], ["next_page_token"])
    assert mine({"session": "s", "x_sig": "t", "next_page_token": "p2", "api_key": "k"}) == {
        "session": REDACTED, "x_sig": REDACTED, "next_page_token": "p2", "api_key": REDACTED,
    }  # fmt: skip
    assert base.is_secret("next_page_token")  # the base is unchanged
    assert not base.is_secret("session")


def test_none_redacts_nothing() -> None:
    everything = Redactor.none()
    value = {"password": "p", "nested": [{"token": "t"}]}
    assert everything(value) == value
    assert everything.for_runner(["x"], []) is everything
    steps = [DecisionStep(key="api_key", value="k", why={"token": "t"})]
    assert redacted_trace(steps, everything) == steps


def test_trace_values_and_reasons_are_masked_with_the_key() -> None:
    redact = Redactor(key=KEY)
    [step] = redacted_trace([DecisionStep(key="api_key", value="k", why={"token": "t"})], redact)
    assert step.value == redact.mask("k")
    assert step.why == {"token": redact.mask("t")}


@given(st.text(max_size=20), st.text(max_size=20))
def test_comparable_only_under_the_same_key(a: str, b: str) -> None:
    redact, other = Redactor(key=KEY), Redactor(key=OTHER)
    assert comparable(redact.mask(a), redact.mask(b))
    assert not comparable(redact.mask(a), other.mask(b))
    assert not comparable(REDACTED, redact.mask(b))
    assert not comparable(REDACTED, b)
    assert not comparable(redact.mask(a), b)
    assert comparable(a, b)  # plain values are always compared


def expect(output: Any, trace_value: Any = "v") -> Expect:
    return Expect(
        status="succeeded", output=output,
        trace=[DecisionStep(key="api_token", value=trace_value), DecisionStep(key="n", value=1)],
    )  # fmt: skip


def test_a_plain_marker_is_listed_as_not_compared_never_as_equal() -> None:
    stored = expect({"token": REDACTED, "x": 1}, REDACTED)
    now = expect({"token": REDACTED, "x": 2}, REDACTED)
    assert [d.path for d in differences(stored, now)] == ["output.x"]
    assert not_compared(stored, now) == ["output.token", "trace[0] (api_token).value"]


def test_keyed_markers_are_compared() -> None:
    redact = Redactor(key=KEY)
    stored = expect({"token": redact.mask("a")}, redact.mask("v"))
    same = expect({"token": redact.mask("a")}, redact.mask("v"))
    changed = expect({"token": redact.mask("b")}, redact.mask("w"))
    assert differences(stored, same) == []
    assert not_compared(stored, same) == []
    assert [d.path for d in differences(stored, changed)] == [
        "output.token", "trace[0] (api_token).value",
    ]  # fmt: skip
    other = Redactor(key=OTHER)
    rotated = expect({"token": other.mask("b")}, other.mask("w"))
    assert differences(stored, rotated) == []
    assert not_compared(stored, rotated) == ["output.token", "trace[0] (api_token).value"]
