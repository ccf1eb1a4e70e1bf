"""Constraint keywords (bounds, `pattern`, `format`, `multipleOf`, `uniqueItems`) and which way
a change to one goes: tightened, loosened or just changed, for the schema diff to classify.

Also the one constraint a generator writes on its own: the `pattern` pydantic < 2.14 gives
`Decimal` strings, which the diff tags as noise.
"""

from __future__ import annotations

from typing import Any

from jobforge.contracts.schema_change import show

#: Bounds: (keyword, which way is stricter).
LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
OTHER_CONSTRAINTS = ("pattern", "format", "multipleOf", "uniqueItems")
CONSTRAINTS = frozenset(LOWER_BOUNDS + UPPER_BOUNDS + OTHER_CONSTRAINTS)

#: How pydantic (2.10 to 2.13) begins the pattern it writes for `Decimal` strings.
_DECIMAL_PATTERN_START = r"^(?!^[-+.]*$)[+-]?0*"


DECIMAL_NOISE = "pydantic < 2.14 writes a pattern for Decimal strings, later ones do not"


def decimal_pattern(pattern: Any) -> bool:
    return isinstance(pattern, str) and pattern.startswith(_DECIMAL_PATTERN_START)


def bound(value: Any) -> str:
    return "none" if value is None else show(value)


def constraint_verdict(key: str, before: Any, after: Any) -> str:
    """tightened / loosened / changed for one constraint keyword going from before to after."""
    if after is None:
        return "loosened" if key != "uniqueItems" or before else "tightened"
    if before is None:
        return "tightened" if key != "uniqueItems" or after else "loosened"
    if key == "uniqueItems":
        return "tightened" if after else "loosened"
    if key in LOWER_BOUNDS and _numbers(before, after):
        return "tightened" if after > before else "loosened"
    if key in UPPER_BOUNDS and _numbers(before, after):
        return "tightened" if after < before else "loosened"
    if key == "multipleOf" and _numbers(before, after):
        if _divides(before, after):  # every multiple of `after` is a multiple of `before`
            return "tightened"
        if _divides(after, before):
            return "loosened"
    return "changed"


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _divides(small: float, big: float) -> bool:
    if small == 0:
        return False
    ratio = big / small
    return abs(ratio - round(ratio)) < 1e-9
