"""The predicates and the mapping of triggers, as the database computes them (one place:
`jobforge.trigger_match`, `jobforge.trigger_render`), against a Python statement of the rules:
properties over random data, predicates and templates (hypothesis), on a real Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobforge.provision import Database
from jobforge.queue.triggers import references

KEYS = st.sampled_from(["a", "b", "c"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5),
                    st.sampled_from([1.5, -2.25, 0.0]),
                    st.sampled_from(["x", "y", "5"]))  # fmt: skip
DATA = st.recursive(SCALARS, lambda inner: st.dictionaries(KEYS, inner, max_size=3), max_leaves=8)
OBJECTS = st.dictionaries(KEYS, DATA, max_size=3)
PATHS = st.lists(KEYS, min_size=1, max_size=3).map(".".join)
PREDICATES = st.one_of(
    st.builds(lambda p, op, v: {"path": p, "op": op, "value": v}, PATHS,
              st.sampled_from(["eq", "ne"]), SCALARS),
    st.builds(lambda p, v: {"path": p, "op": "in", "value": v}, PATHS,
              st.lists(SCALARS, max_size=3)),
    st.builds(lambda p, v: {"path": p, "op": "exists", "value": v}, PATHS, st.booleans()),
    st.builds(lambda p, op, v: {"path": p, "op": op, "value": v}, PATHS,
              st.sampled_from(["gt", "ge", "lt", "le"]), st.integers(-5, 5)),
)  # fmt: skip

_MISSING = object()


def at(data: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            return _MISSING
        data = data[key]
    return data


def same(a: Any, b: Any) -> bool:
    """JSON equality: 1 and 1.0 are one number, true is no number."""
    return json.loads(json.dumps(a), parse_float=Decimal, parse_int=Decimal) == json.loads(
        json.dumps(b), parse_float=Decimal, parse_int=Decimal) and (
        isinstance(a, bool) == isinstance(b, bool))  # fmt: skip


def holds(p: dict[str, Any], data: Any) -> bool:
    """The rules as README states them."""
    got = at(data, p["path"])
    op, want = p["op"], p["value"]
    if op == "exists":
        return (got is not _MISSING) is want
    if op == "ne":
        return got is _MISSING or not same(got, want)
    if got is _MISSING:
        return False
    if op == "eq":
        return same(got, want)
    if op == "in":
        return any(same(got, w) for w in want)
    if isinstance(got, bool) or not isinstance(got, int | float):
        return False
    compared: dict[str, bool] = {"gt": got > want, "ge": got >= want, "lt": got < want,
                                 "le": got <= want}  # fmt: skip
    return compared[op]


@pytest.fixture
def conn(jobforge_db: Database) -> Iterator[psycopg.Connection[Any]]:
    """The functions are pure: one database serves every example of a property."""
    with psycopg.connect(jobforge_db.dsn, autocommit=True) as c:
        yield c


def match(conn: psycopg.Connection[Any], predicates: list[Any], data: Any) -> str | None:
    row = conn.execute("SELECT jobforge.trigger_match(%s::jsonb, %s::jsonb)",
                       (json.dumps(predicates), json.dumps(data))).fetchone()  # fmt: skip
    assert row is not None
    return None if row[0] is None else str(row[0])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(predicates=st.lists(PREDICATES, max_size=3), data=OBJECTS)
def test_a_predicate_list_holds_when_each_holds(
    conn: psycopg.Connection[Any], predicates: list[dict[str, Any]], data: dict[str, Any]
) -> None:
    problem = conn.execute("SELECT jobforge.trigger_predicates_problem(%s::jsonb)",
                           (json.dumps(predicates),)).fetchone()  # fmt: skip
    assert problem == (None,)
    failed = match(conn, predicates, data)
    expected = next((p for p in predicates if not holds(p, data)), None)
    if expected is None:
        assert failed is None
    else:
        assert failed is not None
        assert failed.startswith(f"{expected['path']} {expected['op']} ")


EVENT = {"id": 7, "type": "t", "source": "s", "subject": "sub", "time": "2026-01-01T00:00:00Z"}
LEAVES = st.one_of(SCALARS, st.sampled_from(["$.id", "$.subject", "$.data", "$$.x", "$$$.y"]),
                   PATHS.map(lambda p: "$.data." + p))  # fmt: skip
TEMPLATES = st.dictionaries(
    KEYS, st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(KEYS, inner, max_size=3)),
                       max_leaves=10), max_size=3)  # fmt: skip


def render(template: Any, event: dict[str, Any]) -> Any:
    """The mapping as README states it; KeyError for a path the event lacks."""
    if isinstance(template, dict):
        return {k: render(v, event) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, event) for v in template]
    if isinstance(template, str) and template.startswith("$$"):
        return template[1:]
    if isinstance(template, str) and template.startswith("$."):
        got = at(event, template[2:])
        if got is _MISSING:
            raise KeyError(template)
        return got
    return template


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(template=TEMPLATES, data=OBJECTS)
def test_the_mapping_fills_each_reference_with_the_event_s_value(
    conn: psycopg.Connection[Any], template: dict[str, Any], data: dict[str, Any]
) -> None:
    event = {**EVENT, "data": data}
    missing = [r for r in references(template) if r.startswith("$.data.")
               and at(data, r[len("$.data."):]) is _MISSING]  # fmt: skip
    if missing:
        with pytest.raises(psycopg.Error) as info:
            conn.execute("SELECT jobforge.trigger_render(%s::jsonb, %s::jsonb)",
                         (json.dumps(template), json.dumps(event)))  # fmt: skip
        assert info.value.sqlstate == "JF006"
        named = (info.value.diag.message_primary or "").removeprefix("mapping: the event has no ")
        assert named.removesuffix(" (absent from its data)") in missing  # one of them: any order
        return
    expected = render(template, event)
    row = conn.execute("SELECT jobforge.trigger_render(%s::jsonb, %s::jsonb)",
                       (json.dumps(template), json.dumps(event))).fetchone()  # fmt: skip
    assert row is not None
    assert row[0] == expected


@pytest.mark.parametrize(
    ("predicates", "message"),
    [
        ("{}", "the predicates must be a JSON array"),
        ("[1]", "predicate #1 must be an object {path, op, value}"),
        ('[{"path": "a", "op": "eq", "value": 1, "x": 2}]', "must be an object"),
        ('[{"path": "", "op": "eq", "value": 1}]', "the path must be dotted keys"),
        ('[{"path": "a", "op": "eq"}]', "eq needs a value"),
        ('[{"path": "a", "op": "in", "value": 1}]', "in needs a JSON array"),
        ('[{"path": "a", "op": "exists", "value": 1}]', "exists needs true or false"),
        ('[{"path": "a", "op": 3, "value": 1}]', "op 3 is unknown"),
    ],
)
def test_bad_predicates_are_named(conn: psycopg.Connection[Any], predicates: str,
                                  message: str) -> None:  # fmt: skip
    row = conn.execute("SELECT jobforge.trigger_predicates_problem(%s::jsonb)",
                       (predicates,)).fetchone()  # fmt: skip
    assert row is not None
    assert message in row[0]
