"""Run a worker in-process until nothing is due, running or unrecorded: the testing helper (in
the spirit of Oban.Testing's drain_queue and River's rivertest). Jobs scheduled for later
(retries with backoff included) stay in the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from jobforge.queue import AsyncQueueClient
from jobforge.worker.loop import Worker, WorkerConfig, WorkerReport
from jobforge.worker.metrics import Metrics
from jobforge.worker.middleware import Middleware
from jobforge.worker.registry import Registry


async def drain_async(
    client: AsyncQueueClient | str,
    registry: Registry | None = None,
    config: WorkerConfig | None = None,
    *,
    middleware: Sequence[Middleware] = (),
    timeout_s: float | None = 60.0,
) -> WorkerReport:
    config = replace(config or WorkerConfig(), exit_when_idle=True, listen=False)
    worker = Worker(client, registry, config, middleware=middleware, metrics=Metrics())
    return await asyncio.wait_for(worker.run(), timeout_s)


def drain(
    client: str,
    registry: Registry | None = None,
    config: WorkerConfig | None = None,
    *,
    middleware: Sequence[Middleware] = (),
    timeout_s: float | None = 60.0,
) -> WorkerReport:
    """`drain_async` from synchronous code (a new event loop; pass a DSN)."""
    return asyncio.run(
        drain_async(client, registry, config, middleware=middleware, timeout_s=timeout_s)
    )
