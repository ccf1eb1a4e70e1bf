"""A directional diff of two JSON Schemas as pydantic v2 emits them (draft 2020-12, `$defs`).

Every difference becomes a `Change` named by a rule of `jobforge.contracts.rules`; whether it is
breaking depends on the side: on the input side narrowing what validates breaks queued jobs, on
the output side widening what may be produced breaks consumers. The walk resolves `$ref`s (each
pair of definitions is compared once, which also makes recursive models terminate), splits
`anyOf`/`oneOf` into a nullable flag and typed branches, and compares branches of the same JSON
type structurally. A keyword it does not understand is reported as `schema_changed` (breaking):
the gate would rather ask a person than guess.

Spellings that differ between pydantic versions without changing what validates compare equal
here: `0` and `0.0`, `const` beside a one-value `enum`, a `$ref` wrapped in `allOf`, nullable as
`anyOf [X, null]` or `type: [X, "null"]`, `anyOf`/`oneOf` member order, `$defs` names (variants
pair by structure when their names differ). Differences that one generator writes and another
does not, but that a person could also make (the `pattern` pydantic < 2.14 writes for `Decimal`
strings, a title present on one side only), are tagged `noise`: the contract layer drops them
only when the lock was written by another generator (`lenient`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from jobforge.contracts.rules import Rule, rule

Side = Literal["input", "output"]
Schema = Mapping[str, Any]

JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "null", "array", "object"})
#: Documentation only: a change here never changes what validates.
ANNOTATIONS = frozenset({"title", "description", "examples", "deprecated", "$comment"})
#: Handled by the walk itself (or irrelevant to validation: readOnly/writeOnly, discriminator is
#: implied by the variants).
STRUCTURAL = frozenset({
    "type", "enum", "const", "properties", "required", "additionalProperties", "items",
    "prefixItems", "anyOf", "oneOf", "allOf", "$ref", "$defs", "default", "propertyNames",
    "readOnly", "writeOnly", "discriminator",
})  # fmt: skip
#: Bounds: (keyword, which way is stricter).
LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
OTHER_CONSTRAINTS = ("pattern", "format", "multipleOf", "uniqueItems")
CONSTRAINTS = frozenset(LOWER_BOUNDS + UPPER_BOUNDS + OTHER_CONSTRAINTS)


@dataclass(frozen=True)
class Change:
    """One classified difference between a lock and a declaration."""

    rule: str  #: a name in the rule table, e.g. "input.required_added"
    path: str  #: e.g. "input.properties.target"
    message: str  #: says what it was and what it is
    #: the chain of property names of the field it belongs to (() : the model itself)
    owner: tuple[str, ...] = field(default=(), compare=False)
    #: why another schema generator alone could have made it ("" : it could not)
    noise: str = field(default="", compare=False)

    @property
    def spec(self) -> Rule:
        return rule(self.rule)

    @property
    def severity(self) -> str:
        return self.spec.severity

    @property
    def breaking(self) -> bool:
        return self.spec.severity == "breaking"


def diff_schemas(old: Schema, new: Schema, side: Side, *, lenient: bool = False) -> list[Change]:
    """Every classified difference from `old` to `new`, in walk order (stable); with `lenient`
    (the schemas come from different generators) without those tagged `noise`."""
    return [c for c in walk_schemas(old, new, side, lenient=lenient) if not (lenient and c.noise)]


def walk_schemas(old: Schema, new: Schema, side: Side, *, lenient: bool = False) -> list[Change]:
    """Every difference, generator noise included (tagged): what the contract layer sorts."""
    walker = _Walker(old, new, side, lenient=lenient)
    walker.compare(old, new, side)
    return walker.changes


def show(value: Any) -> str:
    """A value in a message: compact JSON, cut short when long."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class _Branch:
    schema: dict[str, Any]
    ref: str | None  #: the definition it came from, which names a model variant


