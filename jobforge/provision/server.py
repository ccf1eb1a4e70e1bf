"""What every provisioned server offers, whatever provided it."""

from __future__ import annotations

from typing import Protocol


class Server(Protocol):
    """A Postgres server we may create and drop databases in."""

    #: "url", "docker" or "local": which provisioning path supplied it.
    origin: str
    #: Wall-clock seconds it took to make the server ready (0 for a server we did not start).
    started_in_s: float

    @property
    def dsn(self) -> str:
        """Connection string of a maintenance database with CREATEDB rights."""
        ...

    def describe(self) -> str:
        """One line for reports: what server, where."""
        ...

    def stop(self) -> None:
        """Release the server (a no-op for one we did not start)."""
        ...
