"""The queue's records as pydantic models: what the client returns and the CLI prints."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from jobforge import canonical
from jobforge.queue import projects
from jobforge.states import JobState

#: Per-job answers of the batched worker calls.
HeartbeatState = Literal["ok", "canceled", "lost"]
FinishState = Literal["succeeded", "retry_scheduled", "failed", "dead", "lost"]
ReleaseState = Literal["released", "lost"]


def lease_id(token: UUID) -> UUID:
    """What the database keeps of a lease token (migrations/0008, jobforge.lease_id): the claim
    hands the token itself to the claimer only, so reading the tables never yields a token that
    finishes, heartbeats or records another worker's attempt."""
    return UUID(bytes=hashlib.sha256(token.bytes).digest()[:16])


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Job(_Record):
    id: int
    tenant_id: str
    project: str
    type: str
    payload: dict[str, Any]
    payload_hash: str
    status: JobState
    priority: int
    run_at: datetime
    attempts: int
    max_attempts: int
    lease_token: UUID | None = None
    lease_holder: str | None = None
    lease_expires_at: datetime | None = None
    heartbeat_at: datetime | None = None
    idempotency_key: str | None = None
    error: Any = None
    trace_id: str | None = None
    #: the job whose run enqueued this one as a follow-up (migrations/0019)
    parent_id: int | None = None
    #: what the producer attached beside the payload (migrations/0021): the job's own
    #: timeout, its signatures with their signed times, a policy token; None for most jobs.
    #: The queue never reads inside it: the worker verifies it (jobforge.trust).
    envelope: dict[str, Any] | None = None
    progress_pct: float | None = None
    progress_message: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class Attempt(_Record):
    job_id: int
    attempt: int
    worker: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str | None = None
    error: Any = None


class Event(_Record):
    id: int
    job_id: int
    kind: str
    at: datetime
    attempt: int | None = None
    worker: str | None = None
    data: Any = None
    #: who acted, as the client said (migrations/0014), and why: manual changes carry them
    actor: str | None = None
    reason: str | None = None


class JobSignature(_Record):
    """One ed25519 signature of a job's signing payload (`jobforge.trust.payload`)."""

    key_id: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")
    algorithm: Literal["ed25519"] = "ed25519"
    signature: str = Field(pattern=r"^[A-Za-z0-9_-]{86}$")  #: 64 bytes, base64url unpadded


class NewJob(_Record):
    """One job to enqueue."""

    type: str
    payload: dict[str, Any]
    idempotency_key: str | None = None
    priority: int = Field(default=0, ge=0, le=32767)
    run_at: datetime | None = None
    max_attempts: int = Field(default=3, ge=1, le=1000)
    trace_id: str | None = None
    #: The job's project (None: the client's project scope, else `default`). Idempotency keys
    #: are per (tenant, project, type): the same key in two projects makes two jobs.
    project: str | None = None
    #: The job's own timeout, within its runner's declared bound (the worker applies the
    #: smaller); None: the runner's, else the worker's default.
    timeout_s: float | None = Field(default=None, gt=0, le=7 * 86400)
    #: Signatures over the signing payload (`jobforge.produce.sign_job` makes them), and the
    #: times they cover: when they were issued and until when they hold (None: no expiry).
    signatures: tuple[JobSignature, ...] = Field(default=(), max_length=16)
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    #: A policy token for an action runner (`requires_scopes`): `jobforge tokens issue`.
    token: str | None = Field(default=None, max_length=8192)

    def envelope(self) -> dict[str, Any] | None:
        """What the queue stores beside the payload (jobs.envelope); None when nothing is
        attached. Times in canonical form, as the signing payload has them."""
        found: dict[str, Any] = {}
        if self.timeout_s is not None:
            found["timeout_s"] = self.timeout_s
        if self.signatures:
            found["signatures"] = [s.model_dump() for s in self.signatures]
            found["issued_at"] = canonical.jsonable(self.issued_at)
            found["expires_at"] = canonical.jsonable(self.expires_at)
            found["run_at"] = canonical.jsonable(self.run_at)
        if self.token is not None:
            found["token"] = self.token
        return found or None

    @model_validator(mode="after")
    def _signed_times(self) -> NewJob:
        if self.signatures and self.issued_at is None:
            raise PydanticCustomError("signatures", "signatures need the issued_at they cover")
        return self

    @field_validator("project")
    @classmethod
    def _project(cls, value: str | None) -> str | None:
        if value is not None and (why := projects.problem(value)) is not None:
            raise PydanticCustomError("project", why)
        return value


