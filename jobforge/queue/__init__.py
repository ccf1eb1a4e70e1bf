"""The queue client API over the SQL functions of migrations/0003 (sync and async)."""

from __future__ import annotations

from jobforge.queue.async_client import AsyncQueueClient
from jobforge.queue.models import (
    Attempt,
    Enqueued,
    Event,
    FollowUp,
    Job,
    JobSignature,
    NewJob,
    Outcome,
    Page,
    Pruned,
    RunRow,
    RunWrite,
    lease_id,
)
from jobforge.queue.sync_client import QueueClient

__all__ = [
    "AsyncQueueClient", "Attempt", "Enqueued", "Event", "FollowUp", "Job", "JobSignature",
    "NewJob", "Outcome", "Page", "Pruned", "QueueClient", "RunRow", "RunWrite", "lease_id",
]  # fmt: skip
