"""The structured results of the MCP tools: pydantic models, so the SDK publishes each tool's
output schema and checks what it returns against it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from jobforge.queue import Job, audit
from jobforge.queue.agents import SessionJob, SessionMark


class JobView(BaseModel):
    """A job as an agent sees it (its lease token is never shown: only the claim returns it)."""

    id: int
    type: str
    status: str
    project: str
    correlation_id: str | None = Field(description="the job's trace_id")
    priority: int
    run_at: datetime
    attempts: int
    max_attempts: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    lease_holder: str | None = None
    lease_expires_at: datetime | None = None
    progress_pct: float | None = None
    progress_message: str | None = None
    error: Any = None
    payload: dict[str, Any]

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id, type=job.type, status=str(job.status), project=job.project,
            correlation_id=job.trace_id, priority=job.priority, run_at=job.run_at,
            attempts=job.attempts, max_attempts=job.max_attempts, created_at=job.created_at,
            updated_at=job.updated_at, finished_at=job.finished_at, lease_holder=job.lease_holder,
            lease_expires_at=job.lease_expires_at, progress_pct=job.progress_pct,
            progress_message=job.progress_message, error=job.error, payload=job.payload,
        )  # fmt: skip


class EventView(BaseModel):
    kind: str
    at: datetime
    attempt: int | None = None
    worker: str | None = None
    actor: str | None = None
    reason: str | None = None
    data: Any = None


class Enqueued(BaseModel):
    job_id: int
    created: bool = Field(description="false: the idempotency key named an existing job")
    runner_id: str
    correlation_id: str | None = None


class Checked(BaseModel):
    job: JobView
    result: Any = Field(None, description="what the job returned, once it succeeded")
    events: list[EventView]


class Listed(BaseModel):
    jobs: list[JobView]
    next_before: int | None = Field(description="pass as `before` for the next page")


class Lease(BaseModel):
    """A claimed job and its lease: pass job_id and lease_token to heartbeat, complete, fail
    and release. Keep renewing it (heartbeat) before lease_expires_at."""

    job: JobView
    lease_token: str
    lease_expires_at: datetime


class Claimed(BaseModel):
    leases: list[Lease]


class Heartbeat(BaseModel):
    job_id: int
    state: Literal["ok", "canceled", "lost"] = Field(
        description="ok: renewed; canceled: stop and release or fail it; lost: the lease is gone"
    )


class Finished(BaseModel):
    job_id: int
    state: Literal["succeeded", "retry_scheduled", "failed", "dead", "lost"]


class Released(BaseModel):
    job_id: int
    state: Literal["released", "lost"]


class SessionJobView(BaseModel):
    job: JobView
    mark: SessionMark
    stale: bool
    blocked: bool
    reason: str | None = None

    @classmethod
    def of(cls, found: SessionJob) -> SessionJobView:
        return cls(job=JobView.of(found.job), mark=found.mark, stale=found.mark == "stale",
                   blocked=found.mark == "blocked", reason=found.reason)  # fmt: skip


class Session(BaseModel):
    correlation_id: str
    unfinished: int
    counts: dict[str, int] = Field(description="unfinished jobs per mark")
    jobs: list[SessionJobView]


class Health(BaseModel):
    tenant: str
    actor: str
    at: datetime
    due: int
    oldest_due_s: float
    running: int
    leases_expired: int
    dead_24h: int
    totals: dict[str, int] = Field(description="the tenant's jobs per state")


class AuditEventView(BaseModel):
    id: int
    job_id: int
    kind: str
    at: datetime
    actor: str | None
    login: str | None
    reason: str | None
    data: Any = None

    @classmethod
    def of(cls, e: audit.AuditEvent) -> AuditEventView:
        return cls(id=e.id, job_id=e.job_id, kind=e.kind, at=e.at, actor=e.actor, login=e.login,
                   reason=e.reason, data=e.data)  # fmt: skip


class AuditCountView(BaseModel):
    kind: str
    actor: str | None
    count: int
    first: datetime
    last: datetime


class AuditLog(BaseModel):
    mode: Literal["summary", "detail"]
    since: datetime
    total: int = Field(description="events counted (summary) or listed (detail)")
    summary: list[AuditCountView] | None = None
    events: list[AuditEventView] | None = None


class ReplayItem(BaseModel):
    name: str
    outcome: str
    summary: str
    findings: list[str]


class Replayed(BaseModel):
    job_id: int
    ok: bool = Field(description="every replayed attempt matched its recording")
    runs: list[ReplayItem] = Field(description="one per recorded attempt: the divergence report")
