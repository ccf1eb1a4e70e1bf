"""Each MCP tool as calls of the queue client, for the binding of the connection that calls it.

Tenant work (enqueue, check, list, resume_session, health, audit_log, replay_run) goes through
a client acting for the binding's tenant, under row-level security; worker work (claim,
heartbeat, complete, fail, release) through the queue's own lease and fencing calls, the claim
held to the tenant (`jobforge.queue.agents`). Every call names the binding's actor, so every
event it writes carries it (migrations/0014).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from jobforge import errors
from jobforge.durations import moment_since
from jobforge.mcp import results as r
from jobforge.mcp.binding import Binding
from jobforge.queue import Job, Outcome, QueueClient, audit, catalogue
from jobforge.queue.agents import correlation_problem
from jobforge.states import JobState

#: The longest lease an agent may ask for, and the default: agents think slowly.
MAX_LEASE_S = 3600.0
DEFAULT_LEASE_S = 300.0
MAX_LIST = 500
#: How a failure an agent reports is kept (jobs.error), as a worker's handler error is.
AGENT_ERROR_KIND = "agent_failed"


@dataclass(frozen=True)
class ServerConfig:
    """What the server was started with: where the queue is, and where the runners' code is
    (for replay_run)."""

    database_url: str
    project_root: Path
    provider: str | None = None


class Queue:
    """The queue as the tools use it: one client (pool) per tenant, with each call's actor."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._clients: dict[str, QueueClient] = {}
        self._lock = threading.Lock()

    def client(self, bound: Binding) -> QueueClient:
        with self._lock:
            found = self._clients.get(bound.tenant)
            if found is None:
                found = QueueClient.connect(self.config.database_url, tenant=bound.tenant,
                                            max_size=4, check=False)  # fmt: skip
                try:
                    found.check_tenant()
                except BaseException:
                    found.close()
                    raise
                self._clients[bound.tenant] = found
        return found.acting_as(bound.actor)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    # the tenant's jobs
    def enqueue(self, bound: Binding, runner_id: str, input: dict[str, Any],
                correlation_id: str | None, idempotency_key: str | None, priority: int,
                run_at: datetime | None, max_attempts: int | None) -> r.Enqueued:  # fmt: skip
        if correlation_id is not None and (why := correlation_problem(correlation_id)):
            raise errors.InvalidJob(why)
        fields: dict[str, Any] = {"priority": priority, "trace_id": correlation_id,
                                  "idempotency_key": idempotency_key}  # fmt: skip
        if run_at is not None:
            fields["run_at"] = run_at
        if max_attempts is not None:
            fields["max_attempts"] = max_attempts
        made = self.client(bound).request(runner_id, input, **fields)
        return r.Enqueued(job_id=made.job_id, created=made.created, runner_id=runner_id,
                          correlation_id=correlation_id)  # fmt: skip

    def check(self, bound: Binding, job_id: int) -> r.Checked:
        client = self.client(bound)
        job = client.get(job_id)
        result = client.result(job_id) if job.status == JobState.SUCCEEDED else None
        events = [
            r.EventView(kind=e.kind, at=e.at, attempt=e.attempt, worker=e.worker, actor=e.actor,
                        reason=e.reason, data=e.data)
            for e in client.events(job_id)
        ]  # fmt: skip
        return r.Checked(job=r.JobView.of(job), result=result, events=events)

    def list_jobs(self, bound: Binding, status: Sequence[str] | None, types: Sequence[str] | None,
             limit: int, before: int | None) -> r.Listed:  # fmt: skip
        if not 1 <= limit <= MAX_LIST:
            raise errors.InvalidJob(f"limit {limit} is out of range 1-{MAX_LIST}")
        for state in status or ():
            if state not in {s.value for s in JobState}:
                raise errors.InvalidJob(f"unknown status {state!r}: choose among "
                                        f"{', '.join(s.value for s in JobState)}")  # fmt: skip
        page = self.client(bound).list_jobs(status=status or None, type=types or None,
                                            before=before, limit=limit)  # fmt: skip
        return r.Listed(jobs=[r.JobView.of(j) for j in page.jobs], next_before=page.next_before)

    def resume_session(self, bound: Binding, correlation_id: str) -> r.Session:
        found = self.client(bound).session(correlation_id)
        counts: dict[str, int] = {}
        for item in found:
            counts[item.mark] = counts.get(item.mark, 0) + 1
        return r.Session(correlation_id=correlation_id, unfinished=len(found), counts=counts,
                         jobs=[r.SessionJobView.of(item) for item in found])  # fmt: skip

    def health(self, bound: Binding) -> r.Health:
        stats = self.client(bound).stats(succeeded=False)
        figures = stats.figures()
        return r.Health(tenant=bound.tenant, actor=bound.actor, at=stats.at, due=figures["due"],
                        oldest_due_s=figures["oldest_due_s"], running=figures["running"],
                        leases_expired=figures["leases_expired"], dead_24h=figures["dead_24h"],
                        totals=stats.totals)  # fmt: skip

    def audit_log(self, bound: Binding, mode: Literal["summary", "detail"], since: str,
                  kinds: Sequence[str] | None, actor: str | None, job_id: int | None,
                  limit: int) -> r.AuditLog:  # fmt: skip
        moment = since_moment(since)
        client = self.client(bound)
        if mode == "summary":
            audit.summary_call(moment, kinds, actor)  # bad values: one line
            counts = client.audit_summary(since=moment, kind=kinds, actor=actor)
            views = [r.AuditCountView(kind=c.kind, actor=c.actor, count=c.count, first=c.first,
                                      last=c.last) for c in counts]  # fmt: skip
            return r.AuditLog(mode=mode, since=moment, total=sum(c.count for c in counts),
                              summary=views)  # fmt: skip
        audit.list_call(moment, kinds, actor, job_id, limit)
        found = client.audit_list(since=moment, kind=kinds, actor=actor, job_id=job_id,
                                  limit=limit)  # fmt: skip
        return r.AuditLog(mode=mode, since=moment, total=len(found),
                          events=[r.AuditEventView.of(e) for e in found])  # fmt: skip

    def replay_run(self, bound: Binding, job_id: int, attempt: int | None) -> r.Replayed:
        """Replay the job's recorded attempts (or one) against the runners' code in the
        server's project, on a throwaway database; the divergence report per attempt."""
        from jobforge.golden.compare import require_deepdiff

        require_deepdiff("replay_run")  # the test stack: one line naming the extra
        from jobforge.config import ProjectConfig, find_config
        from jobforge.contracts import discover
        from jobforge.golden.execute import replay_policy
        from jobforge.replay import batch
        from jobforge.replay.run import targets_of_runs

        rows = self.client(bound).find_runs(job_ids=[job_id])
        if attempt is not None:
            rows = [row for row in rows if row.attempt == attempt]
        if not rows:
            which = f"attempt {attempt} of job {job_id}" if attempt else f"job {job_id}"
            raise errors.RunNotFound(f"no recorded run of {which} for tenant {bound.tenant}")
        root = self.config.project_root
        config = find_config(root)
        runners = discover(config)
        policy = replay_policy(config or ProjectConfig(root=root), (), "")
        started = time.perf_counter()
        outcome = batch.replay_on_throwaway(targets_of_runs(rows), runners,
                                            provider=self.config.provider, concurrency=4,
                                            http_policy=policy)  # fmt: skip
        items = batch.items(outcome, seconds=time.perf_counter() - started)
        runs = [r.ReplayItem(name=i.name, outcome=str(i.outcome), summary=i.summary,
                             findings=[f.render() for f in i.findings]) for i in items]  # fmt: skip
        return r.Replayed(job_id=job_id, ok=all(i.outcome == "passed" for i in items), runs=runs)

    # an agent acting as a worker: the queue's leases and fencing tokens
    def claim(self, bound: Binding, types: Sequence[str] | None, limit: int,
              lease_seconds: float) -> r.Claimed:  # fmt: skip
        lease = _lease(lease_seconds)
        jobs = self.client(bound).claim_tenant(bound.worker, limit, types=types or None,
                                               lease_s=lease)  # fmt: skip
        leases = []
        for job in jobs:
            assert job.lease_token is not None
            assert job.lease_expires_at is not None
            leases.append(r.Lease(job=r.JobView.of(job), lease_token=str(job.lease_token),
                                  lease_expires_at=job.lease_expires_at))  # fmt: skip
        return r.Claimed(leases=leases)

    def heartbeat(self, bound: Binding, job_id: int, lease_token: str, lease_seconds: float,
                  progress_pct: float | None, message: str | None) -> r.Heartbeat:  # fmt: skip
        client, token, _ = self._held(bound, job_id, lease_token)
        lease = _lease(lease_seconds)
        if progress_pct is not None:
            if not 0 <= progress_pct <= 100:
                raise errors.InvalidJob(f"progress {progress_pct} is out of range 0-100")
            client.progress(bound.worker, job_id, token, progress_pct, message)
        state = client.heartbeat(bound.worker, [(job_id, token)], lease_s=lease)[job_id]
        return r.Heartbeat(job_id=job_id, state=state)

    def complete(self, bound: Binding, job_id: int, lease_token: str, output: Any,
                 evidence: list[Any]) -> r.Finished:  # fmt: skip
        client, token, job = self._held(bound, job_id, lease_token)
        entry = client.catalogue_entry(job.type)
        if entry is not None and (why := catalogue.output_problem(entry, output)):
            raise errors.InvalidJob(
                f"the output of {job.type} {entry.version} is invalid: {why} (the job keeps "
                "running: complete it again, or fail it)"
            )
        result = {"output": output, "evidence": evidence}
        outcome = Outcome(job_id=job_id, lease_token=token, outcome="succeeded", result=result)
        state = client.finish(bound.worker, [outcome])[job_id]
        return r.Finished(job_id=job_id, state=state)

    def fail(self, bound: Binding, job_id: int, lease_token: str, message: str, retry: bool,
             details: Any) -> r.Finished:  # fmt: skip
        client, token, _ = self._held(bound, job_id, lease_token)
        if not message.strip():
            raise errors.InvalidJob("say why the job failed (message is empty)")
        error = {"kind": AGENT_ERROR_KIND, "message": message[:2000], "actor": bound.actor}
        if details is not None:
            error["details"] = details
        outcome = Outcome(job_id=job_id, lease_token=token, outcome="retry" if retry else "failed",
                          error=error)  # fmt: skip
        state = client.finish(bound.worker, [outcome])[job_id]
        return r.Finished(job_id=job_id, state=state)

    def release(self, bound: Binding, job_id: int, lease_token: str) -> r.Released:
        client, token, _ = self._held(bound, job_id, lease_token)
        state = client.release(bound.worker, [(job_id, token)])[job_id]
        return r.Released(job_id=job_id, state=state)

    def _held(self, bound: Binding, job_id: int, lease_token: str) -> tuple[QueueClient, UUID, Job]:
        """The client and the lease token, once the job is the tenant's: another tenant's job
        is "not found", as it is to every read (the token would not fit it either)."""
        try:
            token = UUID(lease_token)
        except ValueError:
            raise errors.InvalidJob(f"lease_token {lease_token[:60]!r} is not a UUID") from None
        client = self.client(bound)
        return client, token, client.get(job_id)  # JobNotFound outside the tenant


def _lease(seconds: float) -> float:
    if not 0 < seconds <= MAX_LEASE_S:
        raise errors.InvalidJob(f"lease_seconds {seconds} is out of range 0-{MAX_LEASE_S:g}")
    return seconds


def since_moment(text: str, now: datetime | None = None) -> datetime:
    """`30m`, `1h`, `2d` back from now, or an ISO 8601 date or time (UTC when naive)."""
    moment = moment_since(text, now)
    if moment is None:
        raise errors.InvalidJob(
            f"since {text[:60]!r}: give a duration like 30m, 1h, 2d or an ISO 8601 date"
        )
    return moment
