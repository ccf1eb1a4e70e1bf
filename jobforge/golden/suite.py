"""The golden suite of a project: its case files, each checked on one lane (the in-process runs)
and one fresh interpreter (the run under another hash seed), both opened on first use and shared
by every case until `close`. `jobforge certify` and the pytest plugin's golden items both run
their cases through it; each reports the results in its own way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jobforge.config import ProjectConfig
from jobforge.contracts import RunnerDef, find_runner
from jobforge.golden.case import GoldenCase, case_id, load_case
from jobforge.golden.check import CaseResult, check_case
from jobforge.golden.fresh import FreshInterpreter
from jobforge.golden.lane import Databases, Lane
from jobforge.runtime.http.policy import HttpPolicy


@dataclass(frozen=True)
class LoadedCase:
    """A case file read, and the runner it is a case of."""

    name: str  #: <runner_id>/<case>
    path: Path
    case: GoldenCase
    definition: RunnerDef


@dataclass
class GoldenSuite:
    project: ProjectConfig
    runners: Mapping[str, RunnerDef]
    databases: Databases  #: fresh clones of the migrated template, for the lane and the child
    golden_dir: Path
    runs: int = 2  #: in-process runs per case
    fresh: bool = True  #: plus one run in a fresh interpreter (another PYTHONHASHSEED)
    strict: bool = True
    http_policy: HttpPolicy | None = None
    refresh: bool = False  #: write each case's expectation from its runs (`check_case`)
    refresh_failures: bool = False  #: with refresh: record failing runs as expectations too
    _lane: Lane | None = field(default=None, init=False, repr=False)
    _fresh: FreshInterpreter | None = field(default=None, init=False, repr=False)

    def paths(self) -> list[Path]:
        """Every case file under the golden folder."""
        return sorted(self.golden_dir.rglob("*.json")) if self.golden_dir.is_dir() else []

    def unused(self) -> list[Path]:
        """Case files of runners nobody declares any more (or in no runner's folder)."""
        return [p for p in self.paths()
                if p.relative_to(self.golden_dir).parts[0] not in self.runners]  # fmt: skip

    def name(self, path: Path) -> str:
        """<runner_id>/<case> of a case file; `ConfigurationError` when it is in no runner's
        folder."""
        runner_id, case_name = case_id(self.golden_dir, path)
        return f"{runner_id}/{case_name}"

    def load(self, path: Path) -> LoadedCase:
        """The case at `path` and its runner: `ConfigurationError` for a file that is no valid
        case, then `RunnerNotDeclared` (a subclass) for a runner nothing declares."""
        runner_id, case_name = case_id(self.golden_dir, path)
        case = load_case(path)
        definition = find_runner(runner_id, self.runners)
        return LoadedCase(f"{runner_id}/{case_name}", path, case, definition)

    def check(self, loaded: LoadedCase) -> CaseResult:
        return check_case(
            loaded.name, loaded.path, loaded.case, loaded.definition, self.lane(),
            runs=self.runs, fresh=self.fresh_interpreter(), refresh=self.refresh,
            refresh_failures=self.refresh_failures, http_policy=self.http_policy,
            strict=self.strict,
        )  # fmt: skip

    def lane(self) -> Lane:
        if self._lane is None:
            self._lane = Lane(self.databases)
        return self._lane

    def fresh_interpreter(self) -> FreshInterpreter | None:
        if not self.fresh:
            return None
        if self._fresh is None:
            self._fresh = FreshInterpreter(
                self.project.root, list(self.project.runners), self.databases,
                strict=self.strict, http_policy=self.http_policy,
            )  # fmt: skip
        return self._fresh

    def close(self) -> None:
        """End the fresh interpreter, then the lane: their clones go back."""
        fresh, self._fresh = self._fresh, None
        lane, self._lane = self._lane, None
        try:
            if fresh is not None:
                fresh.close()
        finally:
            if lane is not None:
                lane.close()
