"""A job told to stop before it finished, and what follows once it has.

The heartbeat brings back cancellations and lost leases, the shutdown stops what outlives its
grace period: the job's context is told why (`ctx.stop_reason`, `ctx.cancelled`), then its task
is cancelled. An async handler is cancelled at once; a sync one runs on a thread that cannot be
interrupted, so it gets `cancel_grace_s` to notice `ctx.cancelled` first. Once stopped, a job
has no outcome: a lost lease is only counted, a shutdown's lease is kept for release, and a
canceled job's `on_cancel` compensation runs and is acknowledged to the database.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from jobforge.queue import AsyncQueueClient
from jobforge.worker import logs
from jobforge.worker.context import JobContext, StopReason
from jobforge.worker.executor import Executor
from jobforge.worker.leases import Holdings, Lease, Running, lease_of
from jobforge.worker.metrics import Metrics
from jobforge.worker.outcomes import error_record

logger = logs.logger


def stop_job(
    holdings: Holdings, lease: Lease, reason: StopReason, *, cancel_grace_s: float = 0.0
) -> None:
    """Tell the job of `lease` to stop; a sync handler's task is cancelled `cancel_grace_s` later
    (a thread cannot be interrupted: it gets that long to see ctx.cancelled and return, and is
    abandoned only if it does not). The shutdown passes a short notice: its grace period is
    over, but a handler that watches the flag returns instead of being counted abandoned."""
    held = holdings.held.get(lease)
    if held is not None:
        held.ctx.stop(reason)
    running = holdings.running.get(lease)
    if running is None or running.task is None or running.task.done():
        return
    task = running.task
    if running.spec.is_async or cancel_grace_s <= 0:
        task.cancel()
    else:  # a thread cannot be interrupted: give it time to see ctx.cancelled
        asyncio.get_running_loop().call_later(cancel_grace_s, lambda: task.done() or task.cancel())


async def after_stop(
    running: Running,
    holdings: Holdings,
    *,
    client: AsyncQueueClient,
    executor: Executor,
    metrics: Metrics,
    worker: str,
) -> None:
    """A job stopped by a cancellation, a lost lease or the shutdown: nothing to complete."""
    job, ctx = running.job, running.ctx
    lease = lease_of(job)
    held = holdings.held.pop(lease, None)
    fields = logs.job_fields(job, worker)
    if ctx.stop_reason == "lease_lost":
        metrics.inc("lost", job_type=job.type)
        logger.warning("job %d: lease lost, its outcome is dropped", job.id, extra=fields)
    elif ctx.stop_reason == "shutdown" and held is not None:
        holdings.release[lease] = job.type
    elif ctx.stop_reason == "canceled" and held is not None:
        metrics.inc("canceled", job_type=job.type)
        await _compensate(running, lease[1], client=client, executor=executor, worker=worker)


async def drop_waiting(
    ctx: JobContext,
    reason: StopReason,
    holdings: Holdings,
    *,
    client: AsyncQueueClient,
    metrics: Metrics,
    worker: str,
) -> None:
    """A job claimed ahead that was canceled, or whose lease was lost, before it started: it
    never runs. A cancellation is acknowledged with nothing to compensate (no handler ran)."""
    job = ctx.job
    lease = lease_of(job)
    held = holdings.held.pop(lease, None)
    ctx.stop(reason)
    fields = logs.job_fields(job, worker)
    if reason == "lease_lost":
        metrics.inc("lost", job_type=job.type)
        logger.warning("job %d: lease lost before it started", job.id, extra=fields)
    elif held is not None:
        metrics.inc("canceled", job_type=job.type)
        try:
            await client.acknowledge_cancel(worker, job.id, lease[1], {"compensation": "none"})
        except Exception:
            logger.warning(
                "job %d: could not record the cancellation", job.id, exc_info=True, extra=fields
            )


async def _compensate(
    running: Running,
    token: uuid.UUID,
    *,
    client: AsyncQueueClient,
    executor: Executor,
    worker: str,
) -> None:
    job, spec, ctx = running.job, running.spec, running.ctx
    record: dict[str, Any] = {"compensation": "none"}
    if spec.on_cancel is not None:
        is_async = asyncio.iscoroutinefunction(spec.on_cancel)
        try:
            await executor.call(spec.on_cancel, is_async, job.payload, ctx)
            record = {"compensation": "ok"}
        except Exception as exc:
            record = {"compensation": "failed", "error": error_record("exception", exc)}
            logger.warning(
                "job %d: compensation failed: %s",
                job.id,
                exc,
                extra=logs.job_fields(job, worker),
            )
    try:
        await client.acknowledge_cancel(worker, job.id, token, record)
    except Exception:
        logger.warning(
            "job %d: could not record the cancellation",
            job.id,
            exc_info=True,
            extra=logs.job_fields(job, worker),
        )
