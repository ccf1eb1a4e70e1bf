"""Parameters and row parsing for each queue call, shared by the sync and async clients.

Each function returns (query name, parameters); the clients only execute them. Keeping the
knowledge here once is what lets the two clients stay thin instead of being twins.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter

from jobforge import db, errors
from jobforge.db import Jsonb
from jobforge.queue import projects
from jobforge.queue.models import (
    Attempt,
    Enqueued,
    Event,
    Job,
    NewJob,
    Outcome,
    Page,
    PruneCursor,
    Pruned,
    RunRow,
    RunWrite,
)  # fmt: skip
from jobforge.states import JobState

Call = tuple[str, dict[str, Any]]
logger = logging.getLogger("jobforge.queue")

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
DEFAULT_LEASE_S = 30.0
#: Jobs a prune's batch looks at (and at most deletes) in one transaction.
DEFAULT_PRUNE_BATCH = 1000


def enqueue_many(jobs: Sequence[NewJob], now: datetime | None, max_payload_bytes: int) -> Call:
    return "job_enqueue_many", {
        "types": [j.type for j in jobs],
        # One JSON array, split server-side: quoting 1,000 jsonb literals into a Postgres array
        # cost more than the insert itself.
        "payloads": Jsonb([j.payload for j in jobs]),
        "keys": _column([j.idempotency_key for j in jobs], None),
        "priorities": _column([j.priority for j in jobs], 0),
        "run_ats": _column([j.run_at for j in jobs], None),
        "max_attempts": _column([j.max_attempts for j in jobs], 3),
        "trace_ids": _column([j.trace_id for j in jobs], None),
        "now": now,
        "max_payload_bytes": max_payload_bytes,
        "projects": _column([j.project for j in jobs], None),
        "envelopes": _envelopes(jobs),
    }


def enqueue_one(job: NewJob, now: datetime | None, max_payload_bytes: int) -> Call:
    """One job's parameters for enqueue_one_v1; the client adds its scope (`db.solo_scope`)."""
    return "job_enqueue_one", {
        "type": job.type,
        "payload": Jsonb(job.payload),
        "key": job.idempotency_key,
        "priority": job.priority,
        "run_at": job.run_at,
        "max_attempts": job.max_attempts,
        "trace_id": job.trace_id,
        "project": job.project,
        "now": now,
        "max_payload_bytes": max_payload_bytes,
        "envelope": None if (envelope := job.envelope()) is None else Jsonb(envelope),
    }


def _envelopes(jobs: Sequence[NewJob]) -> Jsonb | None:
    """The jobs' envelopes as one JSON array split server-side, as the payloads are; None (no
    parameter to parse) when no job has one, which is most batches."""
    found = [j.envelope() for j in jobs]
    return None if all(e is None for e in found) else Jsonb(found)


def _column(values: list[Any], default: Any) -> list[Any] | None:
    """NULL for a column that holds only the SQL function's default: nothing to send or parse.
    (`count` compares in C: ~20x a generator's speed on a 1,000-job batch.)"""
    return None if values.count(default) == len(values) else values


def claim(worker: str, limit: int, types: Sequence[str] | None, lease_s: float,
          now: datetime | None) -> Call:  # fmt: skip
    return "job_claim", {
        "worker": worker, "limit": limit, "types": list(types) if types else None,
        "lease_s": lease_s, "now": now,
    }  # fmt: skip


#: The columns a claimed row that cannot be loaded is still acted on by.
CLAIM_KEEP = ("id", "lease_token")


