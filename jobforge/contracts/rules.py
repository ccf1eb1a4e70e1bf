"""The drift rule table: every change the gate can report, the part it guards and its severity.

One data structure, so the classifier, the version policy and the README table (rendered by
`rules_markdown`, checked by a test) cannot disagree. The two directions:

- input: jobs already queued carry payloads valid under the old schema; they must still validate
  under the new one. Narrowing what the schema accepts is breaking, widening it is compatible.
- output: whoever consumes outputs was written against the old schema; every new output must still
  be something it can read. Widening what an output may contain is breaking, narrowing it (or
  adding a field) is compatible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["breaking", "compatible"]
#: The least version bump a change needs before `contracts lock` writes it.
Bump = Literal["major", "minor", "none"]
Part = Literal["input", "output", "trace_keys", "artifacts", "secret_keys", "public_keys",
               "guarantees", "limits", "queue_limits", "policy", "runner"]  # fmt: skip


@dataclass(frozen=True)
class Rule:
    name: str  #: "<part>.<kind>", e.g. "input.required_added"
    part: Part
    severity: Severity
    description: str
    bump: Bump = "major"  #: "major" for breaking rules, "minor" for compatible ones, unless said

    def __post_init__(self) -> None:
        if self.severity == "compatible" and self.bump == "major":
            object.__setattr__(self, "bump", "minor")


B: Severity = "breaking"
C: Severity = "compatible"

_IN = "old payloads"
_OUT = "old consumers"

RULES: tuple[Rule, ...] = (
    # -- input: what the runner accepts (old payloads must still validate) --
    Rule("input.required_added", "input", B, f"a field became required: {_IN} without it fail"),
    Rule("input.required_removed", "input", C, "a required field became optional"),
    Rule("input.property_added", "input", C,
         "a new optional field (pydantic ignores unknown keys, so old payloads never set it)"),
    Rule("input.property_removed", "input", C,
         "a field was removed; the model ignores unknown keys, so old payloads still validate "
         "(their value is no longer read)"),
    Rule("input.property_removed_forbidden", "input", B,
         f'a field was removed from a model that forbids extra keys (extra="forbid"): {_IN} '
         "carrying it fail"),
    Rule("input.property_renamed", "input", B,
         f"a field was removed and one with the same schema added: {_IN} use the old name"),
    Rule("input.type_narrowed", "input", B, f"fewer JSON types accepted (number → integer): {_IN} "
         "may hold the dropped ones"),
    Rule("input.type_widened", "input", C, "more JSON types accepted (integer → number)"),
    Rule("input.type_changed", "input", B, "the type was replaced by an unrelated one"),
    Rule("input.nullable_added", "input", C, "null is now accepted (Optional)"),
    Rule("input.nullable_removed", "input", B, f"null is no longer accepted: {_IN} may hold null"),
    Rule("input.enum_narrowed", "input", B, "enum or Literal values removed (or a value set "
         "imposed where any value was accepted)"),
    Rule("input.enum_widened", "input", C,
         "enum or Literal values added (or the value set lifted)"),
    Rule("input.variant_added", "input", C, "a union gained a model variant"),
    Rule("input.variant_removed", "input", B, "a union lost a model variant"),
    Rule("input.additional_properties_narrowed", "input", B,
         'extra keys forbidden (extra="forbid") or the schema of dict values narrowed'),
    Rule("input.additional_properties_widened", "input", C,
         "extra keys allowed again, or the schema of dict values widened"),
    Rule("input.constraint_tightened", "input", B, "minLength/maxLength, minimum/maximum "
         "(exclusive too), minItems/maxItems, uniqueItems, multipleOf, pattern or format added "
         "or made stricter"),
    Rule("input.constraint_loosened", "input", C, "a constraint removed or relaxed"),
    Rule("input.constraint_changed", "input", B,
         "a pattern, format or multipleOf replaced by one that neither contains nor is "
         "contained in the old one (cannot be proven compatible)"),
    Rule("input.default_added", "input", C, "a field gained a default"),
    Rule("input.default_removed", "input", B, f"a default was removed: {_IN} that omitted the "
         "field relied on it"),
    Rule("input.default_changed", "input", B, "a default changed: queued jobs that omitted the "
         "field now run with another value"),
    Rule("input.schema_changed", "input", B,
         "a schema keyword this gate does not classify changed (treated as breaking)"),
    Rule("input.annotation_changed", "input", C,
         "title, description, examples or deprecated changed (documentation only)", bump="none"),
    Rule("input.definition_changed", "input", B,
         "a field's definition changed where its JSON Schema shows nothing (a validator, "
         "strictness, Decimal places under a pydantic that no longer writes them): cannot be "
         "proven compatible"),
    Rule("input.recorded_inputs_invalid", "input", B,
         "recorded inputs (golden cases, run records) no longer validate against the new input "
         "model: the empirical check beside the schema diff"),
    Rule("input.recorded_rejection_accepted", "input", C,
         "inputs golden cases expect rejected (status invalid_input) now validate: the input "
         "model widened under them; update those cases"),
    # -- output: what the runner returns (old consumers must still read it) --
    Rule("output.required_added", "output", C, "an output field is now always present"),
    Rule("output.required_removed", "output", B,
         f"an output field may now be absent: {_OUT} expect it"),
    Rule("output.property_added", "output", C, "a new output field (old consumers ignore it)"),
    Rule("output.property_added_forbidden", "output", B,
         f"a new output field where the old schema forbade extra keys: {_OUT} validating "
         "strictly reject it"),
    Rule("output.property_removed", "output", B, f"an output field was removed: {_OUT} read it"),
    Rule("output.property_renamed", "output", B,
         f"an output field was renamed (same schema, new name): {_OUT} read the old name"),
    Rule("output.type_narrowed", "output", C, "fewer JSON types produced (number → integer)"),
    Rule("output.type_widened", "output", B,
         f"more JSON types may be produced (integer → number): {_OUT} cannot read them"),
    Rule("output.type_changed", "output", B, "the type was replaced by an unrelated one"),
    Rule("output.nullable_added", "output", B, f"an output value may now be null: {_OUT} do not "
         "expect it"),
    Rule("output.nullable_removed", "output", C, "an output value is never null any more"),
    Rule("output.enum_narrowed", "output", C, "fewer enum or Literal values produced"),
    Rule("output.enum_widened", "output", B,
         f"new enum or Literal values may be produced: {_OUT} do not know them"),
    Rule("output.variant_added", "output", B, "a union gained a model variant old consumers "
         "cannot read"),
    Rule("output.variant_removed", "output", C, "a union lost a model variant"),
    Rule("output.additional_properties_narrowed", "output", C,
         "extra keys forbidden, or the schema of dict values narrowed"),
    Rule("output.additional_properties_widened", "output", B,
         "extra keys may appear, or dict values widened"),
    Rule("output.constraint_tightened", "output", C, "a constraint added or made stricter: "
         "outputs are a subset of what they were"),
    Rule("output.constraint_loosened", "output", B,
         f"a constraint removed or relaxed (e.g. maximum dropped): {_OUT} may rely on it"),
    Rule("output.constraint_changed", "output", B,
         "a pattern, format or multipleOf replaced by an unrelated one"),
    Rule("output.default_added", "output", C, "an output field gained a default"),
    Rule("output.default_removed", "output", C, "an output field lost its default (pydantic "
         "still serializes every field)"),
    Rule("output.default_changed", "output", C, "an output default changed"),
    Rule("output.schema_changed", "output", B,
         "a schema keyword this gate does not classify changed (treated as breaking)"),
    Rule("output.annotation_changed", "output", C,
         "title, description, examples or deprecated changed (documentation only)", bump="none"),
    Rule("output.definition_changed", "output", B,
         "a field's definition changed where its JSON Schema shows nothing (a serializer, "
         "Decimal places under a pydantic that no longer writes them): cannot be proven "
         "compatible"),
    # -- the rest of the contract --
    Rule("trace_keys.removed", "trace_keys", B,
         "a required trace key was dropped: audits and replays that read it lose it"),
    Rule("trace_keys.added", "trace_keys", C,
         "a required trace key was added: every trace now carries it, which no reader minds; "
         "runs recorded earlier are judged by their own version's contract"),
    Rule("artifacts.removed", "artifacts", B,
         "a required artifact was dropped: whoever fetches it finds nothing"),
    Rule("artifacts.added", "artifacts", C, "a required artifact was added (a promise more)"),
    Rule("secret_keys.added", "secret_keys", C,
         "a key is now declared secret: its values are redacted from stored records (what is "
         "stored changes, not what the runner accepts or returns)"),
    Rule("secret_keys.removed", "secret_keys", C,
         "a key is no longer declared secret: its values are stored unless the name rules "
         "redact them"),
    Rule("public_keys.added", "public_keys", C,
         "a key is now exempt from the name rules: its values are stored in clear"),
    Rule("public_keys.removed", "public_keys", C,
         "a key is no longer exempt: the name rules redact it again"),
    Rule("guarantees.turned_off", "guarantees", B,
         "input_snapshot, decision_trace, output_artifact or replayable turned off"),
    Rule("guarantees.turned_on", "guarantees", C, "a guarantee turned on"),
    Rule("limits.timeout_shortened", "limits", B,
         "timeout_s lowered (or set where there was none): runs that succeeded may now time out"),
    Rule("limits.timeout_extended", "limits", C, "timeout_s raised or removed"),
    Rule("limits.max_attempts_reduced", "limits", B,
         "max_attempts lowered: jobs that succeeded on a late attempt may now die"),
    Rule("limits.max_attempts_raised", "limits", C, "max_attempts raised"),
    Rule("limits.retry_changed", "limits", C,
         "the backoff (base_s, cap_s) changed: when a retry runs, never whether"),
    Rule("queue_limits.added", "queue_limits", C,
         "queue limits declared (`@runner(limits=...)`) where the lock has none: when jobs of the "
         "type run, never whether they succeed; `jobforge limits apply` writes them to the "
         "database", bump="none"),
    Rule("queue_limits.removed", "queue_limits", C,
         "queue limits no longer declared: the database keeps what `jobforge limits apply` "
         "wrote until `jobforge limits clear type <runner>`", bump="none"),
    Rule("queue_limits.tightened", "queue_limits", C,
         "max_running, rate_per_s or burst lowered, or one added: jobs of the type may wait "
         "longer, none fails", bump="none"),
    Rule("queue_limits.loosened", "queue_limits", C,
         "max_running, rate_per_s or burst raised, or one dropped: more of the type may run at "
         "once, on whatever it calls", bump="none"),
    Rule("policy.signed_required", "policy", B,
         "`signed=True` turned on: unsigned jobs its producers enqueue are refused by the worker"),
    Rule("policy.signed_dropped", "policy", C,
         "`signed` turned off: unsigned jobs run again (a loosening reviewers should see)"),
    Rule("policy.scope_added", "policy", B,
         "a required scope was added: policy tokens issued without it are refused"),
    Rule("policy.scope_removed", "policy", C,
         "a required scope was dropped: tokens that grant it still pass (a loosening reviewers "
         "should see)"),
    Rule("runner.added", "runner", C, "a declared runner has no lock yet", bump="none"),
    Rule("runner.removed", "runner", B,
         "a locked runner is no longer declared: its queued jobs have no handler"),
    Rule("runner.version_changed", "runner", C,
         "only the version differs from the lock (a bump alone needs no contract change)",
         bump="none"),
)  # fmt: skip

RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}


def rule(name: str) -> Rule:
    """The rule called `name`; an unknown name is a bug in the classifier, not user input."""
    return RULES_BY_NAME[name]


def rules_markdown() -> str:
    """The README's rule table, generated from `RULES` (a test keeps the README in step)."""
    lines = [
        "| rule | severity | needs | what changed |",
        "|---|---|---|---|",
    ]
    for r in RULES:
        needs = {"major": "major bump", "minor": "minor bump", "none": "no bump"}[r.bump]
        description = r.description.replace("|", "\\|")
        lines.append(f"| `{r.name}` | {r.severity} | {needs} | {description} |")
    return "\n".join(lines) + "\n"
