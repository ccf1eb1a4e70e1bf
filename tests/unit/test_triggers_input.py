"""The checks made before anything is sent (jobforge/queue/triggers.py, jobforge/queue/events.py):
predicates from the command line, "$." references of a template, triggers' bounds and event
envelopes, each a one-line `ConfigurationError`; properties over random templates (hypothesis)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobforge import errors
from jobforge.queue.events import NewEvent
from jobforge.queue.triggers import NewTrigger, Predicate, check_reference, references


@pytest.mark.parametrize(
    ("args", "value"),
    [
        (("total", "gt", "100"), 100),
        (("total", "le", "2.5"), 2.5),
        (("status", "eq", "paid"), "paid"),
        (("status", "eq", '"100"'), "100"),
        (("region", "in", '["eu", "us"]'), ["eu", "us"]),
        (("vip", "exists", "true"), True),
        (("a.b.c", "ne", "null"), None),
    ],
)
def test_a_where_value_is_json_when_it_parses_else_the_string(
    args: tuple[str, str, str], value: Any
) -> None:
    assert Predicate.parse(*args).value == value


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("total", "like", "1"), "the op must be one of eq, ne, in, exists, gt, ge, lt, le"),
        (("total", "gt", "many"), "gt compares numbers: give a number"),
        (("total", "lt", "true"), "lt compares numbers"),
        (("region", "in", "eu"), "in needs a JSON array"),
        (("vip", "exists", "yes"), "exists needs true or false"),
        (("a..b", "eq", "1"), "the path must be dotted keys into the data"),
        ((".a", "eq", "1"), "the path must be dotted keys"),
        (("a\nb", "eq", "1"), "the path must be dotted keys"),
    ],
)
def test_a_bad_where_is_one_line(args: tuple[str, str, str], message: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=message) as info:
        Predicate.parse(*args)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["$.id", "$.type", "$.source", "$.subject", "$.time", "$.data",
                                  "$.data.a", "$.data.a.0.b"])  # fmt: skip
def test_event_fields_are_references(text: str) -> None:
    check_reference(text, "x")


@pytest.mark.parametrize("text", ["$.nope", "$.subject.x", "$.data..a", "$.", "$.data."])
def test_anything_else_is_one_line(text: str) -> None:
    with pytest.raises(errors.ConfigurationError, match="is not an event field"):
        check_reference(text, "x")


def trigger(**fields: Any) -> NewTrigger:
    base: dict[str, Any] = {"name": "t", "event_type": "e", "job_type": "j"}
    return NewTrigger(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Bad"}, "trigger name 'Bad' is invalid"),
        ({"name": "a:b"}, "trigger name 'a:b' is invalid"),
        ({"event_type": "a b"}, "event type 'a b' is invalid"),
        ({"job_type": "Upper"}, "job type 'Upper' is invalid"),
        ({"input": {"x": ["$.nope"]}}, "the input's '$.nope' is not an event field"),
        ({"dedupe": "data.x"}, "dedupe 'data.x' is not an event field"),
        (
            {"cooldown": timedelta(days=2)},
            "cooldown 2 days, 0:00:00 is out of range: give 0s up to 1d",
        ),
        ({"cooldown": timedelta(seconds=-1)}, "is out of range"),
        ({"max_per_hour": 0}, "max per hour 0 is out of range 1-1000"),
        ({"max_per_hour": 1001}, "max per hour 1001 is out of range"),
        ({"predicates": [Predicate(path="a", op="eq", value=1)] * 21}, "21 predicates"),
    ],
)
def test_a_trigger_out_of_bounds_is_one_line(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=re.escape(message)):
        trigger(**fields).check()


def test_an_envelope_with_an_unknown_field_is_refused_not_dropped() -> None:
    with pytest.raises(
        errors.ConfigurationError, match=r"has unknown field\(s\) datta, specversion"
    ):
        NewEvent.from_envelope({"type": "t", "source": "s", "datta": {}, "specversion": "1.0"})
    with pytest.raises(errors.ConfigurationError, match="must be a JSON object"):
        NewEvent.from_envelope([])
    with pytest.raises(errors.ConfigurationError, match="the event: source: "):
        NewEvent.from_envelope({"type": "t", "source": "a\x1bb"})
    with pytest.raises(errors.ConfigurationError, match="the event: data: "):
        NewEvent.from_envelope({"type": "t", "source": "s", "data": [1]})
    event = NewEvent.from_envelope({"type": "t", "source": "s", "time": "2026-03-02T09:00:00Z"})
    assert event.time is not None
    assert event.data == {}


_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                  st.sampled_from(["$.id", "$.data.a", "$$.data", "$.subject"]))  # fmt: skip
templates = st.recursive(
    _leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=12,
)  # fmt: skip


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


@given(templates)
def test_references_are_exactly_the_dollar_dot_strings_of_a_template(template: Any) -> None:
    assert references(template) == [s for s in _strings(template) if s.startswith("$.")]
    assert "$$.data" not in references(template)  # an escaped "$" is no reference
