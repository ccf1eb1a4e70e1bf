"""Locks written under one pydantic, checked under another: no drift while the models are the
same, and a real change still classified as it would be under one pydantic.

`test_contract_generator_locks/pydantic-<version>/` holds the locks of the runners below as
written by that pydantic (the oldest supported, the last that wrote a `pattern` for `Decimal`,
the newest). Under whatever pydantic runs the suite, each is checked against the declarations;
tox's `pydantic-oldest` and `pydantic-newest` environments run this file under both ends, so
every lock is checked under a generator other than its own, both ways.

Regenerate the fixtures of the installed pydantic with
`python tests/unit/test_contract_generator.py --write` (from the repository root).
"""

from __future__ import annotations

import datetime as dt
import enum
import sys
import uuid
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import pytest
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from jobforge.contracts import Contract, RunnerDef, contract_of
from jobforge.contracts.drift import compare_contracts, needed_bump
from jobforge.contracts.locks import read_lock, write_lock
from jobforge.contracts.model import generator_versions

FIXTURES = Path(__file__).with_name("test_contract_generator_locks")
#: the oldest pydantic jobforge supports, the last one that wrote Decimal patterns, the newest
VERSIONS = ("2.7.4", "2.13.4", "2.14.4")


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class Level(int, enum.Enum):
    low = 1
    high = 2


class Line(BaseModel):
    sku: str
    qty: int = Field(ge=1)
    unit_price: Decimal = Field(ge=0, decimal_places=2)


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"
    meow: str


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"
    bark: int


class Node(BaseModel):
    name: str
    kids: list[Node] = []


class MoneyIn(BaseModel):
    customer: str
    country: Literal["DE", "FR", "US"]
    lines: list[Line] = Field(min_length=1)
    coupon: str | None = None
    credit: Decimal | None = None


class MoneyOut(BaseModel):
    subtotal: Decimal
    tax: Decimal
    rate: Decimal = Field(max_digits=5, decimal_places=4)
    currency: Literal["EUR", "USD"] = "EUR"


class KindsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    when: dt.datetime
    day: dt.date
    wait: dt.timedelta = dt.timedelta(seconds=5)
    uid: uuid.UUID
    color: Color = Color.red
    level: Level
    pet: Cat | Dog = Field(discriminator="kind")
    either: int | str
    maybe: int | None = None
    tree: Node | None = None


class KindsOut(BaseModel):
    color: Color
    level: Level | None
    pets: list[Cat | Dog]
    at: dt.datetime
    uid: uuid.UUID


class ShapesIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[a-z]+$")]
    ratio: float = Field(default=0.5, ge=0, le=1)
    big: int = Field(gt=0, multiple_of=5)
    tags: set[str] = set()
    pair: tuple[int, str]
    many: tuple[int, ...] = ()
    scores: dict[str, float] = {}
    matrix: list[list[int]] = []
    aliased: int = Field(default=0, alias="Aliased")
    choices: int = Field(default=0, validation_alias=AliasChoices("c1", "c2"))
    described: int = Field(0, description="seconds to wait", title="Wait")

    @field_validator("name")
    @classmethod
    def lower(cls, value: str) -> str:
        return value.lower()


class ShapesOut(BaseModel):
    names: list[str]
    total: float = Field(ge=0.0)
    counts: dict[str, int]
    note: str | None = None


def _run(inp: Any, ctx: Any) -> Any:
    raise NotImplementedError


def _runner(id: str, input: type[BaseModel], output: type[BaseModel]) -> RunnerDef:
    return RunnerDef(id=id, version="1.0.0", fn=_run, input=input, output=output,
                     secret_keys=("session",))  # fmt: skip


RUNNERS = {
    d.id: d
    for d in (
        _runner("gen.money", MoneyIn, MoneyOut),
        _runner("gen.kinds", KindsIn, KindsOut),
        _runner("gen.shapes", ShapesIn, ShapesOut),
    )
}
LOCKS = [(v, rid) for v in VERSIONS for rid in sorted(RUNNERS)]


def fixture(version: str, runner_id: str) -> Contract:
    return read_lock(FIXTURES / f"pydantic-{version}" / f"{runner_id}.json")


def legacy(lock: Contract) -> Contract:
    """The lock as jobforge wrote it before it recorded generators and fingerprints."""
    return lock.model_copy(update={"generator": None, "fingerprints": None})


def test_there_are_fixtures_of_every_generator_version() -> None:
    for version in VERSIONS:
        for runner_id in RUNNERS:
            lock = fixture(version, runner_id)
            assert lock.generator is not None
            assert lock.generator["pydantic"] == version


@pytest.mark.parametrize(("version", "runner_id"), LOCKS)
def test_an_unchanged_model_has_no_drift_under_any_generator(version: str, runner_id: str) -> None:
    lock = fixture(version, runner_id)
    compared = compare_contracts(lock, contract_of(RUNNERS[runner_id]))
    assert compared.changes == ()
    if lock.generator == generator_versions():
        assert compared.generated == ()
        assert not compared.stale
        assert compared.note() == ""
    else:
        assert compared.stale
        assert compared.note().startswith(f"schema generator changed (pydantic {version} → ")


@pytest.mark.parametrize(("version", "runner_id"), LOCKS)
def test_fingerprints_are_the_same_under_every_generator(version: str, runner_id: str) -> None:
    assert fixture(version, runner_id).fingerprints == contract_of(RUNNERS[runner_id]).fingerprints


