"""The contract drift gate: each runner's declared contract against its lock (or the locks of a
git revision), every change classified, the version policy applied, recorded inputs re-validated.

Library entry points (the CLI and `certify` are thin glue over them):

- `compare_project(config, runners, ...) -> list[RunnerDrift]`: the facts, one per runner;
- `check_project(config, runners, ...) -> Report`: the verdict (`contracts check`);
- `lock_project(config, runners, ...) -> list[LockOutcome]`: write locks the policy allows.

Verdicts. Without `against`, the baseline is the lock files in the work tree and *any*
difference fails: drift is reviewed in the change that makes it, even a compatible one. With
`against=REV`, the baseline is the locks committed at REV (a pull request's base), where
differences are expected; a runner fails only when its version change does not cover its
changes (what `lock` would refuse) or it was removed. Either way, recorded inputs that no longer
validate fail.

A lock written by another schema generator (another pydantic) differs from the declaration
without a contract change; those differences (`drift.compare_contracts`) are a notice, never
drift: `check` passes and `lock` rewrites the lock without asking for a version bump.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from jobforge import errors
from jobforge.config import ProjectConfig, did_you_mean
from jobforge.contracts.declare import RunnerDef
from jobforge.contracts.drift import (
    VersionVerdict,
    compare_contracts,
    version_verdict,
)
from jobforge.contracts.locks import locks_at, read_lock, write_lock
from jobforge.contracts.model import Contract, contract_of
from jobforge.contracts.samples import Sample, SampleCheck, check_samples, golden_inputs
from jobforge.contracts.schema_diff import Change
from jobforge.report import Finding, Item, Outcome, Report

SUITE = "contracts"
Mode = Literal["check", "against", "diff"]
#: What fixes recorded inputs the declared input model no longer takes as recorded: no version.
RECORDED_INPUTS_STEP = "whatever the version, fix the cases that hold them or undo the change"
Status = Literal["unchanged", "changed", "added", "removed"]


@dataclass(frozen=True)
class RunnerDrift:
    """What differs between one runner's lock and its declaration."""

    runner_id: str
    locked: Contract | None  #: None: never locked
    declared: Contract | None  #: None: no longer declared
    changes: tuple[Change, ...] = ()  #: contract changes (lock file would differ)
    samples: SampleCheck | None = None  #: recorded inputs against the declared input model
    file: str | None = None  #: the runner's source (or the lock's), relative to the project root
    line: int | None = None  #: its `def` line
    lock_file: str = ""
    #: schema differences another generator alone explains (information, not drift)
    generated: tuple[Change, ...] = ()
    #: why the lock is out of date beside any change, e.g. another generator ("" : it is not)
    note: str = ""
    note_rule: str = "runner.generator_changed"

    @property
    def stale(self) -> bool:
        """The lock would be rewritten although nothing in the contract changed."""
        return self.status == "unchanged" and self.locked != self.declared

    @property
    def status(self) -> Status:
        if self.locked is None:
            return "added"
        if self.declared is None:
            return "removed"
        return "changed" if self.changes else "unchanged"

    @property
    def sample_changes(self) -> tuple[Change, ...]:
        """What the recorded inputs show: inputs that no longer validate, and inputs golden
        cases expect rejected that now validate."""
        if self.samples is None or self.samples.ok:
            return ()
        found = []
        if message := self.samples.invalid_message():
            found.append(Change("input.recorded_inputs_invalid", "input", message))
        if message := self.samples.accepted_message():
            found.append(Change("input.recorded_rejection_accepted", "input", message))
        return tuple(found)

    @property
    def sample_change(self) -> Change | None:
        return next(iter(self.sample_changes), None)

    @property
    def all_changes(self) -> tuple[Change, ...]:
        return (*self.changes, *self.sample_changes)

    @property
    def verdict(self) -> VersionVerdict | None:
        """The version policy over the changes, when both sides exist. Failing recorded inputs
        count as a breaking change: they prove one the schema diff may not see."""
        if self.locked is None or self.declared is None:
            return None
        return version_verdict(self.locked.version, self.declared.version, self.all_changes)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.all_changes if c.breaking]

    def passes(self, mode: Mode) -> bool:
        if self.samples is not None and not self.samples.ok:
            return False
        if mode == "against":
            verdict = self.verdict
            return self.status == "added" or (verdict is not None and verdict.allowed)
        return self.status == "unchanged"

    def summary(self) -> str:
        if self.status == "added":
            return f"not locked yet: `jobforge contracts lock {self.runner_id}` writes its lock"
        if self.status == "removed":
            return (f"no longer declared, but {self.lock_file} locks it "
                    "(`jobforge contracts lock --prune` removes the lock)")  # fmt: skip
        assert self.declared is not None
        samples = "" if self.samples is None or self.samples.ok else self.samples.message()
        if not self.changes:
            note = f"; {self.note}" if self.note else ""
            if not samples:
                return f"{self.declared.version} matches its lock{note}"
            return (f"its contract ({self.declared.version}) matches its lock{note}, but "
                    f"{samples}; {RECORDED_INPUTS_STEP}")  # fmt: skip
        # counted as the table lists them: the contract's changes and the recorded inputs' rows
        changes = self.all_changes
        breaking = sum(1 for c in changes if c.breaking)
        counts = f"{len(changes)} change{'s' if len(changes) != 1 else ''}"
        counts += f" ({breaking} breaking, {len(changes) - breaking} compatible)"
        verdict = self.verdict  # over every change, as `contracts lock` decides
        assert verdict is not None
        step = f"; {verdict.remedy()}" if verdict.remedy() else ""
        tail = f"; {samples}; {RECORDED_INPUTS_STEP}" if samples else ""
        return f"{counts}; {verdict.explain()}{step}{tail}"

    def findings(self) -> list[Finding]:
        if self.status == "added":
            return [Finding(self.summary(), rule="runner.added", severity="compatible",
                            path=self.runner_id, file=self.file, line=self.line)]  # fmt: skip
        if self.status == "removed":
            return [Finding(self.summary(), rule="runner.removed", severity="breaking",
                            path=self.runner_id, file=self.lock_file, line=1)]  # fmt: skip
        verdict = self.verdict
        found = []
        if self.note:
            found.append(Finding(f"{self.note}; `jobforge contracts lock` rewrites the lock",
                                 rule=self.note_rule, severity="notice", path=self.lock_file,
                                 file=self.file, line=self.line))  # fmt: skip
        for change in self.all_changes:
            message = change.message
            if change.breaking and verdict is not None and change in self.changes:
                bumped = "bumped major" if verdict.bumped_major else "not bumped major"
                message += f" (version {bumped}: {verdict.old} → {verdict.new})"
            found.append(Finding(message, rule=change.rule, severity=change.severity,
                                 path=change.path, file=self.file, line=self.line))  # fmt: skip
        return found

    def item(self, mode: Mode) -> Item:
        ok = self.passes(mode)
        if mode == "diff":
            outcome = Outcome.passed if not self.all_changes and self.status == "unchanged" else (
                Outcome.failed
            )  # fmt: skip
        else:
            outcome = Outcome.passed if ok else Outcome.failed
        quiet = self.status == "unchanged" and not self.sample_change and not self.note
        findings = () if quiet else tuple(self.findings())
        return Item(SUITE, self.runner_id, outcome, summary=self.summary(), findings=findings,
                    file=self.file if self.declared else self.lock_file,
                    line=self.line if self.declared else 1)  # fmt: skip


