"""jobforge: a Postgres-native job queue, and a contract and determinism testing framework.

Public API re-exports only; see the README for the user surface.
"""

from __future__ import annotations

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
    "__version__",
]

__version__ = "0.1.0"
