"""Why two runs of the same case differ: each differing value with its path, both values, its
cause in plain words and, where there is one, the source line that produced it.

The evidence, strongest first:
1. strict mode's call sites (`jobforge.runtime.strict`): what each uncontrolled call returned at
   its file:line in each run; a site whose values differ between the runs is the cause (matched
   to the differing value by its text when it can be, else the only such site);
2. the runner modules' globals that a run changed (a counter, a cache), with their line;
3. a second fresh interpreter with the same PYTHONHASHSEED: if it gives the same values, the
   difference comes from the order of a set or dict of str (the hash seed);
4. the shape of the values (a timestamp, a uuid, a memory address, the same items reordered).

Golden, certify and replay reports all render findings with `render_call` and
`Divergence.render`, so the words are the same everywhere.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


class _Missing:
    """Where one side has nothing: rendered bare, never as a quoted string."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

#: When nothing accounts for a difference.
UNEXPLAINED = (
    "not explained: no uncontrolled call site returned different values, no module global "
    "changed and the hash seed does not account for it (look for state kept outside the run: "
    "class attributes, caches in other modules, files, threads)"
)
HASH_SEED = "iteration order of a set or dict of str (hash seed)"


@dataclass(frozen=True)
class Divergence:
    """A value that differed between two runs of the same case, and why."""

    path: str
    first: Any
    other: Any
    cause: str
    source: str | None = None  #: "file:line" of the code that produced it, when known

    def render(self) -> str:
        where = f" at {self.source}" if self.source else ""
        first, other = pair(self.first, self.other)
        return f"{self.path}: {first} vs {other} — {self.cause}{where}"


def render_call(call: dict[str, Any]) -> str:
    """One strict-mode finding, the same words in every report."""
    name = call["call"]
    shown = name if any(c in name for c in "([ ") else f"{name}()"
    cause = f" — {call['cause']}" if call.get("cause") else ""
    return f"{shown} at {call['file']}:{call['line']}{cause} (use {call['hint']})"


def call_lines(calls: Sequence[dict[str, Any]], indent: str = "  ") -> list[str]:
    """Strict mode's findings of a failed run under one heading (golden and replay alike)."""
    if not calls:
        return []
    return [f"{indent}strict mode: the runner called uncontrolled sources:",
            *(f"{indent}  {render_call(c)}" for c in calls)]  # fmt: skip


def short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def pair(a: Any, b: Any, limit: int = 120, before: int = 40) -> tuple[str, str]:
    """Both values' reprs, each at most about `limit` characters, cut to the same window: from
    `before` characters ahead of their first difference on, so the difference is always shown
    (a prefix of two long values is often the same on both sides). A cut is marked `…`, and a
    window that starts after the beginning says at which character."""
    left, right = repr(a), repr(b)
    if len(left) <= limit and len(right) <= limit:
        return left, right
    first = next(
        (i for i, (x, y) in enumerate(zip(left, right, strict=False)) if x != y),
        min(len(left), len(right)),
    )
    start = max(0, first - before)
    return _window(left, start, limit), _window(right, start, limit)


def _window(text: str, start: int, limit: int) -> str:
    if len(text) <= limit and start == 0:
        return text
    shown = text[start : start + limit]
    head = f"…(from char {start}) " if start else ""
    tail = "…" if start + limit < len(text) else ""
    return f"{head}{shown}{tail}"


# --- where two records differ ---------------------------------------------------------------


def divergences(first: dict[str, Any], other: dict[str, Any]) -> list[Divergence]:
    """Where two run records of one case differ: status, error, output, trace, artifacts,
    follow-up effects. Each
    with the cause its values suggest; `explain` then looks for stronger evidence."""
    found: list[Divergence] = []
    if first.get("status") != other.get("status"):
        found.append(Divergence("status", first.get("status"), other.get("status"),
                                "the run failed once and not the other time"))  # fmt: skip
    found += _walk("error", _error(first.get("error")), _error(other.get("error")))
    found += _walk("output", _parsed(first.get("output")), _parsed(other.get("output")))
    found += _walk("trace", first.get("trace", []), other.get("trace", []))
    found += _walk("artifacts", _contents(first), _contents(other))
    found += _walk("effects", _effects(first), _effects(other))
    return found


def _effects(record: dict[str, Any]) -> list[Any]:
    """The follow-ups a run asked for, without their index (the list's order says it)."""
    return [{k: v for k, v in e.items() if k != "index"} for e in record.get("effects", [])]


def _error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if error is None else {k: error.get(k) for k in ("type", "message")}


def _parsed(snapshot: dict[str, Any] | None) -> Any:
    return None if snapshot is None else json.loads(snapshot["canonical"])