class Enqueued(_Record):
    """The answer for one enqueued job: its id, and whether this call created it."""

    job_id: int
    created: bool


class FollowUp(_Record):
    """A job a succeeded job enqueues together with its completion (migrations/0019): same
    tenant, project and trace id as the parent, which it records as its `parent_id`."""

    type: str
    payload: dict[str, Any]
    #: always set: a finish retried after its commit must not enqueue twice; at most what a job
    #: stores (255), as a longer one would fail the whole batch of outcomes it is recorded with
    idempotency_key: str = Field(min_length=1, max_length=255)
    priority: int | None = Field(default=None, ge=0, le=32767)
    max_attempts: int | None = Field(default=None, ge=1, le=1000)


class Outcome(_Record):
    """How a worker finished one job it holds the lease of."""

    job_id: int
    lease_token: UUID
    outcome: Literal["succeeded", "retry", "failed"]
    result: Any = None
    error: Any = None
    #: (base, cap) seconds of the backoff before a retry; None: the client's.
    backoff_s: tuple[float, float] | None = None
    #: Jobs to enqueue in the same transaction, when (and only when) the database records this
    #: outcome as succeeded; ignored for the other outcomes.
    followups: tuple[FollowUp, ...] = ()


class Page(_Record):
    """One page of a listing, newest first; pass `next_before` to get the next page."""

    jobs: list[Job]
    next_before: int | None


@dataclass(frozen=True, slots=True)
class RunWrite:
    """A run record to store: the columns the queue indexes and checks it by, and the document
    itself. The queue never reads inside the document; its format (jobforge.run/1) belongs to a
    higher layer, which fills these in."""

    runner_id: str
    runner_version: str
    status: str
    input_sha256: str
    output_sha256: str | None
    trace_sha256: str
    document: dict[str, Any]
    #: The run's artifacts (`jobforge.queue.blobs`): each must be a complete blob of the
    #: attempt's tenant, stored before or (one chunk at most, `data`) with the record; they are
    #: referenced from the record in the same transaction.
    artifacts: tuple[StoredArtifact, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """An artifact of a run as the store holds it: its name in the run, and its blob."""

    name: str
    sha256: str
    size: int
    #: The bytes, when they are to be stored with the record (at most one chunk: hashed and
    #: stored by the database in the record's own transaction); None when stored before.
    data: bytes | None = None


class RunRow(_Record):
    """One stored run record (jobforge.run/1) with the columns it is found by."""

    id: int
    job_id: int
    tenant_id: str
    project: str = projects.DEFAULT_PROJECT
    attempt: int
    runner_id: str
    runner_version: str
    status: str
    recorded_at: datetime
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune deleted (or, in a dry run, would delete): jobs, and the events, attempts,
    results and run records that went with them (with `runs_only`, run records alone), then the
    artifact blobs no run references any more."""

    jobs: int = 0
    events: int = 0
    attempts: int = 0
    results: int = 0
    runs: int = 0
    #: Artifact blobs no run references any more (migrations/0017), and their bytes.
    blobs: int = 0
    blob_bytes: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.jobs + other.jobs, self.events + other.events,
                      self.attempts + other.attempts, self.results + other.results,
                      self.runs + other.runs, self.blobs + other.blobs,
                      self.blob_bytes + other.blob_bytes)  # fmt: skip

    def __bool__(self) -> bool:
        return any((self.jobs, self.events, self.attempts, self.results, self.runs, self.blobs))


#: Where a prune's batch stopped: (job type, finished_at, id) of the last job it looked at.
PruneCursor = tuple[str, datetime, int]
