"""Wake-ups on new work: LISTEN on the channel the enqueue trigger notifies, so an idle worker
claims at once instead of at its next poll. Only a wake-up, never the work itself: a lost
connection costs latency (the fetch loop polls meanwhile), not jobs, and is retried."""

from __future__ import annotations

import asyncio

from jobforge.queue import AsyncQueueClient
from jobforge.worker import logs

logger = logs.logger

#: The channel the enqueue trigger notifies (migrations/0005).
CHANNEL = "jobforge_jobs"


async def listen_loop(
    client: AsyncQueueClient, wake: asyncio.Event, *, worker: str, retry_s: float
) -> None:
    """Set `wake` on every notification, reconnecting `retry_s` after a lost connection."""
    from jobforge import db

    dsn = client.pool.conninfo
    if not isinstance(dsn, str):
        logger.info("the pool's conninfo is not a string: polling only")
        return
    while True:
        try:
            async for _ in db.notifications(dsn, CHANNEL):
                wake.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning(
                "LISTEN connection lost; polling until it is back",
                exc_info=True,
                extra={"worker": worker},
            )
            await asyncio.sleep(retry_s)
