"""Hypothesis strategies for runner inputs, built from a runner's input model.

Each field gets a strategy from its annotation *and its constraints* (pydantic's `Field(ge=...,
max_length=..., decimal_places=...)`, annotated-types metadata, `condecimal` and the like): nested
models, lists, tuples, dicts, optionals, unions and literals recursively; integers, floats,
Decimals and strings inside their bounds; anything else through `st.from_type`. What is drawn is
then validated through the model (a validator in Python code may still refuse it) and dumped as
the JSON a job payload carries, so what comes out is valid input. (hypothesis-jsonschema does not
work with current hypothesis, and `st.from_type` alone ignores constraints: on `Decimal =
Field(ge=0, decimal_places=2)` it drew NaN, compared it and crashed with InvalidOperation.)

Decimals are drawn as whole multiples of a step: `10**-decimal_places` (or of `multiple_of`, or
the least common multiple of both), between the bounds, with no more than `max_digits` digits,
and written with exactly that many places (`Decimal("18.00")`), so every one validates.
Integers without bounds stay within +-(2**53 - 1), what a JSON number holds exactly.
"""

from __future__ import annotations

import enum
import math
import types
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from jobforge.contracts import RunnerDef, find_runner
from jobforge.errors import MissingTestStack

try:  # hypothesis is part of the test stack, not of a core install
    from hypothesis import strategies as st
except ImportError as exc:
    raise MissingTestStack.needed_by("jobforge.strategies", exc) from None

#: Constraint names read from field metadata (annotated-types and pydantic use these names).
_CONSTRAINTS = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "max_digits",
                "decimal_places", "pattern")  # fmt: skip
#: Integers with no bound stay within what a JSON number holds exactly (canonical JSON).
_INT_LIMIT = 2**53 - 1
#: Decimals with no bound (and no max_digits) stay within this magnitude.
_DECIMAL_LIMIT = 10**12
#: Decimal places drawn from when a Decimal field says nothing of them.
_DEFAULT_PLACES = 4
#: How deep nested models are followed (a model that contains itself ends there).
_MAX_DEPTH = 5
#: Items of a list or dict with no max_length, beyond its min_length.
_EXTRA_ITEMS = 6


