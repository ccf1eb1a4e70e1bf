"""What an agent does through `jobforge mcp` beyond the tenant's own calls (migrations/0023): a
claim held to the client's tenant, and a session's unfinished jobs by correlation id.

An agent acting as a worker claims, heartbeats, finishes and releases like one: the same lease
and fencing token, the same `heartbeat`/`finish`/`release` of the queue client. Only the claim
differs: `claim_v1` serves every tenant in turn, so an agent bound to one tenant claims with
`claim_tenant_v1`, which never hands it another tenant's job or lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from jobforge import errors
from jobforge.queue import calls
from jobforge.queue.models import Job
from jobforge.queue.operations import Client, Statement, Steps

#: The most jobs one claim or one session listing returns.
MAX_CLAIM = 1000
MAX_SESSION = 1000
#: A correlation id is a job's trace_id: what the enqueue call accepts for it.
MAX_CORRELATION = 200

SessionMark = Literal["running", "stale", "queued", "waiting", "blocked"]


@dataclass(frozen=True, slots=True)
class SessionJob:
    """One unfinished job of a session, marked: `stale` (running, but its lease expired: the
    worker or agent holding it stopped heartbeating), `blocked` (queued, but its runner is
    disabled in the catalogue: nothing will claim it until it is enabled), `waiting` (queued,
    not due yet: a retry's backoff or a later run_at), else `running` or `queued`."""

    job: Job
    mark: SessionMark
    reason: str | None


def correlation_problem(value: str) -> str | None:
    """Why `value` cannot be a correlation id (None: it can)."""
    if not 1 <= len(value) <= MAX_CORRELATION or not value.isprintable():
        return f"correlation id {value[:60]!r} is not 1-{MAX_CORRELATION} printable characters"
    return None


def check_tenant(client: Client) -> Steps[None]:
    """Refuse (`TenantRequired`, one line) a login that may not act for the client's tenant:
    its reads would see nothing rather than fail, so an agent would take an empty queue for
    the truth."""
    (row,) = yield Statement(("session_tenant", {}))
    if row["tenant"] is None:
        raise errors.TenantRequired(
            f"login {row['login']} may not act for tenant {client.tenant!r} "
            "(jobforge.tenant_logins)"
        )


def claim_tenant(
    client: Client,
    worker: str,
    limit: int,
    *,
    types: Sequence[str] | None = None,
    lease_s: float = calls.DEFAULT_LEASE_S,
    now: datetime | None = None,
) -> Steps[list[Job]]:
    """Claim up to `limit` due jobs of the client's tenant (of `types`, when given) for
    `worker`: the worker scope (a login that is a member of jobforge_worker), held to the
    tenant by the SQL function, not by a filter here. Rows that cannot be loaded are failed at
    once, as `claim` does."""
    if client.tenant is None:
        raise errors.TenantRequired("an agent's claim needs the tenant its connection is bound to")
    if not 1 <= limit <= MAX_CLAIM:
        raise errors.InvalidJob(f"claim limit {limit} is out of range 1-{MAX_CLAIM}")
    params = {"tenant": client.tenant, "worker": worker, "limit": limit,
              "types": list(types) if types else None, "lease_s": lease_s, "now": now}  # fmt: skip
    loaded = yield Statement(("job_claim_tenant", params), worker=True, keep=calls.CLAIM_KEEP)
    jobs, poisoned = calls.claimed(loaded)
    if poisoned:
        yield Statement(calls.finish(worker, poisoned, now, *client.backoff), worker=True)
    calls.report_quarantined(worker, poisoned)
    return jobs


def session(
    client: Client, correlation_id: str, *, limit: int = MAX_SESSION
) -> Steps[list[SessionJob]]:
    """The unfinished jobs of the client's tenant whose correlation id (trace_id) is
    `correlation_id`, oldest first, each marked (`SessionJob`)."""
    if (why := correlation_problem(correlation_id)) is not None:
        raise errors.InvalidJob(why)
    if not 1 <= limit <= MAX_SESSION:
        raise errors.InvalidJob(f"limit {limit} is out of range 1-{MAX_SESSION}")
    rows = yield Statement(("session_jobs", {"correlation_id": correlation_id, "limit": limit}))
    return [_marked(row) for row in rows]


def _marked(row: dict[str, object]) -> SessionJob:
    fields = dict(row)
    read_at = fields.pop("read_at")
    disabled = bool(fields.pop("runner_disabled"))
    job = Job.model_validate(fields)
    assert isinstance(read_at, datetime)
    if job.status == "running":
        expires = job.lease_expires_at
        if expires is not None and expires <= read_at:
            return SessionJob(job, "stale", f"its lease expired at {expires.isoformat()} "
                              f"(held by {job.lease_holder})")  # fmt: skip
        return SessionJob(job, "running", None)
    if disabled:
        return SessionJob(job, "blocked", f"runner {job.type!r} is disabled in the catalogue")
    if job.run_at > read_at:
        why = "a retry after attempt" if job.attempts else "run_at"
        detail = f" {job.attempts}" if job.attempts else ""
        return SessionJob(job, "waiting", f"{why}{detail}: due at {job.run_at.isoformat()}")
    return SessionJob(job, "queued", None)
