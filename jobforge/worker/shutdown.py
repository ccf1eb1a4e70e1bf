"""Graceful shutdown, once the fetch loop has stopped claiming: jobs claimed ahead that never
started are set aside for release; running jobs (and compensations of canceled ones) get the
grace period, which a second stop cuts short; what still runs is told to stop; and the leases of
the jobs the shutdown stopped are released, so those jobs are due again at once and keep their
attempt (instead of waiting out the lease and losing one).

Between the two, the worker records the outcomes still waiting (`Completer.close`).
"""

from __future__ import annotations

import asyncio

from jobforge.queue import AsyncQueueClient
from jobforge.worker import logs
from jobforge.worker.leases import Holdings
from jobforge.worker.metrics import NO_TYPE, Metrics
from jobforge.worker.stopping import stop_job

logger = logs.logger

#: How long the jobs told to stop at the end of the grace period get to wind down.
_STOPPED_PATIENCE_S = 5.0
#: How long a sync handler told to stop then gets to see ctx.cancelled and return before its
#: thread is abandoned (an async one is cancelled at once: it can clean up as it unwinds).
SHUTDOWN_NOTICE_S = 1.0


def release_waiting(holdings: Holdings) -> None:
    """The jobs claimed ahead that never started go back with the ones the shutdown stops: they
    are due again at once, for any worker, without having cost an attempt."""
    for lease, ctx in holdings.waiting.items():
        ctx.stop("shutdown")
        holdings.held.pop(lease, None)
        holdings.release[lease] = ctx.job.type
    holdings.waiting.clear()


async def stop_running(
    holdings: Holdings, *, grace_s: float, grace_over: asyncio.Event, worker: str
) -> None:
    """Wait for the running jobs within the grace period, then stop the ones left."""
    tasks = list(holdings.tasks)  # running jobs, and compensations of canceled ones
    if tasks:
        logger.info(
            "waiting up to %.1f s for %d running jobs",
            grace_s,
            len(tasks),
            extra={"worker": worker},
        )
        await _within_grace(tasks, grace_s, grace_over)
    for lease in list(holdings.running):
        stop_job(holdings, lease, "shutdown", cancel_grace_s=SHUTDOWN_NOTICE_S)
    leftover = list(holdings.tasks)
    if leftover:
        await asyncio.wait(leftover, timeout=_STOPPED_PATIENCE_S)


async def _within_grace(
    tasks: list[asyncio.Task[None]], grace_s: float, grace_over: asyncio.Event
) -> None:
    """Until the tasks are done, the grace period ends, or a second stop cuts it short."""
    over = asyncio.ensure_future(grace_over.wait())
    try:
        await asyncio.wait(
            [asyncio.ensure_future(asyncio.wait(tasks)), over],
            timeout=grace_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        over.cancel()


async def release_stopped(
    client: AsyncQueueClient,
    holdings: Holdings,
    *,
    metrics: Metrics,
    worker: str,
    lease_s: float,
) -> None:
    """Give back the leases of the jobs the shutdown stopped (they would expire otherwise)."""
    if not holdings.release:
        return
    leases = sorted(holdings.release)
    try:
        answers = await client.release(worker, leases)
        types = {job_id: job_type for (job_id, _), job_type in holdings.release.items()}
        for job_id, answer in answers.items():
            if answer == "released":
                metrics.inc("released", job_type=types.get(job_id, NO_TYPE))
    except Exception:
        logger.warning(
            "could not release %d leases; they expire within %.0f s",
            len(leases),
            lease_s,
            exc_info=True,
            extra={"worker": worker},
        )
    holdings.release.clear()
