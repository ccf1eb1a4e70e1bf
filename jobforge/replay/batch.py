"""Replaying folders of bundles: loading (a bad file is one failed item, not an aborted batch),
chunks with progress, the store of failures under `.jobforge/failed/`, and report items."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jobforge import errors
from jobforge.contracts import RunnerDef
from jobforge.golden.explain import render_call
from jobforge.provision.session import ProvisionSession, Settings
from jobforge.replay.bundle import bundle_paths, load_bundle, write_bundle
from jobforge.replay.engine import ReplayResult, Target, replay, shown_path
from jobforge.report import Finding, Item, Outcome
from jobforge.runtime.http.policy import HttpPolicy

FAILED_DIR = Path(".jobforge") / "failed"
CHUNK = 500  #: runs per worker drain: bounds memory and gives the progress bar its steps

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Unreadable:
    """A bundle file that could not be loaded: reported, and the rest of the batch goes on."""

    name: str
    message: str
    file: str | None = None


def load_targets(
    paths: Sequence[Path], root: Path | None = None
) -> tuple[list[Target], list[Unreadable]]:
    """Targets named by their path (relative to `root` when under it)."""
    targets: list[Target] = []
    unreadable: list[Unreadable] = []
    for path in bundle_paths(list(paths)):
        name, file = _name(path, root), shown_path(path)
        try:
            targets.append(Target(name, load_bundle(path), file=file))
        except errors.ConfigurationError as exc:
            unreadable.append(Unreadable(name, str(exc), file=file))
    return targets, unreadable


def replay_on_throwaway(
    targets: Sequence[Target],
    runners: Mapping[str, RunnerDef],
    *,
    database_url: str | None = None,
    provider: str | None = None,
    session: ProvisionSession | None = None,
    http_policy: HttpPolicy | None = None,
    concurrency: int = 16,
    progress: Progress | None = None,
) -> list[ReplayResult]:
    """Replay on a fresh clone of the migrated template, on a throwaway server (or `session`'s)."""
    if not targets:
        return []
    own = session is None
    active = session or ProvisionSession(Settings(database_url, provider, None, None))
    try:
        with active.fresh_database() as dsn:
            results: list[ReplayResult] = []
            for start in range(0, len(targets), CHUNK):
                results += replay(targets[start : start + CHUNK], runners, dsn,
                                  http_policy=http_policy, concurrency=concurrency)  # fmt: skip
                if progress is not None:
                    progress(len(results), len(targets))
            return results
    finally:
        if own:
            active.close()


class FailedStore:
    """`.jobforge/failed/`: the bundles of failed replays, so `replay --failed` reruns just them."""

    def __init__(self, root: Path) -> None:
        self.folder = root / FAILED_DIR

    def save(self, targets: Sequence[Target], results: Sequence[ReplayResult]) -> list[Path]:
        saved = []
        for target, result in zip(targets, results, strict=True):
            if not result.ok:
                saved.append(write_bundle(self.folder, target.bundle, target.run_id))
        return saved

    def paths(self) -> list[Path]:
        return sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []

    def drop_passing(self, targets: Sequence[Target], results: Sequence[ReplayResult]) -> int:
        """Remove the saved bundles that now replay identically; how many were removed."""
        dropped = 0
        for target, result in zip(targets, results, strict=True):
            if not result.ok:
                continue
            # saved under the run's own name; a target loaded from here knows only its file
            names = {target.bundle.file_name(target.run_id)}
            if target.file is not None:
                names.add(Path(target.file).name)
            for name in names:
                if (path := self.folder / name).exists():
                    path.unlink()
                    dropped += 1
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            shutil.rmtree(self.folder)
        return dropped


def items(
    results: Sequence[ReplayResult],
    unreadable: Sequence[Unreadable] = (),
    *,
    seconds: float = 0.0,
) -> list[Item]:
    """Report items: one per replayed run (JUnit testcase), findings for each difference."""
    each = seconds / max(len(results), 1)
    found = [
        Item("replay", u.name, Outcome.error, summary="unreadable bundle",
             findings=(Finding(u.message, severity="error"),), file=u.file)
        for u in unreadable
    ]  # fmt: skip
    for result in results:
        found.append(
            Item(
                "replay",
                result.name,
                Outcome.passed if result.ok else Outcome.failed,
                summary=result.verdict.replace("_", " "),
                findings=_findings(result),
                file=result.file,
                line=result.line,
                duration_s=each,
            )
        )
    return found


def _findings(result: ReplayResult) -> tuple[Finding, ...]:
    found: list[Finding] = []
    if result.message:
        found.append(Finding(result.message, rule=result.verdict, severity="error"))
    if result.step is not None:
        found.append(
            Finding(
                "\n      ".join(line.strip() for line in result.step.lines()),
                rule="trace",
                severity="error",
                path=f"trace[{result.step.index}]",
            )
        )
    for difference in result.differences:
        found.append(
            Finding(difference.render(), rule="output", severity="error", path=difference.path)
        )
    for call in result.uncontrolled:
        found.append(
            Finding(
                render_call(call),
                rule="strict",
                severity="error",
                file=call["file"],
                line=call["line"],
            )
        )
    if not result.ok:
        found += [Finding(c, rule="context", severity="notice") for c in result.context]
    found += [
        Finding("redacted in the recording, not compared (set JOBFORGE_REDACTION_KEY where it is "
                "recorded and replayed)", rule="not_compared", severity="notice", path=path)
        for path in result.not_compared
    ]  # fmt: skip
    return tuple(found)


def _name(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)
