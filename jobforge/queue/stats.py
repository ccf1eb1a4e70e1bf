"""Queue statistics: counts by tenant, type and state, and the figures a health check reads.

One query (`jobforge.stats_v1`, migrations/0013) answers `jobforge jobs stats`, `jobforge health`
and the worker's Prometheus gauges, so the three never disagree about what "due" or "dead in the
last 24 h" means. The states are finer than the status column, because an operator asks "what is
waiting now" and "what waits out a backoff" separately: see `STATES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: The states stats count, in the order they are shown. `due`: queued and its time has come;
#: `scheduled`: queued for later, never tried; `retry_scheduled`: queued for later after a
#: failed attempt.
STATES: tuple[str, ...] = (
    "due", "scheduled", "retry_scheduled", "running", "succeeded", "failed", "dead", "canceled",
)  # fmt: skip

#: Default window of `leases_expiring` (seconds). A worker renews its leases every third of their
#: length, so with the default 30 s lease a healthy lease always has some 20 s left: one within
#: 10 s of its end has missed two renewals (its worker is stuck, overloaded or gone).
DEFAULT_EXPIRING_S = 10.0

#: Window of the `recent` counts (failed, dead and canceled in the last 24 h).
RECENT_S = 86_400.0


@dataclass(frozen=True, slots=True)
class StatsRow:
    """The jobs of one tenant and type in one state."""

    tenant_id: str
    type: str
    state: str
    jobs: int
    earliest_run_at: datetime | None = None  #: due, scheduled, retry_scheduled: the earliest
    expiring: int | None = None  #: running: leases ending within the window (expired included)
    expired: int | None = None  #: running: leases already past their end, not yet reaped
    recent: int | None = None  #: failed, dead, canceled: finished within the last 24 h


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Every count at one moment (`at`, the database's clock), for one tenant or all of them."""

    at: datetime
    rows: tuple[StatsRow, ...]
    tenant: str | None = None  #: None: every tenant's jobs (the worker scope)
    succeeded_counted: bool = True
    expiring_s: float = DEFAULT_EXPIRING_S
    totals: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        totals = dict.fromkeys(STATES, 0)
        for row in self.rows:
            totals[row.state] = totals.get(row.state, 0) + row.jobs
        object.__setattr__(self, "totals", totals)

    def _sum(self, state: str, attr: str) -> int:
        return sum(getattr(r, attr) or 0 for r in self.rows if r.state == state)

    @property
    def oldest_due_at(self) -> datetime | None:
        """When the job that has waited longest became due; None when nothing is due."""
        due = [r.earliest_run_at for r in self.rows if r.state == "due" and r.earliest_run_at]
        return min(due, default=None)

    @property
    def oldest_due_s(self) -> float:
        """How long the oldest due job has waited (0 when nothing is due)."""
        oldest = self.oldest_due_at
        return 0.0 if oldest is None else max(0.0, (self.at - oldest).total_seconds())

    @property
    def leases_expiring(self) -> int:
        return self._sum("running", "expiring")

    @property
    def leases_expired(self) -> int:
        return self._sum("running", "expired")

    @property
    def dead_24h(self) -> int:
        return self._sum("dead", "recent")

    def by_type(self) -> dict[str, dict[str, int]]:
        """Counts per job type and state, summed over tenants (the gauges' labels)."""
        out: dict[str, dict[str, int]] = {}
        for row in self.rows:
            counts = out.setdefault(row.type, {})
            counts[row.state] = counts.get(row.state, 0) + row.jobs
        return out

    def figures(self) -> dict[str, Any]:
        """The health figures, as `jobforge health --format json` prints them."""
        oldest = self.oldest_due_at
        return {
            "at": self.at.isoformat(),
            "tenant": self.tenant,
            "due": self.totals["due"],
            "oldest_due_s": round(self.oldest_due_s, 3),
            "oldest_due_at": None if oldest is None else oldest.isoformat(),
            "running": self.totals["running"],
            "leases_expiring": self.leases_expiring,
            "leases_expiring_within_s": self.expiring_s,
            "leases_expired": self.leases_expired,
            "dead_24h": self.dead_24h,
        }


def parse(
    rows: Sequence[Mapping[str, Any]],
    *,
    tenant: str | None,
    succeeded: bool,
    expiring_s: float,
) -> QueueStats:
    """The answer of the `job_stats` query (one row, with `at` and NULLs, when there are no
    jobs)."""
    found = tuple(
        StatsRow(
            tenant_id=r["tenant_id"],
            type=r["type"],
            state=r["state"],
            jobs=int(r["jobs"]),
            earliest_run_at=r["earliest_run_at"],
            expiring=r["expiring"],
            expired=r["expired"],
            recent=r["recent"],
        )
        for r in rows
        if r["state"] is not None
    )
    return QueueStats(
        at=rows[0]["at"],
        rows=found,
        tenant=tenant,
        succeeded_counted=succeeded,
        expiring_s=expiring_s,
    )
