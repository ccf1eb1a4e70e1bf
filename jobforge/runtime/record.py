"""The run record: one per attempt, exact enough to re-execute the run.

Which bytes each hash covers (every hash is `sha256:<64 hex>` of UTF-8 RFC 8785 JSON):
- `input.sha256`: the canonical input *after* redaction, i.e. exactly `input.canonical`.
- `output.sha256`: exactly `output.canonical` (the output after redaction).
- `trace_sha256`: the canonical JSON array of the trace steps, each `{"key", "value", "why"}`,
  in order, after redaction.
- `artifacts[].sha256`: the artifact's own bytes (text as UTF-8, JSON in canonical form).
Ids, timestamps, durations, the worker and the fingerprints stay outside every hashed body
(`provenance`), so the same run recorded twice hashes the same.

Secrets: values under keys whose normalized name (lowercase, letters and digits only) is in the
denylist or ends with one of its suffixes are replaced by "[redacted]" in the stored input,
trace, output and environment; recorded HTTP headers are redacted by the HTTP recorder. Hashes
cover the redacted forms, so a replay (which only has them) can check them.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import platform
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobforge import canonical
from jobforge.runtime.context import ArtifactRecord, DecisionStep, Environment

FORMAT: Literal["jobforge.run/1"] = "jobforge.run/1"
REDACTED = "[redacted]"

#: Normalized key names that hold secrets, and suffixes that mark one (`db_password`, `apiToken`,
#: `aws_secret_access_key`).
DEFAULT_SECRET_KEYS = frozenset({
    "password", "passwd", "secret", "token", "apikey", "accesstoken", "refreshtoken",
    "authorization", "cookie", "privatekey", "clientsecret", "accesskey", "secretkey",
    "credentials", "sessiontoken",
})  # fmt: skip
DEFAULT_SECRET_SUFFIXES = (
    "password", "secret", "token", "apikey", "privatekey", "credentials", "accesskey", "secretkey",
    "authorization",
)  # fmt: skip

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
    #: Strict mode's findings: calls to uncontrolled sources, outside every hash.
    uncontrolled: list[UncontrolledCallModel] = Field(default_factory=list)
    provenance: Provenance


class Redactor:
    def __init__(
        self,
        keys: Iterable[str] = DEFAULT_SECRET_KEYS,
        suffixes: Iterable[str] = DEFAULT_SECRET_SUFFIXES,
    ) -> None:
        self.keys = frozenset(_normal(k) for k in keys)
        self.suffixes = tuple(_normal(s) for s in suffixes)

    def is_secret(self, key: str) -> bool:
        name = _normal(key)
        return name in self.keys or name.endswith(self.suffixes)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (REDACTED if self.is_secret(k) and v is not None else self(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


def _normal(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def snapshot(value: Any, redact: Redactor) -> Snapshot:
    text = canonical.canonical_text(redact(canonical.jsonable(value)))
    return Snapshot(canonical=text, sha256=canonical.sha256_of(text.encode()))


def trace_hash(trace: list[DecisionStep]) -> str:
    return canonical.hash_of([step.model_dump(mode="json") for step in trace])


def redacted_trace(trace: list[DecisionStep], redact: Redactor) -> list[DecisionStep]:
    return [
        DecisionStep(key=s.key, value=REDACTED if redact.is_secret(s.key) else redact(s.value),
                     why=redact(s.why))
        for s in trace
    ]  # fmt: skip


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