def claimed(loaded: Sequence[db.Loaded]) -> tuple[list[Job], list[Outcome]]:
    """The claimed jobs, and a `failed` outcome for each row that cannot be loaded (quarantined
    in a transaction of its own right after the claim, so one poison row never stalls a claim
    again)."""
    if all(item.row is not None for item in loaded):
        try:  # every row at once, in one call into pydantic-core: the common case
            return _JOBS.validate_python([item.row for item in loaded]), []
        except ValueError:
            pass  # one row or more does not validate: each on its own
    jobs: list[Job] = []
    poisoned: list[Outcome] = []
    for item in loaded:
        reason = item.error
        if item.row is not None:
            try:
                jobs.append(Job.model_validate(item.row))
                continue
            except ValueError as exc:
                reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                row = item.row
                item.raw.update(id=str(row.get("id")), lease_token=str(row.get("lease_token")))
        try:
            job_id, token = int(item.raw["id"] or ""), UUID(item.raw["lease_token"] or "")
        except ValueError:
            continue  # not even its id loads: the lease expires and a reaper takes it back
        message = f"the stored job cannot be loaded, so it is not run: {reason}"
        error = {"kind": "unloadable", "message": message}
        poisoned.append(Outcome(job_id=job_id, lease_token=token, outcome="failed", error=error))
    return jobs, poisoned


def report_quarantined(worker: str, poisoned: Sequence[Outcome]) -> None:
    for outcome in poisoned:
        logger.error(
            "job %d quarantined (failed, not run): %s", outcome.job_id, outcome.error["message"],
            extra={"worker": worker, "job_id": outcome.job_id},
        )  # fmt: skip


def reap(limit: int, now: datetime | None) -> Call:
    return "job_reap", {"limit": limit, "now": now}


def prune(older_than: timedelta | None, statuses: Sequence[str] | None, tenant: str | None,
          types: Sequence[str] | None, runs_only: bool, dry_run: bool, batch: int,
          after: PruneCursor | None, now: datetime | None,
          project: str | None = None) -> Call:  # fmt: skip
    after_type, after_at, after_id = after or (None, None, None)
    return "prune_batch", {
        "older_than": older_than, "statuses": list(statuses) if statuses else None,
        "tenant": tenant, "types": list(types) if types else None, "runs_only": runs_only,
        "dry_run": dry_run, "batch": batch, "after_type": after_type, "after_at": after_at,
        "after_id": after_id, "now": now, "project": projects.checked(project),
    }  # fmt: skip


def prune_pass(worker: str, every_s: float, batch: int, hold_s: float,
               now: datetime | None) -> Call:  # fmt: skip
    return "prune_pass", {
        "worker": worker, "every_s": every_s, "batch": batch, "hold_s": hold_s, "now": now,
    }  # fmt: skip


def prune_token_uses(batch: int, now: datetime | None) -> Call:
    return "token_uses_prune", {"batch": batch, "now": now}


def pruned(rows: Rows) -> Pruned:
    """The counts of a prune's batch (one row)."""
    row = rows[0]
    return Pruned(jobs=row["jobs"], events=row["events"], attempts=row["attempts"],
                  results=row["results"], runs=row["runs"])  # fmt: skip


def prune_cursor(rows: Rows) -> PruneCursor | None:
    """Where the next batch of a prune goes on from; None when nothing is left."""
    row = rows[0]
    return None if row["after_type"] is None else (row["after_type"], row["after_at"],
                                                   row["after_id"])  # fmt: skip


def heartbeat(worker: str, leases: Sequence[tuple[int, UUID]], lease_s: float,
              now: datetime | None) -> Call:  # fmt: skip
    return "job_heartbeat_many", {
        "worker": worker, "ids": [i for i, _ in leases], "tokens": [t for _, t in leases],
        "lease_s": lease_s, "now": now,
    }  # fmt: skip


def finish_batches(worker: str, outcomes: Sequence[Outcome], now: datetime | None,
                   backoff: tuple[float, float]) -> list[tuple[Call, list[int]]]:  # fmt: skip
    """One finish call per backoff the outcomes ask for (in order of first appearance), each with
    the positions in `outcomes` its answers belong to."""
    groups: dict[tuple[float, float], list[int]] = {}
    for i, o in enumerate(outcomes):
        groups.setdefault(o.backoff_s or backoff, []).append(i)
    return [(finish(worker, [outcomes[i] for i in group], now, *key), group)
            for key, group in groups.items()]  # fmt: skip


