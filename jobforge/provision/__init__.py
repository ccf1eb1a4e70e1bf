"""Throwaway Postgres servers and databases, anywhere: a URL, Docker, or local binaries.

Free of pytest: the plugin, the CLI and benchmarks all provision through this package.
"""

from __future__ import annotations

from jobforge.provision.choose import PROVIDERS, Plan, Step, plan, provide_server
from jobforge.provision.databases import ClonePool, Database, Template
from jobforge.provision.server import Server
from jobforge.provision.shared import SessionServer, stop_shared

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
