"""The result of a schema diff: a `Change`, the `Side` it was found on, and how a value is shown.

Its own module because more read a `Change` than make one: the contract gate, drift, golden items
and their messages name changes without needing the walk that finds them (`schema_diff`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from jobforge.contracts.rules import Rule, rule

Side = Literal["input", "output"]
Schema = Mapping[str, Any]


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


def show(value: Any) -> str:
    """A value in a message: compact JSON, cut short when long."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
