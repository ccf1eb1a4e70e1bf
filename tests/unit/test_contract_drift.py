"""The drift classifier: every rule of the table fires on a change made to a pydantic model (or a
contract) and stays quiet on a near miss; the version policy; diff(x, x) is empty for generated
models.

Models are built with `create_model("In", ...)` so that both versions carry the same title, as a
model edited in place does.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, create_model, field_serializer, field_validator

from jobforge.contracts import (
    Contract,
    Guarantees,
    Limits,
    RetryPolicy,
    RunnerDef,
    contract_of,
)
from jobforge.contracts.drift import (
    bump_level,
    diff_contracts,
    needed_bump,
    next_versions,
    version_verdict,
)
from jobforge.contracts.rules import RULES, RULES_BY_NAME, rules_markdown
from jobforge.contracts.schema_diff import Change, diff_schemas
from jobforge.runtime.context import RunContext

README = Path(__file__).resolve().parents[2] / "README.md"


def model(**fields: Any) -> type[BaseModel]:
    """A model titled "In" (both versions of a test share the title)."""
    built: type[BaseModel] = create_model("In", **fields)
    return built


def closed(**fields: Any) -> type[BaseModel]:
    built: type[BaseModel] = create_model("In", __config__=ConfigDict(extra="forbid"), **fields)
    return built


def sub(name: str, **fields: Any) -> type[BaseModel]:
    built: type[BaseModel] = create_model(name, **fields)
    return built


Cat = sub("Cat", meow=(str, ...))
Dog = sub("Dog", bark=(int, ...))


def schema(m: type[BaseModel], side: str) -> dict[str, Any]:
    mode: Literal["validation", "serialization"] = (
        "validation" if side == "input" else "serialization"
    )
    # through JSON with sorted keys, as a lock file stores it
    loaded: dict[str, Any] = json.loads(json.dumps(m.model_json_schema(mode=mode), sort_keys=True))
    return loaded


def changes(old: type[BaseModel], new: type[BaseModel], side: str = "input") -> list[Change]:
    return diff_schemas(schema(old, side), schema(new, side), side)  # type: ignore[arg-type]


def fired(old: type[BaseModel], new: type[BaseModel], side: str = "input") -> set[str]:
    return {c.rule for c in changes(old, new, side)}


# -- schema rules: (rule, old, new) that fires it, and a near miss that must not ---------------

a_int, a_int0 = model(a=(int, ...)), model(a=(int, 0))
a_float, a_str = model(a=(float, ...)), model(a=(str, ...))
a_opt = model(a=(int | None, ...))
ab = model(a=(int, 0), keep=(str, ...))
keep = model(keep=(str, ...))
c_ab, c_keep = closed(a=(int, 0), keep=(str, ...)), closed(keep=(str, ...))
lit_ab, lit_a = model(a=(Literal["a", "b"], ...)), model(a=(Literal["a"], ...))
pet_cat, pet_both = model(pet=(Cat, ...)), model(pet=(Cat | Dog, ...))
short = model(a=(Annotated[str, Field(max_length=5)], ...))
long_ = model(a=(Annotated[str, Field(max_length=50)], ...))
pat_a = model(a=(Annotated[str, Field(pattern="^a")], ...))
pat_b = model(a=(Annotated[str, Field(pattern="^b")], ...))
list_default = model(a=(list[int], Field(default=[])))
list_factory = model(a=(list[int], Field(default_factory=list)))
a_int1 = model(a=(int, 1))
x1 = model(a=(int, Field(0, json_schema_extra={"x-unit": "s"})))
x2 = model(a=(int, Field(0, json_schema_extra={"x-unit": "ms"})))
doc1 = model(a=(int, Field(0, description="seconds")))
doc2 = model(a=(int, Field(0, description="seconds to wait")))
old_name, new_name, new_int = model(old=(str, ...)), model(new=(str, ...)), model(new=(int, ...))
empty = model()
b_opt, b_req = model(b=(int, 0)), model(b=(int, ...))
a_open, a_closed = model(a=(int, ...)), closed(a=(int, ...))
ca, cab = closed(a=(int, ...)), closed(a=(int, ...), b=(int, 0))

FIRES: list[tuple[str, type[BaseModel], type[BaseModel]]] = [
    ("input.required_added", a_int0, a_int),
    ("input.required_removed", a_int, a_int0),
    ("input.property_added", empty, b_opt),
    ("input.property_removed", ab, keep),
    ("input.property_removed_forbidden", c_ab, c_keep),
    ("input.property_renamed", old_name, new_name),
    ("input.type_narrowed", a_float, a_int),
    ("input.type_widened", a_int, a_float),
    ("input.type_changed", a_str, a_int),
    ("input.nullable_added", a_int, a_opt),
    ("input.nullable_removed", a_opt, a_int),
    ("input.enum_narrowed", lit_ab, lit_a),
    ("input.enum_widened", lit_a, lit_ab),
    ("input.variant_added", pet_cat, pet_both),
    ("input.variant_removed", pet_both, pet_cat),
    ("input.additional_properties_narrowed", a_open, a_closed),
    ("input.additional_properties_widened", a_closed, a_open),
    ("input.constraint_tightened", long_, short),
    ("input.constraint_loosened", short, long_),
    ("input.constraint_changed", pat_a, pat_b),
    ("input.default_added", a_int, a_int0),
    ("input.default_removed", list_default, list_factory),
    ("input.default_changed", a_int0, a_int1),
    ("input.schema_changed", x1, x2),
    ("input.annotation_changed", doc1, doc2),
    ("output.required_added", a_int0, a_int),
    ("output.required_removed", a_int, a_int0),
    ("output.property_added", empty, b_req),
    ("output.property_added_forbidden", ca, cab),
    ("output.property_removed", ab, keep),
    ("output.property_renamed", old_name, new_name),
    ("output.type_narrowed", a_float, a_int),
    ("output.type_widened", a_int, a_float),
    ("output.type_changed", a_str, a_int),
    ("output.nullable_added", a_int, a_opt),
    ("output.nullable_removed", a_opt, a_int),
    ("output.enum_narrowed", lit_ab, lit_a),
    ("output.enum_widened", lit_a, lit_ab),
    ("output.variant_added", pet_cat, pet_both),
    ("output.variant_removed", pet_both, pet_cat),
    ("output.additional_properties_narrowed", a_open, a_closed),
    ("output.additional_properties_widened", a_closed, a_open),
    ("output.constraint_tightened", long_, short),
    ("output.constraint_loosened", short, long_),
    ("output.constraint_changed", pat_a, pat_b),
    ("output.default_added", a_int, a_int0),
    ("output.default_removed", list_default, list_factory),
    ("output.default_changed", a_int0, a_int1),
    ("output.schema_changed", x1, x2),
    ("output.annotation_changed", doc1, doc2),
]

QUIET: list[tuple[str, type[BaseModel], type[BaseModel]]] = [
    ("input.required_added", a_int, a_int0),
    ("input.required_removed", a_int0, a_int),
    ("input.property_added", empty, b_req),  # a required one is required_added instead
    ("input.property_removed", c_ab, c_keep),  # closed model: the _forbidden rule instead
    ("input.property_removed_forbidden", ab, keep),
    ("input.property_renamed", old_name, new_int),  # another schema: not a rename
    ("input.type_narrowed", a_int, a_float),
    ("input.type_widened", a_float, a_int),
    ("input.type_changed", a_int, a_float),  # integer ⊂ number: widened, not changed
    ("input.nullable_added", a_opt, a_int),
    ("input.nullable_removed", a_int, a_opt),
    ("input.enum_narrowed", lit_a, lit_ab),
    ("input.enum_widened", lit_ab, lit_a),
    ("input.variant_added", pet_both, pet_cat),
    ("input.variant_removed", pet_cat, pet_both),
    ("input.additional_properties_narrowed", a_closed, a_open),
    ("input.additional_properties_widened", a_open, a_closed),
    ("input.constraint_tightened", short, long_),
    ("input.constraint_loosened", long_, short),
    ("input.constraint_changed", short, long_),  # ordered bounds are never "changed"
    ("input.default_added", a_int0, a_int1),
    ("input.default_removed", a_int0, a_int),  # became required: required_added says it
    ("input.default_changed", a_int, a_int0),
    ("input.schema_changed", x1, x1),
    ("input.annotation_changed", x1, x2),
    ("output.required_added", a_int, a_int0),
    ("output.required_removed", a_int0, a_int),
    ("output.property_added", ca, cab),  # old schema closed: the _forbidden rule instead
    ("output.property_added_forbidden", empty, b_req),
    ("output.property_removed", keep, ab),
    ("output.property_renamed", old_name, new_int),
    ("output.type_narrowed", a_int, a_float),
    ("output.type_widened", a_float, a_int),
    ("output.type_changed", a_int, a_float),
    ("output.nullable_added", a_opt, a_int),
    ("output.nullable_removed", a_int, a_opt),
    ("output.enum_narrowed", lit_a, lit_ab),
    ("output.enum_widened", lit_ab, lit_a),
    ("output.variant_added", pet_both, pet_cat),
    ("output.variant_removed", pet_cat, pet_both),
    ("output.additional_properties_narrowed", a_closed, a_open),
    ("output.additional_properties_widened", a_open, a_closed),
    ("output.constraint_tightened", short, long_),
    ("output.constraint_loosened", long_, short),
    ("output.constraint_changed", long_, short),
    ("output.default_added", a_int0, a_int1),
    ("output.default_removed", a_int0, a_int),
    ("output.default_changed", a_int, a_int0),
    ("output.schema_changed", x2, x2),
    ("output.annotation_changed", x2, x1),
]


@pytest.mark.parametrize(("rule", "old", "new"), FIRES, ids=[f[0] for f in FIRES])
def test_rule_fires(rule: str, old: type[BaseModel], new: type[BaseModel]) -> None:
    side = rule.split(".")[0]
    assert rule in fired(old, new, side)


@pytest.mark.parametrize(("rule", "old", "new"), QUIET, ids=[q[0] for q in QUIET])
def test_rule_stays_quiet(rule: str, old: type[BaseModel], new: type[BaseModel]) -> None:
    side = rule.split(".")[0]
    assert rule not in fired(old, new, side)


# -- contract rules (beyond the schemas) ------------------------------------------------------


class In(BaseModel):
    n: int


class Out(BaseModel):
    n: int


def handler(inp: In, ctx: RunContext) -> Out:
    return Out(n=inp.n)


class Checked(BaseModel):  # In, with a validator: the JSON Schema shows nothing of it
    model_config = ConfigDict(title="In")
    n: int

    @field_validator("n")
    @classmethod
    def positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("n must be positive")
        return value


class Serialized(BaseModel):  # Out, with a serializer of its field
    model_config = ConfigDict(title="Out")
    n: int

    @field_serializer("n")
    def doubled(self, value: int) -> int:
        return value * 2


class CheckedRenamed(BaseModel):  # Checked, its validator renamed: a refactor, no change
    model_config = ConfigDict(title="In")
    n: int

    @field_validator("n")
    @classmethod
    def must_be_positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("n must be positive")
        return value


class Tint(enum.Enum):
    red = "red"
    blue = "blue"


class Colour(enum.Enum):  # Tint, renamed
    red = "red"
    blue = "blue"


class Painted(BaseModel):
    model_config = ConfigDict(title="In")
    n: int
    tint: Tint = Tint.red


class PaintedRenamed(BaseModel):  # the model and its enum classes renamed, nothing else
    model_config = ConfigDict(title="In")
    n: int
    tint: Colour = Colour.red


class Wider(BaseModel):
    model_config = ConfigDict(title="In")
    n: int
    m: int


BASE = RunnerDef(
    id="t.run", version="1.0.0", fn=handler, input=In, output=Out,
    trace_keys=("k",), artifacts=("a.md",), timeout_s=30.0, max_attempts=3,
)  # fmt: skip
LOCKED = contract_of(BASE)


def contract(**changes: Any) -> Contract:
    return contract_of(replace(BASE, **changes))


def limited(**limits: Any) -> Contract:
    return contract(limits=Limits(**limits))


CAPPED = limited(max_running=4, rate_per_s=2.0, burst=5.0)


CONTRACT_FIRES: list[tuple[str, Contract, Contract]] = [
    ("guarantees.turned_off", LOCKED, contract(guarantees=Guarantees(replayable=False))),
    ("guarantees.turned_on", contract(guarantees=Guarantees(replayable=False)), LOCKED),
    ("trace_keys.removed", LOCKED, contract(trace_keys=())),
    ("trace_keys.added", LOCKED, contract(trace_keys=("k", "more"))),
    ("artifacts.removed", LOCKED, contract(artifacts=())),
    ("artifacts.added", LOCKED, contract(artifacts=("a.md", "b.json"))),
    ("limits.timeout_shortened", LOCKED, contract(timeout_s=10.0)),
    ("limits.timeout_shortened", contract(timeout_s=None), LOCKED),
    ("limits.timeout_extended", LOCKED, contract(timeout_s=None)),
    ("limits.max_attempts_reduced", LOCKED, contract(max_attempts=1)),
    ("limits.max_attempts_raised", LOCKED, contract(max_attempts=5)),
    ("limits.retry_changed", LOCKED, contract(retry=RetryPolicy(base_s=2))),
    ("runner.version_changed", LOCKED, contract(version="1.0.1")),
    ("secret_keys.added", LOCKED, contract(secret_keys=("session",))),
    ("secret_keys.removed", contract(secret_keys=("session",)), LOCKED),
    ("public_keys.added", LOCKED, contract(public_keys=("next_page_token",))),
    ("public_keys.removed", contract(public_keys=("next_page_token",)), LOCKED),
    ("input.definition_changed", LOCKED, contract(input=Checked)),
    ("output.definition_changed", LOCKED, contract(output=Serialized)),
    ("queue_limits.added", LOCKED, CAPPED),
    ("queue_limits.removed", CAPPED, LOCKED),
    ("queue_limits.tightened", CAPPED, limited(max_running=2, rate_per_s=2.0, burst=5.0)),
    ("queue_limits.tightened", CAPPED, limited(max_running=4, rate_per_s=1.0, burst=5.0)),
    ("queue_limits.tightened", CAPPED, limited(max_running=4, rate_per_s=2.0, burst=3.0)),
    ("queue_limits.tightened", limited(max_running=4), CAPPED),  # a bucket where none was
    ("queue_limits.loosened", CAPPED, limited(max_running=8, rate_per_s=2.0, burst=5.0)),
    ("queue_limits.loosened", CAPPED, limited(max_running=4, rate_per_s=3.0, burst=5.0)),
    ("queue_limits.loosened", CAPPED, limited(rate_per_s=2.0, burst=5.0)),  # the cap dropped
    ("policy.signed_required", LOCKED, contract(signed=True)),
    ("policy.signed_dropped", contract(signed=True), LOCKED),
    ("policy.scope_added", LOCKED, contract(requires_scopes=("payments:refund",))),
    ("policy.scope_added", contract(requires_scopes=("a",)), contract(requires_scopes=("a", "b"))),
    (
        "policy.scope_removed",
        contract(requires_scopes=("a", "b")),
        contract(requires_scopes=("a",)),
    ),
]
CONTRACT_QUIET: list[tuple[str, Contract, Contract]] = [
    ("guarantees.turned_off", contract(guarantees=Guarantees(replayable=False)), LOCKED),
    ("guarantees.turned_on", LOCKED, contract(guarantees=Guarantees(replayable=False))),
    ("trace_keys.removed", LOCKED, contract(trace_keys=("k", "more"))),
    ("trace_keys.added", LOCKED, contract(trace_keys=())),
    ("artifacts.removed", LOCKED, contract(artifacts=("a.md", "b.json"))),
    ("artifacts.added", LOCKED, contract(artifacts=())),
    ("limits.timeout_shortened", LOCKED, contract(timeout_s=None)),
    ("limits.timeout_extended", LOCKED, contract(timeout_s=10.0)),
    ("limits.max_attempts_reduced", LOCKED, contract(max_attempts=5)),
    ("limits.max_attempts_raised", LOCKED, contract(max_attempts=1)),
    ("limits.retry_changed", LOCKED, contract(max_attempts=5)),
    ("runner.version_changed", LOCKED, contract(max_attempts=5)),
    ("secret_keys.added", contract(secret_keys=("session",)), LOCKED),
    ("secret_keys.removed", LOCKED, contract(secret_keys=("session",))),
    ("public_keys.added", contract(public_keys=("next_page_token",)), LOCKED),
    ("public_keys.removed", LOCKED, contract(public_keys=("next_page_token",))),
    # renames are refactors: a validator's function, an enum class, a model class
    ("input.definition_changed", contract(input=Checked), contract(input=CheckedRenamed)),
    ("input.definition_changed", contract(input=Painted), contract(input=PaintedRenamed)),
    # the schema shows the change (a new required field): no definition_changed beside it
    ("input.definition_changed", LOCKED, contract(input=Wider)),
    ("output.definition_changed", LOCKED, contract(output=Wider)),
    ("queue_limits.added", CAPPED, limited(max_running=2, rate_per_s=2.0, burst=5.0)),
    ("queue_limits.added", LOCKED, contract(max_attempts=5)),
    ("queue_limits.removed", LOCKED, CAPPED),
    ("queue_limits.removed", CAPPED, limited(max_running=4)),
    ("queue_limits.tightened", CAPPED, limited(max_running=8, rate_per_s=3.0, burst=9.0)),
    ("queue_limits.tightened", LOCKED, CAPPED),  # a first declaration is `added`, nothing else
    ("queue_limits.loosened", CAPPED, limited(max_running=2, rate_per_s=1.0, burst=3.0)),
    ("queue_limits.loosened", CAPPED, LOCKED),
    # a burst left out is the rate (at least 1), as the database keeps it: no change
    ("queue_limits.tightened", limited(rate_per_s=3.0, burst=3.0), limited(rate_per_s=3.0)),
    ("queue_limits.loosened", limited(rate_per_s=0.5, burst=1.0), limited(rate_per_s=0.5)),
    ("policy.signed_required", contract(signed=True), contract(signed=True, max_attempts=5)),
    ("policy.signed_dropped", LOCKED, contract(signed=True)),
    ("policy.scope_added", contract(requires_scopes=("b", "a")), contract(requires_scopes=("b",))),
    (
        "policy.scope_added",
        contract(requires_scopes=("a", "b")),
        contract(requires_scopes=("b", "a")),
    ),
    ("policy.scope_removed", LOCKED, contract(requires_scopes=("a",))),
]


def test_a_new_required_scope_on_a_locked_runner_is_breaking() -> None:
    """The drift gate's view of a lock file: a runner locked without a scope, then declared
    with one, needs a major bump; a lock written before scopes existed reads as none."""
    text = LOCKED.model_dump_json()
    assert "requires_scopes" not in text
    assert '"signed"' not in text
    locked = Contract.model_validate_json(text)
    declared = contract(requires_scopes=("payments:refund",))
    (change,) = [c for c in diff_contracts(locked, declared) if c.rule.startswith("policy.")]
    assert change.spec.severity == "breaking"
    assert change.path == "requires_scopes.payments:refund"
    assert needed_bump([change]) == "major"
    assert not version_verdict("1.0.0", "1.1.0", [change]).allowed
    assert version_verdict("1.0.0", "2.0.0", [change]).allowed
    assert Contract.model_validate_json(declared.model_dump_json()).requires_scopes == [
        "payments:refund"
    ]


@pytest.mark.parametrize(("rule", "old", "new"), CONTRACT_FIRES, ids=[c[0] for c in CONTRACT_FIRES])
def test_contract_rule_fires(rule: str, old: Contract, new: Contract) -> None:
    assert rule in {c.rule for c in diff_contracts(old, new)}


@pytest.mark.parametrize(("rule", "old", "new"), CONTRACT_QUIET, ids=[c[0] for c in CONTRACT_QUIET])
def test_contract_rule_stays_quiet(rule: str, old: Contract, new: Contract) -> None:
    assert rule not in {c.rule for c in diff_contracts(old, new)}


#: fired and kept quiet by the gate's tests (tests/unit/test_contract_gate.py, and
#: tests/unit/test_rejected_inputs.py for inputs golden cases expect rejected)
GATE_RULES = {"runner.added", "runner.removed", "input.recorded_inputs_invalid",
              "input.recorded_rejection_accepted"}  # fmt: skip


def test_every_rule_has_a_firing_and_a_quiet_test() -> None:
    firing = {f[0] for f in FIRES} | {c[0] for c in CONTRACT_FIRES} | GATE_RULES
    quiet = {q[0] for q in QUIET} | {c[0] for c in CONTRACT_QUIET} | GATE_RULES
    names = {r.name for r in RULES}
    assert names - firing == set()
    assert names - quiet == set()
    assert (firing | quiet) - names == set()  # no test of a rule that does not exist


def test_rule_table_is_well_formed() -> None:
    assert len(RULES_BY_NAME) == len(RULES), "rule names repeat"
    for r in RULES:
        assert r.name.split(".")[0] == r.part
        assert (r.severity == "breaking") == (r.bump == "major"), r.name


def test_readme_rule_table_matches_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- contract-rules:start -->\n", "<!-- contract-rules:end -->"
    assert start in text, "README lacks the contract rule table markers"
    table = text.split(start, 1)[1].split(end, 1)[0]
    assert table.strip() == rules_markdown().strip(), "regenerate with rules_markdown()"


# -- messages and paths -----------------------------------------------------------------------


def test_a_change_names_path_old_and_new() -> None:
    (change,) = [c for c in changes(short, long_) if c.rule == "input.constraint_loosened"]
    assert change.path == "input.properties.a.maxLength"
    assert change.message == "maxLength 5 → 50"
    assert change.severity == "compatible"
    (enum,) = changes(lit_ab, lit_a)
    assert enum.message == 'values ["b"] removed (["a", "b"] → ["a"])'
    assert enum.breaking


def test_nested_models_through_defs_are_compared() -> None:
    inner1 = sub("Inner", x=(int, ...))
    inner2 = sub("Inner", x=(int, ...), y=(str, ...))
    old = model(items=(list[inner1], ...))  # type: ignore[valid-type]
    new = model(items=(list[inner2], ...))  # type: ignore[valid-type]
    found = [(c.rule, c.path) for c in changes(old, new)]
    assert found == [("input.required_added", "input.properties.items.items.properties.y")]


def test_recursive_models_terminate_and_report_once() -> None:
    class Node(BaseModel):
        name: str
        kids: list[Node] = []

    first = Node

    class Node(BaseModel):  # type: ignore[no-redef]
        name: int
        kids: list[Node] = []

    found = [(c.rule, c.path) for c in changes(first, Node)]
    assert found == [("input.type_changed", "input.properties.name")]


def test_dict_values_and_optional_constraints() -> None:
    old = model(d=(dict[str, float], ...), s=(Annotated[str, Field(min_length=1)] | None, None))
    new = model(d=(dict[str, int], ...), s=(Annotated[str, Field(min_length=3)] | None, None))
    found = {(c.rule, c.path) for c in changes(old, new)}
    assert found == {
        ("input.type_narrowed", "input.properties.d.additionalProperties"),
        ("input.constraint_tightened", "input.properties.s.minLength"),
    }


def test_enum_classes_compare_by_value() -> None:
    from enum import Enum

    class Color(Enum):
        red = "red"
        blue = "blue"

    first = Color

    class Color(Enum):  # type: ignore[no-redef]
        red = "red"
        blue = "blue"
        green = "green"

    found = fired(model(c=(first, ...)), model(c=(Color, ...)), "output")
    assert found == {"output.enum_widened"}


def test_rename_is_reported_once_not_as_remove_and_add() -> None:
    assert fired(old_name, new_name) == {"input.property_renamed"}


def test_unresolvable_refs_do_not_crash() -> None:
    broken = {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}}
    assert diff_schemas(broken, broken, "input") == []
    assert diff_schemas({"$ref": "#/$defs/A", "$defs": {"A": {"$ref": "#/$defs/A"}}},
                        {"$ref": "#/$defs/A", "$defs": {"A": {"$ref": "#/$defs/A"}}},
                        "input") == []  # fmt: skip


def test_multiple_of_and_unique_items() -> None:
    m2 = model(a=(Annotated[float, Field(multiple_of=2)], ...))
    m4 = model(a=(Annotated[float, Field(multiple_of=4)], ...))
    m3 = model(a=(Annotated[float, Field(multiple_of=3)], ...))
    assert "input.constraint_tightened" in fired(m2, m4)
    assert "input.constraint_loosened" in fired(m4, m2)
    assert "input.constraint_changed" in fired(m2, m3)
    unique = model(a=(set[int], ...))
    listed = model(a=(list[int], ...))
    assert "input.constraint_tightened" in fired(listed, unique)


# -- diff(x, x) is empty for generated models ---------------------------------------------------

_leaves = st.sampled_from([
    int, str, float, bool, Literal["x", "y"], Annotated[str, Field(max_length=9)],
    Annotated[int, Field(ge=0, le=10)], list[int], dict[str, str],
])  # fmt: skip


def _wrap(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        children.map(lambda t: list[t]),  # type: ignore[valid-type]
        children.map(lambda t: t | None),
        children.map(lambda t: dict[str, t]),  # type: ignore[valid-type]
        st.lists(children, min_size=1, max_size=3).map(
            lambda ts: sub("Nested", **{f"f{i}": (t, ...) for i, t in enumerate(ts)})
        ),
    )


_types = st.recursive(_leaves, _wrap, max_leaves=6)


@st.composite
def _models(draw: Callable[..., Any]) -> type[BaseModel]:
    names = draw(st.lists(st.sampled_from("abcdef"), min_size=0, max_size=4, unique=True))
    fields = {n: (draw(_types), ...) if draw(st.booleans()) else (draw(_types), None)
              for n in names}  # fmt: skip
    return model(**fields) if draw(st.booleans()) else closed(**fields)


@settings(max_examples=60, deadline=None)
@given(_models())
def test_a_model_against_itself_has_no_changes(m: type[BaseModel]) -> None:
    for side in ("input", "output"):
        assert changes(m, m, side) == []


@settings(max_examples=60, deadline=None)
@given(_models(), _models())
def test_every_change_names_a_known_rule_of_its_side(
    a: type[BaseModel], b: type[BaseModel]
) -> None:
    for side in ("input", "output"):
        for change in changes(a, b, side):
            assert change.rule in RULES_BY_NAME
            assert change.rule.startswith(side + ".")
            assert change.path.startswith(side)


# -- version policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "level"),
    [
        ("1.2.3", "1.2.3", "none"),
        ("1.2.3", "1.2.4", "patch"),
        ("1.2.3", "1.3.0", "minor"),
        ("1.2.3", "2.0.0", "major"),
        ("1.2.3", "1.2.2", "downgrade"),
        ("2.0.0", "1.9.9", "downgrade"),
        ("0.3.0", "0.4.0", "major"),  # 0.x: the minor number is the major
        ("0.3.0", "0.3.1", "minor"),
        ("0.9.0", "1.0.0", "major"),
        ("1.0.0-rc.1", "1.0.0", "none"),
        ("1.0.0", "1.0.0-rc.1", "downgrade"),
    ],
)
def test_bump_level(old: str, new: str, level: str) -> None:
    assert bump_level(old, new) == level


def test_a_patch_bump_covers_only_documentation_above_zero() -> None:
    doc, compatible = Change("input.annotation_changed", "p", "m"), _c("input.property_added")
    assert version_verdict("1.2.3", "1.2.4", [doc]).allowed
    assert not version_verdict("1.2.3", "1.2.4", [compatible]).allowed
    assert version_verdict("0.2.3", "0.2.4", [compatible]).allowed  # 0.x: patch is the minor


def _c(rule: str) -> Change:
    return Change(rule, "p", "m")


def test_version_verdicts() -> None:
    breaking, compatible = _c("input.required_added"), _c("input.property_added")
    doc = _c("input.annotation_changed")
    assert needed_bump([]) == "none"
    assert needed_bump([doc]) == "none"
    assert needed_bump([compatible, doc]) == "minor"
    assert needed_bump([compatible, breaking]) == "major"
    assert version_verdict("1.0.0", "2.0.0", [breaking]).allowed
    refused = version_verdict("1.0.0", "1.1.0", [breaking])
    assert not refused.allowed
    assert not refused.bumped_major
    assert refused.explain() == (
        "version 1.0.0 → 1.1.0: the changes need a major bump, this is a minor bump"
    )
    assert version_verdict("1.0.0", "1.1.0", [compatible]).allowed
    assert not version_verdict("1.0.0", "1.0.0", [compatible]).allowed
    assert version_verdict("1.0.0", "1.0.0", [doc]).allowed
    assert version_verdict("1.0.0", "3.0.0", []).allowed  # a bump alone is fine
    assert not version_verdict("2.0.0", "1.0.0", []).allowed  # never backwards
    assert next_versions("1.4.2") == {"major": "2.0.0", "minor": "1.5.0"}
    assert next_versions("0.4.2") == {"major": "0.5.0", "minor": "0.4.3"}


@pytest.mark.parametrize(
    ("old", "new"),
    [(Checked, CheckedRenamed), (Painted, PaintedRenamed)],
    ids=["validator", "enum"],
)
def test_a_rename_needs_no_version_bump(old: type[BaseModel], new: type[BaseModel]) -> None:
    """At most a title changes (documentation: the lock is rewritten, no bump is needed)."""
    found = diff_contracts(contract(input=old), contract(input=new))
    assert {c.rule for c in found} <= {"input.annotation_changed"}
    assert needed_bump(found) == "none"


# -- queue limits -----------------------------------------------------------------------------


def test_queue_limit_changes_name_the_value_and_need_no_bump() -> None:
    tighter = limited(max_running=2, rate_per_s=2.0, burst=5.0)
    (change,) = diff_contracts(CAPPED, tighter)
    assert (change.rule, change.path, change.message) == (
        "queue_limits.tightened", "queue_limits.max_running", "max_running 4 → 2",
    )  # fmt: skip
    assert change.severity == "compatible"
    assert version_verdict("1.0.0", "1.0.0", [change]).allowed  # operational: no version bump
    (added,) = diff_contracts(LOCKED, CAPPED)
    assert added.message == "queue limits declared: max_running 4, rate_per_s 2/s, burst 5"
    (removed,) = diff_contracts(CAPPED, LOCKED)
    assert removed.message == (
        "queue limits no longer declared (were max_running 4, rate_per_s 2/s, burst 5)"
    )


def test_a_rate_dropped_takes_its_burst_along() -> None:
    found = [(c.rule, c.path, c.message) for c in diff_contracts(CAPPED, limited(max_running=4))]
    assert found == [
        ("queue_limits.loosened", "queue_limits.rate_per_s", "rate_per_s 2/s → none"),
        ("queue_limits.loosened", "queue_limits.burst", "burst 5 → none"),
    ]


def test_queue_limits_beside_a_breaking_change_do_not_lower_the_bump_it_needs() -> None:
    found = diff_contracts(CAPPED, contract(max_attempts=1, limits=Limits(max_running=1)))
    assert needed_bump(found) == "major"
    assert {c.rule for c in found} == {
        "limits.max_attempts_reduced", "queue_limits.tightened", "queue_limits.loosened",
    }  # fmt: skip