def project_runners(
    config: ProjectConfig, runners: Mapping[str, RunnerDef]
) -> dict[str, RunnerDef]:
    """The runners a project locks: those its `[tool.jobforge] runners` modules declare.

    Runners of other installed packages (reached through entry points) are theirs to lock; a
    project that lists no modules locks every runner it is given.
    """
    if not config.runners:
        return dict(runners)
    return {rid: d for rid, d in runners.items() if _declared_in(d, config)}


def _declared_in(definition: RunnerDef, config: ProjectConfig) -> bool:
    module = definition.fn.__module__
    if any(module == m or module.startswith(m + ".") for m in config.runners):
        return True
    source = _source_file(definition)
    return source is not None and source.is_relative_to(config.root.resolve())


def compare_project(
    config: ProjectConfig,
    runners: Mapping[str, RunnerDef],
    *,
    against: str | None = None,
    only: Sequence[str] | None = None,
    samples: Mapping[str, Iterable[Sample]] | None = None,
    golden: bool = True,
    locks: Mapping[str, Contract] | None = None,
) -> list[RunnerDrift]:
    """One `RunnerDrift` per runner declared or locked (or per id in `only`), sorted by id.

    `runners` may hold more than the project's (everything `discover` found): only those of the
    project's runner modules are compared (`project_runners`).

    `against`: read the locks committed at that git revision instead of the work tree's.
    `samples`: extra recorded inputs per runner id (e.g. from run records) beside the golden
    cases' (`golden=False` leaves those out). `locks`: a baseline given directly.
    """
    directory = config.root / config.contracts_dir
    runners = project_runners(config, runners)
    if locks is None:
        locks = locks_at(against, directory) if against else _work_tree_locks(config)
    ids = sorted(set(runners) | set(locks))
    if only:
        unknown = [rid for rid in only if rid not in runners and rid not in locks]
        if unknown:
            known = ", ".join(ids) or "none"
            if len(unknown) == 1:
                named, hint = repr(unknown[0]), did_you_mean(unknown[0], ids)
            else:  # each with its own close name
                named, hint = ", ".join(f"{r!r}{did_you_mean(r, ids)}" for r in unknown), ""
            raise errors.ConfigurationError(
                f"no runner {named} is declared or locked{hint} (known: {known})"
            )
        ids = [rid for rid in ids if rid in only]
    extra = samples or {}
    # a golden_dir named in [tool.jobforge] must exist: a typo would skip its inputs in silence
    golden_dir = config.folder("golden_dir") if golden else config.root / config.golden_dir
    drifts = []
    for rid in ids:
        definition = runners.get(rid)
        checked: SampleCheck | None = None
        if definition is not None:
            recorded = list(golden_inputs(golden_dir, rid, config.root)) if golden else []
            recorded += list(extra.get(rid, ()))
            refused = golden_inputs(golden_dir, rid, config.root, rejected=True) if golden else []
            checked = (
                check_samples(definition.input, recorded, refused) if recorded or refused else None
            )
        drifts.append(runner_drift(config, rid, definition, locks.get(rid), checked))
    return drifts


