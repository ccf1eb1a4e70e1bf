"""Expires stale leases of every job type, once per lease period: a job whose worker died goes
back to the queue even when no worker of its type is claiming (claims take over only their own
types)."""

from __future__ import annotations

import asyncio

from jobforge.queue import AsyncQueueClient
from jobforge.worker import logs
from jobforge.worker.metrics import Metrics

logger = logs.logger


async def reap_loop(
    client: AsyncQueueClient, *, metrics: Metrics, worker: str, interval_s: float
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            reaped = await client.reap()
        except Exception:
            logger.warning("reaping stale leases failed", exc_info=True,
                           extra={"worker": worker})  # fmt: skip
            continue
        if reaped:
            metrics.inc("reaped", reaped)
            logger.info("expired %d stale leases", reaped, extra={"worker": worker})
