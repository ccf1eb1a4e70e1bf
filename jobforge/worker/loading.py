"""Import the modules that hold handlers and collect their registry."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from jobforge.contracts import RUNNERS
from jobforge.contracts.discovery import import_modules
from jobforge.runtime.http.policy import HttpPolicy
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
    import_modules(modules, search_path or Path.cwd())
    found = Registry()
    for name in modules:
        module = sys.modules[name]
        own = getattr(module, "registry", None)
        if isinstance(own, Registry) and own is not default_registry:
            found.update(own)
    found.update(default_registry)
    for definition in RUNNERS.values():
        if definition.id not in found:
            register_runner(found, definition, http_policy=http_policy)
    return found