@dataclass
class _Walker:
    old_root: Schema
    new_root: Schema
    side: Side
    lenient: bool = False  #: the two schemas come from different generators
    changes: list[Change] = field(default_factory=list)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _chain: tuple[str, ...] = ()  #: the property names leading to the node being compared

    def emit(self, kind: str, path: str, message: str, *, name: str | None = None,
             noise: str = "") -> None:  # fmt: skip
        owner = self._chain if name is None else (*self._chain, name)
        self.changes.append(Change(f"{self.side}.{kind}", path, message, owner, noise))

    # -- resolution --------------------------------------------------------------------------

    def resolve(self, node: Any, root: Schema) -> tuple[dict[str, Any], str | None]:
        """`node` with `$ref` and one-element `allOf` inlined (siblings win), and the first ref."""
        if not isinstance(node, Mapping):  # `true` / `false` schemas
            return ({} if node is not False else {"not": {}}), None
        first: str | None = None
        current = dict(node)
        for _ in range(64):  # a chain of refs to refs; a cycle of bare refs stops here
            if "$ref" in current:
                ref = current.pop("$ref")
                first = first or ref
                current = {**_lookup(root, ref), **current}
            elif "allOf" in current and len(current["allOf"]) == 1:
                inner = current.pop("allOf")[0]
                current = {**(inner if isinstance(inner, Mapping) else {}), **current}
            else:
                break
        return current, first

    def branches(self, node: dict[str, Any], root: Schema) -> tuple[list[_Branch], bool]:
        """The non-null alternatives of a node, and whether null is accepted."""
        union = node.get("anyOf", node.get("oneOf"))
        if union is None:
            types = node.get("type")
            if isinstance(types, list):  # {"type": ["string", "null"]}
                rest = [t for t in types if t != "null"]
                nullable = "null" in types
                body = {k: v for k, v in node.items() if k != "type"}
                return [_Branch({**body, "type": t}, None) for t in rest], nullable
            if types == "null":
                return [], True
            return [_Branch(node, None)], False
        found: list[_Branch] = []
        nullable = False
        for option in union:
            resolved, ref = self.resolve(option, root)
            inner, inner_null = self.branches(resolved, root)
            nullable = nullable or inner_null
            found.extend(_Branch(b.schema, b.ref or ref) for b in inner)
        return found, nullable

    # -- the walk ----------------------------------------------------------------------------

    def compare(self, old_node: Any, new_node: Any, path: str) -> None:
        old, old_ref = self.resolve(old_node, self.old_root)
        new, new_ref = self.resolve(new_node, self.new_root)
        self._defaults(old, new, path)
        if old_ref and new_ref:
            if (old_ref, new_ref) in self._seen:
                # compared already, at its first path (and how recursion ends): only what sits
                # beside the $ref here (a field's own description) is left to compare
                self._annotations(_own(old_node), _own(new_node), path)
                return
            self._seen.add((old_ref, new_ref))
        self._annotations(old, new, path)
        old_branches, old_null = self.branches(old, self.old_root)
        new_branches, new_null = self.branches(new, self.new_root)
        if old_null != new_null:
            kind = "nullable_added" if new_null else "nullable_removed"
            self.emit(kind, path, "null " + ("now accepted" if new_null else "no longer accepted"))
        self._compare_branches(old_branches, new_branches, path)

    def _defaults(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        if "default" in old and "default" not in new:
            self.emit("default_removed", path, f"default {show(old['default'])} removed")
        elif "default" in new and "default" not in old:
            self.emit("default_added", path, f"default {show(new['default'])} added")
        elif "default" in old and _canon(old["default"]) != _canon(new["default"]):
            self.emit("default_changed", path,
                      f"default {show(old['default'])} → {show(new['default'])}")  # fmt: skip

    def _annotations(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        changed = sorted(k for k in ANNOTATIONS if _canon(old.get(k)) != _canon(new.get(k)))
        if changed:
            parts = [f"{k} {show(old.get(k))} → {show(new.get(k))}" for k in changed]
            one_sided_title = changed == ["title"] and ("title" in old) != ("title" in new)
            noise = "a title only one of the generators writes" if one_sided_title else ""
            self.emit("annotation_changed", path, "; ".join(parts), noise=noise)

    def _compare_branches(self, old: list[_Branch], new: list[_Branch], path: str) -> None:
        old_types = set().union(*(_types(b.schema) for b in old)) if old else set()
        new_types = set().union(*(_types(b.schema) for b in new)) if new else set()
        lost = {t for t in old_types if not _accepts(new_types, t)}
        gained = {t for t in new_types if not _accepts(old_types, t)}
        describe = f"type {_type_text(old_types)} → {_type_text(new_types)}"
        if lost and gained:
            self.emit("type_changed", path, describe)
        elif lost:
            self.emit("type_narrowed", path, describe)
        elif gained:
            self.emit("type_widened", path, describe)
        # pair branches of related types and compare what is inside them
        for old_group, new_group in _pairs(old, new):
            if len(old_group) == 1 and len(new_group) == 1:
                self._compare_branch(old_group[0].schema, new_group[0].schema, path)
                continue
            new_left = list(new_group)
            old_left: list[_Branch] = []
            for branch in old_group:
                match = next((b for b in new_left if _variant(b) == _variant(branch)), None)
                if match is None:
                    old_left.append(branch)
                    continue
                new_left.remove(match)
                self.compare(_as_ref(branch), _as_ref(match), path)
            for branch in old_left:  # `$defs` names differ: the same structure is the same variant
                match = next((b for b in new_left
                              if self._same(_as_ref(branch), _as_ref(b))), None)  # fmt: skip
                if match is None:
                    self.emit("variant_removed", path, f"variant {_variant(branch)} removed")
                    continue
                new_left.remove(match)
                self.compare(_as_ref(branch), _as_ref(match), path)
            for branch in new_left:
                self.emit("variant_added", path, f"variant {_variant(branch)} added")

    def _compare_branch(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        self._enums(old, new, path)
        self._constraints(old, new, path)
        if "object" in _types(old) & _types(new):
            self._objects(old, new, path)
        if "array" in _types(old) & _types(new):
            self._arrays(old, new, path)
        if "propertyNames" in old or "propertyNames" in new:
            self.compare(old.get("propertyNames", {}), new.get("propertyNames", {}),
                         f"{path}.propertyNames")  # fmt: skip
        known = STRUCTURAL | ANNOTATIONS | CONSTRAINTS
        for key in sorted((set(old) | set(new)) - known):
            if _canon(old.get(key)) != _canon(new.get(key)):
                self.emit("schema_changed", f"{path}.{key}",
                          f"{key} {show(old.get(key))} → {show(new.get(key))}")  # fmt: skip

    def _enums(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_values, new_values = _enum(old), _enum(new)
        if old_values is None and new_values is None:
            return
        if old_values is None:
            self.emit("enum_narrowed", path, f"now restricted to {show(new_values)}")
            return
        if new_values is None:
            self.emit("enum_widened", path, f"no longer restricted to {show(old_values)}")
            return
        old_keys = {_canon(v): v for v in old_values}
        new_keys = {_canon(v): v for v in new_values}
        removed = [v for k, v in old_keys.items() if k not in new_keys]
        added = [v for k, v in new_keys.items() if k not in old_keys]
        if removed:
            self.emit("enum_narrowed", path, f"values {show(removed)} removed "
                      f"({show(old_values)} → {show(new_values)})")  # fmt: skip
        if added:
            self.emit("enum_widened", path, f"values {show(added)} added "
                      f"({show(old_values)} → {show(new_values)})")  # fmt: skip

    def _constraints(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        for key in (*LOWER_BOUNDS, *UPPER_BOUNDS, *OTHER_CONSTRAINTS):
            before, after = old.get(key), new.get(key)
            if _canon(before) == _canon(after):
                continue
            verdict = _constraint_verdict(key, before, after)
            what = f"{key} {_bound(before)} → {_bound(after)}"
            one_sided = key == "pattern" and (before is None or after is None)
            noise = _DECIMAL_NOISE if one_sided and _decimal_pattern(before or after) else ""
            self.emit(f"constraint_{verdict}", f"{path}.{key}", what, noise=noise)

    def _objects(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_props: dict[str, Any] = dict(old.get("properties") or {})
        new_props: dict[str, Any] = dict(new.get("properties") or {})
        old_required = set(old.get("required") or ())
        new_required = set(new.get("required") or ())
        removed = [p for p in old_props if p not in new_props]
        added = [p for p in new_props if p not in old_props]
        for name in list(removed):
            twin = next((a for a in added if self._same(old_props[name], new_props[a])), None)
            if twin is not None:
                removed.remove(name)
                added.remove(twin)
                self.emit("property_renamed", f"{path}.properties.{name}",
                          f"field {name!r} renamed to {twin!r} (same schema)",
                          name=name)  # fmt: skip
        closed_now = new.get("additionalProperties") is False
        for name in removed:
            where = f"{path}.properties.{name}"
            if self.side == "input" and closed_now:
                self.emit("property_removed_forbidden", where,
                          f"field {name!r} removed, and extra keys are forbidden",
                          name=name)  # fmt: skip
            else:
                was = "required" if name in old_required else "optional"
                self.emit("property_removed", where, f"{was} field {name!r} removed", name=name)
        closed_before = old.get("additionalProperties") is False
        for name in added:
            where = f"{path}.properties.{name}"
            summary = _type_text(_types(self.resolve(new_props[name], self.new_root)[0]))
            if self.side == "input" and name in new_required:
                self.emit("required_added", where, f"new required field {name!r} ({summary})",
                          name=name)  # fmt: skip
            elif self.side == "output" and closed_before:
                self.emit("property_added_forbidden", where,
                          f"new field {name!r} ({summary}), and the old schema forbade extra "
                          "keys", name=name)  # fmt: skip
            else:
                optional = "required" if name in new_required else "optional"
                self.emit("property_added", where, f"new {optional} field {name!r} ({summary})",
                          name=name)  # fmt: skip
        for name in (p for p in old_props if p in new_props):
            where = f"{path}.properties.{name}"
            became_required = name in new_required and name not in old_required
            if became_required:
                self.emit("required_added", where, f"field {name!r} optional → required",
                          name=name)  # fmt: skip
            elif name in old_required and name not in new_required:
                self.emit("required_removed", where, f"field {name!r} required → optional",
                          name=name)  # fmt: skip
            start = len(self.changes)
            outer, self._chain = self._chain, (*self._chain, name)
            try:
                self.compare(old_props[name], new_props[name], where)
            finally:
                self._chain = outer
            if became_required:  # losing its default is what made it required: said already
                self.changes[start:] = [
                    c for c in self.changes[start:]
                    if not (c.path == where and c.rule.endswith(".default_removed"))
                ]  # fmt: skip
        self._additional(old, new, path)

    def _additional(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        before, after = old.get("additionalProperties"), new.get("additionalProperties")
        old_kind, new_kind = _openness(before), _openness(after)
        where = f"{path}.additionalProperties"
        if old_kind == "schema" and new_kind == "schema":
            self.compare(before, after, where)
            return
        if old_kind == new_kind:
            return
        rank = {"closed": 0, "schema": 1, "open": 2}
        kind = "narrowed" if rank[new_kind] < rank[old_kind] else "widened"
        label = {"closed": "forbidden", "schema": "restricted by a schema", "open": "allowed"}
        self.emit(f"additional_properties_{kind}", where,
                  f"extra keys {label[old_kind]} → {label[new_kind]}")  # fmt: skip

    def _arrays(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        if "items" in old or "items" in new:
            self.compare(old.get("items", {}), new.get("items", {}), f"{path}.items")
        old_prefix = list(old.get("prefixItems") or ())
        new_prefix = list(new.get("prefixItems") or ())
        for index in range(min(len(old_prefix), len(new_prefix))):
            self.compare(old_prefix[index], new_prefix[index], f"{path}.prefixItems.{index}")
        if len(old_prefix) != len(new_prefix):  # tuple length changes also move min/maxItems
            self.emit("schema_changed", f"{path}.prefixItems",
                      f"tuple of {len(old_prefix)} → {len(new_prefix)} items")  # fmt: skip

    def _same(self, old_node: Any, new_node: Any) -> bool:
        """Whether two property schemas validate the same values (a rename candidate)."""
        probe = _Walker(self.old_root, self.new_root, self.side, self.lenient)
        probe.compare(old_node, new_node, "")
        return all(c.rule.endswith(".annotation_changed") or (self.lenient and c.noise)
                   for c in probe.changes)  # fmt: skip


def _lookup(root: Schema, ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        return {"$comment": f"unresolved reference {ref}"}
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return {"$comment": f"unresolved reference {ref}"}
        node = node[part]
    return dict(node) if isinstance(node, Mapping) else {}


def _own(node: Any) -> dict[str, Any]:
    """The keywords a node states itself, beside its `$ref`."""
    return {k: v for k, v in node.items() if k != "$ref"} if isinstance(node, Mapping) else {}


def _canon(value: Any) -> str:
    """Comparable text of a JSON value; `1` and `1.0` are one number (generators differ)."""
    return json.dumps(_plain(value), sort_keys=True, default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


#: How pydantic (2.10 to 2.13) begins the pattern it writes for `Decimal` strings.
_DECIMAL_PATTERN_START = r"^(?!^[-+.]*$)[+-]?0*"


_DECIMAL_NOISE = "pydantic < 2.14 writes a pattern for Decimal strings, later ones do not"


def _decimal_pattern(pattern: Any) -> bool:
    return isinstance(pattern, str) and pattern.startswith(_DECIMAL_PATTERN_START)


def _enum(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    values = schema.get("enum")
    return list(values) if isinstance(values, list) else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _types(schema: Mapping[str, Any]) -> set[str]:
    """The JSON types a schema admits; every type when it does not say."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)}
    values = _enum(schema)
    if values is not None:
        return {_json_type(v) for v in values}
    if "properties" in schema or "additionalProperties" in schema:
        return {"object"}
    if "items" in schema or "prefixItems" in schema:
        return {"array"}
    return set(JSON_TYPES - {"null"})


def _accepts(types: set[str], t: str) -> bool:
    return t in types or (t == "integer" and "number" in types)


def _type_text(types: set[str]) -> str:
    if types >= JSON_TYPES - {"null"}:
        return "any"
    return " | ".join(sorted(types)) or "nothing"


def _family(t: str) -> str:
    return "number" if t in ("integer", "number") else t


def _pairs(old: list[_Branch], new: list[_Branch]) -> list[tuple[list[_Branch], list[_Branch]]]:
    """Branches grouped by type family (integer pairs with number), present on both sides."""

    def family(branch: _Branch) -> str:
        types = _types(branch.schema)
        return _family(next(iter(types))) if len(types) == 1 else "any"

    groups: dict[str, tuple[list[_Branch], list[_Branch]]] = {}
    for branch in old:
        groups.setdefault(family(branch), ([], []))[0].append(branch)
    for branch in new:
        groups.setdefault(family(branch), ([], []))[1].append(branch)
    return [(o, n) for o, n in groups.values() if o and n]


def _variant(branch: _Branch) -> str:
    if branch.ref:
        return branch.ref.rsplit("/", 1)[-1]
    return str(branch.schema.get("title") or _type_text(_types(branch.schema)))


def _as_ref(branch: _Branch) -> Any:
    return {"$ref": branch.ref} if branch.ref else branch.schema


def _openness(value: Any) -> str:
    if value is False:
        return "closed"
    if value is None or value is True or value == {}:
        return "open"
    return "schema"


def _bound(value: Any) -> str:
    return "none" if value is None else show(value)


def _constraint_verdict(key: str, before: Any, after: Any) -> str:
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


__all__ = ["Change", "Side", "diff_schemas", "show", "walk_schemas"]
