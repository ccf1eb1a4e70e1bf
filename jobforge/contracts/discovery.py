"""Where runners come from: `[tool.jobforge] runners` in pyproject.toml, and the
`jobforge.runners` entry-point group of installed packages."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from jobforge import errors
from jobforge.config import ProjectConfig, close_match
from jobforge.contracts.declare import RUNNERS, RunnerDef

ENTRY_POINT_GROUP = "jobforge.runners"


def import_modules(
    names: Iterable[str], search_path: Path | None = None, *, source: str = ""
) -> None:
    """Import runner modules (from `search_path` too, as `python -m` would). `source` names where
    the names come from (`<pyproject>: [tool.jobforge] runners`): it leads the message when a name
    itself is wrong (not a module name, no such module)."""
    lead = f"{source}: " if source else ""
    if search_path is not None:
        where = str(search_path.resolve())
        if where not in sys.path:
            sys.path.insert(0, where)
    for name in names:
        if problem := _not_a_module_name(name):
            raise errors.ConfigurationError(f"{lead}{name!r} is not a module name: {problem}")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # the configured module (or a package on its way) is missing, not a dependency of it
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                raise errors.ConfigurationError(
                    f"{lead}cannot import runner module {name!r}: no module named {exc.name!r}"
                    f"{_close_module(exc.name, search_path)}"
                ) from None
            raise errors.ConfigurationError(f"importing {name!r} failed: {exc}") from None
        except errors.JobforgeError:
            raise
        except SystemExit as exc:  # not an Exception, and not a reason to end pytest or the CLI
            raise errors.ConfigurationError(
                f"importing {name!r} failed: it called sys.exit({exc.code!r})"
            ) from None
        except Exception as exc:
            raise errors.ConfigurationError(
                f"importing {name!r} failed: {type(exc).__name__}: {exc}"
            ) from None


def _not_a_module_name(name: str) -> str:
    """Why `name` cannot be a module's import name ("" when it can be)."""
    if ":" in name:
        module = name.split(":", 1)[0]
        return f"write {module!r} (importing the module declares its runners; name no attribute)"
    if "/" in name or "\\" in name or name.endswith(".py"):
        dotted = name.removesuffix(".py").replace("\\", "/").strip("/").replace("/", ".")
        return f"a file path; write its import name (like {dotted!r})"
    if not all(part.isidentifier() for part in name.split(".")):
        return "write dotted Python identifiers, like 'myapp.runners'"
    return ""


def _close_module(missing: str, search_path: Path | None) -> str:
    """` (did you mean 'x'?)` when a module is spelt nearly as `missing`: a top-level module of
    the project, or for `pkg.sub`, a module of the package `pkg` (imported by now)."""
    parent, _, last = missing.rpartition(".")
    if parent:
        package_path = getattr(sys.modules.get(parent), "__path__", None)
        if package_path is None:
            return ""
        present = [m.name for m in pkgutil.iter_modules(list(package_path))]
    elif search_path is not None:
        present = [m.name for m in pkgutil.iter_modules([str(search_path)])]
    else:
        return ""
    close = close_match(last, present)
    return f" (did you mean {(parent + '.' if parent else '') + close!r}?)" if close else ""


def discover(
    config: ProjectConfig | None = None, *, entry_points: bool = True
) -> dict[str, RunnerDef]:
    """Every runner of the project: its configured modules, then installed entry points."""
    if config is not None:
        source = f"{config.root / 'pyproject.toml'}: [tool.jobforge] runners"
        import_modules(config.runners, config.root, source=source)
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