def model_inputs(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid inputs of `model`, as JSON (``model_dump(mode="json")``)."""

    def valid(raw: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return model.model_validate(raw).model_dump(mode="json")
        except (ValidationError, ValueError, TypeError, ArithmeticError):
            return None  # a validator in Python code, say: drawn again

    def present(payload: dict[str, Any] | None) -> dict[str, Any]:
        assert payload is not None
        return payload

    return _model(model, 0).map(valid).filter(lambda p: p is not None).map(present)


def field_values(model: type[BaseModel], name: str) -> st.SearchStrategy[Any]:
    """Values of one field of `model` as drawn from its annotation and constraints, before the
    model's own check (to compose a strategy of your own, or to see what the constraints give)."""
    info = model.model_fields[name]
    annotation: Any = info.annotation
    return _field(annotation, _constraints(info.metadata), 0)


def _model(model: type[BaseModel], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        # Any: newer pydantic types the annotation as a TypeForm
        annotation: Any = info.annotation
        strategy = _field(annotation, _constraints(info.metadata), depth)
        (required if info.is_required() else optional)[info.alias or name] = strategy
    return st.fixed_dictionaries(required, optional=optional)


def _constraints(metadata: Iterable[Any]) -> dict[str, Any]:
    """The constraints `metadata` states (`Ge(0)`, a FieldInfo's own metadata, pydantic's
    general metadata holding `decimal_places`...), by name."""
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            found.update(_constraints(item.metadata))
            continue
        for name in _CONSTRAINTS:
            value = getattr(item, name, None)
            if value is not None:
                found[name] = value
    return found


def _field(annotation: Any, constraints: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _field(args[0], {**constraints, **_constraints(args[1:])}, depth)
    if annotation is None or annotation is type(None):
        return st.none()
    if annotation is Any:
        return _json_scalars()
    if origin is Union or origin is types.UnionType:
        return st.one_of(*(_field(a, constraints, depth) for a in args))
    if origin is Literal:
        return st.sampled_from(args)
    if isinstance(annotation, type) and origin is None:
        return _simple(annotation, constraints, depth)
    if origin in (list, Sequence) or (origin is tuple and len(args) == 2 and args[1] is ...):
        item = _field(args[0], {}, depth) if args else _json_scalars()
        return st.lists(item, min_size=_least(constraints), max_size=_most(constraints))
    if origin is tuple and args and ... not in args:
        return st.tuples(*(_field(a, {}, depth) for a in args))
    if origin in (dict, Mapping) and len(args) == 2:
        keys, values = (_field(a, {}, depth) for a in args)
        return st.dictionaries(keys, values, min_size=_least(constraints),
                               max_size=_most(constraints))  # fmt: skip
    return st.from_type(annotation)


def _simple(kind: type, constraints: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    if issubclass(kind, BaseModel):
        return _model(kind, depth + 1) if depth < _MAX_DEPTH else st.nothing()
    if issubclass(kind, enum.Enum):
        return st.sampled_from(list(kind))
    if kind is bool:
        return st.booleans()
    if kind is int:
        return _integers(constraints)
    if kind is float:
        return _floats(constraints)
    if kind is Decimal:
        return _decimals(constraints)
    if kind is str:
        return _text(constraints)
    if kind is list:
        return st.lists(_json_scalars(), min_size=_least(constraints),
                        max_size=_most(constraints))  # fmt: skip
    if kind is dict:
        least, most = _least(constraints), _most(constraints)
        keys = st.text(_STORABLE, max_size=10)
        return st.dictionaries(keys, _json_scalars(), min_size=least, max_size=most)
    return st.from_type(kind)


#: Characters a payload can hold: Postgres's jsonb refuses U+0000 in a string, and a lone
#: surrogate (which UTF-8 cannot carry: jsonb refuses its JSON escape too). `characters()` with
#: `exclude_characters` alone does draw surrogates; the utf-8 codec leaves them out.
_STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")


def _json_scalars() -> st.SearchStrategy[Any]:
    return (
        st.none()
        | st.booleans()
        | st.integers(-_INT_LIMIT, _INT_LIMIT)
        | st.text(_STORABLE, max_size=20)
    )


def _least(constraints: dict[str, Any]) -> int:
    """The fewest items (or characters) a field takes."""
    return int(constraints.get("min_length") or 0)


def _most(constraints: dict[str, Any]) -> int:
    """The most items a field takes: its max_length, else a few more than its least."""
    high = constraints.get("max_length")
    return int(high) if high is not None else _least(constraints) + _EXTRA_ITEMS


def _fraction(value: Any) -> Fraction | None:
    """A numeric bound or step, exactly; a float as the decimal it is written as (0.05, not the
    double nearest it). None for anything else (a date bound, say: the model's check decides)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Fraction(Decimal(repr(value))) if isinstance(value, float) else Fraction(value)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _integers(constraints: dict[str, Any]) -> st.SearchStrategy[int]:
    low, high = _range(constraints, Fraction(-_INT_LIMIT), Fraction(_INT_LIMIT), Fraction(1))
    step = _fraction(constraints.get("multiple_of"))
    if step is None or step.denominator != 1 or step == 0:
        return st.nothing() if low > high else st.integers(low, high)
    return _multiples(constraints, abs(step), Fraction(-_INT_LIMIT), Fraction(_INT_LIMIT)).map(
        lambda value: int(value)
    )


def _floats(constraints: dict[str, Any]) -> st.SearchStrategy[float]:
    bounds: dict[str, Any] = {"allow_nan": False, "allow_infinity": False}
    limits = (("ge", "min_value", None), ("gt", "min_value", "exclude_min"),
              ("le", "max_value", None), ("lt", "max_value", "exclude_max"))  # fmt: skip
    for name, key, exclude in limits:
        value = _fraction(constraints.get(name))
        if value is not None:
            bounds[key] = float(value)
            if exclude:
                bounds[exclude] = True
    return st.floats(**bounds)


def _text(constraints: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = _least(constraints), constraints.get("max_length")
    pattern = constraints.get("pattern")
    if pattern is None:
        return st.text(_STORABLE, min_size=low, max_size=None if high is None else int(high))
    return st.from_regex(str(pattern), fullmatch=True).filter(
        lambda text: len(text) >= low and (high is None or len(text) <= high) and "\x00" not in text
    )


def _decimals(constraints: dict[str, Any]) -> st.SearchStrategy[Decimal]:
    places = constraints.get("decimal_places")
    digits = constraints.get("max_digits")
    step = _fraction(constraints.get("multiple_of"))
    if places is None and step:
        places = max(0, -_exponent(step))  # the places of the step itself
    if places is None:
        most = _DEFAULT_PLACES if digits is None else max(0, min(_DEFAULT_PLACES, int(digits)))
        return st.integers(0, most).flatmap(lambda p: _decimals_at(constraints, p))
    return _decimals_at(constraints, int(places))


def _decimals_at(constraints: dict[str, Any], places: int) -> st.SearchStrategy[Decimal]:
    """Decimals written with exactly `places` places, every one within the constraints."""
    unit = Fraction(1, 10**places)
    step = _fraction(constraints.get("multiple_of"))
    step = unit if not step else _lcm(abs(step), unit)
    digits = constraints.get("max_digits")
    cap = (
        Fraction(_DECIMAL_LIMIT) if digits is None else Fraction(10 ** int(digits) - 1, 10**places)
    )
    return _multiples(constraints, step, -cap, cap).map(lambda value: _decimal(value, places))


def _multiples(constraints: dict[str, Any], step: Fraction, floor: Fraction,
               ceiling: Fraction) -> st.SearchStrategy[Fraction]:  # fmt: skip
    """Whole multiples of `step` within the constraints' bounds and [floor, ceiling]."""
    low, high = _range(constraints, floor, ceiling, step)
    return st.nothing() if low > high else st.integers(low, high).map(lambda k: k * step)


def _range(constraints: dict[str, Any], floor: Fraction, ceiling: Fraction,
           step: Fraction) -> tuple[int, int]:  # fmt: skip
    """The least and greatest k with k * step within the bounds (gt/lt exclusive)."""
    low, high = math.ceil(floor / step), math.floor(ceiling / step)
    for name, exclusive in (("ge", False), ("gt", True)):
        bound = _fraction(constraints.get(name))
        if bound is not None:
            k = math.ceil(bound / step)
            low = max(low, k + 1 if exclusive and k * step == bound else k)
    for name, exclusive in (("le", False), ("lt", True)):
        bound = _fraction(constraints.get(name))
        if bound is not None:
            k = math.floor(bound / step)
            high = min(high, k - 1 if exclusive and k * step == bound else k)
    return low, high


def _lcm(a: Fraction, b: Fraction) -> Fraction:
    """The least positive common multiple of two positive fractions."""
    return Fraction(math.lcm(a.numerator, b.numerator), math.gcd(a.denominator, b.denominator))


def _exponent(value: Fraction) -> int:
    """The exponent of `value` written as a decimal (-2 for 0.05); 0 for a step that no
    decimal holds exactly (1/3), whose multiples are drawn whole."""
    for places in range(30):
        if (value * 10**places).denominator == 1:
            return -places
    return 0


def _decimal(value: Fraction, places: int) -> Decimal:
    """`value` (a multiple of 10**-places) as a Decimal with exactly `places` places."""
    scaled = value * 10**places
    assert scaled.denominator == 1
    number = scaled.numerator
    digits = tuple(int(d) for d in str(abs(number)))
    return Decimal((int(number < 0), digits, -places))


def inputs(runner: str | RunnerDef) -> st.SearchStrategy[dict[str, Any]]:
    """Valid inputs of a declared runner (by id or definition)."""
    definition = find_runner(runner) if isinstance(runner, str) else runner
    return model_inputs(definition.input)
