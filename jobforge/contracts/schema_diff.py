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

This module is the walk: what pairs the two schemas and decides what a difference means. What it
yields is in `schema_change` (still importable from here, as `Change`, `Side` and `show`), how it
reads one node in `schema_nodes`, and which way a constraint moved in `schema_constraints`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobforge.contracts.schema_change import Change, Schema, Side, show
from jobforge.contracts.schema_constraints import (
    CONSTRAINTS,
    DECIMAL_NOISE,
    LOWER_BOUNDS,
    OTHER_CONSTRAINTS,
    UPPER_BOUNDS,
    bound,
    constraint_verdict,
    decimal_pattern,
)
from jobforge.contracts.schema_nodes import (
    ANNOTATIONS,
    STRUCTURAL,
    Branch,
    accepts,
    as_ref,
    canon,
    enum_values,
    lookup,
    openness,
    own,
    pairs,
    type_text,
    types_of,
    variant,
)


def diff_schemas(old: Schema, new: Schema, side: Side, *, lenient: bool = False) -> list[Change]:
    """Every classified difference from `old` to `new`, in walk order (stable); with `lenient`
    (the schemas come from different generators) without those tagged `noise`."""
    return [c for c in walk_schemas(old, new, side, lenient=lenient) if not (lenient and c.noise)]


def walk_schemas(old: Schema, new: Schema, side: Side, *, lenient: bool = False) -> list[Change]:
    """Every difference, generator noise included (tagged): what the contract layer sorts."""
    walker = _Walker(old, new, side, lenient=lenient)
    walker.compare(old, new, side)
    return walker.changes


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
                current = {**lookup(root, ref), **current}
            elif "allOf" in current and len(current["allOf"]) == 1:
                inner = current.pop("allOf")[0]
                current = {**(inner if isinstance(inner, Mapping) else {}), **current}
            else:
                break
        return current, first

    def branches(self, node: dict[str, Any], root: Schema) -> tuple[list[Branch], bool]:
        """The non-null alternatives of a node, and whether null is accepted."""
        union = node.get("anyOf", node.get("oneOf"))
        if union is None:
            types = node.get("type")
            if isinstance(types, list):  # {"type": ["string", "null"]}
                rest = [t for t in types if t != "null"]
                nullable = "null" in types
                body = {k: v for k, v in node.items() if k != "type"}
                return [Branch({**body, "type": t}, None) for t in rest], nullable
            if types == "null":
                return [], True
            return [Branch(node, None)], False
        found: list[Branch] = []
        nullable = False
        for option in union:
            resolved, ref = self.resolve(option, root)
            inner, inner_null = self.branches(resolved, root)
            nullable = nullable or inner_null
            found.extend(Branch(b.schema, b.ref or ref) for b in inner)
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
                self._annotations(own(old_node), own(new_node), path)
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
        elif "default" in old and canon(old["default"]) != canon(new["default"]):
            self.emit("default_changed", path,
                      f"default {show(old['default'])} → {show(new['default'])}")  # fmt: skip

    def _annotations(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        changed = sorted(k for k in ANNOTATIONS if canon(old.get(k)) != canon(new.get(k)))
        if changed:
            parts = [f"{k} {show(old.get(k))} → {show(new.get(k))}" for k in changed]
            one_sided_title = changed == ["title"] and ("title" in old) != ("title" in new)
            noise = "a title only one of the generators writes" if one_sided_title else ""
            self.emit("annotation_changed", path, "; ".join(parts), noise=noise)

    def _compare_branches(self, old: list[Branch], new: list[Branch], path: str) -> None:
        old_types = set().union(*(types_of(b.schema) for b in old)) if old else set()
        new_types = set().union(*(types_of(b.schema) for b in new)) if new else set()
        lost = {t for t in old_types if not accepts(new_types, t)}
        gained = {t for t in new_types if not accepts(old_types, t)}
        describe = f"type {type_text(old_types)} → {type_text(new_types)}"
        if lost and gained:
            self.emit("type_changed", path, describe)
        elif lost:
            self.emit("type_narrowed", path, describe)
        elif gained:
            self.emit("type_widened", path, describe)
        # pair branches of related types and compare what is inside them
        for old_group, new_group in pairs(old, new):
            if len(old_group) == 1 and len(new_group) == 1:
                self._compare_branch(old_group[0].schema, new_group[0].schema, path)
                continue
            new_left = list(new_group)
            old_left: list[Branch] = []
            for branch in old_group:
                match = next((b for b in new_left if variant(b) == variant(branch)), None)
                if match is None:
                    old_left.append(branch)
                    continue
                new_left.remove(match)
                self.compare(as_ref(branch), as_ref(match), path)
            for branch in old_left:  # `$defs` names differ: the same structure is the same variant
                match = next((b for b in new_left
                              if self._same(as_ref(branch), as_ref(b))), None)  # fmt: skip
                if match is None:
                    self.emit("variant_removed", path, f"variant {variant(branch)} removed")
                    continue
                new_left.remove(match)
                self.compare(as_ref(branch), as_ref(match), path)
            for branch in new_left:
                self.emit("variant_added", path, f"variant {variant(branch)} added")

    def _compare_branch(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        self._enums(old, new, path)
        self._constraints(old, new, path)
        if "object" in types_of(old) & types_of(new):
            self._objects(old, new, path)
        if "array" in types_of(old) & types_of(new):
            self._arrays(old, new, path)
        if "propertyNames" in old or "propertyNames" in new:
            self.compare(old.get("propertyNames", {}), new.get("propertyNames", {}),
                         f"{path}.propertyNames")  # fmt: skip
        known = STRUCTURAL | ANNOTATIONS | CONSTRAINTS
        for key in sorted((set(old) | set(new)) - known):
            if canon(old.get(key)) != canon(new.get(key)):
                self.emit("schema_changed", f"{path}.{key}",
                          f"{key} {show(old.get(key))} → {show(new.get(key))}")  # fmt: skip

    def _enums(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_values, new_values = enum_values(old), enum_values(new)
        if old_values is None and new_values is None:
            return
        if old_values is None:
            self.emit("enum_narrowed", path, f"now restricted to {show(new_values)}")
            return
        if new_values is None:
            self.emit("enum_widened", path, f"no longer restricted to {show(old_values)}")
            return
        old_keys = {canon(v): v for v in old_values}
        new_keys = {canon(v): v for v in new_values}
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
            if canon(before) == canon(after):
                continue
            verdict = constraint_verdict(key, before, after)
            what = f"{key} {bound(before)} → {bound(after)}"
            one_sided = key == "pattern" and (before is None or after is None)
            noise = DECIMAL_NOISE if one_sided and decimal_pattern(before or after) else ""
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
            summary = type_text(types_of(self.resolve(new_props[name], self.new_root)[0]))
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
        old_kind, new_kind = openness(before), openness(after)
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


__all__ = ["Change", "Side", "diff_schemas", "show", "walk_schemas"]
