"""Reads the queue's figures for the Prometheus gauges, every `interval_s`, while the worker
serves metrics.

The same query as `jobforge jobs stats` and `jobforge health` (`QueueClient.stats`) without the
succeeded count, the one part that reads the whole table: a few index scans per interval and
worker. Every worker that serves metrics exports the same queue-wide figures: aggregate them
with `max`, not `sum`. A failed read keeps the last figures (their timestamp gauge tells their
age) and is logged; it never stops the worker.
"""

from __future__ import annotations

import asyncio

from jobforge.queue import AsyncQueueClient
from jobforge.worker import logs
from jobforge.worker.metrics import Metrics

logger = logs.logger


async def gauge_loop(
    client: AsyncQueueClient, *, metrics: Metrics, worker: str, interval_s: float
) -> None:
    while True:
        try:
            metrics.set_queue(await client.stats(succeeded=False))
        except Exception:
            logger.warning("reading the queue's figures for the gauges failed", exc_info=True,
                           extra={"worker": worker})  # fmt: skip
        await asyncio.sleep(interval_s)
