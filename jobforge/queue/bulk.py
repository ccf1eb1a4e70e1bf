"""Bulk retry and cancel: every job of a tenant that matches a filter, in batches.

The database does the work (`jobforge.bulk_retry_v1`, `bulk_cancel_v1`, migrations/0013), one
batch of at most `batch` jobs per transaction, in id order: a batch's locks are held for one short
transaction, not for the whole action, so workers keep claiming and finishing while 100,000 dead
jobs go back to the queue. Each job changes exactly as the single-job retry or cancel changes it,
with its own event. The loop moves on from the last id of each batch, so a job that fails again
while the action runs is not retried a second time by it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from jobforge import errors

Action = Literal["retry", "cancel"]

#: The statuses each action takes; the first is its default.
STATUSES: dict[str, tuple[str, ...]] = {
    "retry": ("dead", "failed", "canceled"),
    "cancel": ("queued", "running"),
}

#: Jobs per transaction: large enough that 10,000 jobs take ten round trips, small enough that a
#: batch's row locks and its WAL stay short.
DEFAULT_BATCH = 1000
MAX_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Filter:
    """Which of the tenant's jobs an action takes. `since`: finished since (retry) or enqueued
    since (cancel); None: any time."""

    statuses: tuple[str, ...]
    types: tuple[str, ...] | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What an action did (or, dry, would do): `matched` jobs, `changed` of them, `skipped`
    (a retry without reset_attempts of jobs that used all their attempts)."""

    action: Action
    matched: int
    changed: int
    skipped: int
    batches: int
    dry_run: bool


def check_filter(
    action: Action, statuses: Sequence[str] | None, types: Sequence[str] | None,
    since: datetime | None, batch: int = DEFAULT_BATCH,
) -> Filter:  # fmt: skip
    """The filter, once its statuses are ones the action takes; else one line why (before any
    connection is tried; the database checks again)."""
    allowed = STATUSES[action]
    chosen = tuple(dict.fromkeys(statuses or allowed[:1]))
    for status in chosen:
        if status not in allowed:
            known = status in ("queued", "running", "succeeded", "failed", "dead", "canceled")
            why = "cannot be retried" if action == "retry" else "cannot be canceled"
            raise errors.ConfigurationError(
                f"--status {status!r} {why if known else 'is not a job status'}: choose from "
                f"{', '.join(allowed)}"
            )
    if not 1 <= batch <= MAX_BATCH:
        raise errors.ConfigurationError(f"--batch {batch} is out of range: give 1-{MAX_BATCH}")
    return Filter(statuses=chosen, types=tuple(types) if types else None, since=since)


def call(action: Action, flt: Filter, *, reset_attempts: bool, after_id: int, limit: int,
         dry_run: bool, now: datetime | None) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """(query name, parameters) of one batch."""
    params: dict[str, Any] = {
        "statuses": list(flt.statuses), "types": list(flt.types) if flt.types else None,
        "since": flt.since, "after_id": after_id, "limit": limit, "dry_run": dry_run, "now": now,
    }  # fmt: skip
    if action == "retry":
        return "job_bulk_retry", {**params, "reset_attempts": reset_attempts}
    return "job_bulk_cancel", params


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch's answer: `last_id` to go on from, None when the filter is exhausted."""

    matched: int
    changed: int
    skipped: int
    last_id: int | None


def run(
    action: Action,
    one_batch: Callable[[int], Batch],
    *,
    dry_run: bool,
    on_batch: Callable[[BulkResult], None] | None = None,
) -> BulkResult:
    """Batches until the filter is exhausted (`one_batch(after_id)` runs one transaction); a dry
    run is one counting call."""
    matched = changed = skipped = batches = 0
    after: int | None = 0
    while after is not None:
        got = one_batch(after)
        batches += 1
        matched, changed, skipped = (
            matched + got.matched,
            changed + got.changed,
            skipped + got.skipped,
        )
        after = None if dry_run else got.last_id
        if on_batch is not None:
            on_batch(BulkResult(action, matched, changed, skipped, batches, dry_run))
    return BulkResult(action, matched, changed, skipped, batches, dry_run)
