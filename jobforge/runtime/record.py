"""The run record: one per attempt, exact enough to re-execute the run.

Which bytes each hash covers (every hash is `sha256:<64 hex>` of UTF-8 RFC 8785 JSON):
- `input.sha256`: the canonical input *after* redaction, i.e. exactly `input.canonical`.
- `output.sha256`: exactly `output.canonical` (the output after redaction).
- `trace_sha256`: the canonical JSON array of the trace steps, each `{"key", "value", "why"}`,
  in order, after redaction.
- `artifacts[].sha256`: the artifact's own bytes (text as UTF-8, JSON in canonical form); the
  bytes themselves are in the artifact store (`jobforge.queue.store`), whatever their size.
Ids, timestamps, durations, the worker and the fingerprints stay outside every hashed body
(`provenance`), so the same run recorded twice hashes the same.

Secrets (`jobforge.runtime.redact`): values under secret-looking keys are replaced by a marker
in the stored input, trace, output and environment (a keyed HMAC when a redaction key is set, so
a change still shows); recorded HTTP headers and URL query values are redacted by the HTTP
recorder, and the secret fields of recorded response bodies (JSON, form) by
`jobforge.runtime.http.redact_exchange` when the record is built. Hashes cover the redacted
forms, so a replay (which only has them) can check them.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from jobforge import canonical
from jobforge.runtime.context import ArtifactRecord, DecisionStep, Effect, Environment
from jobforge.runtime.redact import (
    DEFAULT_SECRET_KEYS,
    DEFAULT_SECRET_SUFFIXES,
    REDACTED,
    Redactor,
)

FORMAT: Literal["jobforge.run/1"] = "jobforge.run/1"

RunStatus = Literal[
    "succeeded", "failed", "retry", "invalid_input", "contract_violation", "timeout",
    "canceled", "lease_lost", "shutdown",
]  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Snapshot(_Strict):
    canonical: str
    sha256: str


class Fingerprints(_Strict):
    code_sha256: str | None  #: of the source file that defines the runner
    python: str
    packages: dict[str, str]


class Provenance(_Strict):
    """Outside every hash: where and when the run happened."""

    job_id: int | None
    attempt: int
    worker: str | None
    recorded_at: str
    duration_ms: float
    fingerprints: Fingerprints


class UncontrolledCallModel(_Strict):
    call: str
    file: str
    line: int
    hint: str
    cause: str = ""  #: in plain words: "process id", "monotonic clock", "an environment variable"
    #: "error": differs between runs or processes; "warning": differs between machines only
    severity: Literal["error", "warning", "info"] = "error"
    values: list[str] = Field(default_factory=list)  #: reprs of what the call site returned


class GlobalChangeModel(_Strict):
    """A module global of the runner's code that changed during the run (a counter, a cache)."""

    module: str
    name: str
    before: str
    after: str
    file: str
    line: int | None = None


class RunRecord(_Strict):
    format: Literal["jobforge.run/1"] = FORMAT
    runner_id: str
    runner_version: str
    status: RunStatus
    error: dict[str, Any] | None = None
    input: Snapshot
    environment: Environment
    trace: list[DecisionStep]
    trace_sha256: str
    output: Snapshot | None = None
    artifacts: list[ArtifactRecord] = Field(default_factory=list)
    #: The run's captured log lines, redacted, as JSON Lines stored beside the artifacts under
    #: the reserved name `@logs.jsonl` (hash and size here, the bytes in the artifact store).
    #: Outside the artifacts: timestamps make them differ between runs, and no comparison of
    #: artifacts (golden, replay) or declared-artifact check ever sees them.
    logs: ArtifactRecord | None = None
    #: Strict mode's findings: calls to uncontrolled sources, outside every hash.
    uncontrolled: list[UncontrolledCallModel] = Field(default_factory=list)
    #: Strict mode's view of the runner's module globals: what the run changed, outside hashes.
    globals_changed: list[GlobalChangeModel] = Field(default_factory=list)
    provenance: Provenance
    #: The follow-up jobs the run asked for (`ctx.enqueue`), inputs redacted, in order; outside
    #: every hash. Left out of the document when there are none, so a record of a run that
    #: enqueues nothing reads as it did before effects existed.
    effects: list[Effect] = Field(default_factory=list)
    #: What admitted the run (`jobforge.worker.admission`): the timeout that applied and
    #: whose it was (job, runner, default), the signatures' key ids and signed window, the
    #: policy token's claims and SHA-256 (never the token, never a secret); outside every
    #: hash. Left out when the worker recorded none (records written before it existed).
    admission: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _leave_out_no_effects(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not data.get("effects", 1):
            del data["effects"]
        if data.get("admission", 1) is None:
            del data["admission"]
        return data


def snapshot(value: Any, redact: Redactor) -> Snapshot:
    text = canonical.canonical_text(redact(canonical.jsonable(value)))
    return Snapshot(canonical=text, sha256=canonical.sha256_of(text.encode()))


def trace_hash(trace: list[DecisionStep]) -> str:
    return canonical.hash_of([step.model_dump(mode="json") for step in trace])


def redacted_trace(trace: list[DecisionStep], redact: Redactor) -> list[DecisionStep]:
    return [
        DecisionStep(key=s.key, value=redact.mask(s.value) if redact.is_secret(s.key)
                     else redact(s.value), why=redact(s.why))
        for s in trace
    ]  # fmt: skip


def redacted_effects(effects: list[Effect], redact: Redactor) -> list[Effect]:
    """The follow-ups as a record stores them: inputs redacted as the job's own input is."""
    return [e.model_copy(update={"input": redact(e.input)}) for e in effects]


def fingerprints(fn: Any, packages: Iterable[str] = ("jobforge", "pydantic")) -> Fingerprints:
    try:
        source = inspect.getsourcefile(fn)
        code = canonical.sha256_of(Path(source).read_bytes()) if source else None
    except (OSError, TypeError):
        code = None
    return Fingerprints(
        code_sha256=code, python=platform.python_version(), packages=_versions(tuple(packages))
    )


@functools.cache
def _versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions (looked up once per process: each lookup reads package metadata)."""
    found = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


__all__ = [
    "DEFAULT_SECRET_KEYS", "DEFAULT_SECRET_SUFFIXES", "FORMAT", "REDACTED", "Fingerprints",
    "GlobalChangeModel", "Provenance", "Redactor", "RunRecord", "RunStatus", "Snapshot",
    "UncontrolledCallModel", "fingerprints", "redacted_trace", "snapshot", "trace_hash",
]  # fmt: skip
