"""Writes the progress handlers report (`ctx.progress`): the latest value of each running job,
at most once per interval, so a handler may report as often as it likes at no database cost."""

from __future__ import annotations

import asyncio

from jobforge.queue import AsyncQueueClient
from jobforge.worker import logs
from jobforge.worker.leases import Holdings

logger = logs.logger


async def progress_loop(
    client: AsyncQueueClient, holdings: Holdings, *, worker: str, interval_s: float
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        for (job_id, token), running in list(holdings.running.items()):
            pending = running.ctx.take_progress()
            if pending is None:
                continue
            try:
                await client.progress(worker, job_id, token, *pending)
            except Exception:
                logger.warning(
                    "job %d: progress not written",
                    job_id,
                    exc_info=True,
                    extra=logs.job_fields(running.job, worker),
                )
