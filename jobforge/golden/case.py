"""Golden case files: `golden/<runner_id>/<case>.json`, format `jobforge.golden/1`.

A new case needs only `input` (and, optionally, `environment`); refreshing fills in `expect`
from a recorded run. A case without an `environment` runs in the default one below, so the same
file gives the same run anywhere.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobforge import errors, validation
from jobforge.jsonfile import read_json, write_atomic
from jobforge.runtime.context import ClockSpec, DecisionStep, Environment
from jobforge.runtime.record import RunStatus

FORMAT: Literal["jobforge.golden/1"] = "jobforge.golden/1"

DEFAULT_ENVIRONMENT = Environment(
    clock=ClockSpec(start=datetime(2026, 1, 1, tzinfo=UTC)), seed=0, tenant_id="golden"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArtifactExpect(_Strict):
    sha256: str
    size: int


class EffectExpect(_Strict):
    """A follow-up job the run asks for (`ctx.enqueue`), compared instead of performed."""

    kind: Literal["enqueue"] = "enqueue"
    runner_id: str
    input: dict[str, Any]
    key: str | None = None  #: the key the runner gave (None: derived from the job id)
    priority: int | None = None
    max_attempts: int | None = None


class Expect(_Strict):
    """What a run of the case must give: compared field by field with the run record.

    `effects` absent means the run asks for no follow-up job: a runner that starts enqueueing
    one diverges from its cases until they are refreshed (a follow-up is behaviour, never
    ignored in silence). A case written before effects existed, of a runner that enqueues
    nothing, passes unchanged; a refresh writes `effects` only when there are some."""

    status: RunStatus
    output: Any = None
    trace: list[DecisionStep] = Field(default_factory=list)
    artifacts: dict[str, ArtifactExpect] = Field(default_factory=dict)
    error: dict[str, Any] | None = None  #: type and message; details are not compared
    effects: list[EffectExpect] = Field(default_factory=list)


class GoldenCase(_Strict):
    format: Literal["jobforge.golden/1"] = FORMAT
    input: dict[str, Any]
    environment: Environment | None = None
    expect: Expect | None = None

    def run_environment(self) -> Environment:
        return self.environment or DEFAULT_ENVIRONMENT


def load_case(path: Path) -> GoldenCase:
    """Read and validate a case; every problem names the file (and the field)."""
    data = read_json(path, "golden case")
    if isinstance(data, dict):
        data.setdefault("format", FORMAT)
    try:
        return GoldenCase.model_validate(data)
    except ValidationError as exc:
        problems = validation.summary(exc)
        raise errors.ConfigurationError(f"golden case {path} is invalid: {problems}") from None


def write_case(path: Path, case: GoldenCase) -> None:
    """Write atomically, keys sorted and indented, so refreshed files diff well in review."""
    write_atomic(path, case_text(case))


def case_text(case: GoldenCase) -> str:
    """The text of a golden case file, as `write_case` writes it."""
    body = case.model_dump(mode="json", exclude_none=False)
    if case.environment is None:
        body.pop("environment")
    expect = body.get("expect")
    if isinstance(expect, dict):
        if expect.get("effects"):
            expect["effects"] = [{k: v for k, v in e.items() if v is not None}
                                 for e in expect["effects"]]  # fmt: skip
        else:
            expect.pop("effects", None)  # a case of a runner that enqueues nothing reads as before
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expectation_of(record: dict[str, Any]) -> Expect:
    """The `expect` block a run record stands for."""
    output = record.get("output")
    error = record.get("error")
    return Expect(
        status=record["status"],
        output=None if output is None else json.loads(output["canonical"]),
        trace=[DecisionStep.model_validate(s) for s in record.get("trace", [])],
        artifacts={
            a["name"]: ArtifactExpect(sha256=a["sha256"], size=a["size"])
            for a in record.get("artifacts", [])
        },
        error=None if error is None else {"type": error["type"], "message": error["message"]},
        effects=[effect_expect(e) for e in record.get("effects", [])],
    )


def effect_expect(effect: dict[str, Any]) -> EffectExpect:
    """A recorded effect (`jobforge.runtime.context.Effect`) as a case expects it: without its
    index (its place in the list says it)."""
    return EffectExpect.model_validate({k: v for k, v in effect.items() if k != "index"})


def case_id(golden_dir: Path, path: Path) -> tuple[str, str]:
    """(runner id, case name) of `golden/<runner_id>/<case>.json`."""
    relative = path.relative_to(golden_dir)
    if len(relative.parts) < 2:
        raise errors.ConfigurationError(
            f"golden case {path} must live in a folder named after its runner: "
            f"{golden_dir}/<runner_id>/<case>.json"
        )
    return relative.parts[0], str(Path(*relative.parts[1:]).with_suffix(""))
