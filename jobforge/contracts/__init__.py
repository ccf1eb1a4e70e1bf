"""Runner contracts: the `@runner` declaration, the strict contract file model, discovery."""

from __future__ import annotations

from jobforge.contracts.declare import RUNNERS, Guarantees, RetryPolicy, RunnerDef, runner
from jobforge.contracts.discovery import (
    ProjectConfig,
    close_match,
    did_you_mean,
    discover,
    find_config,
)
from jobforge.contracts.model import Contract, contract_of

__all__ = [
    "RUNNERS", "Contract", "Guarantees", "ProjectConfig", "RetryPolicy", "RunnerDef",
    "close_match", "contract_of", "did_you_mean", "discover", "find_config", "runner",
]  # fmt: skip