def in_order(size: int, positions: Sequence[list[int]], found: Sequence[Rows]) -> list[Any]:
    """Answers of batched calls put back in the order of the input they were split from."""
    ordered: list[Any] = [None] * size
    for where, rows in zip(positions, found, strict=True):
        for i, answer in zip(where, answers(rows), strict=True):
            ordered[i] = answer
    return ordered


def finish(worker: str, outcomes: Sequence[Outcome], now: datetime | None,
           backoff_base_s: float, backoff_cap_s: float) -> Call:  # fmt: skip
    """finish_v1, or finish_followups_v1 when a succeeded outcome has follow-ups: a batch
    without any sends (and costs) exactly what it did before follow-ups existed."""
    followups = _followups(outcomes)
    params: dict[str, Any] = {
        "worker": worker,
        "ids": [o.job_id for o in outcomes],
        "tokens": [o.lease_token for o in outcomes],
        "outcomes": [o.outcome for o in outcomes],
        "results": _column([None if o.result is None else Jsonb(o.result) for o in outcomes], None),
        "errors": _column([None if o.error is None else Jsonb(o.error) for o in outcomes], None),
        "now": now,
        "backoff_base_s": backoff_base_s,
        "backoff_cap_s": backoff_cap_s,
    }
    if not followups:
        return "job_finish_many", params
    return "job_finish_followups", {**params, "followups": Jsonb(followups)}