def _contents(record: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for artifact in record.get("artifacts", []):
        content = artifact.get("content")
        if artifact.get("media") == "json" and content is not None:
            found[artifact["name"]] = json.loads(content)
        else:
            found[artifact["name"]] = content if content is not None else artifact["sha256"]
    return found


def _walk(path: str, a: Any, b: Any) -> list[Divergence]:
    if a == b and type(a) is type(b):
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[Divergence] = []
        for key in sorted(set(a) | set(b), key=str):
            found += _walk(f"{path}.{key}", a.get(key, MISSING), b.get(key, MISSING))
        return found
    if isinstance(a, list) and isinstance(b, list):
        if _same_items(a, b):
            return [Divergence(path, a, b, likely_cause(a, b))]
        if len(a) == len(b):
            return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                    for d in _walk(f"{path}[{i}]", x, y)]  # fmt: skip
    if isinstance(a, str) and isinstance(b, str):
        time_a, time_b = _embedded_time(a), _embedded_time(b)
        if time_a and time_b and time_a != time_b:
            return [Divergence(path, a, b, likely_cause(time_a, time_b))]
    return [Divergence(path, a, b, likely_cause(a, b))]


# --- the cause a pair of values suggests ------------------------------------------------------

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_EMBEDDED_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def likely_cause(a: Any, b: Any) -> str:
    """The likely cause of one differing value between two runs, from the values alone."""
    if isinstance(a, list) and isinstance(b, list) and a != b and _same_items(a, b):
        return f"same items in another order: likely {HASH_SEED}"
    if _time_like(a) and _time_like(b):
        return "time-like value (wall clock: use ctx.now())"
    if _uuid_like(a) and _uuid_like(b):
        return "uuid-like value (use ctx.uuid())"
    if _address_like(a) and _address_like(b):
        return (
            "a memory address (id() or a default repr: objects live at other addresses in each run)"
        )
    if isinstance(a, float) and isinstance(b, float) and _close(a, b):
        return "float noise (summation order or platform math)"
    if _counter_like(a, b):
        return "module-level state (a counter or cache that grows from run to run)"
    return UNEXPLAINED


def _same_items(a: list[Any], b: list[Any]) -> bool:
    try:
        return sorted(map(repr, a)) == sorted(map(repr, b))
    except TypeError:
        return False


def _time_like(value: Any) -> bool:
    if isinstance(value, str):
        if _ISO.match(value):
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
                return True
            except ValueError:
                return False
        try:
            value = float(value)  # str(time.time())
        except ValueError:
            return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return 1e9 <= value <= 4e9 or 1e18 <= value <= 4e18  # epoch seconds or nanoseconds
    return False


def _address_like(value: Any) -> bool:
    if isinstance(value, str):
        return _ADDRESS.search(value) is not None
    if isinstance(value, int) and not isinstance(value, bool):
        return 2**32 <= value < 2**48 and value % 8 == 0  # a 64-bit heap address (id())
    return False


def _counter_like(a: Any, b: Any) -> bool:
    ints = isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool)
    return ints and 0 < abs(b - a) <= 16  # a few calls per run; pids and addresses move more


def _uuid_like(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) in (32, 36)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)


def _embedded_time(text: str) -> str | None:
    """A timestamp inside a longer text (a report line that says when it was made)."""
    match = _EMBEDDED_TIME.search(text)
    return match.group(0) if match else None


# --- stronger evidence: call sites, globals, the hash seed ------------------------------------


@dataclass(frozen=True)
class _Evidence:
    cause: str
    source: str | None
    texts: tuple[str, ...]  #: value texts that, found in a differing value, tie it to this
    kind: str = ""  #: what its values look like: "time", "uuid", "address", "order" or ""


#: The look of the values a strict-mode cause gives (see `_shape`): a lone call site is named
#: as the cause of a difference only when the differing values could have come from it.
_KIND_OF_CAUSE = {
    "wall clock": "time", "a system clock": "time", "random id (uuid4)": "uuid",
    "time-based id (uuid1)": "uuid", "object address (id)": "address",
    "object address in a repr": "address", "hash randomized per process": "order",
    "directory listing order": "order", "the wall clock, read inside a library": "date",
}  # fmt: skip


def explain(
    first: dict[str, Any],
    other: dict[str, Any],
    found: Sequence[Divergence],
    *,
    labels: tuple[str, str] = ("run 1", "the other run"),
    hash_seed: bool = False,
) -> list[Divergence]:
    """`found` (the divergences between `first` and `other`) with their causes from the records'
    strict-mode evidence; `hash_seed`: a same-seed interpreter reproduced `other`'s values."""
    sites = _differing_sites(first, other, labels)
    changed = _changed_globals(first, other, labels)
    return [_explained(d, sites, changed, hash_seed) for d in found]


