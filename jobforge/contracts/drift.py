"""Drift between two contracts (a lock and a declaration), and the version policy over it.

`diff_contracts` classifies every difference with a rule of `jobforge.contracts.rules`;
`version_verdict` says whether the version change covers them: a breaking change needs a major
bump, a compatible one at least a minor bump. Under 0.x the numbers shift left, as Cargo reads
them: 0.3.0 → 0.4.0 counts as major, 0.3.0 → 0.3.1 as minor (semver itself promises nothing
before 1.0, which would leave the gate nothing to hold a 0.x runner to).

Generator changes. The JSON Schemas in a lock are what one pydantic version wrote; another
version writes some models differently (pydantic 2.14 dropped the `pattern` of `Decimal`
strings). When the lock's generator differs from this process's (or is not recorded), a schema
difference is put down to the generator, not to the model, when

- the field it belongs to has the same fingerprint in the lock and in the declaration (every
  field from the model down to it: `model.fingerprint`, rendered by jobforge from `model_fields`,
  the same under every pydantic version), or
- it is a known generator spelling (`schema_diff` tags it `noise`), the only evidence an old
  lock without fingerprints offers.

Those differences are information (`ContractDiff.generated`), never drift: the lock is merely
out of date (`stale`) and `contracts lock` rewrites it without asking for a version bump. A
field whose fingerprint changed while its schema shows nothing (a validator added, `Decimal`
places under a pydantic that no longer writes them) is `<side>.definition_changed`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from jobforge.contracts.declare import SEMVER
from jobforge.contracts.model import Contract, FieldPrint, QueueLimitsModel, chain_key
from jobforge.contracts.rules import Bump
from jobforge.contracts.schema_diff import Change, Side, show, walk_schemas

Level = Literal["major", "minor", "patch", "none", "downgrade"]
#: A patch bump covers what no bump covers (documentation): contract changes need more.
_RANK = {"none": 0, "patch": 0, "minor": 1, "major": 2}


@dataclass(frozen=True)
class ContractDiff:
    """A lock against a declaration: the contract changes, and what the generator alone made."""

    changes: tuple[Change, ...]  #: what the declaration changed (the drift)
    generated: tuple[Change, ...]  #: schema differences another generator explains (no drift)
    stale: bool  #: the lock file would be written differently (even with no change)
    old_generator: dict[str, str] | None
    new_generator: dict[str, str] | None

    @property
    def generator_changed(self) -> bool:
        return generator_changed(self.old_generator, self.new_generator)

    @property
    def note_rule(self) -> str:
        """The notice's rule id (a notice, not a change: it is not in the rule table)."""
        return "runner.generator_changed" if self.generator_changed else "runner.lock_outdated"

    def note(self) -> str:
        """Why the lock is out of date when no change says so ("" when it is not)."""
        if self.old_generator is None:
            now = _generator_text(self.new_generator or {})
            text = f"the lock does not record its schema generator; this one is {now}"
        elif self.generator_changed:
            move = _generator_move(self.old_generator, self.new_generator or {})
            text = f"schema generator changed ({move})"
        elif self.stale and not self.changes:
            text = "the lock differs from the declaration only where no contract rule looks"
        else:
            return ""
        if self.generated:
            count = len(self.generated)
            text += f"; {count} schema difference{'s' if count != 1 else ''} it alone explains"
        return text


def generator_changed(old: dict[str, str] | None, new: dict[str, str] | None) -> bool:
    """Whether two schemas may come from different generators (unknown counts as different)."""
    return old is None or new is None or old != new


