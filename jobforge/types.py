"""Plain value types shared across layers. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """One row of the migrations table."""

    version: int
    name: str
    checksum: str
