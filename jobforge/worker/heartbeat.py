"""Renews the leases of every job the worker holds, in one statement per interval, and tells
the jobs the database canceled or whose lease was lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from uuid import UUID

from jobforge.queue import AsyncQueueClient
from jobforge.queue.models import HeartbeatState

logger = logging.getLogger("jobforge.worker")

Leases = Callable[[], list[tuple[int, UUID]]]
OnState = Callable[[tuple[int, UUID], HeartbeatState], None]


async def heartbeat_loop(
    client: AsyncQueueClient,
    worker: str,
    leases: Leases,
    on_state: OnState,
    *,
    interval_s: float,
    lease_s: float,
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        held = leases()
        if not held:
            continue
        try:
            states = await client.heartbeat_each(worker, held, lease_s=lease_s)
        except Exception:  # a blip must not kill the worker: the next beat retries
            logger.warning("heartbeat failed; retrying in %.1f s", interval_s, exc_info=True)
            continue
        for lease, state in zip(held, states, strict=True):
            if state != "ok":
                on_state(lease, state)
