"""What the dashboard's pages show, read through the queue client of the session's tenant.

Every read runs in the client's tenant transaction (row-level security as `jobforge_app`), either
as a client call (`stats`, `get`, `events`, `find_runs`, …) or, for the three reads no client call
makes (a page of jobs filtered by time, the oldest due job, throughput per minute), as a named
query of `jobforge/sql/queries/dashboard.sql` in `client.transaction()`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobforge import db, errors
from jobforge.queue import QueueClient, RunRow, stats
from jobforge.queue.calls import jobs as jobs_of
from jobforge.queue.models import Job
from jobforge.sql import query
from jobforge.states import JobState

#: Jobs per page of the jobs and dead-letter lists.
PAGE = 50
#: The throughput chart's window (minutes).
WINDOW_MIN = 60


@dataclass(frozen=True, slots=True)
class JobFilter:
    """The jobs page's filter; `before` is the keyset cursor (the last id shown)."""

    statuses: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None


@dataclass(frozen=True, slots=True)
class JobsPage:
    jobs: list[Job]
    next_before: int | None  #: the cursor of the next page (None: this is the last)


@dataclass(frozen=True, slots=True)
class Minute:
    at: datetime
    succeeded: int
    other: int


@dataclass(frozen=True, slots=True)
class Overview:
    stats: stats.QueueStats
    oldest_due: dict[str, Any] | None
    minutes: list[Minute]  #: every minute of the window, oldest first, zeros included

    @property
    def types(self) -> list[str]:
        return sorted(self.stats.by_type())

    @property
    def finished_last_hour(self) -> int:
        return sum(m.succeeded + m.other for m in self.minutes)


def _rows(client: QueueClient, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with client.transaction() as conn:
        cursor = conn.cursor(row_factory=db.dict_row)
        cursor.execute(query(name), params)
        return cursor.fetchall()


def overview(client: QueueClient, now: datetime | None = None) -> Overview:
    """Counts by type and state (`jobforge.stats_v1`, the same figures `jobforge jobs stats`
    prints), the oldest due job, and jobs finished per minute over the last hour (its minutes
    counted on the database's clock, the `at` of the counts)."""
    counts = client.stats()
    due = _rows(client, "dashboard_oldest_due", {"now": now})
    end = (now or counts.at).astimezone(UTC).replace(second=0, microsecond=0)
    since = end - timedelta(minutes=WINDOW_MIN - 1)
    per = _rows(client, "dashboard_throughput", {"since": since})
    found = {r["minute"].astimezone(UTC): r for r in per}
    minutes = []
    for back in range(WINDOW_MIN - 1, -1, -1):
        at = end - timedelta(minutes=back)
        row = found.get(at)
        minutes.append(Minute(at, int(row["succeeded"]) if row else 0,
                              int(row["other"]) if row else 0))  # fmt: skip
    return Overview(counts, due[0] if due else None, minutes)


def jobs_page(client: QueueClient, flt: JobFilter, limit: int = PAGE) -> JobsPage:
    """One page of the tenant's jobs, newest first; one more row is read to know whether
    another page follows."""
    rows = _rows(client, "dashboard_jobs", {
        "statuses": list(flt.statuses) or None, "types": list(flt.types) or None,
        "since": flt.since, "until": flt.until, "before_id": flt.before, "limit": limit + 1,
    })  # fmt: skip
    found = jobs_of(rows)
    more = len(found) > limit
    shown = found[:limit]
    return JobsPage(shown, shown[-1].id if more and shown else None)


def run(client: QueueClient, run_id: int) -> RunRow:
    """One stored run record of the tenant, by its id; `RunNotFound` when it is not the
    tenant's (or does not exist: the two are not told apart)."""
    rows = client.find_runs(before_id=run_id + 1, limit=1)
    if not rows or rows[0].id != run_id:
        raise errors.RunNotFound(f"run {run_id} not found")
    return rows[0]


def snapshot(value: dict[str, Any] | None) -> Any:
    """The value a run record's snapshot (`{"canonical": …, "sha256": …}`) holds."""
    if not value:
        return None
    try:
        return json.loads(value["canonical"])
    except (KeyError, TypeError, ValueError):
        return value


def pretty(value: Any) -> str:
    """A value as indented JSON text (rendered escaped, never as markup)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def compact(value: Any) -> str:
    """A value as one line of JSON text (rendered escaped, never as markup)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def check_statuses(given: Sequence[str]) -> tuple[str, ...]:
    """The status filter, or one line naming a value that is not a job status."""
    known = {s.value for s in JobState}
    for status in given:
        if status not in known:
            raise errors.ConfigurationError(
                f"state {status[:40]!r} is not a job state: choose from {', '.join(sorted(known))}"
            )
    return tuple(dict.fromkeys(given))
