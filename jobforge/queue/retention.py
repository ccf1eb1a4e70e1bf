"""Retention: deleting finished jobs (with their events, attempts, results and run records) once
they are older than a retention period, and the per-type retention settings.

The work is in the database (migrations/0012): `jobforge.prune_v1` deletes one batch in its own
transaction and returns a cursor, so a prune of millions of rows is a loop of short transactions
that never touches a queued or running job, never holds a lock for long, and loses only the
batch under way when it is interrupted. `prune` is that loop. Workers prune too, one at a time
and under the settings (`jobforge.worker.pruner`).

Only an operator prunes or changes the settings: a superuser or a member of jobforge_worker (as
for queue limits). A tenant's app login can do neither: its job history is the operator's to
keep, and a tenant that could prune could erase another tenant's. Once a job is pruned its
idempotency key is free: enqueueing the same (tenant, type, key) again creates a new job.

The checks here repeat the database's so a bad value is told before any connection is tried;
the database's own checks stay the authority.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobforge import db, errors
from jobforge.durations import LONGEST, format_duration
from jobforge.queue.blobs import DEFAULT_GRACE
from jobforge.queue.calls import DEFAULT_PRUNE_BATCH
from jobforge.queue.models import Pruned
from jobforge.queue.sync_client import QueueClient
from jobforge.states import TERMINAL, JobState

#: The states a prune may delete: the finished ones, in the order the CLI lists them.
PRUNABLE: tuple[str, ...] = tuple(s.value for s in JobState if s in TERMINAL)
#: The largest batch the database takes.
MAX_BATCH = 50_000
#: After each batch a prune waits this many times as long as the batch took, unless told
#: otherwise: it works a third of the time, whatever the load, and leaves the rest to the
#: workers (measured in benchmarks/prune.py; the README's *Retention* has the figures).
DEFAULT_THROTTLE = 2.0
#: The largest throttle: a batch, then a hundred times as long a wait.
MAX_THROTTLE = 100.0
#: The key of the default retention, for every type without its own.
DEFAULT_KEY = "*"


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished jobs of a type are kept; `type` None is the default for every type
    without its own; `keep` None is forever."""

    type: str | None
    keep: timedelta | None

    @property
    def shown(self) -> str:
        """`keep` as the CLI reads it: `30d`, `forever`."""
        return "forever" if self.keep is None else format_duration(self.keep)


@dataclass(frozen=True, slots=True)
class PassState:
    """The workers' periodic prune: the pass under way, or the last one."""

    holder: str | None  #: the worker running the pass under way
    started_at: datetime | None
    finished_at: datetime | None  #: when the last complete pass ended
    under_way: bool
    pruned: Pruned  #: what the pass (under way, or the last) deleted so far


def check_keep(keep: timedelta | None, what: str) -> None:
    """One line unless `keep` is a retention the database takes (0 up to a century)."""
    if keep is not None and not timedelta(0) <= keep <= LONGEST:
        raise errors.ConfigurationError(
            f"{what} {format_duration(keep) if keep >= timedelta(0) else keep} is out of range: "
            f"give 0s up to {LONGEST.days}d"
        )


def check_prune(
    older_than: timedelta | None,
    statuses: Sequence[str] | None,
    batch: int,
    throttle: float = DEFAULT_THROTTLE,
) -> None:
    """One line unless the prune's arguments are ones the database takes."""
    if not (math.isfinite(throttle) and 0 <= throttle <= MAX_THROTTLE):
        raise errors.ConfigurationError(
            f"--throttle {throttle:g} is out of range: give 0 (full speed) to {MAX_THROTTLE:g}"
        )
    check_keep(older_than, "--older-than")
    for status in statuses or ():
        if status not in PRUNABLE:
            raise errors.ConfigurationError(
                f"cannot prune {status!r} jobs: only finished ones go, choose among "
                f"{', '.join(PRUNABLE)}"
            )
    if not 1 <= batch <= MAX_BATCH:
        raise errors.ConfigurationError(f"--batch {batch} is out of range: give 1-{MAX_BATCH}")


