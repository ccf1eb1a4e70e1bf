"""Where runners come from: `[tool.jobforge] runners` in pyproject.toml, and the
`jobforge.runners` entry-point group of installed packages."""

from __future__ import annotations

import importlib
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from jobforge import errors
from jobforge.contracts.declare import RUNNERS, RunnerDef

ENTRY_POINT_GROUP = "jobforge.runners"


@dataclass(frozen=True)
class ProjectConfig:
    """`[tool.jobforge]` of a runner repository."""

    root: Path
    runners: tuple[str, ...] = ()
    golden_dir: str = "golden"
    contracts_dir: str = "contracts"
    bundles_dir: str = "bundles"  #: replay bundles `jobforge certify` replays
    extra: dict[str, Any] = field(default_factory=dict)


def find_config(start: Path | None = None) -> ProjectConfig | None:
    """The nearest pyproject.toml with a [tool.jobforge] table, from `start` upwards."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_bytes().decode("utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise errors.ConfigurationError(f"cannot read {candidate}: {exc}") from None
            tool = data.get("tool", {})
            if not isinstance(tool, dict):
                raise errors.ConfigurationError(f"{candidate}: [tool] must be a table")
            table = tool.get("jobforge")
            if table is None:
                continue
            return _parse(folder, candidate, table)
    return None


def _parse(root: Path, path: Path, table: Any) -> ProjectConfig:
    if not isinstance(table, dict):
        raise errors.ConfigurationError(f"{path}: [tool.jobforge] must be a table")
    known = {"runners", "golden_dir", "contracts_dir", "bundles_dir"}
    runners = table.get("runners", [])
    if not isinstance(runners, list) or not all(isinstance(r, str) for r in runners):
        raise errors.ConfigurationError(
            f"{path}: [tool.jobforge] runners must be a list of module names"
        )
    for key in ("golden_dir", "contracts_dir", "bundles_dir"):
        if key in table and not isinstance(table[key], str):
            raise errors.ConfigurationError(f"{path}: [tool.jobforge] {key} must be a string")
    return ProjectConfig(
        root=root,
        runners=tuple(runners),
        golden_dir=table.get("golden_dir", "golden"),
        contracts_dir=table.get("contracts_dir", "contracts"),
        bundles_dir=table.get("bundles_dir", "bundles"),
        extra={k: v for k, v in table.items() if k not in known},
    )


def import_modules(names: Iterable[str], search_path: Path | None = None) -> None:
    """Import runner modules (from `search_path` too, as `python -m` would)."""
    if search_path is not None:
        where = str(search_path.resolve())
        if where not in sys.path:
            sys.path.insert(0, where)
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # the configured module (or a package on its way) is missing, not a dependency of it
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                raise errors.ConfigurationError(
                    f"cannot import runner module {name!r}: no module named {exc.name!r}"
                ) from None
            raise errors.ConfigurationError(f"importing {name!r} failed: {exc}") from None
        except errors.JobforgeError:
            raise
        except Exception as exc:
            raise errors.ConfigurationError(
                f"importing {name!r} failed: {type(exc).__name__}: {exc}"
            ) from None


def discover(
    config: ProjectConfig | None = None, *, entry_points: bool = True
) -> dict[str, RunnerDef]:
    """Every runner of the project: its configured modules, then installed entry points."""
    if config is not None:
        import_modules(config.runners, config.root)
    if entry_points:
        for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                point.load()
            except Exception as exc:
                raise errors.ConfigurationError(
                    f"entry point {point.name} = {point.value} ({ENTRY_POINT_GROUP}) failed to "
                    f"load: {type(exc).__name__}: {exc}"
                ) from None
    return dict(RUNNERS)
