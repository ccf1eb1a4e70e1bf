"""Runner contracts: the `@runner` declaration, the strict contract file model, discovery."""

from __future__ import annotations

from jobforge.contracts.declare import (
    RUNNERS,
    Guarantees,
    Limits,
    RetryPolicy,
    RunnerDef,
    RunnerNotDeclared,
    find_runner,
    not_declared,
    runner,
)
from jobforge.contracts.discovery import discover
from jobforge.contracts.model import Contract, contract_of

__all__ = [
    "RUNNERS", "Contract", "Guarantees", "Limits", "RetryPolicy", "RunnerDef", "RunnerNotDeclared",
    "contract_of", "discover", "find_runner", "not_declared", "runner",
]  # fmt: skip