def _generator_text(versions: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "unknown"


def _generator_move(old: dict[str, str], new: dict[str, str]) -> str:
    """ "pydantic 2.13.4 → 2.14.4" (pydantic_core too when pydantic alone did not move)."""
    moved = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    shown = ["pydantic"] if "pydantic" in moved else moved
    return ", ".join(f"{k} {old.get(k, 'none')} → {new.get(k, 'none')}" for k in shown)


def diff_contracts(old: Contract, new: Contract) -> list[Change]:
    """Every classified difference from the locked `old` to the declared `new` (what the
    generator alone explains left out: `compare_contracts` has it)."""
    return list(compare_contracts(old, new).changes)


def compare_contracts(old: Contract, new: Contract) -> ContractDiff:
    """The lock `old` against the declaration `new`: changes, generator-only differences."""
    lenient = generator_changed(old.generator, new.generator)
    changes: list[Change] = []
    generated: list[Change] = []
    for side in ("input", "output"):
        before: dict[str, FieldPrint] | None = _prints(old, side)
        after: dict[str, FieldPrint] | None = _prints(new, side)
        found: list[Change] = []
        raw = walk_schemas(getattr(old, f"{side}_schema"), getattr(new, f"{side}_schema"), side,
                           lenient=lenient)  # fmt: skip
        for change in raw:
            if lenient and (change.noise or _same_field(before, after, change.owner)):
                generated.append(change)
            else:
                found.append(change)
        if before is not None and after is not None:
            found += _definition_changes(side, before, after, found)
        changes += found
    changes += _rest(old, new)
    return ContractDiff(tuple(changes), tuple(generated), old != new, old.generator,
                        new.generator)  # fmt: skip


def _prints(contract: Contract, side: Side) -> dict[str, FieldPrint] | None:
    if contract.fingerprints is None:
        return None
    prints: dict[str, FieldPrint] = getattr(contract.fingerprints, side)
    return prints


def _same_field(before: dict[str, FieldPrint] | None, after: dict[str, FieldPrint] | None,
                owner: tuple[str, ...]) -> bool:  # fmt: skip
    """Whether the field `owner` (and every field and model above it) is fingerprinted alike on
    both sides. Below what fingerprints reach (inside a TypedDict, past a recursion) the
    nearest fingerprinted ancestor speaks for it."""
    if before is None or after is None:
        return False
    for depth in range(len(owner) + 1):
        key = chain_key(owner[:depth])
        a, b = before.get(key), after.get(key)
        if a is None and b is None and depth > 0:
            return True
        if a != b:
            return False
    return True


def _definition_changes(
    side: Side, before: dict[str, FieldPrint], after: dict[str, FieldPrint], found: list[Change]
) -> list[Change]:
    """Fields whose definition changed where their JSON Schema shows nothing."""
    shown = {c.owner for c in found}
    reported: list[tuple[str, ...]] = []
    extra: list[Change] = []
    for key in sorted(set(before) & set(after), key=lambda k: (k.count("/"), k)):
        if before[key].shape == after[key].shape:
            continue
        chain = _chain(key)
        explained = any(chain[:depth] in shown for depth in range(len(chain) + 1))
        if explained or any(chain[: len(r)] == r for r in reported):
            continue
        reported.append(chain)
        path = side + "".join(f".properties.{name}" for name in chain)
        what = "the model" if not chain else f"field {'.'.join(chain)!r}"
        extra.append(Change(f"{side}.definition_changed", path,
                            f"{what} changed where its JSON Schema shows nothing: "
                            f"{show(before[key].shape)} → {show(after[key].shape)}",
                            chain))  # fmt: skip
    return extra


def _chain(key: str) -> tuple[str, ...]:
    if key == "":
        return ()
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in key.split("/"))


