"""A dry run of an enqueue: everything the database checks, checked, and nothing kept.

The job goes through `jobforge.enqueue_v1` as a real enqueue would, in a transaction that is
then rolled back: the tenant (and a bound login's right to it), the payload's size against the
database's limit, its JSON, an idempotency key already used with another payload, all answer as
they would, and no job, event or notification survives (a rolled-back transaction notifies no
one). What it would have done is the answer: enqueue a new job, or return an existing one.
Nothing is recorded in the database for a single request's dry run: the command prints it.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobforge.queue import calls
from jobforge.queue.models import NewJob
from jobforge.queue.sync_client import QueueClient
from jobforge.sql import query


@dataclass(frozen=True, slots=True)
class DryRun:
    """What an enqueue would do: `existing` is the job its key and payload already name (None:
    it would create one)."""

    tenant: str | None
    job: NewJob
    existing: int | None


class _RolledBack(Exception):
    def __init__(self, existing: int | None) -> None:
        super().__init__("rolled back")
        self.existing = existing


def enqueue_dry_run(client: QueueClient, job: NewJob) -> DryRun:
    """`client.enqueue_many([job])`, rolled back; what it would have done."""
    name, params = calls.enqueue_many([job], None, client.max_payload_bytes)
    try:
        with client.transaction() as conn:
            row = conn.execute(query(name), params).fetchone()
            assert row is not None
            _, job_id, created = row
            raise _RolledBack(None if created else int(job_id))
    except _RolledBack as done:
        return DryRun(client.tenant, job, done.existing)
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["DryRun", "enqueue_dry_run"]
