"""The workers' schedule pass: every worker fires the due schedules now and then (every
`schedules_every_s`, a second by default), no daemon of its own.

A pass is one transaction (`AsyncQueueClient.schedule_pass`, migrations/0018): the database
hands over the due schedules locked SKIP LOCKED, with its clock; this worker computes their
slots (`jobforge.cron`); the database enqueues each slot's job under the idempotency key
`schedule:<name>:<slot>` and moves each schedule past now, then commits. Two workers' passes
take different schedules; a worker that dies midway rolls back, and the slot is fired by the
next pass. A pass that took its limit is followed by another at once; an idle one costs one
index probe.
"""

from __future__ import annotations

import asyncio

from jobforge.queue import AsyncQueueClient
from jobforge.queue.schedules import DEFAULT_PASS_LIMIT
from jobforge.worker import logs
from jobforge.worker.metrics import Metrics

logger = logs.logger

#: How often a worker fires due schedules, when not told. A pass that finds nothing due is one
#: index probe in one round trip: 0.37 ms median, 0.52 ms p99 of wall time with 10,000
#: schedules in the table (benchmarks/schedules.py, 2 cores, fsync on), so a fleet of 50 workers
#: each passing every second costs the database under 2% of one core, and a slot fires within
#: about a second of its time. Firing costs ~1 ms per due schedule (its job and its log entry).
DEFAULT_SCHEDULES_EVERY_S = 1.0


async def schedule_loop(
    client: AsyncQueueClient,
    *,
    metrics: Metrics,
    worker: str,
    every_s: float,
    limit: int = DEFAULT_PASS_LIMIT,
) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            more = True
            while more:
                fired, more = await client.schedule_pass(worker, limit=limit)
                for one in fired:
                    if one.outcome == "failed":
                        metrics.inc("schedule_failures")
                        logger.warning(
                            "schedule %s of tenant %s failed at slot %s (jobforge schedules "
                            "firings %s)", one.name, one.tenant_id, one.slot, one.name,
                            extra={"worker": worker},
                        )  # fmt: skip
                    elif one.outcome in ("enqueued", "dry_run"):
                        metrics.inc("scheduled")
        except Exception:
            logger.warning("firing due schedules failed", exc_info=True, extra={"worker": worker})