@pytest.mark.parametrize(("version", "runner_id"), LOCKS)
def test_a_lock_without_generator_or_fingerprints_is_normalized_alike(
    version: str, runner_id: str
) -> None:
    """Old locks carry only schemas: the known generator spellings must cancel out alone."""
    compared = compare_contracts(legacy(fixture(version, runner_id)),
                                 contract_of(RUNNERS[runner_id]))  # fmt: skip
    assert compared.changes == ()
    assert compared.note().startswith("the lock does not record its schema generator")


# -- real changes made under another generator ------------------------------------------------


class MoneyInRequired(MoneyIn):
    model_config = ConfigDict(title="MoneyIn")
    po_number: str


class MoneyOutMore(MoneyOut):
    model_config = ConfigDict(title="MoneyOut")
    discount: Decimal | None = None


class LineFine(BaseModel):
    model_config = ConfigDict(title="Line")
    sku: str
    qty: int = Field(ge=1)
    unit_price: Decimal = Field(ge=0, decimal_places=3)


class LineDear(BaseModel):
    model_config = ConfigDict(title="Line")
    sku: str
    qty: int = Field(ge=1)
    unit_price: Decimal = Field(ge=1, decimal_places=2)


class LineNoted(BaseModel):
    model_config = ConfigDict(title="Line")
    sku: str
    qty: int = Field(ge=1)
    unit_price: Decimal = Field(ge=0, decimal_places=2)
    note: str


def _money_in(line: type[BaseModel]) -> type[BaseModel]:
    class MoneyIn(BaseModel):
        customer: str
        country: Literal["DE", "FR", "US"]
        lines: list[line] = Field(min_length=1)  # type: ignore[valid-type]
        coupon: str | None = None
        credit: Decimal | None = None

    return MoneyIn


class KindsOutWider(KindsOut):
    model_config = ConfigDict(title="KindsOut")
    level: Level | None = None
    at: dt.datetime | None  # type: ignore[assignment]


class ShapesInNarrower(BaseModel):
    model_config = ConfigDict(title="ShapesIn")
    name: Annotated[str, Field(min_length=1, max_length=10, pattern=r"^[a-z]+$")]
    ratio: float = Field(default=0.25, ge=0, le=1)
    big: int = Field(gt=0, multiple_of=5)
    tags: set[str] = set()
    pair: tuple[int, str]
    many: tuple[int, ...] = ()
    scores: dict[str, float] = {}
    matrix: list[list[int]] = []
    aliased: int = Field(default=0, alias="Aliased")
    choices: int = Field(default=0, validation_alias=AliasChoices("c1", "c2"))
    described: int = Field(0, description="seconds to wait, at most", title="Wait")

    @field_validator("name")
    @classmethod
    def lower(cls, value: str) -> str:
        return value.lower()


#: (name, runner id, what changes, the rules it must fire wherever the lock came from)
MUTANTS: list[tuple[str, str, dict[str, Any], set[str]]] = [
    ("required input field", "gen.money", {"input": MoneyInRequired},
     {"input.required_added"}),
    ("optional output field", "gen.money", {"output": MoneyOutMore},
     {"output.property_added"}),
    ("nested required field", "gen.money", {"input": _money_in(LineNoted)},
     {"input.required_added"}),
    ("Decimal minimum raised", "gen.money", {"input": _money_in(LineDear)},
     {"input.constraint_tightened"}),
    ("output nullable and optional", "gen.kinds", {"output": KindsOutWider},
     {"output.nullable_added", "output.required_removed", "output.default_added"}),
    ("constraint, default and description", "gen.shapes", {"input": ShapesInNarrower},
     {"input.constraint_tightened", "input.default_changed", "input.annotation_changed"}),
    ("secret key dropped", "gen.shapes", {"secret_keys": ()}, {"secret_keys.removed"}),
]  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "runner_id", "edit", "expected"), MUTANTS,
                         ids=[m[0] for m in MUTANTS])  # fmt: skip
def test_a_real_change_is_classified_as_under_one_generator(
    version: str, name: str, runner_id: str, edit: dict[str, Any], expected: set[str]
) -> None:
    original = RUNNERS[runner_id]
    mutant = contract_of(replace(original, **edit))
    same_generator = compare_contracts(contract_of(original), mutant)
    across = compare_contracts(fixture(version, runner_id), mutant)
    assert {c.rule for c in same_generator.changes} == expected
    # a lock file's keys are sorted, so its fields are walked in another order
    assert sorted((c.rule, c.path) for c in across.changes) == sorted(
        (c.rule, c.path) for c in same_generator.changes
    )
    # generator noise stays out of them, and in the notice
    if fixture(version, runner_id).generator != generator_versions():
        assert across.note().startswith("schema generator changed")


@pytest.mark.parametrize("version", VERSIONS)
def test_decimal_places_changed_is_breaking_whatever_the_generators(version: str) -> None:
    """pydantic 2.14 writes no pattern for Decimal: the schema alone cannot show a change of
    decimal_places, the fingerprint does (`definition_changed`, or the pattern where both
    generators write one)."""
    original = RUNNERS["gen.money"]
    mutant = contract_of(replace(original, input=_money_in(LineFine)))
    for lock in (contract_of(original), fixture(version, "gen.money")):
        changes = compare_contracts(lock, mutant).changes
        assert changes, lock.generator
        assert needed_bump(changes) == "major"
        assert {c.owner for c in changes} == {("lines", "unit_price")}


def write_fixtures() -> Path:
    """Write the locks of `RUNNERS` as the installed pydantic generates them."""
    folder = FIXTURES / f"pydantic-{pydantic.VERSION}"
    for definition in RUNNERS.values():
        write_lock(folder, contract_of(definition))
    return folder


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/unit/test_contract_generator.py --write")
    print(f"wrote {write_fixtures()}")