def prune(
    client: QueueClient,
    *,
    older_than: timedelta | None = None,
    statuses: Sequence[str] | None = None,
    tenant: str | None = None,
    types: Sequence[str] | None = None,
    runs_only: bool = False,
    dry_run: bool = False,
    batch: int = DEFAULT_PRUNE_BATCH,
    throttle: float = DEFAULT_THROTTLE,
    project: str | None = None,
    on_batch: Callable[[Pruned], None] | None = None,
    now: datetime | None = None,
) -> Pruned:
    """Delete finished jobs, batch after batch, each in its own transaction; what went.

    Jobs in `statuses` (default: every finished state) that finished more than `older_than` ago
    (default: each type's retention from `jobforge retention`), of `types` (default: all) and of
    `tenant` (default: the client's tenant, else every tenant) and of `project` (default: the
    client's project scope, else every project). With `runs_only` the jobs stay
    and their run records go; with `dry_run` nothing is deleted and the counts say what would be.
    After each batch it waits `throttle` times as long as the batch took (0: not at all), so
    the workers keep most of the database whatever the load; `on_batch` is told each
    batch's counts. A prune stopped midway has deleted whole batches only. Then the artifact
    blobs no run references any more go too (`prune_blobs`)."""
    check_prune(older_than, statuses, batch, throttle)
    total, after = Pruned(), None
    while True:
        began = time.perf_counter()
        done, after = client.prune_batch(
            older_than=older_than, statuses=statuses, tenant=tenant, types=types,
            runs_only=runs_only, dry_run=dry_run, batch=batch, after=after, now=now,
            project=project,
        )  # fmt: skip
        total += done
        if on_batch is not None:
            on_batch(done)
        if after is None:
            break
        if throttle > 0:
            time.sleep((time.perf_counter() - began) * throttle)
    return total + prune_blobs(client, tenant=tenant, dry_run=dry_run, batch=batch,
                               throttle=throttle, on_batch=on_batch, now=now)  # fmt: skip


def prune_blobs(
    client: QueueClient,
    *,
    tenant: str | None = None,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    batch: int = DEFAULT_PRUNE_BATCH,
    throttle: float = DEFAULT_THROTTLE,
    on_batch: Callable[[Pruned], None] | None = None,
    now: datetime | None = None,
) -> Pruned:
    """Delete the artifact blobs no run references any more (their runs were pruned), of
    `tenant` (default: the client's, else every tenant's), batch after batch like `prune`.
    A blob stored less than `grace` ago stays: its run may be about to be recorded. A dry run
    counts the blobs unreferenced now, not those the prune of jobs would leave."""
    total, after = Pruned(), None
    while True:
        began = time.perf_counter()
        done, after = client.prune_blobs(tenant=tenant, grace=grace, batch=batch,
                                         dry_run=dry_run, after=after, now=now)  # fmt: skip
        went = Pruned(blobs=done.blobs, blob_bytes=done.bytes)
        total += went
        if on_batch is not None and went:
            on_batch(went)
        if after is None:
            return total
        if throttle > 0:
            time.sleep((time.perf_counter() - began) * throttle)


def _retention(row: tuple[object, ...]) -> Retention:
    key, keep = row
    return Retention(None if key == DEFAULT_KEY else str(key),
                     keep if isinstance(keep, timedelta) else None)  # fmt: skip


def set_retention(conn: db.Connection, type: str | None, keep: timedelta | None) -> Retention:
    """Keep finished jobs of `type` (None: of every type without its own) for `keep` (None:
    forever)."""
    check_keep(keep, "retention")
    with db.tenant_transaction(conn, None, worker=True):
        row = db.execute(
            conn, "retention_set", {"type": DEFAULT_KEY if type is None else type, "keep": keep}
        ).fetchone()
    return _retention(row)


def clear_retention(conn: db.Connection, type: str) -> bool:
    """`type` follows the default again; False when it had no retention of its own."""
    with db.tenant_transaction(conn, None, worker=True):
        return bool(db.scalar(conn, "retention_clear", {"type": type}))


def list_retention(conn: db.Connection) -> list[Retention]:
    """The default first, then each type with its own retention, by name."""
    with db.tenant_transaction(conn, None, worker=True):
        return [_retention(row) for row in db.execute(conn, "retention_list").fetchall()]


def pass_state(conn: db.Connection) -> PassState:
    """The workers' prune pass under way, or the last one."""
    with db.tenant_transaction(conn, None, worker=True):
        holder, started, finished, under_way, *counts = db.execute(
            conn, "prune_pass_state"
        ).fetchone()
    return PassState(holder, started, finished, bool(under_way),
                     Pruned(*(int(n) for n in counts)))  # fmt: skip
