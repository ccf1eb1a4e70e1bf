"""The exception hierarchy. Standard library only.

Every error a user can reach derives from `JobforgeError` and carries a message that names the
problem (a file, a host and port, a setting), so the CLI can print it without a traceback.
A class docstring doubles as the default message.
"""

from __future__ import annotations


class JobforgeError(Exception):
    """jobforge failed."""

    #: Process exit code the CLI uses for this error (DESIGN §3: 1 check failed, 2 usage/config).
    exit_code: int = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(JobforgeError):
    """The configuration is invalid."""

    exit_code = 2


class DatabaseUnreachable(ConfigurationError):
    """The database server could not be reached."""


class ProvisionError(JobforgeError):
    """No throwaway Postgres server could be provisioned."""

    exit_code = 2


class MigrationError(JobforgeError):
    """A migration could not be applied; it was rolled back."""


class MigrationChecksumMismatch(MigrationError):
    """An applied migration's file changed since it was applied."""
