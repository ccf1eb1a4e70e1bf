"""The queue client API over the SQL functions of migrations/0003 (sync and async)."""

from __future__ import annotations

from jobforge.queue.client import AsyncQueueClient, QueueClient
from jobforge.queue.models import (
    Attempt,
    Enqueued,
    Event,
    Job,
    NewJob,
    Outcome,
    Page,
    RunRow,
    RunWrite,
    lease_id,
)

__all__ = [
    "AsyncQueueClient", "Attempt", "Enqueued", "Event", "Job", "NewJob", "Outcome", "Page",
    "QueueClient", "RunRow", "RunWrite", "lease_id",
]  # fmt: skip
