"""`jobforge.golden.explain`: every part of two runs is compared (status, error, output, trace,
artifacts), and each difference gets the strongest cause the records hold."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobforge.golden.explain import HASH_SEED, UNEXPLAINED, divergences, explain, likely_cause


def record(output: Any = None, *, status: str = "succeeded", error: Any = None,
           trace: Any = (), artifacts: Any = (), calls: Any = (),
           changed: Any = ()) -> dict[str, Any]:  # fmt: skip
    return {
        "status": status,
        "error": error,
        "output": None if output is None else {"canonical": json.dumps(output)},
        "trace": list(trace),
        "artifacts": list(artifacts),
        "uncontrolled": list(calls),
        "globals_changed": list(changed),
    }


def call(name: str, line: int, *values: str, cause: str = "process id") -> dict[str, Any]:
    return {"call": name, "file": "r.py", "line": line, "hint": "ctx", "cause": cause,
            "severity": "error", "values": list(values)}  # fmt: skip


def paths(first: dict[str, Any], other: dict[str, Any]) -> list[str]:
    return [d.path for d in divergences(first, other)]


def test_each_part_of_a_run_is_compared() -> None:
    base = record(
        {"a": 1},
        trace=[{"key": "k", "value": 1, "why": {}}],
        artifacts=[{"name": "r.md", "media": "text", "content": "x", "sha256": "s"}],
    )
    assert paths(base, base) == []
    assert paths(base, {**base, "status": "failed"}) == ["status"]
    assert paths(base, record({"a": 2}, trace=base["trace"], artifacts=base["artifacts"])) == [
        "output.a"
    ]
    other_trace = {**base, "trace": [{"key": "k", "value": 1, "why": {"at": 2}}]}
    assert paths(base, other_trace) == ["trace[0].why.at"]
    other_artifact = {**base, "artifacts": [{**base["artifacts"][0], "content": "y"}]}
    assert paths(base, other_artifact) == ["artifacts.r.md"]
    failing = record(status="failed", error={"type": "E", "message": "at 1", "details": 1})
    assert paths(failing, {**failing, "error": {"type": "E", "message": "at 2"}}) == [
        "error.message"
    ]
    assert (
        paths(failing, {**failing, "error": {"type": "E", "message": "at 1", "details": 9}}) == []
    )


def test_a_differing_call_site_explains_the_value_it_produced() -> None:
    first = record({"token": "t-4242"}, calls=[call("os.getpid", 7, "4242")])
    other = record({"token": "t-5151"}, calls=[call("os.getpid", 7, "5151")])
    [found] = explain(first, other, divergences(first, other), labels=("run 1", "run 3"))
    assert found.source == "r.py:7"
    assert found.cause.startswith(
        "process id: os.getpid() returned 4242 in run 1 and 5151 in run 3"
    )
    assert found.render().endswith("at r.py:7")


def test_the_site_whose_value_shows_wins_over_others() -> None:
    calls_a = [call("time.monotonic_ns", 3, "111111", cause="monotonic clock"),
               call("os.getpid", 9, "4242")]  # fmt: skip
    calls_b = [call("time.monotonic_ns", 3, "222222", cause="monotonic clock"),
               call("os.getpid", 9, "5151")]  # fmt: skip
    first, other = record({"v": 4242}, calls=calls_a), record({"v": 5151}, calls=calls_b)
    [found] = explain(first, other, divergences(first, other))
    assert found.source == "r.py:9"


def test_sites_with_equal_values_are_no_evidence() -> None:
    first = record({"v": 1}, calls=[call("os.getpid", 9, "4242")])
    other = record({"v": 2}, calls=[call("os.getpid", 9, "4242")])
    [found] = explain(first, other, divergences(first, other))
    assert found.source is None


def test_a_changed_global_explains_a_counter() -> None:
    change = {"module": "m", "name": "_n", "before": "0", "after": "1", "file": "m.py", "line": 4}
    first = record({"v": 1}, changed=[change])
    other = record({"v": 2}, changed=[{**change, "before": "1", "after": "2"}])
    [found] = explain(first, other, divergences(first, other))
    assert found.cause.startswith("module state: the global _n of m changed during run 1 (0 → 1)")
    assert found.source == "m.py:4"


def test_the_hash_seed_is_named_only_when_confirmed() -> None:
    first, other = record({"v": ["a", "b", "c"]}), record({"v": ["c", "a", "b"]})
    [likely] = explain(first, other, divergences(first, other))
    assert likely.cause == f"same items in another order: likely {HASH_SEED}"
    [confirmed] = explain(first, other, divergences(first, other), hash_seed=True)
    assert confirmed.cause.startswith(f"{HASH_SEED}: confirmed")


@pytest.mark.parametrize(
    ("a", "b", "words"),
    [
        ("<object object at 0x7f3a1c2b3d40>", "<object at 0x7f3a1c2b3e50>", "memory address"),
        (139872837123456, 139872837123520, "memory address"),
        ("2026-01-01T00:00:00", "2026-01-01T00:00:01", "time-like"),
        ("7d444840-9dc0-11d1-b245-5ffdce74fad2", "8d444840-9dc0-11d1-b245-5ffdce74fad2", "uuid"),
        (1, 2, "module-level state"),
        ("x", "y", UNEXPLAINED),
    ],
)  # fmt: skip
def test_the_shape_of_the_values_suggests_a_cause(a: Any, b: Any, words: str) -> None:
    assert words in likely_cause(a, b)


def test_a_lone_site_is_not_blamed_for_values_it_cannot_have_given() -> None:
    ids = [call("uuid.uuid4", 5, "UUID('6a44fe0c-539d-414c-8994-cb2196f852e4')",
                cause="random id (uuid4)")]  # fmt: skip
    other_ids = [call("uuid.uuid4", 5, "UUID('7b44fe0c-539d-414c-8994-cb2196f852e4')",
                      cause="random id (uuid4)")]  # fmt: skip
    first = record({"at": 1795962598.144547}, calls=ids)
    other = record({"at": 1795962598.1515763}, calls=other_ids)
    [found] = explain(first, other, divergences(first, other))
    assert found.source is None
    assert found.cause.startswith("time-like value")


def test_a_confirmed_hash_seed_on_a_plain_value_is_named_as_such() -> None:
    first, other = record({"h": 4242424242}), record({"h": 1313131313})
    [found] = explain(first, other, divergences(first, other), hash_seed=True)
    assert found.cause.startswith("a value that depends on the hash seed")


def test_pids_are_not_counters() -> None:
    assert "module-level state" not in likely_cause(6319, 6400)
    assert "module-level state" in likely_cause(1, 2)


def test_values_under_secret_keys_are_hidden_in_the_report() -> None:
    from jobforge.golden.check import _masked
    from jobforge.runtime.redact import Redactor

    secret = Redactor(key=None).for_runner(["session"], ["next_page_token"])
    first = record({"auth": {"token": "t-1", "session": "s-1", "next_page_token": "p1", "n": 1}},
                   trace=[{"key": "api_key", "value": "k1", "why": {}}])  # fmt: skip
    other = record({"auth": {"token": "t-2", "session": "s-2", "next_page_token": "p2", "n": 2}},
                   trace=[{"key": "api_key", "value": "k2", "why": {}}])  # fmt: skip
    shown = {d.path: d for d in (_masked(d, secret, first) for d in divergences(first, other))}
    assert shown["output.auth.n"].first == 1
    assert shown["output.auth.next_page_token"].first == "p1"
    for path in ("output.auth.token", "output.auth.session", "trace[0].value"):
        assert shown[path].first == "[secret, not shown]", path
        assert "t-1" not in shown[path].render()


def test_a_secret_is_not_shown_in_the_cause_either() -> None:
    from jobforge.golden.check import _masked
    from jobforge.runtime.redact import Redactor

    first = record({"token": "tok-4242"}, calls=[call("os.getpid", 7, "'tok-4242'")])
    other = record({"token": "tok-5151"}, calls=[call("os.getpid", 7, "'tok-5151'")])
    [found] = explain(first, other, divergences(first, other))
    assert "tok-4242" in found.cause
    masked = _masked(found, Redactor(key=None), first)
    assert "tok-4242" not in masked.render()
    assert "tok-5151" not in masked.render()
    assert masked.source == "r.py:7"
