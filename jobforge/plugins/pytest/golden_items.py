"""Golden cases and contract locks as pytest items: glue over `jobforge.golden`.

Imported only when the project has a `[tool.jobforge]` table (or a golden dir option), so a
suite that does not use jobforge pays nothing.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jobforge.config import ProjectConfig
from jobforge.contracts import Contract, RunnerNotDeclared, discover
from jobforge.contracts.gate import RunnerDrift, runner_drift
from jobforge.errors import (
    JobforgeError,
    JobforgeWarning,
    NotComparedWarning,
    StrictModeWarning,
)
from jobforge.golden.check import CaseResult
from jobforge.golden.compare import require_deepdiff
from jobforge.golden.execute import replay_policy
from jobforge.golden.explain import render_call
from jobforge.golden.suite import GoldenSuite
from jobforge.plugins.pytest.bundle_items import ALLOW_HINT
from jobforge.provision.session import ProvisionSession

VERDICT = "jobforge_verdict"


@dataclass
class GoldenSettings:
    suite: GoldenSuite  #: the cases, their lane and fresh interpreter (`jobforge.golden.suite`)
    contracts_dir: Path
    ci: bool

    @property
    def golden_dir(self) -> Path:
        return self.suite.golden_dir

    def close(self) -> None:
        self.suite.close()


class GoldenFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        settings: GoldenSettings = self.config.stash[SETTINGS_KEY]
        name = settings.suite.name(self.path)
        yield GoldenItem.from_parent(self, name=name, runner_id=name.split("/", 1)[0])


class GoldenItem(pytest.Item):
    needs_jobforge_server = True  #: the plugin provides the server before the first test

    def __init__(self, *, runner_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runner_id = runner_id
        self.add_marker(pytest.mark.jobforge_golden)

    def runtest(self) -> None:
        require_deepdiff(f"golden case {self.name}")  # one line, before the case runs
        settings: GoldenSettings = self.config.stash[SETTINGS_KEY]
        try:
            loaded = settings.suite.load(self.path)
        except RunnerNotDeclared as exc:
            raise GoldenFailure(f"golden case {self.name}: {exc}") from None
        result = settings.suite.check(loaded)
        # a failing run refresh did not record fails its item: counted with the failures
        counted = "failed" if result.verdict == "unrecorded" else result.verdict
        self.user_properties.append((VERDICT, counted))
        _warn(result, self.path)
        if result.verdict in ("failed", "nondeterministic", "unrecorded"):
            raise GoldenFailure(result.report())
        if result.verdict == "missing":
            if settings.ci:
                raise GoldenFailure(result.report())
            pytest.skip(result.report())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, GoldenFailure | JobforgeError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"golden {self.name}"


def _warn(result: CaseResult, case: Path) -> None:
    """Strict-mode warnings at the runner's line, and paths not compared: pytest's summary."""
    for call in result.warnings:
        warnings.warn_explicit(
            StrictModeWarning(f"golden case {result.name}: {render_call(call)}"),
            StrictModeWarning, call["file"], call["line"],
        )  # fmt: skip
    if result.not_compared:
        note = NotComparedWarning(result.not_compared_note())  # at the case file, where it is
        warnings.warn_explicit(note, NotComparedWarning, str(case), 1)
    if result.verdict == "refreshed" and result.failure:  # never silently
        recorded = JobforgeWarning(f"golden case {result.name}: {result.recorded_failure_note()}")
        warnings.warn_explicit(recorded, JobforgeWarning, str(case), 1)


class ContractLockItem(pytest.Item):
    """A lock file `contracts/<runner_id>.json`: valid, its runner still declared, and the
    declaration not drifted from it (the drift gate's engine, `jobforge.contracts.drift`)."""

    def runtest(self) -> None:
        settings: GoldenSettings = self.config.stash[SETTINGS_KEY]
        try:
            lock = Contract.model_validate_json(self.path.read_text())
        except ValueError as exc:
            raise GoldenFailure(f"contract lock {self.path} is invalid: {exc}") from None
        if lock.runner_id != self.path.stem:
            raise GoldenFailure(
                f"contract lock {self.path} is for {lock.runner_id!r}, not {self.path.stem!r}"
            )
        definition = settings.suite.runners.get(lock.runner_id)
        if definition is None:
            raise GoldenFailure(
                f"contract lock {self.path}: runner {lock.runner_id!r} is no longer declared"
            )
        drift = runner_drift(settings.suite.project, lock.runner_id, definition, lock)
        if drift.changes:
            raise GoldenFailure(_drift_report(self.path, drift))
        for finding in drift.findings():  # no drift, but the lock is out of date: say so
            warnings.warn(JobforgeWarning(f"contract lock {self.path}: {finding.message}"),
                          stacklevel=1)  # fmt: skip

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, GoldenFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"contract lock {self.name}"


def _drift_report(path: Path, drift: RunnerDrift) -> str:
    """What the version says about the changes, then the drift gate's findings, one a line."""
    verdict = drift.verdict
    assert verdict is not None
    changes, breaking = len(drift.changes), len(drift.breaking)
    lines = [
        f"contract lock {path}: {drift.runner_id} drifted from its lock ({changes} "
        f"change{'s' if changes != 1 else ''}, {breaking} breaking; {verdict.explain()}); "
        f"{verdict.next_step()}",  # what `contracts lock` would accept, never advice it refuses
    ]
    lines += [f"  {finding.render()}" for finding in drift.findings()]
    return "\n".join(lines)


class ContractLockFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield ContractLockItem.from_parent(self, name=f"lock:{self.path.stem}")


class GoldenFailure(Exception):
    """A golden case or lock failed; its message is the whole report."""


SETTINGS_KEY = pytest.StashKey[GoldenSettings]()


def settings_for(
    session: ProvisionSession, project: ProjectConfig, options: dict[str, Any]
) -> GoldenSettings:
    # a folder named in [tool.jobforge] must exist (a typo would turn its checks off in silence)
    golden_dir = Path(options.get("golden_dir") or project.folder("golden_dir"))
    contracts_dir = project.folder("contracts_dir").resolve()
    suite = GoldenSuite(
        project, discover(project), session.fresh_database, golden_dir.resolve(),
        runs=int(options.get("runs") or 2), fresh=_yes(options.get("fresh")),
        strict=_yes(options.get("strict")), refresh=bool(options.get("refresh")),
        refresh_failures=bool(options.get("refresh_failures")),
        http_policy=replay_policy(project, options.get("http_allow_hosts") or [], ALLOW_HINT),
    )  # fmt: skip
    return GoldenSettings(suite, contracts_dir, ci=os.environ.get("CI", "").lower() == "true")


def collects(settings: GoldenSettings, path: Path) -> type[pytest.File] | None:
    """Which collector takes `path`: a case of a declared runner, a lock file, or none."""
    if path.suffix != ".json":
        return None
    resolved = path.resolve()
    if resolved.is_relative_to(settings.golden_dir):
        parts = resolved.relative_to(settings.golden_dir).parts
        return GoldenFile if len(parts) >= 2 and parts[0] in settings.suite.runners else None
    if resolved.parent == settings.contracts_dir:
        return ContractLockFile
    return None


class GoldenPlugin:
    """Registered when golden cases are configured: collection, verdict counts, summary."""

    def __init__(self, settings: GoldenSettings) -> None:
        self.settings = settings
        self.verdicts: dict[str, int] = {}

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> Any:
        collector = collects(self.settings, file_path)
        return None if collector is None else collector.from_parent(parent, path=file_path)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        verdicts = [str(value) for name, value in report.user_properties if name == VERDICT]
        if not verdicts and report.failed and "jobforge_golden" in report.keywords:
            verdicts = ["failed"]  # a case that could not be checked: not JSON, invalid, no runner
        for verdict in verdicts:
            self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.USAGE_ERROR:  # stopped before any case ran: no counts
            return
        unused = self.settings.suite.unused()
        terminalreporter.section("jobforge")
        terminalreporter.write_line(summary_line(self.verdicts, unused))
        if not self.settings.golden_dir.is_dir():  # nothing collected: say where it looked
            terminalreporter.write_line(
                f"  no golden cases folder: {self.settings.golden_dir} does not exist "
                "([tool.jobforge] golden_dir; cases go in <golden_dir>/<runner_id>/<case>.json)"
            )
        for path in unused:
            terminalreporter.write_line(
                f"  unused golden case ({_why_unused(self.settings, path)}): {path}"
            )

    @pytest.hookimpl(tryfirst=True)  # the lane's clones go back before the session closes
    def pytest_unconfigure(self) -> None:
        self.settings.close()


def _why_unused(settings: GoldenSettings, path: Path) -> str:
    """The runner folder a case is in names the runner, however deep the case file lies."""
    parts = path.relative_to(settings.golden_dir).parts
    if len(parts) < 2:
        return f"not in a runner folder: {settings.golden_dir.name}/<runner_id>/<case>.json"
    return f"no runner {parts[0]!r}"


def summary_line(counts: dict[str, int], unused: list[Path]) -> str:
    parts = [f"{counts.get(k, 0)} {k}" for k in
             ("passed", "failed", "nondeterministic", "refreshed", "missing")]  # fmt: skip
    parts.append(f"{len(unused)} unused")
    return "golden: " + ", ".join(parts)


__all__ = ["GoldenFile", "GoldenItem", "GoldenSettings"]


def _yes(value: Any) -> bool:
    return str(value or "yes").lower() not in ("no", "false", "0", "off")
