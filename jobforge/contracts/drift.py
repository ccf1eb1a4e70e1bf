"""Drift between two contracts (a lock and a declaration), and the version policy over it.

`diff_contracts` classifies every difference with a rule of `jobforge.contracts.rules`;
`version_verdict` says whether the version change covers them: a breaking change needs a major
bump, a compatible one at least a minor bump. Under 0.x the numbers shift left, as Cargo reads
them: 0.3.0 → 0.4.0 counts as major, 0.3.0 → 0.3.1 as minor (semver itself promises nothing
before 1.0, which would leave the gate nothing to hold a 0.x runner to).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from jobforge.contracts.declare import SEMVER
from jobforge.contracts.model import Contract
from jobforge.contracts.rules import Bump
from jobforge.contracts.schema_diff import Change, diff_schemas, show

Level = Literal["major", "minor", "patch", "none", "downgrade"]
#: A patch bump covers what no bump covers (documentation): contract changes need more.
_RANK = {"none": 0, "patch": 0, "minor": 1, "major": 2}


def diff_contracts(old: Contract, new: Contract) -> list[Change]:
    """Every classified difference from the locked `old` to the declared `new`."""
    changes = diff_schemas(old.input_schema, new.input_schema, "input")
    changes += diff_schemas(old.output_schema, new.output_schema, "output")
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
    changes += _limits(old, new)
    if old.version != new.version:
        changes.append(Change("runner.version_changed", "version",
                              f"version {old.version} → {new.version}"))  # fmt: skip
    return changes


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
