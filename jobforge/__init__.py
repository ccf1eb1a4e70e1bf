"""jobforge: a Postgres-native job queue, and a contract and determinism testing framework.

Public API re-exports only; see the README for the user surface.
"""

from __future__ import annotations

import logging

from jobforge.errors import (
    ConfigurationError,
    DatabaseUnreachable,
    JobforgeError,
    MigrationChecksumMismatch,
    MigrationError,
    ProvisionError,
)

__all__ = [
    "ConfigurationError",
    "DatabaseUnreachable",
    "JobforgeError",
    "MigrationChecksumMismatch",
    "MigrationError",
    "ProvisionError",
    "RunContext",
    "__version__",
    "runner",
]

__version__ = "0.1.0"

# A library's logs are its user's to route (the logging HOWTO's advice for libraries): without a
# handler of theirs, Python's last-resort handler would print the worker's warnings into the
# output of certify, golden tests and replay, which run workers in-process. `jobforge worker`
# installs its own handler (`jobforge.worker.logs.configure`).
logging.getLogger("jobforge").addHandler(logging.NullHandler())

# `from jobforge import runner, RunContext` (DESIGN §3) resolves on first use, so importing
# jobforge (as the pytest plugin does in every session) does not load pydantic or httpx.
_LAZY = {"runner": "jobforge.contracts", "RunContext": "jobforge.runtime.context"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jobforge' has no attribute {name!r}")
