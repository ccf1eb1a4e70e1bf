"""Strategies for Decimal fields honour their constraints: ge/gt/le/lt, max_digits,
decimal_places and multiple_of, alone and together, at any depth. Every value drawn (before the
model's own check, which would otherwise hide a strategy that ignores them) validates, and has
the scale its field asks for. `st.from_type` alone ignored them and crashed with InvalidOperation
on `Decimal = Field(ge=0, decimal_places=2)` inside a list of models."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import BaseModel, Field, ValidationError, condecimal, create_model, field_validator

from jobforge.strategies import field_values, model_inputs

CONSTRAINTS: list[dict[str, Any]] = [
    {},
    {"ge": 0},
    {"gt": 0},
    {"le": 100},
    {"lt": -100},
    {"ge": -5, "le": 5},
    {"gt": Decimal("-0.5"), "lt": Decimal("0.5")},
    {"ge": 0.1, "le": 0.3, "decimal_places": 1},  # float bounds, exactly as written
    {"decimal_places": 0},
    {"decimal_places": 2},
    {"ge": 0, "decimal_places": 2},  # the field
    {"max_digits": 1},
    {"max_digits": 5},
    {"max_digits": 5, "decimal_places": 2},
    {"max_digits": 3, "decimal_places": 3},
    {"max_digits": 4, "decimal_places": 2, "gt": 0},
    {"multiple_of": Decimal("0.05")},
    {"multiple_of": Decimal("0.05"), "decimal_places": 2},
    {"multiple_of": Decimal("0.25"), "decimal_places": 1},  # only multiples of 0.5 fit both
    {"multiple_of": 3, "decimal_places": 2},
    {"multiple_of": Decimal("0.001"), "decimal_places": 5, "ge": 1, "le": 2},
    {"gt": Decimal("0.001"), "lt": Decimal("0.01"), "decimal_places": 3},
    {"gt": 0, "le": 1000, "max_digits": 6, "decimal_places": 2, "multiple_of": Decimal("0.05")},
    {"ge": Decimal("99999.99"), "max_digits": 7, "decimal_places": 2},  # only its top end fits
]


def _model(constraints: dict[str, Any]) -> type[BaseModel]:
    field: Any = (Decimal, Field(**constraints))
    return create_model("M", amount=field)


def _id(constraints: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in constraints.items()) or "none"


@pytest.mark.parametrize("constraints", CONSTRAINTS, ids=[_id(c) for c in CONSTRAINTS])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_drawn_decimal_validates(constraints: dict[str, Any], data: st.DataObject) -> None:
    model = _model(constraints)
    value = data.draw(field_values(model, "amount"))
    assert isinstance(value, Decimal)
    model.model_validate({"amount": value})  # raises if a constraint is broken
    places = constraints.get("decimal_places")
    if places is not None:
        assert value.as_tuple().exponent == -places  # written with the field's scale


@st.composite
def combinations(draw: st.DrawFn) -> dict[str, Any]:
    """Satisfiable combinations of every Decimal constraint."""
    places = draw(st.integers(0, 4))
    low = draw(st.integers(-200, 200))
    high = low + draw(st.integers(10, 500))
    constraints: dict[str, Any] = {"decimal_places": places}
    constraints["gt" if draw(st.booleans()) else "ge"] = Decimal(low)
    constraints["lt" if draw(st.booleans()) else "le"] = Decimal(high)
    if draw(st.booleans()):
        constraints["max_digits"] = places + draw(st.integers(4, 10))
    step = draw(st.sampled_from([None, Decimal("0.05"), Decimal("0.25"), Decimal(2), Decimal(5)]))
    if step is not None:
        constraints["multiple_of"] = step
    return constraints


@settings(max_examples=150, deadline=None)
@given(data=st.data(), constraints=combinations())
def test_every_combination_of_constraints_draws_valid_decimals(
    data: st.DataObject, constraints: dict[str, Any]
) -> None:
    model = _model(constraints)
    for _ in range(3):
        value = data.draw(field_values(model, "amount"))
        model.model_validate({"amount": value})
        assert value.as_tuple().exponent == -constraints["decimal_places"]


class Line(BaseModel):
    sku: str
    qty: int = Field(ge=1)
    unit_price: Decimal = Field(ge=0, decimal_places=2)


class Invoice(BaseModel):
    lines: list[Line] = Field(min_length=1, max_length=4)
    fee: Annotated[Decimal, Field(gt=0, le=50, multiple_of=Decimal("0.25"))]
    tip: condecimal(ge=Decimal(0), max_digits=4, decimal_places=1) | None = None  # type: ignore[valid-type]
    amount: Decimal = Field(ge=0, decimal_places=2)


@settings(max_examples=80, deadline=None)  # health checks on: no filtering most draws away
@given(model_inputs(Invoice))
def test_nested_decimal_constraints_give_valid_payloads(payload: dict[str, Any]) -> None:
    Invoice.model_validate(payload)
    assert 1 <= len(payload["lines"]) <= 4
    for line in payload["lines"]:
        assert Decimal(line["unit_price"]).as_tuple().exponent == -2
    assert Decimal(payload["amount"]) >= 0


def test_decimal_places_are_really_exercised() -> None:
    """Not only whole numbers: a fractional amount and a fractional unit price are drawn."""
    found = find(model_inputs(Invoice), lambda p: Decimal(p["amount"]) % 1 != 0)
    assert Decimal(found["amount"]).as_tuple().exponent == -2
    line = find(field_values(Line, "unit_price"), lambda v: v % 1 != 0)
    Line.model_validate({"sku": "a", "qty": 1, "unit_price": line})


def test_a_field_no_value_can_satisfy_draws_nothing() -> None:
    model = _model({"gt": 1, "lt": 2, "decimal_places": 0})

    @settings(max_examples=5, deadline=None)
    @given(field_values(model, "amount"))
    def draw(value: Decimal) -> None:
        pass

    with pytest.raises(Unsatisfiable):
        draw()


def test_validation_still_guards_what_constraints_cannot_say() -> None:
    """A validator in Python code is honoured by the model check after the draw."""

    class Even(BaseModel):
        amount: Decimal = Field(ge=0, le=100, decimal_places=0)

        @field_validator("amount")
        @classmethod
        def even(cls, value: Decimal) -> Decimal:
            if value % 2:
                raise ValueError("odd")
            return value

    @settings(max_examples=30, deadline=None)
    @given(model_inputs(Even))
    def check(payload: dict[str, Any]) -> None:
        assert Decimal(payload["amount"]) % 2 == 0

    check()
    with pytest.raises(ValidationError):
        Even.model_validate({"amount": 3})


class _Texts(BaseModel):
    name: str
    code: Annotated[str, Field(pattern=r"[\x00-\x7f]{1,4}")]
    tags: list[str] = []
    extra: dict[str, Any] = {}


@settings(max_examples=300, deadline=None)
@given(model_inputs(_Texts))
def test_drawn_payloads_hold_no_character_postgres_refuses(payload: dict[str, Any]) -> None:
    """jsonb refuses U+0000 in a string: a payload holding one fails the property test with a
    database error, not the runner's bug it looks for."""
    assert "\\u0000" not in json.dumps(payload)
    _Texts.model_validate(payload)
