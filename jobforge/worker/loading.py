"""Import the modules that hold handlers and collect their registry."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from jobforge import errors
from jobforge.contracts import RUNNERS
from jobforge.runtime.http import HttpPolicy
from jobforge.worker.registry import Registry, default_registry
from jobforge.worker.runners import register_runner


def load_handlers(
    modules: Sequence[str],
    *,
    search_path: Path | None = None,
    http_policy: HttpPolicy | None = None,
) -> Registry:
    """Import `modules` (from `search_path` too, by default the working directory, as
    `python -m` would) and return the handlers they registered: in the default registry
    (`@jobforge.worker.handler`) or in a module-level `registry` of their own."""
    where = str((search_path or Path.cwd()).resolve())
    if where not in sys.path:
        sys.path.insert(0, where)
    found = Registry()
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                raise errors.ConfigurationError(
                    f"cannot import runner module {name!r}: no module named {exc.name!r} "
                    f"(searched the working directory and the installed packages)"
                ) from None
            raise errors.ConfigurationError(f"importing {name!r} failed: {exc}") from None
        except Exception as exc:
            raise errors.ConfigurationError(
                f"importing {name!r} failed: {type(exc).__name__}: {exc}"
            ) from None
        own = getattr(module, "registry", None)
        if isinstance(own, Registry) and own is not default_registry:
            found.update(own)
    found.update(default_registry)
    for definition in RUNNERS.values():
        if definition.id not in found:
            register_runner(found, definition, http_policy=http_policy)
    return found