def runner_drift(
    config: ProjectConfig,
    runner_id: str,
    definition: RunnerDef | None,
    locked: Contract | None,
    samples: SampleCheck | None = None,
) -> RunnerDrift:
    """One runner's declaration against its lock (either may be missing), with what its
    recorded inputs showed (`samples`, when checked)."""
    declared = contract_of(definition) if definition else None
    compared = compare_contracts(locked, declared) if locked and declared else None
    file, line = source_of(definition, config.root) if definition else (None, None)
    return RunnerDrift(runner_id, locked, declared, compared.changes if compared else (),
                       samples, file, line, _lock_label(config, runner_id),
                       compared.generated if compared else (),
                       compared.note() if compared else "",
                       compared.note_rule if compared else "")  # fmt: skip


def check_project(
    config: ProjectConfig,
    runners: Mapping[str, RunnerDef],
    *,
    against: str | None = None,
    only: Sequence[str] | None = None,
    samples: Mapping[str, Iterable[Sample]] | None = None,
    mode: Mode | None = None,
) -> Report:
    """`contracts check` as a report: one item per runner, one finding per change.

    A contracts_dir named in `[tool.jobforge]` must exist (a typo would read as "no runner is
    locked yet"); `lock_project` creates it instead."""
    config.folder("contracts_dir")
    drifts = compare_project(config, runners, against=against, only=only, samples=samples)
    chosen: Mode = mode or ("against" if against else "check")
    return Report([drift.item(chosen) for drift in drifts])


