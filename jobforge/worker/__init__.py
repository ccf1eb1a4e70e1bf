"""The worker: handlers by job type, concurrent execution with leases, timeouts, retries,
cancellation and graceful shutdown; middleware for run recording; an in-process drain for tests.

The loop itself is `jobforge.worker.loop`; what a runner sees while it runs (its context, HTTP,
strict mode) is `jobforge.runtime`."""

from __future__ import annotations

from jobforge.errors import InvalidInput, NonRetryable
from jobforge.worker.context import JobContext
from jobforge.worker.drain import drain, drain_async
from jobforge.worker.loading import load_handlers
from jobforge.worker.loop import Worker, WorkerConfig, WorkerReport
from jobforge.worker.metrics import Metrics
from jobforge.worker.middleware import Middleware, Next
from jobforge.worker.recorder import Recorder
from jobforge.worker.registry import HandlerSpec, Registry, default_registry, handler
from jobforge.worker.slot import RunSlot

__all__ = [
    "HandlerSpec", "InvalidInput", "JobContext", "Metrics", "Middleware", "Next", "NonRetryable",
    "Recorder", "Registry", "RunSlot", "Worker", "WorkerConfig", "WorkerReport",
    "default_registry", "drain", "drain_async", "handler", "load_handlers",
]  # fmt: skip