def _rest(old: Contract, new: Contract) -> list[Change]:
    """Everything beside the schemas."""
    changes: list[Change] = []
    for name, before in old.guarantees.model_dump().items():
        after = getattr(new.guarantees, name)
        if before and not after:
            changes.append(Change("guarantees.turned_off", f"guarantees.{name}", f"{name} off"))
        elif after and not before:
            changes.append(Change("guarantees.turned_on", f"guarantees.{name}", f"{name} on"))
    for part, noun in (("trace_keys", "trace key"), ("artifacts", "artifact")):
        before_set, after_set = set(getattr(old, part)), set(getattr(new, part))
        for name in sorted(before_set - after_set):
            changes.append(Change(f"{part}.removed", f"{part}.{name}",
                                  f"required {noun} {name!r} dropped"))  # fmt: skip
        for name in sorted(after_set - before_set):
            changes.append(Change(f"{part}.added", f"{part}.{name}",
                                  f"required {noun} {name!r} added"))  # fmt: skip
    for part, gained, lost in (
        ("secret_keys", "now redacted from stored records", "no longer declared secret"),
        ("public_keys", "now exempt from the redaction rules", "no longer exempt"),
    ):
        before_set, after_set = set(getattr(old, part)), set(getattr(new, part))
        for name in sorted(before_set - after_set):
            changes.append(Change(f"{part}.removed", f"{part}.{name}", f"{name!r} {lost}"))
        for name in sorted(after_set - before_set):
            changes.append(Change(f"{part}.added", f"{part}.{name}", f"{name!r} {gained}"))
    changes += _limits(old, new)
    changes += _queue_limits(old.queue_limits, new.queue_limits)
    changes += _policy(old, new)
    if old.version != new.version:
        changes.append(Change("runner.version_changed", "version",
                              f"version {old.version} → {new.version}"))  # fmt: skip
    return changes


def _policy(old: Contract, new: Contract) -> list[Change]:
    """Who may run the runner: a requirement added refuses jobs that ran before (breaking), one
    dropped admits jobs that were refused (compatible, and shown for review)."""
    found = []
    if new.signed and not old.signed:
        found.append(Change("policy.signed_required", "signed", "only signed jobs run now"))
    elif old.signed and not new.signed:
        found.append(Change("policy.signed_dropped", "signed", "unsigned jobs run now"))
    before, after = set(old.requires_scopes), set(new.requires_scopes)
    for scope in sorted(after - before):
        found.append(Change("policy.scope_added", f"requires_scopes.{scope}",
                            f"required scope {scope!r} added"))  # fmt: skip
    for scope in sorted(before - after):
        found.append(Change("policy.scope_removed", f"requires_scopes.{scope}",
                            f"required scope {scope!r} dropped"))  # fmt: skip
    return found


def _limits(old: Contract, new: Contract) -> list[Change]:
    found = []
    if old.timeout_s != new.timeout_s:
        shorter = new.timeout_s is not None and (old.timeout_s is None or
                                                 new.timeout_s < old.timeout_s)  # fmt: skip
        found.append(Change(
            "limits.timeout_shortened" if shorter else "limits.timeout_extended", "timeout_s",
            f"timeout_s {_seconds(old.timeout_s)} → {_seconds(new.timeout_s)}",
        ))  # fmt: skip
    if old.max_attempts != new.max_attempts:
        fewer = new.max_attempts < old.max_attempts
        found.append(Change(
            "limits.max_attempts_reduced" if fewer else "limits.max_attempts_raised",
            "max_attempts", f"max_attempts {old.max_attempts} → {new.max_attempts}",
        ))  # fmt: skip
    if old.retry != new.retry:
        found.append(Change("limits.retry_changed", "retry",
                            f"retry {show(old.retry.model_dump())} → "
                            f"{show(new.retry.model_dump())}"))  # fmt: skip
    return found


def _queue_limits(old: QueueLimitsModel | None, new: QueueLimitsModel | None) -> list[Change]:
    """Queue limits: operational, never a change of the data the runner takes or returns, so
    none needs a version bump; each is still drift the gate reports until the lock is rewritten.
    A limit appearing or going away as a whole is `added`/`removed`; beside it, each value
    is tightened or loosened on its own (a value left out is no limit: the loosest)."""
    if old == new:
        return []
    if old is None:
        return [Change("queue_limits.added", "queue_limits",
                       f"queue limits declared: {_described(new)}")]  # fmt: skip
    if new is None:
        return [Change("queue_limits.removed", "queue_limits",
                       f"queue limits no longer declared (were {_described(old)})")]  # fmt: skip
    found = []
    for name, unit in (("max_running", ""), ("rate_per_s", "/s"), ("burst", "")):
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        tighter = after is not None and (before is None or after < before)
        found.append(Change(
            "queue_limits.tightened" if tighter else "queue_limits.loosened",
            f"queue_limits.{name}",
            f"{name} {_limit_value(before, unit)} → {_limit_value(after, unit)}",
        ))  # fmt: skip
    return found


