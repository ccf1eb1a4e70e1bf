"""RunContext: the only sanctioned source of time, randomness, ids and outside I/O during a run.

Everything it hands out derives from the run's `Environment`, which is recorded, so a run can be
re-executed exactly:
- `now()` reads a virtual clock. It starts at `environment.clock.start` and every call advances it
  by `environment.clock.step_us` (1 ms by default) *after* answering: the first call returns the
  start, the n-th `start + (n-1)·step`. Time never depends on how long the code took.
- `random` is a `random.Random` seeded with `environment.seed`; `uuid()` draws version-4 UUIDs from
  a second generator seeded from the same seed, so taking ids does not shift `random`'s stream.
- `http` records exchanges while recording and serves them while replaying.
- `decide(key, value, **why)` appends to the ordered decision trace; `artifact(name, data)` keeps
  an output file with its hash and size.
- `connector(name)` hands out a connector config of the run's tenant (`jobforge connectors set`,
  or a ``JOBFORGE_CONNECTOR_<NAME>`` environment variable). While recording, the config is looked
  up and kept in the environment with its secret values (keys the redaction rules deem secret)
  replaced by ``"[redacted]"``; while replaying, the kept copy is handed out. A secret is thus
  used by the live run and never stored, and a replay signs or authenticates with the marker
  (which the recorded exchanges, whose secret headers are redacted too, cannot tell apart).
"""

from __future__ import annotations

import base64
import json
import random as _random
import re
import uuid as _uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from jobforge import canonical, errors, storable
from jobforge.connector_names import CONNECTOR_NAME, connector_env_var
from jobforge.runtime.http.client import RecordedHttp
from jobforge.runtime.http.exchange import Exchange
from jobforge.runtime.http.policy import HttpPolicy
from jobforge.runtime.redact import REDACTED, Redactor

Mode = Literal["record", "replay"]

#: Artifacts up to this size are kept inline in the run record (bigger ones: hash and size only).
INLINE_LIMIT_BYTES = 64 * 1024


#: The names `@runner(artifacts=...)` accepts (jobforge.contracts.declare); kept in step with it.
_ARTIFACT = re.compile(r"[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,199}")


