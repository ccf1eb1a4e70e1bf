"""What differs between two expectations: each changed path with both sides, never a dump of
both records, and for traces the first differing step. deepdiff is configured explicitly:
order matters everywhere (a trace is a sequence; so is a list in an output)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deepdiff import DeepDiff

from jobforge.golden.case import Expect


class _Missing:
    """Where one side has nothing: rendered bare, never as a quoted string."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


@dataclass(frozen=True)
class Difference:
    path: str  #: e.g. output.findings[0], trace[2].value, artifacts.report.md.sha256
    expected: Any
    actual: Any

    def render(self) -> str:
        return f"{self.path}: expected {_short(self.expected)}, got {_short(self.actual)}"


def differences(expected: Expect, actual: Expect) -> list[Difference]:
    found: list[Difference] = []
    if expected.status != actual.status:
        found.append(Difference("status", expected.status, actual.status))
    found += _deep("output", expected.output, actual.output)
    found += _trace(expected, actual)
    found += _artifacts(expected, actual)
    found += _deep("error", _error(expected.error), _error(actual.error))
    return found


def _error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if error is None else {k: error.get(k) for k in ("type", "message")}


def _trace(expected: Expect, actual: Expect) -> list[Difference]:
    """The first step where the traces part ways (what came after follows from it)."""
    want = [s.model_dump(mode="json") for s in expected.trace]
    got = [s.model_dump(mode="json") for s in actual.trace]
    for index, (a, b) in enumerate(zip(want, got, strict=False)):
        if a != b:
            if a["key"] != b["key"]:
                return [Difference(f"trace[{index}].key", a["key"], b["key"])]
            return _deep(f"trace[{index}] ({a['key']})", a, b)
    if len(want) == len(got):
        return []
    index = min(len(want), len(got))  # one trace goes on where the other stopped
    first = want[index] if len(want) > index else _MISSING
    second = got[index] if len(got) > index else _MISSING
    return [Difference(f"trace[{index}]", first, second)]


def _artifacts(expected: Expect, actual: Expect) -> list[Difference]:
    found = []
    for name in sorted(set(expected.artifacts) | set(actual.artifacts)):
        a, b = expected.artifacts.get(name), actual.artifacts.get(name)
        if a is None or b is None:
            found.append(Difference(f"artifacts[{name!r}]", a.sha256 if a else _MISSING,
                                    b.sha256 if b else _MISSING))  # fmt: skip
        elif a.sha256 != b.sha256:
            found.append(Difference(f"artifacts[{name!r}].sha256", a.sha256, b.sha256))
        elif a.size != b.size:  # same hash, another size: the expectation was edited by hand
            found.append(Difference(f"artifacts[{name!r}].size", a.size, b.size))
    return found


def _deep(prefix: str, expected: Any, actual: Any) -> list[Difference]:
    diff = DeepDiff(expected, actual, ignore_order=False, verbose_level=2, view="tree")
    found = []
    for report in diff.values():
        for level in report:
            path = level.path(root="")
            left = _MISSING if _absent(level.t1) else level.t1
            right = _MISSING if _absent(level.t2) else level.t2
            found.append(Difference(prefix + _dotted(path), left, right))
    return sorted(found, key=lambda d: d.path)


def _absent(value: Any) -> bool:
    return type(value).__name__ == "NotPresent"


def _dotted(path: str) -> str:
    """deepdiff's `['a'][0]['b']` as `.a[0].b`."""
    return re.sub(r"\['([^'\]]*)'\]", r".\1", path)


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- nondeterminism: why two runs of the same case differ -------------------------------------

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def likely_cause(a: Any, b: Any) -> str:
    """The likely cause of one differing value between two runs."""
    if isinstance(a, list) and isinstance(b, list) and a != b and _same_items(a, b):
        return "same items in another order (set or dict iteration order: hash seed)"
    if _time_like(a) and _time_like(b):
        return "time-like value (wall clock: use ctx.now())"
    if _uuid_like(a) and _uuid_like(b):
        return "uuid-like value (use ctx.uuid())"
    if isinstance(a, float) and isinstance(b, float) and _close(a, b):
        return "float noise (summation order or platform math)"
    if _counter_like(a, b):
        return "module-level state (a counter or cache that grows from run to run)"
    return "other (global state, the random module, a module-level counter…: use ctx.random)"


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


def _counter_like(a: Any, b: Any) -> bool:
    ints = isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool)
    return ints and 0 < abs(b - a) <= 1000


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


@dataclass(frozen=True)
class Divergence:
    """A value that differed between two runs of the same case, and why it probably did."""

    path: str
    first: Any
    other: Any
    cause: str

    def render(self) -> str:
        return f"{self.path}: {_short(self.first)} vs {_short(self.other)} — {self.cause}"


def divergences(first: dict[str, Any], other: dict[str, Any]) -> list[Divergence]:
    """Where two run records of one case differ: output, trace, artifact contents, status."""
    found: list[Divergence] = []
    if first.get("status") != other.get("status"):
        found.append(Divergence("status", first.get("status"), other.get("status"),
                                "the run failed once and not the other time"))  # fmt: skip
    found += _walk("output", _parsed(first.get("output")), _parsed(other.get("output")))
    found += _walk("trace", first.get("trace", []), other.get("trace", []))
    found += _walk("artifacts", _contents(first), _contents(other))
    return found


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
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[Divergence] = []
        for key in sorted(set(a) | set(b), key=str):
            found += _walk(f"{path}.{key}", a.get(key, _MISSING), b.get(key, _MISSING))
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


_EMBEDDED_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")


def _embedded_time(text: str) -> str | None:
    """A timestamp inside a longer text (a report line that says when it was made)."""
    match = _EMBEDDED_TIME.search(text)
    return match.group(0) if match else None