def _described(limits: QueueLimitsModel | None) -> str:
    if limits is None:
        return "none"
    values = [(n, getattr(limits, n), u) for n, u in
              (("max_running", ""), ("rate_per_s", "/s"), ("burst", ""))]  # fmt: skip
    return ", ".join(f"{n} {_limit_value(v, u)}" for n, v, u in values if v is not None)


def _limit_value(value: float | None, unit: str) -> str:
    return "none" if value is None else f"{value:g}{unit}"


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:g} s"


def parse_version(version: str) -> tuple[int, int, int, str]:
    """(major, minor, patch, prerelease) of a semver string; ValueError when it is not one."""
    match = SEMVER.fullmatch(version)
    if match is None:
        raise ValueError(f"{version!r} is not semver (MAJOR.MINOR.PATCH)")
    return int(match[1]), int(match[2]), int(match[3]), match[4] or ""


def bump_level(old: str, new: str) -> Level:
    """What the version change from `old` to `new` allows (0.x read as Cargo does)."""
    a, b = parse_version(old), parse_version(new)
    if a[:3] == b[:3]:
        if a[3] == b[3]:
            return "none"
        # 1.0.0-rc.1 → 1.0.0 (or a later pre-release) releases what was announced
        if b[3] == "" or (a[3] != "" and b[3] > a[3]):
            return "none"
        return "downgrade"
    if b[:3] < a[:3]:
        return "downgrade"
    if a[0] == 0 and b[0] == 0:
        return "major" if b[1] > a[1] else "minor"
    if b[0] > a[0]:
        return "major"
    return "minor" if b[1] > a[1] else "patch"


def needed_bump(changes: Iterable[Change]) -> Bump:
    """The least bump that covers every change."""
    needed: Bump = "none"
    for change in changes:
        if _RANK[change.spec.bump] > _RANK[needed]:
            needed = change.spec.bump
    return needed


@dataclass(frozen=True)
class VersionVerdict:
    """Whether a version change covers a set of changes, and what to say either way."""

    old: str
    new: str
    level: Level
    needed: Bump

    @property
    def allowed(self) -> bool:
        if self.level == "downgrade":
            return False
        return _RANK[self.level] >= _RANK[self.needed]

    @property
    def bumped_major(self) -> bool:
        return self.level == "major"

    def explain(self) -> str:
        move = f"version {self.old} → {self.new}" if self.old != self.new else (
            f"version still {self.new}"
        )  # fmt: skip
        if self.level == "downgrade":
            return f"{move}: the version went backwards"
        if self.allowed:
            return f"{move} ({self.level} bump) covers the changes"
        return f"{move}: the changes need a {self.needed} bump, this is {_level_text(self.level)}"

    def remedy(self) -> str:
        """What version makes `contracts lock` accept the changes ("" when this one does)."""
        if self.allowed:
            return ""
        bumps = next_versions(self.old)
        if self.level != "downgrade" and self.needed in bumps:
            return f"bump the version to {bumps[self.needed]} or later"
        return "restore a version above the locked one"

    def next_step(self) -> str:
        """What to do before the lock may be rewritten, as `contracts lock` would say it."""
        if remedy := self.remedy():
            return f"{remedy}, then run `jobforge contracts lock`"
        return "review, then run `jobforge contracts lock`"


def _level_text(level: Level) -> str:
    return "no bump" if level == "none" else f"a {level} bump"


def version_verdict(old: str, new: str, changes: Iterable[Change]) -> VersionVerdict:
    return VersionVerdict(old, new, bump_level(old, new), needed_bump(changes))


def next_versions(version: str) -> dict[str, str]:
    """The smallest major and minor bumps of `version` (0.x read as Cargo does), for messages."""
    major, minor, patch, _ = parse_version(version)
    if major == 0:
        return {"major": f"0.{minor + 1}.0", "minor": f"0.{minor}.{patch + 1}"}
    return {"major": f"{major + 1}.0.0", "minor": f"{major}.{minor + 1}.0"}