def _artifact_name_ok(name: object) -> bool:
    return (
        isinstance(name, str)
        and _ARTIFACT.fullmatch(name) is not None
        and ".." not in name
        and all(part not in ("", ".") for part in name.split("/"))
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClockSpec(_Strict):
    start: datetime
    step_us: int = Field(default=1000, ge=0, le=3_600_000_000)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("the clock start needs a timezone")
        return value.astimezone(UTC)


class Environment(_Strict):
    """What a run may observe of the world, recorded so the run can be re-executed."""

    clock: ClockSpec
    seed: int = Field(ge=0, lt=2**63)
    tenant_id: str
    trace_id: str | None = None
    http: list[dict[str, Any]] = Field(default_factory=list)  #: `Exchange.to_json()` each
    #: The connector configs the run read (`RunContext.connector`), by name, secrets redacted.
    #: Left out of the JSON form when empty, so runs that read none store what they always did.
    connectors: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _without_empty_connectors(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        data = handler(self)
        if isinstance(data, dict) and not self.connectors:
            data.pop("connectors", None)
        return data

    @classmethod
    def fresh(cls, tenant_id: str, trace_id: str | None = None) -> Environment:
        """A new environment for a live run: now (to the millisecond) and a random seed."""
        now = datetime.now(UTC)
        start = now.replace(microsecond=now.microsecond // 1000 * 1000)
        seed = _random.SystemRandom().getrandbits(63)
        return cls(clock=ClockSpec(start=start), seed=seed, tenant_id=tenant_id, trace_id=trace_id)


class DecisionStep(_Strict):
    key: str
    value: Any
    why: dict[str, Any] = Field(default_factory=dict)


class ArtifactRecord(_Strict):
    name: str
    media: Literal["text", "bytes", "json"]
    sha256: str  #: of the artifact's bytes (text: UTF-8; JSON: RFC 8785 canonical form)
    size: int
    content: str | None = None  #: inline when at most INLINE_LIMIT_BYTES
    encoding: Literal["utf-8", "base64"] | None = None


#: Looks up a connector config of the run's tenant by name; None when there is none.
ConnectorLookup = Callable[[str], "dict[str, Any] | None"]


#: Job types (runner ids) as the queue accepts them; kept in step with enqueue_v1's check.
_RUNNER_ID = re.compile(r"[a-z0-9._-]{1,200}")
#: The fields a follow-up job may set besides its runner, input and key.
FOLLOWUP_FIELDS = frozenset({"priority", "max_attempts"})


class Effect(_Strict):
    """A follow-up job a run asked for (`ctx.enqueue`): recorded, compared by golden cases and
    replay, and enqueued by the worker together with the job's completion (succeeded only).

    `key` is the idempotency key the runner gave, or None: the worker then derives one from the
    parent job's id and `index`, the same for every attempt, so a retried parent never
    enqueues twice. Ids never enter the record's compared body, so the derived key is not here."""

    kind: Literal["enqueue"] = "enqueue"
    index: int = Field(ge=0)
    runner_id: str
    input: dict[str, Any]
    key: str | None = None
    priority: int | None = Field(default=None, ge=0, le=32767)
    max_attempts: int | None = Field(default=None, ge=1, le=1000)


#: Checks (and may normalize) a follow-up's input: (runner id, input) -> input to store.
#: Raises ContractViolation naming the problem. The worker passes one that knows the runners
#: declared in its process; a runner it does not know is enqueued with the input as given.
FollowupCheck = Callable[[str, dict[str, Any]], dict[str, Any]]


class RunContext:
    """Handed to a runner as `ctx`; the same object for sync and async runners."""

    def __init__(
        self,
        environment: Environment,
        *,
        mode: Mode = "record",
        job_id: int | None = None,
        attempt: int = 1,
        http_policy: HttpPolicy | None = None,
        progress: Callable[[float, str | None], None] | None = None,
        cancelled: Any = None,
        secrets: Redactor | None = None,
        check_followup: FollowupCheck | None = None,
        connectors: ConnectorLookup | None = None,
    ) -> None:
        """`secrets`: the names of secret fields in request bodies, left out of the hashes that
        recorded requests are matched by (the default names when None). `check_followup`:
        validates the input of a follow-up job (`enqueue`) against its runner's contract.
        `connectors`: looks up the tenant's connector configs while recording (none: every
        `connector` call fails, naming the connector)."""
        self.environment = environment
        self.mode: Mode = mode
        self.job_id = job_id
        self.attempt = attempt
        self.random = _random.Random(environment.seed)
        self._ids = _random.Random(f"jobforge.uuid:{environment.seed}")
        self._ticks = 0
        self._trace: list[DecisionStep] = []
        self._artifacts: dict[str, ArtifactRecord] = {}
        self._artifact_bytes: dict[str, bytes] = {}
        self._progress = progress
        self.cancelled = cancelled
        self._effects: list[Effect] = []
        self._check_followup = check_followup
        self._lookup = connectors
        self._secrets = secrets or Redactor(key=None)
        self._connectors: dict[str, dict[str, Any]] = {}
        self._connectors_real: dict[str, dict[str, Any]] = {}
        recorded = [Exchange.from_json(e) for e in environment.http] if mode == "replay" else []
        self.http = RecordedHttp(mode, recorded, http_policy or HttpPolicy(), secrets=secrets)

    # ids
    @property
    def tenant_id(self) -> str:
        return self.environment.tenant_id

    @property
    def trace_id(self) -> str | None:
        return self.environment.trace_id

    # time and randomness
    def now(self) -> datetime:
        clock = self.environment.clock
        value = clock.start + timedelta(microseconds=clock.step_us * self._ticks)
        self._ticks += 1
        return value

    def uuid(self) -> _uuid.UUID:
        return _uuid.UUID(int=self._ids.getrandbits(128), version=4)

    # what the run records
    def decide(self, key: str, value: Any, **why: Any) -> Any:
        """Record a decision; returns `value` so it reads inline: `x = ctx.decide("x", x)`."""
        if not isinstance(key, str) or not key:
            raise errors.ContractViolation(f"a decision key must be a non-empty string: {key!r}")
        try:
            plain = canonical.jsonable(value)
            reasons = canonical.jsonable(why)
        except errors.CanonicalError as exc:
            raise errors.ContractViolation(
                f"decision {key!r}: the value is not JSON: {exc}"
            ) from None
        self._trace.append(DecisionStep(key=key, value=plain, why=reasons))
        return value

    def artifact(self, name: str, data: str | bytes | Any) -> ArtifactRecord:
        """Keep an output file: text, bytes, or a JSON value (stored in canonical form)."""
        if not _artifact_name_ok(name):
            raise errors.ContractViolation(
                f"artifact name {name!r} must be a relative name of [A-Za-z0-9_./-], "
                "without '..', '.' or empty parts"
            )
        if name in self._artifacts:
            raise errors.ContractViolation(f"artifact {name!r} was already written in this run")
        media: Literal["text", "bytes", "json"]
        if isinstance(data, str):
            raw, media = data.encode(), "text"
        elif isinstance(data, bytes | bytearray | memoryview):
            raw, media = bytes(data), "bytes"
        else:
            try:
                raw, media = canonical.canonical_bytes(data), "json"
            except errors.CanonicalError as exc:
                raise errors.ContractViolation(f"artifact {name!r} is not JSON: {exc}") from None
        inline = len(raw) <= INLINE_LIMIT_BYTES
        content: str | None = None
        encoding: Literal["utf-8", "base64"] | None = None
        if inline:
            if media == "bytes":
                content, encoding = base64.b64encode(raw).decode(), "base64"
            else:
                content, encoding = raw.decode(), "utf-8"
        record = ArtifactRecord(
            name=name, media=media, sha256=canonical.sha256_of(raw), size=len(raw),
            content=content, encoding=encoding,
        )  # fmt: skip
        self._artifacts[name] = record
        self._artifact_bytes[name] = raw
        return record

    def enqueue(self, runner_id: str, input: Any, key: str | None = None,
                **fields: Any) -> Effect:  # fmt: skip
        """Ask for a follow-up job of `runner_id` with `input` (a mapping or a pydantic model).

        Nothing is enqueued now: the request is recorded (the run record's `effects`) and the
        worker enqueues it in the same transaction that records this job as succeeded, so a
        failed attempt or a lost lease enqueues nothing. `key` is the follow-up's idempotency
        key (default: derived from this job's id and the follow-up's position, so a retried
        job never enqueues it twice); `fields`: `priority`, `max_attempts`. A bad request is a
        `ContractViolation` here, in the runner's code, not a surprise at completion."""
        if not isinstance(runner_id, str) or not _RUNNER_ID.fullmatch(runner_id):
            raise errors.ContractViolation(
                f"follow-up runner id {runner_id!r} is invalid: use 1-200 of [a-z0-9._-]"
            )
        if unknown := sorted(set(fields) - FOLLOWUP_FIELDS):
            raise errors.ContractViolation(
                f"follow-up {runner_id}: unknown field(s) {', '.join(unknown)} "
                f"(a follow-up takes key, {', '.join(sorted(FOLLOWUP_FIELDS))})"
            )
        # 255: the idempotency key a job can store; a longer one failed the whole finish batch,
        # and so did a NUL or a lone surrogate (PostgreSQL stores neither)
        if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 255
                                or storable.text_problem(key) is not None):  # fmt: skip
            raise errors.ContractViolation(
                f"follow-up {runner_id}: the key must be a string of 1-255 characters, "
                "without NUL or lone surrogates"
            )
        data = input.model_dump(mode="json") if isinstance(input, BaseModel) else input
        if not isinstance(data, dict):
            raise errors.ContractViolation(
                f"follow-up {runner_id}: the input must be a JSON object (a mapping or a "
                f"model), not {type(data).__name__}"
            )
        try:
            plain = canonical.jsonable(data)
        except errors.CanonicalError as exc:
            raise errors.ContractViolation(
                f"follow-up {runner_id}: the input is not JSON: {exc}"
            ) from None
        if storable.json_problem(json.dumps(plain, ensure_ascii=False)) is not None:
            raise errors.ContractViolation(
                f"follow-up {runner_id}: the input holds a NUL character or a lone surrogate, "
                "which PostgreSQL cannot store"
            )
        if self._check_followup is not None:
            plain = self._check_followup(runner_id, plain)
        try:
            effect = Effect(index=len(self._effects), runner_id=runner_id, input=plain, key=key,
                            **fields)  # fmt: skip
        except ValueError as exc:
            raise errors.ContractViolation(
                f"follow-up {runner_id}: {' '.join(str(exc).split())[:300]}"
            ) from None
        self._effects.append(effect)
        return effect

    @property
    def effects(self) -> list[Effect]:
        """The follow-up jobs this run asked for, in order."""
        return list(self._effects)

    def connector(self, name: str) -> dict[str, Any]:
        """The connector config `name` of the run's tenant (see the module docstring): the real
        values while recording, the recorded copy (secrets as ``"[redacted]"``) while replaying.
        A connector that is not configured (or not recorded) is `ConnectorNotFound`, which ends
        the job failed: retrying cannot configure it."""
        if not isinstance(name, str) or CONNECTOR_NAME.fullmatch(name) is None:
            raise errors.ConnectorNotFound(
                f"connector name {str(name)[:60]!r} is invalid: use 1-128 of [a-z0-9._-]"
            )
        if self.mode == "replay":
            kept = self.environment.connectors.get(name)
            if kept is None:
                raise errors.ConnectorNotFound(
                    f"connector {name!r} was not read by the recorded run (its environment has "
                    f"{', '.join(sorted(self.environment.connectors)) or 'no connectors'})"
                )
            return dict(kept)
        if name not in self._connectors_real:
            found = self._lookup(name) if self._lookup is not None else None
            if found is None:
                raise errors.ConnectorNotFound(
                    f"connector {name!r} is not configured for tenant {self.tenant_id!r}: set "
                    f"it with `jobforge connectors set {name} ...` or the environment variable "
                    f"{connector_env_var(name)}"
                )
            self._connectors_real[name] = dict(found)
            # plain markers whatever the redaction key: a connector's secret is never compared
            plain = Redactor(self._secrets.keys, self._secrets.suffixes,
                             public=self._secrets.public, key=None)  # fmt: skip
            self._connectors[name] = canonical.jsonable(_connector_record(plain(found)))
        return dict(self._connectors_real[name])

    def progress(self, pct: float, message: str | None = None) -> None:
        if not 0 <= pct <= 100:
            raise ValueError(f"progress must be between 0 and 100, not {pct}")
        if self._progress is not None:
            self._progress(pct, message)

    @property
    def trace(self) -> list[DecisionStep]:
        return list(self._trace)

    @property
    def artifacts(self) -> dict[str, ArtifactRecord]:
        return dict(self._artifacts)

    def artifact_bytes(self, name: str) -> bytes:
        return self._artifact_bytes[name]

    def recorded_environment(self) -> Environment:
        """The environment to store: in record mode, with the HTTP exchanges this run made."""
        if self.mode == "replay":
            return self.environment
        exchanges = [e.to_json() for e in self.http.exchanges]
        update: dict[str, Any] = {"http": exchanges}
        if self._connectors:
            update["connectors"] = {**self.environment.connectors, **self._connectors}
        return self.environment.model_copy(update=update)


#: A URL's userinfo (`user:password@`) and its query values, which may hold credentials.
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")
_QUERY_VALUE = re.compile(r"(?<=[?&])([^=&#]*)=[^&#]*")


def _connector_record(config: Any) -> Any:
    """What a run record keeps of a connector config, past the key-name redaction: every header
    value (a connector's headers are credentials by purpose, whatever their names; the HTTP
    policy and the record's redactor name secrets differently) and the userinfo and query values
    of every URL. The live run still gets the config as it is."""
    if not isinstance(config, dict):
        return config
    kept: dict[str, Any] = {}
    for key, value in config.items():
        if key == "headers" and isinstance(value, dict):
            kept[key] = {name: REDACTED for name in value}
        elif isinstance(value, str) and "://" in value:
            kept[key] = _QUERY_VALUE.sub(rf"\1={REDACTED}", _USERINFO.sub(f"{REDACTED}@", value))
        else:
            kept[key] = value
    return kept
