"""Throwaway Postgres servers and databases, anywhere: a URL, Docker, or local binaries.

Free of pytest: the plugin, the CLI and benchmarks all provision through this package.

The names below load on first use (PEP 562): the pytest plugin imports `provision.session` on
every pytest run, and an unused plugin must not pay for psycopg and the providers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobforge.provision.choose import PROVIDERS, Plan, Step, plan, provide_server
    from jobforge.provision.databases import ClonePool, Database, Template
    from jobforge.provision.server import Server
    from jobforge.provision.shared import SessionServer, stop_shared

_WHERE = {
    "PROVIDERS": "choose", "Plan": "choose", "Step": "choose", "plan": "choose",
    "provide_server": "choose", "ClonePool": "databases", "Database": "databases",
    "Template": "databases", "Server": "server", "SessionServer": "shared",
    "stop_shared": "shared",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "PROVIDERS",
    "ClonePool",
    "Database",
    "Plan",
    "Server",
    "SessionServer",
    "Step",
    "Template",
    "plan",
    "provide_server",
    "stop_shared",
]