def _followups(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """The follow-ups of the succeeded outcomes, each naming its parent's position (1-based)."""
    return [
        {"job": position, "type": f.type, "payload": f.payload, "key": f.idempotency_key,
         **({"priority": f.priority} if f.priority is not None else {}),
         **({"max_attempts": f.max_attempts} if f.max_attempts is not None else {})}
        for position, o in enumerate(outcomes, start=1) if o.outcome == "succeeded"
        for f in o.followups
    ]  # fmt: skip


def listing(statuses: Sequence[JobState | str] | None, types: Sequence[str] | None,
            before_id: int | None, limit: int, project: str | None = None) -> Call:  # fmt: skip
    checked = [_status(s) for s in statuses] if statuses else None
    return "job_list", {
        "statuses": checked, "types": list(types) if types else None,
        "before_id": before_id, "limit": limit, "project": projects.checked(project),
    }  # fmt: skip


def get(job_id: int) -> Call:
    return "job_get", {"id": job_id}


def by_job(name: str, job_id: int) -> Call:
    """Events, attempts or result of one job (the caller has checked the job is visible)."""
    return name, {"id": job_id}


def find_runs(job_ids: Sequence[int] | None, runner_ids: Sequence[str] | None,
              statuses: Sequence[str] | None, since: datetime | None, before_id: int | None,
              limit: int, project: str | None = None) -> Call:  # fmt: skip
    if not 1 <= limit <= 100_000:
        raise errors.QueueError(f"limit must be 1-100000, not {limit}")
    return "find_runs", {
        "job_ids": list(job_ids) if job_ids is not None else None,
        "runner_ids": list(runner_ids) if runner_ids else None,
        "statuses": list(statuses) if statuses else None,
        "since": since, "before_id": before_id, "limit": limit,
        "project": projects.checked(project),
    }  # fmt: skip


def login_scopes() -> Call:
    return "login_scopes", {}


def require_worker_scope(rows: Rows, what: str) -> None:
    """Refuse, naming the login, what only a login allowed the worker scope may do (a login
    without it would read nothing at all: row-level security fails closed)."""
    if not rows[0]["worker"]:
        raise errors.TenantRequired(
            f"login {rows[0]['login']} may not {what}: name a tenant (only a superuser or a "
            "member of jobforge_worker reads across tenants)"
        )


def cancel(job_id: int, now: datetime | None) -> Call:
    return "job_cancel", {"id": job_id, "now": now}


def reschedule(job_id: int, reset_attempts: bool, run_at: datetime | None,
               now: datetime | None) -> Call:  # fmt: skip
    return "job_reschedule", {"id": job_id, "reset": reset_attempts, "run_at": run_at, "now": now}


def progress(worker: str, job_id: int, lease_token: UUID, pct: float, message: str | None,
             now: datetime | None) -> Call:  # fmt: skip
    return "job_progress", {
        "worker": worker, "id": job_id, "token": lease_token, "pct": pct, "message": message,
        "now": now,
    }  # fmt: skip


def release(worker: str, leases: Sequence[tuple[int, UUID]], now: datetime | None) -> Call:
    return "job_release_many", {
        "worker": worker, "ids": [i for i, _ in leases], "tokens": [t for _, t in leases],
        "now": now,
    }  # fmt: skip


def acknowledge_cancel(worker: str, job_id: int, lease_token: UUID, data: Any,
                       now: datetime | None) -> Call:  # fmt: skip
    return "job_acknowledge_cancel", {
        "worker": worker, "id": job_id, "token": lease_token, "data": Jsonb(data), "now": now,
    }  # fmt: skip


def record_run(worker: str, job_id: int, lease_token: UUID, run: RunWrite,
               now: datetime | None) -> Call:  # fmt: skip
    return "job_record_run", {
        "worker": worker, "id": job_id, "token": lease_token,
        "runner_id": run.runner_id, "version": run.runner_version, "status": run.status,
        "input_sha256": run.input_sha256, "output_sha256": run.output_sha256,
        "trace_sha256": run.trace_sha256, "record": Jsonb(run.document),
        "names": [a.name for a in run.artifacts], "shas": [a.sha256 for a in run.artifacts],
        "sizes": [a.size for a in run.artifacts],
        "datas": ([a.data for a in run.artifacts]
                  if any(a.data is not None for a in run.artifacts) else None),
        "now": now,
    }  # fmt: skip


def _status(value: JobState | str) -> str:
    try:
        return JobState(value).value
    except ValueError:
        choices = ", ".join(s.value for s in JobState)
        raise errors.InvalidJob(f"unknown status {value!r}: choose one of {choices}") from None


Rows = list[dict[str, Any]]


#: Rows to answers in one call into pydantic-core: `model_construct` per row, which skips the
#: validation, still cost ~8 us a row in Python (8 ms of a 1,000-job batch); this is ~1 us.
_ENQUEUED = TypeAdapter(list[Enqueued])
_JOBS = TypeAdapter(list[Job])


def enqueued_one(rows: Rows) -> Enqueued:
    (row,) = rows
    return Enqueued.model_validate(row)


def enqueued(rows: Rows) -> list[Enqueued]:
    return _ENQUEUED.validate_python(rows)


def jobs(rows: Rows) -> list[Job]:
    return [Job.model_validate(r) for r in rows]


def found(job_id: int, rows: Rows) -> Job:
    if not rows:
        raise errors.JobNotFound(f"job {job_id} not found")
    return Job.model_validate(rows[0])


def page(jobs: list[Job], limit: int) -> Page:
    return Page(jobs=jobs, next_before=jobs[-1].id if len(jobs) == limit else None)


def events(rows: Rows) -> list[Event]:
    return [Event.model_validate(r) for r in rows]


def attempts(rows: Rows) -> list[Attempt]:
    return [Attempt.model_validate(r) for r in rows]


def runs(rows: Rows) -> list[dict[str, Any]]:
    return [r["record"] for r in rows]


def run_rows(rows: Rows) -> list[RunRow]:
    return [RunRow.model_validate(r) for r in rows]


def result(rows: Rows) -> Any:
    return rows[0]["result"] if rows else None


def answers(rows: Rows) -> list[Any]:
    """Per-lease answers of heartbeat, finish and release, in the order the leases were given."""
    return [r["state"] for r in rows]


def first_per_job(job_ids: Sequence[int], answers: Sequence[Any]) -> dict[int, Any]:
    """Per-job answers: the first answer for a job listed twice."""
    found: dict[int, Any] = {}
    for job_id, answer in zip(job_ids, answers, strict=True):
        found.setdefault(job_id, answer)
    return found


def single(rows: Rows) -> Any:
    """The one value of a one-row, one-column answer (cancel, reschedule, progress)."""
    return next(iter(rows[0].values()))