LockAction = Literal["written", "unchanged", "refused", "kept", "pruned"]


@dataclass(frozen=True)
class LockOutcome:
    drift: RunnerDrift
    action: LockAction
    reason: str = ""

    @property
    def runner_id(self) -> str:
        return self.drift.runner_id


@dataclass
class LockResult:
    outcomes: list[LockOutcome] = field(default_factory=list)

    @property
    def refused(self) -> list[LockOutcome]:
        return [o for o in self.outcomes if o.action == "refused"]

    @property
    def exit_code(self) -> int:
        return 1 if self.refused else 0


def lock_project(
    config: ProjectConfig,
    runners: Mapping[str, RunnerDef],
    *,
    only: Sequence[str] | None = None,
    force: bool = False,
    prune: bool = False,
) -> LockResult:
    """Write the lock of every runner whose version change covers its changes (all with
    `force`); with `prune`, delete the locks of runners no longer declared. A refused runner does
    not hold the others back: each lock file stands alone."""
    locks = _work_tree_locks(config, lenient=force)
    directory = config.root / config.contracts_dir
    result = LockResult()
    for drift in compare_project(config, runners, only=only, locks=locks):
        result.outcomes.append(_lock_one(drift, directory, force=force, prune=prune))
    return result


def _lock_one(drift: RunnerDrift, directory: Path, *, force: bool, prune: bool) -> LockOutcome:
    if drift.status == "removed":
        if not prune:
            return LockOutcome(drift, "kept", "no longer declared; --prune removes its lock")
        (directory / f"{drift.runner_id}.json").unlink(missing_ok=True)
        return LockOutcome(drift, "pruned", "no longer declared: lock removed")
    assert drift.declared is not None
    if drift.stale:  # nothing to bump for: the lock only catches up with its generator
        write_lock(directory, drift.declared)
        return LockOutcome(drift, "written", f"{drift.note}: lock rewritten, no contract change")
    if drift.status == "unchanged":
        return LockOutcome(drift, "unchanged", f"{drift.declared.version} already locked")
    verdict = drift.verdict
    if verdict is not None and not verdict.allowed and not force:
        return LockOutcome(drift, "refused",
                           f"{verdict.explain()}; {verdict.remedy()}, or pass --force")  # fmt: skip
    write_lock(directory, drift.declared)
    if drift.status == "added":
        return LockOutcome(drift, "written", f"{drift.declared.version} locked (new runner)")
    forced = " (forced)" if verdict is not None and not verdict.allowed else ""
    return LockOutcome(drift, "written", f"{verdict.explain() if verdict else ''}{forced}")


def _work_tree_locks(config: ProjectConfig, *, lenient: bool = False) -> dict[str, Contract]:
    directory = config.root / config.contracts_dir
    if not directory.is_dir():
        return {}
    locks: dict[str, Contract] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            locks[path.stem] = read_lock(path, _lock_label(config, path.stem))
        except errors.ConfigurationError:
            if not lenient:
                raise
    return locks


def _lock_label(config: ProjectConfig, runner_id: str) -> str:
    return (Path(config.contracts_dir) / f"{runner_id}.json").as_posix()


def _source_file(definition: RunnerDef) -> Path | None:
    try:
        source = inspect.getsourcefile(definition.fn)
    except TypeError:
        return None
    return Path(source).resolve() if source else None


def source_of(definition: RunnerDef, root: Path) -> tuple[str | None, int | None]:
    """The runner's source file (relative to `root` when inside it) and the line of its `def`,
    where a CI annotation should point."""
    source = _source_file(definition)
    if source is None:
        return None, None
    try:
        lines, start = inspect.getsourcelines(definition.fn)
    except (OSError, TypeError):
        lines, start = [], 0
    line = start or None
    for offset, text in enumerate(lines):  # past the decorators, to the def itself
        if text.lstrip().startswith(("def ", "async def ")):
            line = start + offset
            break
    try:
        shown = source.relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = str(source)
    return shown, line
