"""Declared queue limits into the database: what `jobforge limits apply` does.

A runner may declare its job type's limits (`@runner(limits=Limits(...))`), locked and reviewed
with its contract; the claim enforces what `jobforge.queue_limits` holds, so the database stays
the one source of truth at run time (an operator can lower a cap during an incident without a
release). Applying is an explicit step, like a migration, for the same reason: a value set by
hand is reported as differing and replaced only when someone applies, never silently by a
worker starting up.

It sits above `contracts` (which never reaches the database) and `queue`, beside `produce`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from jobforge import db
from jobforge.contracts import Limits, RunnerDef
from jobforge.queue.limits import Limit, list_limits, set_limit

#: What applying does to one runner's job type:
#: added (declared, no row), changed (declared, the row differs: replaced), unchanged,
#: undeclared (a row for a runner that declares no limits: left alone, reported).
Action = Literal["added", "changed", "unchanged", "undeclared"]


@dataclass(frozen=True)
class LimitSync:
    """One runner's declared limits against its job type's row, and what applying does."""

    runner_id: str
    declared: Limits | None
    current: Limit | None  #: the row before applying (None: no limits in the database)
    action: Action

    @property
    def writes(self) -> bool:
        return self.action in ("added", "changed")

    def describe(self, *, dry_run: bool = False) -> str:
        """One line for people: what the database holds, what the runner declares, and what
        applying did (or would do, with `dry_run`)."""
        declared = self.declared.describe() if self.declared else ""
        if self.action == "added":
            return f"{'would set' if dry_run else 'set'} {declared}"
        if self.action == "changed":
            verb = "would replace" if dry_run else "replaced"
            return f"{verb} {_described(self.current)} (in the database) with {declared}"
        if self.action == "unchanged":
            return f"{declared} already in the database"
        return (f"{_described(self.current)} in the database, no limits declared: left as it is "
                f"(`jobforge limits clear type {self.runner_id}` removes it)")  # fmt: skip

    def as_dict(self) -> dict[str, object]:
        """For `--json`: the declared and the database's values side by side."""
        return {
            "runner": self.runner_id,
            "action": self.action,
            "declared": _values(self.declared),
            "database": None if self.current is None else {
                "max_running": self.current.max_running,
                "rate_per_s": self.current.rate_per_s,
                "burst": self.current.burst,
            },
        }  # fmt: skip


def _values(limits: Limits | None) -> dict[str, object] | None:
    if limits is None:
        return None
    rate, burst = limits.rate_per_s, limits.effective_burst  # floats, as the database's are
    return {"max_running": limits.max_running, "rate_per_s": None if rate is None else float(rate),
            "burst": None if burst is None else float(burst)}  # fmt: skip


def _described(limit: Limit | None) -> str:
    if limit is None:
        return "no limits"
    as_declared = Limits(max_running=limit.max_running, rate_per_s=limit.rate_per_s,
                         burst=limit.burst)  # fmt: skip
    return as_declared.describe()


def _same(declared: Limits, row: Limit) -> bool:
    return (declared.max_running, declared.rate_per_s, declared.effective_burst) == (
        row.max_running, row.rate_per_s, row.burst
    )  # fmt: skip


def _plan(runners: Mapping[str, RunnerDef], rows: Mapping[str, Limit]) -> list[LimitSync]:
    found = []
    for runner_id in sorted(runners):
        declared, row = runners[runner_id].limits, rows.get(runner_id)
        if declared is None:
            if row is not None:
                found.append(LimitSync(runner_id, None, row, "undeclared"))
            continue
        action: Action = (
            "added" if row is None else "unchanged" if _same(declared, row) else "changed"
        )
        found.append(LimitSync(runner_id, declared, row, action))
    return found


def apply_limits(
    conn: db.Connection, runners: Mapping[str, RunnerDef], *, dry_run: bool = False
) -> list[LimitSync]:
    """Write the declared limits of `runners` to the database (each runner's job type), as an
    operator's login (a superuser or a member of jobforge_worker), in one transaction: all of
    them or none. A row that already says what is declared is not written (its bucket keeps
    its tokens and its `updated_at`). With `dry_run`, nothing is written.

    One `LimitSync` per runner that declares limits or whose type has a row, sorted by id."""
    with db.tenant_transaction(conn, None, worker=True):
        rows = {x.key: x for x in list_limits(conn) if x.scope == "type"}
        found = _plan(runners, rows)
        if not dry_run:
            for sync in found:
                if sync.writes and sync.declared is not None:
                    set_limit(conn, "type", sync.runner_id,
                              max_running=sync.declared.max_running,
                              rate_per_s=sync.declared.rate_per_s,
                              burst=sync.declared.effective_burst)  # fmt: skip
    return found
