"""Strict mode's module globals: `watching(watch, modules=...)` records which globals of the named
modules a run changed (a counter, a growing list, a cache), with the line that changes them. This
test module is itself the watched module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobforge.runtime.strict import GlobalChange, Watch, watching

COUNTER = 0
SEEN: list[int] = []
CACHE: dict[str, Any] = {"nested": {"deep": []}}
LABEL = "stable"
UNTOUCHED = [1, 2, 3]


def bump() -> None:
    global COUNTER
    COUNTER += 1


def remember(value: int) -> None:
    SEEN.append(value)


def cache(key: str) -> None:
    CACHE[key] = len(CACHE)


def deep() -> None:
    CACHE["nested"]["deep"].append(1)


def lines_of(*names: str) -> dict[str, int]:
    """The line of the first statement naming each global inside a function above."""
    source = Path(__file__).read_text().splitlines()
    out: dict[str, int] = {}
    for number, text in enumerate(source, 1):
        for name in names:
            stripped = text.strip()
            if name not in out and text.startswith("    ") and stripped.startswith(name):
                out[name] = number
    return out


def test_a_counter_a_growing_list_and_a_cache_are_seen_with_their_lines() -> None:
    with watching(Watch(), modules=(__name__,)) as watch:
        bump()
        remember(7)
        cache("k")
    changes = {c.name: c for c in watch.globals_changed}
    assert set(changes) == {"COUNTER", "SEEN", "CACHE"}
    expected = lines_of("COUNTER +=", "SEEN.append", "CACHE[key]")
    assert changes["COUNTER"] == GlobalChange(
        __name__, "COUNTER", str(COUNTER - 1), str(COUNTER), __file__, expected["COUNTER +="]
    )
    assert changes["SEEN"].line == expected["SEEN.append"]
    assert changes["SEEN"].after.endswith("7]")
    assert changes["CACHE"].line == expected["CACHE[key]"]
    assert "'k'" in changes["CACHE"].after
    assert "'k'" not in changes["CACHE"].before


def test_a_change_deep_inside_a_container_is_seen() -> None:
    with watching(Watch(), modules=(__name__,)) as watch:
        deep()
    assert [c.name for c in watch.globals_changed] == ["CACHE"]


def test_nothing_changed_nothing_reported_and_functions_are_skipped() -> None:
    with watching(Watch(), modules=(__name__, "jobforge.not.imported")) as watch:
        sorted(UNTOUCHED)
        str(LABEL)
    assert watch.globals_changed == []


def test_a_global_added_by_the_run_is_reported_from_unset() -> None:
    def add() -> None:
        globals()["ADDED_BY_RUN"] = 1

    try:
        with watching(Watch(), modules=(__name__,)) as watch:
            add()
    finally:
        globals().pop("ADDED_BY_RUN", None)
    (change,) = watch.globals_changed
    assert (change.name, change.before, change.after, change.line) == (
        "ADDED_BY_RUN",
        "<unset>",
        "1",
        None,
    )


def test_without_modules_no_snapshot_is_taken() -> None:
    with watching(Watch()) as watch:
        bump()
    assert watch.globals_changed == []
