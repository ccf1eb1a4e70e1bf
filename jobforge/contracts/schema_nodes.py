"""How the schema diff reads one JSON Schema node: which keywords mean what, the JSON types a
node admits, its enum values, `$ref` lookup, comparable values, and the typed branches of a union.

Pure functions of schema nodes, apart from the walk (`schema_diff`) that pairs two schemas and
decides what their differences mean, so each can be read, and tested, on its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobforge.contracts.schema_change import Schema

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


@dataclass
class Branch:
    schema: dict[str, Any]
    ref: str | None  #: the definition it came from, which names a model variant


def lookup(root: Schema, ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        return {"$comment": f"unresolved reference {ref}"}
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return {"$comment": f"unresolved reference {ref}"}
        node = node[part]
    return dict(node) if isinstance(node, Mapping) else {}


def own(node: Any) -> dict[str, Any]:
    """The keywords a node states itself, beside its `$ref`."""
    return {k: v for k, v in node.items() if k != "$ref"} if isinstance(node, Mapping) else {}


def canon(value: Any) -> str:
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


def enum_values(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    values = schema.get("enum")
    return list(values) if isinstance(values, list) else None


def json_type(value: Any) -> str:
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


def types_of(schema: Mapping[str, Any]) -> set[str]:
    """The JSON types a schema admits; every type when it does not say."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)}
    values = enum_values(schema)
    if values is not None:
        return {json_type(v) for v in values}
    if "properties" in schema or "additionalProperties" in schema:
        return {"object"}
    if "items" in schema or "prefixItems" in schema:
        return {"array"}
    return set(JSON_TYPES - {"null"})


def accepts(types: set[str], t: str) -> bool:
    return t in types or (t == "integer" and "number" in types)


def type_text(types: set[str]) -> str:
    if types >= JSON_TYPES - {"null"}:
        return "any"
    return " | ".join(sorted(types)) or "nothing"


def type_family(t: str) -> str:
    return "number" if t in ("integer", "number") else t


def pairs(old: list[Branch], new: list[Branch]) -> list[tuple[list[Branch], list[Branch]]]:
    """Branches grouped by type family (integer pairs with number), present on both sides."""

    def family(branch: Branch) -> str:
        types = types_of(branch.schema)
        return type_family(next(iter(types))) if len(types) == 1 else "any"

    groups: dict[str, tuple[list[Branch], list[Branch]]] = {}
    for branch in old:
        groups.setdefault(family(branch), ([], []))[0].append(branch)
    for branch in new:
        groups.setdefault(family(branch), ([], []))[1].append(branch)
    return [(o, n) for o, n in groups.values() if o and n]


def variant(branch: Branch) -> str:
    if branch.ref:
        return branch.ref.rsplit("/", 1)[-1]
    return str(branch.schema.get("title") or type_text(types_of(branch.schema)))


def as_ref(branch: Branch) -> Any:
    return {"$ref": branch.ref} if branch.ref else branch.schema


def openness(value: Any) -> str:
    if value is False:
        return "closed"
    if value is None or value is True or value == {}:
        return "open"
    return "schema"
