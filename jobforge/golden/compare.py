"""What differs between two expectations: each changed path with both sides, never a dump of
both records, and for traces the first differing step. deepdiff is configured explicitly:
order matters everywhere (a trace is a sequence; so is a list in an output).

A stored expectation holds secrets redacted (`jobforge.runtime.redact`). A keyed marker is
compared like any value (it changes when the value does); a plain `[redacted]`, or a marker made
under another key, cannot be: such paths are listed by `not_compared`, never counted as equal
in silence.

deepdiff is part of the test stack (`jobforge[testing]`), imported on first comparison: the CLI
imports this module in a core install too, where the test stack is not installed."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from jobforge.errors import MissingTestStack
from jobforge.golden.case import Expect
from jobforge.golden.explain import MISSING as _MISSING
from jobforge.golden.explain import pair
from jobforge.runtime.context import DecisionStep
from jobforge.runtime.redact import comparable

if TYPE_CHECKING:
    from deepdiff import DeepDiff


def require_deepdiff(feature: str = "comparing a run with its expectation") -> type[DeepDiff]:
    """deepdiff's `DeepDiff`, or `MissingTestStack` naming `feature` when it is not installed
    (a command calls this first, to fail in one line before it starts a server)."""
    try:
        from deepdiff import DeepDiff
    except ImportError as exc:
        raise MissingTestStack.needed_by(feature, exc) from None
    return DeepDiff


@dataclass(frozen=True)
class Difference:
    path: str  #: e.g. output.findings[0], trace[2].value, artifacts.report.md.sha256
    expected: Any
    actual: Any

    def render(self) -> str:
        note = f" ({scale_note(self.expected, self.actual)})" if rescaled(
            self.expected, self.actual) else ""  # fmt: skip
        expected, actual = pair(self.expected, self.actual)  # where they differ
        return f"{self.path}: expected {expected}, got {actual}{note}"


#: Said of two decimal strings of the same number when the expected one is written as jobforge
#: wrote every Decimal before it kept the scale ("18" for a run's "18.00"): maybe an old recording.
RESCALED_NOTE = (
    "the same number with another scale: a Decimal is recorded with its scale, and one "
    "recorded before that was normalized; refresh the expectation if this is one"
)
#: Said of two decimal strings of the same number when the expected one is not normalized
#: ("18.00" and a run's "18.0"): no old recording explains it, the run's text changed.
SCALE_CHANGED_NOTE = (
    "the same number with another scale, a real change in the text the run writes: a recording "
    "made before Decimals kept their scale would read {normalized!r}"
)


def scale_note(expected: str, actual: str) -> str:
    """Why two strings of the same decimal number differ (`rescaled` holds): an expectation
    recorded normalized, which a refresh brings up to date, or a scale the run changed, which a
    refresh would hide."""
    if was_normalized(expected, actual):
        return RESCALED_NOTE
    return SCALE_CHANGED_NOTE.format(normalized=_normalized_text(Decimal(actual)))


_DECIMAL_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def was_normalized(expected: Any, actual: Any) -> bool:
    """Whether `expected` is `actual`'s number written as jobforge wrote any Decimal before it
    kept the scale ("18" for "18.00", "1e-7" for "1E-7"): a difference an old recording explains.
    An expected "18.00" against "18.0" is not one: normalizing never leaves a trailing zero."""
    return rescaled(expected, actual) and expected == _normalized_text(Decimal(actual))


def _normalized_text(value: Decimal) -> str:
    """How canonical JSON wrote a finite Decimal before it kept the scale: trailing zeros gone,
    laid out as ECMAScript writes numbers ("18", "0.1", "1e-7", "1e+21")."""
    sign, digit_tuple, exponent = value.as_tuple()
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits or not isinstance(exponent, int):
        return "0"
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    k, n = len(stripped), len(stripped) + exponent  # value = 0.<digits> * 10**n
    if k <= n <= 21:
        text = stripped + "0" * (n - k)
    elif 0 < n <= 21:
        text = stripped[:n] + "." + stripped[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + stripped
    else:
        text = f"{stripped[0]}{'.' + stripped[1:] if k > 1 else ''}e{n - 1:+d}"
    return ("-" if sign else "") + text


def rescaled(expected: Any, actual: Any) -> bool:
    """Whether two values are different strings of the same decimal number ("18", "18.00",
    "1e-7" and "1E-7"): how canonical JSON writes a Decimal changed from normalized to scaled."""
    if not (isinstance(expected, str) and isinstance(actual, str)) or expected == actual:
        return False
    if not (_DECIMAL_TEXT.fullmatch(expected) and _DECIMAL_TEXT.fullmatch(actual)):
        return False
    try:
        return Decimal(expected) == Decimal(actual)
    except InvalidOperation:
        return False


def only_rescaled(expected: Any, actual: Any) -> bool:
    """Whether two JSON values differ, and only by decimal strings written with another scale."""
    return expected != actual and _same_but_scale(expected, actual)


def only_normalized(expected: Any, actual: Any) -> bool:
    """Whether two JSON values differ, and only where `expected` holds a decimal string
    normalized as jobforge wrote one before it kept the scale (`was_normalized`)."""
    return expected != actual and _same_but_scale(expected, actual, was_normalized)


def _same_but_scale(a: Any, b: Any, same: Callable[[Any, Any], bool] = rescaled) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_but_scale(a[k], b[k], same) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(
            _same_but_scale(x, y, same) for x, y in zip(a, b, strict=True)
        )
    return bool(a == b or same(a, b))


def differences(expected: Expect, actual: Expect) -> list[Difference]:
    """What differs, the paths that cannot be compared (see `not_compared`) left out."""
    actual = reconciled(expected, actual)[0]
    found: list[Difference] = []
    if expected.status != actual.status:
        found.append(Difference("status", expected.status, actual.status))
    found += _deep("output", expected.output, actual.output)
    found += _trace(expected, actual)
    found += _artifacts(expected, actual)
    found += _deep("error", _error(expected.error), _error(actual.error))
    found += _effects(expected, actual)
    return found


def _effects(expected: Expect, actual: Expect) -> list[Difference]:
    """Follow-up jobs compared as sequences, aligned (difflib) so one inserted follow-up reads
    as one added, not as every later one changed: a follow-up the case does not expect, one
    the run no longer asks for, or one whose runner, input or key changed (paired in order)."""
    want = [_effect(e) for e in expected.effects]
    got = [_effect(e) for e in actual.effects]
    if want == got:
        return []
    keys = [[json.dumps(x, sort_keys=True) for x in side] for side in (want, got)]
    found: list[Difference] = []
    matcher = difflib.SequenceMatcher(a=keys[0], b=keys[1], autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        pairs = min(a1 - a0, b1 - b0) if tag == "replace" else 0
        for k in range(pairs):
            a, b = want[a0 + k], got[b0 + k]
            found += _deep(f"effects[{b0 + k}] ({a['runner_id']})", a, b)
        for i in range(b0 + pairs, b1):
            found.append(Difference(f"effects[{i}] (a follow-up of {got[i]['runner_id']} the "
                                    "case does not expect)", _MISSING, got[i]))  # fmt: skip
        for i in range(a0 + pairs, a1):
            found.append(Difference(f"effects[{i}] (a follow-up of {want[i]['runner_id']} the "
                                    "run no longer asks for)", want[i], _MISSING))  # fmt: skip
    return found


def _effect(effect: Any) -> dict[str, Any]:
    body: dict[str, Any] = effect.model_dump(mode="json", exclude_none=True)
    return body


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
    diff = require_deepdiff()(expected, actual, ignore_order=False, verbose_level=2, view="tree")
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


def not_compared(expected: Expect, actual: Expect) -> list[str]:
    """Paths whose expected value is redacted in a way that cannot be held against the run's
    (a plain `[redacted]`: no redaction key when it was written; or another key)."""
    return reconciled(expected, actual)[1]


def reconciled(expected: Expect, actual: Expect) -> tuple[Expect, list[str]]:
    """`actual` with each value that cannot be compared replaced by the expected one, and the
    paths of those values."""
    skipped: list[str] = []
    output = _align("output", expected.output, actual.output, skipped)
    trace = list(actual.trace)
    for i, (want, step) in enumerate(zip(expected.trace, actual.trace, strict=False)):
        if want.key == step.key:
            aligned = _align(f"trace[{i}] ({step.key})", want.model_dump(mode="json"),
                             step.model_dump(mode="json"), skipped)  # fmt: skip
            trace[i] = DecisionStep.model_validate(aligned)
    if not skipped:
        return actual, []
    return actual.model_copy(update={"output": output, "trace": trace}), skipped


def _align(path: str, want: Any, got: Any, skipped: list[str]) -> Any:
    if not comparable(want, got):
        skipped.append(path)
        return want
    if isinstance(want, dict) and isinstance(got, dict):
        return {k: _align(f"{path}.{k}", want[k], v, skipped) if k in want else v
                for k, v in got.items()}  # fmt: skip
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        pairs = enumerate(zip(want, got, strict=True))
        return [_align(f"{path}[{i}]", w, g, skipped) for i, (w, g) in pairs]
    return got
