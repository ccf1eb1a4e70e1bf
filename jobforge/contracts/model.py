"""The contract as a file: the strict, versioned model behind `contracts/<runner_id>.json`.

Separate from the declaration on purpose: the file format must stay stable and strict
(`extra="forbid"`) while the Python declaration may grow conveniences.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobforge.contracts.declare import RunnerDef

FORMAT: Literal["jobforge.contract/1"] = "jobforge.contract/1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GuaranteesModel(_Strict):
    input_snapshot: bool
    decision_trace: bool
    output_artifact: bool
    replayable: bool


class RetryModel(_Strict):
    base_s: float = Field(gt=0)
    cap_s: float = Field(gt=0)


class Contract(_Strict):
    """A runner's contract, as locked in `contracts/<runner_id>.json`."""

    format: Literal["jobforge.contract/1"] = FORMAT
    runner_id: str = Field(pattern=r"^[a-z0-9._-]{1,200}$")
    version: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    guarantees: GuaranteesModel
    trace_keys: list[str]
    artifacts: list[str]
    timeout_s: float | None = Field(default=None, gt=0)
    max_attempts: int = Field(ge=1, le=1000)
    retry: RetryModel


def contract_of(definition: RunnerDef) -> Contract:
    """The contract a declaration states. Lists are sorted: their order carries no meaning."""
    g = definition.guarantees
    return Contract(
        runner_id=definition.id,
        version=definition.version,
        input_schema=definition.input.model_json_schema(mode="validation"),
        output_schema=definition.output.model_json_schema(mode="serialization"),
        guarantees=GuaranteesModel(
            input_snapshot=g.input_snapshot,
            decision_trace=g.decision_trace,
            output_artifact=g.output_artifact,
            replayable=g.replayable,
        ),
        trace_keys=sorted(definition.trace_keys),
        artifacts=sorted(definition.artifacts),
        timeout_s=definition.timeout_s,
        max_attempts=definition.max_attempts,
        retry=RetryModel(base_s=definition.retry.base_s, cap_s=definition.retry.cap_s),
    )