def _explained(d: Divergence, sites: list[_Evidence], changed: list[_Evidence],
               hash_seed: bool) -> Divergence:  # fmt: skip
    texts = {_text(d.first), _text(d.other)}
    for evidence in (*sites, *changed):
        if any(_ties(t, text) for t in evidence.texts for text in texts):
            return replace(d, cause=evidence.cause, source=evidence.source)
    shape = _shape(d.first, d.other)
    if hash_seed and shape in ("order", "", "counter"):
        what = (HASH_SEED if shape == "order" else
                "a value that depends on the hash seed (hash() of a str or bytes, or of an "
                "object that hashes them)")  # fmt: skip
        return replace(d, cause=f"{what}: confirmed, another interpreter with the same "
                                "PYTHONHASHSEED gave the same values")  # fmt: skip
    if shape == "order":
        return d
    for group in (sites, changed):
        # values that look like something (a time, a uuid, an address) come from a site that
        # gives such values; values that look like nothing in particular, from any site
        fitting = [e for e in group if _fits(e.kind, shape, texts)]
        if len(fitting) == 1:
            return replace(d, cause=fitting[0].cause, source=fitting[0].source)
        if fitting:
            rest = "; ".join(f"{e.cause} at {e.source}" for e in fitting[1:4])
            return replace(d, cause=f"{fitting[0].cause} (or: {rest})", source=fitting[0].source)
    return d


_DATE_TEXT = re.compile(r"\b(19|20)\d\d\b|\b\d\d:\d\d\b")


def _fits(kind: str, shape: str, texts: set[str]) -> bool:
    """Whether evidence of `kind` could have given differing values of `shape`. A library's
    read of the clock (logging reads it on every line) counts only for values with a date."""
    if kind == "date":
        return shape in ("", "time") and any(_DATE_TEXT.search(t) for t in texts)
    return shape in ("", "counter", "float") or kind == shape


def _shape(a: Any, b: Any) -> str:
    """What two differing values look like, as `likely_cause` reads them ("" for nothing)."""
    cause = likely_cause(a, b)
    for word, kind in (("order", "order"), ("time-like", "time"), ("uuid-like", "uuid"),
                       ("memory address", "address"), ("float noise", "float"),
                       ("module-level state", "counter")):  # fmt: skip
        if word in cause:
            return kind
    return ""


def _differing_sites(first: dict[str, Any], other: dict[str, Any],
                     labels: tuple[str, str]) -> list[_Evidence]:  # fmt: skip
    def by_site(record: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
        return {(c["call"], c["file"], c["line"]): c for c in record.get("uncontrolled", [])}

    mine, theirs = by_site(first), by_site(other)
    found = []
    for key in [*mine, *(k for k in theirs if k not in mine)]:
        a, b = mine.get(key), theirs.get(key)
        values_a = list(a.get("values", [])) if a else []
        values_b = list(b.get("values", [])) if b else []
        if a is not None and b is not None and (values_a == values_b or not values_a
                                                or not values_b):  # fmt: skip
            continue  # the same values (or none captured): no evidence of a difference
        call = a or b
        assert call is not None
        what = call.get("cause") or "an uncontrolled call"
        name = call["call"] if any(c in call["call"] for c in "([ ") else f"{call['call']}()"
        said = (
            f"{what}: {name} returned {_values(values_a)} in {labels[0]} and "
            f"{_values(values_b)} in {labels[1]} (use {call.get('hint', 'RunContext')})"
        )
        texts = tuple(t for v in (*values_a, *values_b) for t in _texts(v))
        kind = _KIND_OF_CAUSE.get(str(call.get("cause")), "")
        found.append(_Evidence(said, f"{call['file']}:{call['line']}", texts, kind))
    return found


def _changed_globals(first: dict[str, Any], other: dict[str, Any],
                     labels: tuple[str, str]) -> list[_Evidence]:  # fmt: skip
    found: dict[tuple[str, str], _Evidence] = {}
    for label, record in zip(labels, (first, other), strict=True):
        for change in record.get("globals_changed", []):
            key = (change["module"], change["name"])
            if key in found:
                continue
            said = (
                f"module state: the global {change['name']} of {change['module']} changed "
                f"during {label} ({change['before']} → {change['after']}), so each run starts "
                "from another value"
            )
            source = f"{change['file']}:{change['line']}" if change.get("line") else change["file"]
            texts = (_unquoted(change["after"]),) if len(change["after"]) > 2 else ()
            found[key] = _Evidence(said, source, texts, "counter")
    return list(found.values())


def _ties(value: str, text: str) -> bool:
    """Whether a call's value shows in a differing value (short ones only when whole)."""
    return value == text or (len(value) >= 4 and value in text)


def _values(values: list[str]) -> str:
    if not values:
        return "nothing (not called)"
    shown = ", ".join(values[:3]) + (", …" if len(values) > 3 else "")
    return shown if len(values) > 1 else values[0]


_QUOTED = re.compile(r"'([^']{4,})'|\"([^\"]{4,})\"")


def _texts(text: str) -> tuple[str, ...]:
    """The texts a value's repr may show up as: itself unquoted, and what it quotes inside
    (`UUID('6a44…')` shows up as `6a44…`)."""
    inner = [a or b for a, b in _QUOTED.findall(text)]
    return (_unquoted(text), *inner)


def _unquoted(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
