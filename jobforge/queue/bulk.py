"""Bulk retry and cancel: every job of a tenant that matches a filter, in batches.

The database does the work (`jobforge.bulk_retry_v1`, `bulk_cancel_v1`, migrations/0013), one
batch of at most `batch` jobs per transaction, in id order: a batch's locks are held for one short
transaction, not for the whole action, so workers keep claiming and finishing while 100,000 dead
jobs go back to the queue. Each job changes exactly as the single-job retry or cancel changes it,
with its own event. The loop moves on from the last id of each batch, so a job that fails again
while the action runs is not retried a second time by it. A job another transaction holds at that
moment (a worker heartbeating or finishing it) is not waited for, which could deadlock: it is
tried again by id once the pass is over, for up to `patience_s`, and counted as `busy` if it is
still held then.
"""

from __future__ import annotations

import time
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
    #: matching jobs left as they were: other transactions held them for all of `patience_s`
    busy: int = 0


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
         dry_run: bool, ids: Sequence[int] | None, now: datetime | None,
         ) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """(query name, parameters) of one batch."""
    params: dict[str, Any] = {
        "statuses": list(flt.statuses), "types": list(flt.types) if flt.types else None,
        "since": flt.since, "after_id": after_id, "limit": limit, "dry_run": dry_run,
        "ids": None if ids is None else list(ids), "now": now,
    }  # fmt: skip
    if action == "retry":
        return "job_bulk_retry", {**params, "reset_attempts": reset_attempts}
    return "job_bulk_cancel", params


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch's answer: `last_id` to go on from (None when the filter is exhausted), and the
    matching jobs another transaction held (`busy_ids`), to be tried again."""

    matched: int
    changed: int
    skipped: int
    last_id: int | None
    busy_ids: tuple[int, ...] = ()


#: How long a bulk action keeps trying jobs other transactions hold before it leaves them (and
#: says so). A worker holds a job's row for one short statement; a longer hold is someone's open
#: transaction, which the action should not wait on indefinitely.
DEFAULT_PATIENCE_S = 10.0


def run(
    action: Action,
    one_batch: Callable[[int, Sequence[int] | None], Batch],
    *,
    dry_run: bool,
    batch: int = DEFAULT_BATCH,
    patience_s: float = DEFAULT_PATIENCE_S,
    on_batch: Callable[[BulkResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> BulkResult:
    """Batches until the filter is exhausted (`one_batch(after_id, None)` runs one transaction),
    then the jobs that were busy, again by id (`one_batch(0, ids)`), backing off, for up to
    `patience_s`; a dry run is one counting call."""
    total = BulkResult(action, 0, 0, 0, 0, dry_run)
    busy: list[int] = []

    def take(got: Batch) -> None:
        nonlocal total
        busy.extend(got.busy_ids)
        total = BulkResult(
            action, total.matched + got.matched, total.changed + got.changed,
            total.skipped + got.skipped, total.batches + 1, dry_run, len(busy),
        )  # fmt: skip
        if on_batch is not None:
            on_batch(total)

    after: int | None = 0
    while after is not None:
        got = one_batch(after, None)
        take(got)
        after = None if dry_run else got.last_id
    began, pause = clock(), 0.05
    while busy and clock() - began < patience_s:
        sleep(pause)
        pause = min(pause * 2, 1.0)
        again, busy[:] = sorted(busy), []
        for start in range(0, len(again), batch):
            take(one_batch(0, again[start : start + batch]))
    return BulkResult(action, total.matched, total.changed, total.skipped, total.batches,
                      dry_run, len(busy))  # fmt: skip
