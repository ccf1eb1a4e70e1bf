"""Replay bundles as pytest items (`--jobforge-bundles DIR`): glue over `jobforge.replay`.

Each bundle re-executes on a fresh clone with its recorded environment, through the same engine
as `jobforge replay`; a divergence fails the item with the replay report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jobforge.config import ProjectConfig
from jobforge.contracts import RunnerDef, discover
from jobforge.errors import JobforgeError
from jobforge.golden.compare import require_deepdiff
from jobforge.golden.execute import replay_policy
from jobforge.provision.session import ProvisionSession
from jobforge.replay.batch import replay_on_throwaway
from jobforge.replay.bundle import load_bundle
from jobforge.replay.engine import Target
from jobforge.runtime.http.policy import HttpPolicy

#: How a refusal of an unrecorded request to a private address says to allow it under pytest.
ALLOW_HINT = (
    "pass --jobforge-http-allow-host {host} to pytest (ini jobforge_http_allow_hosts), or list "
    "it in [tool.jobforge] http_allow_hosts"
)


@dataclass
class BundleSettings:
    folder: Path
    session: ProvisionSession
    runners: dict[str, RunnerDef]
    http_policy: HttpPolicy | None = None


BUNDLES_KEY = pytest.StashKey[BundleSettings]()


def settings_for(session: ProvisionSession, project: ProjectConfig, folder: str,
                 hosts: list[str] | None = None) -> BundleSettings:  # fmt: skip
    path = Path(folder)
    resolved = (path if path.is_absolute() else project.root / path).resolve()
    return BundleSettings(folder=resolved, session=session, runners=discover(project),
                          http_policy=replay_policy(project, hosts or [], ALLOW_HINT))  # fmt: skip


class BundleFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield BundleItem.from_parent(self, name=f"replay:{self.path.stem}")


class BundleItem(pytest.Item):
    needs_jobforge_server = True  #: the plugin provides the server before the first test

    def runtest(self) -> None:
        require_deepdiff(f"replaying {self.path.name}")  # one line, before the bundle runs
        settings: BundleSettings = self.config.stash[BUNDLES_KEY]
        target = Target(self.path.name, load_bundle(self.path))
        (result,) = replay_on_throwaway([target], settings.runners, session=settings.session,
                                        http_policy=settings.http_policy)  # fmt: skip
        if not result.ok:
            raise ReplayFailure(result.report())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ReplayFailure | JobforgeError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"replay {self.path.name}"


class ReplayFailure(Exception):
    """A bundle did not replay identically; the message is the replay report."""


class BundlePlugin:
    def __init__(self, settings: BundleSettings) -> None:
        self.settings = settings

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> Any:
        if file_path.suffix == ".json" and file_path.resolve().is_relative_to(self.settings.folder):
            return BundleFile.from_parent(parent, path=file_path)
        return None
