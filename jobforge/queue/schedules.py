"""Schedules: a tenant's cron jobs, fired by the workers exactly once per slot (migrations/0018).

The records (`Schedule`, `Firing`, `Fired`), the parameters of each call and the worker's side
of a pass: `plans` turns the due rows the database handed over (locked for the pass's
transaction, with the database's clock) into what `jobforge.schedule_fire_v1` fires in the same
transaction. The slot arithmetic is `jobforge.cron`'s. The operations themselves (one
transaction each, sync and async) are in `jobforge.queue.operations`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobforge import errors
from jobforge.cron import DEFAULT_GRACE, MAX_CATCH_UP, MAX_GRACE, Cron, Missed, plan
from jobforge.db import Jsonb

Call = tuple[str, dict[str, Any]]
#: Due schedules one pass takes (and holds) at most; a full pass is followed by another at once.
DEFAULT_PASS_LIMIT = 100
#: Entries `firings` returns when not told.
DEFAULT_FIRINGS = 50
#: A schedule's name: no ':' (the idempotency key schedule:<name>:<slot> reads one way only).
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Schedule(_Record):
    """One schedule as stored: what it enqueues, when, and where it stands."""

    id: int
    tenant_id: str
    name: str
    cron: str
    timezone: str
    type: str
    input: dict[str, Any]
    priority: int
    max_attempts: int | None
    missed: Missed
    catch_up: int
    grace: timedelta
    dry_run: bool
    paused: bool
    #: the tenant's `schedules` feature is off: no worker fires it until it is on again
    held: bool = False
    #: why a worker paused it: its cron expression or time zone could not be read there
    broken: str | None = None
    #: slots are counted after this instant (the schedule's creation, its last resume)
    anchor: datetime
    #: the next slot to fire, as a worker computed it (None: not yet)
    next_slot: datetime | None = None
    last_slot: datetime | None = None
    last_fired_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    #: the login and actor that added it, or last paused or resumed it
    login: str
    actor: str | None = None

    def upcoming(self) -> datetime | None:
        """The next slot: the stored one, else the first after the anchor (what a worker will
        compute); None while paused or when this machine cannot read the expression."""
        if self.paused:
            return None
        if self.next_slot is not None:
            return self.next_slot
        try:
            return Cron.parse(self.cron, self.timezone).next_after(self.anchor)
        except errors.ConfigurationError:
            return None


class Firing(_Record):
    """One entry of a schedule's firing log."""

    id: int
    schedule_id: int
    slot: datetime | None
    fired_at: datetime
    outcome: str  #: enqueued, existing, dry_run, skipped, failed
    job_id: int | None = None
    job: dict[str, Any] | None = None  #: dry_run: the job it would have enqueued
    detail: str | None = None
    worker: str | None = None


class Fired(_Record):
    """What a worker's pass did with one slot (or, with no slot, one schedule it paused)."""

    schedule_id: int
    tenant_id: str
    name: str
    slot: datetime | None
    outcome: str
    job_id: int | None = None


class NewSchedule(_Record):
    """A schedule to add. The cron expression and time zone are checked by `check`."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")
    cron: str
    timezone: str = "UTC"
    type: str
    input: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=0, ge=0, le=32767)
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    missed: Missed = "latest"
    catch_up: int = Field(default=10, ge=1, le=MAX_CATCH_UP)
    grace: timedelta = DEFAULT_GRACE
    dry_run: bool = False
    paused: bool = False

    def check(self) -> Cron:
        """The parsed expression; one line (`ConfigurationError`) when it or the zone or the
        grace is wrong, before anything is sent."""
        if not timedelta(0) <= self.grace <= MAX_GRACE:
            raise errors.ConfigurationError(
                f"grace {self.grace} is out of range: give 0s up to {MAX_GRACE.days}d"
            )
        return Cron.parse(self.cron, self.timezone)


def add(new: NewSchedule, now: datetime | None) -> Call:
    return "schedule_add", {
        "name": new.name, "cron": new.cron, "timezone": new.timezone, "type": new.type,
        "input": Jsonb(new.input), "priority": new.priority, "max_attempts": new.max_attempts,
        "missed": new.missed, "catch_up": new.catch_up, "grace": new.grace,
        "dry_run": new.dry_run, "paused": new.paused, "now": now,
    }  # fmt: skip


def pause(name: str, paused: bool, now: datetime | None) -> Call:
    return "schedule_pause", {"name": name, "paused": paused, "now": now}


def remove(name: str) -> Call:
    return "schedule_remove", {"name": name}


def listing() -> Call:
    return "schedule_list", {}


def get(name: str) -> Call:
    return "schedule_get", {"name": name}


def firings(name: str, limit: int) -> Call:
    if not 1 <= limit <= 1000:
        raise errors.ConfigurationError(f"limit must be 1-1000, not {limit}")
    return "schedule_firings", {"name": name, "limit": limit}


def due(limit: int, now: datetime | None) -> Call:
    return "schedules_due", {"limit": limit, "now": now}


def fire(plans: Sequence[dict[str, Any]], worker: str, now: datetime | None) -> Call:
    return "schedule_fire", {"plans": Jsonb(list(plans)), "worker": worker, "now": now}


def schedule(rows: list[dict[str, Any]], name: str | None = None) -> Schedule:
    if not rows:
        raise errors.JobNotFound(f"schedule {name!r} not found")
    return Schedule.model_validate(rows[0])


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


@dataclass(frozen=True)
class _Due:
    id: int
    cron: str
    timezone: str
    missed: Missed
    catch_up: int
    grace: timedelta
    anchor: datetime
    next_slot: datetime | None
    last_slot: datetime | None
    now: datetime


def plans(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What to fire of each due row (the JSON `schedule_fire_v1` takes). A row whose expression
    or zone this worker cannot read gets an `error`: the database pauses it with the reason."""
    found = []
    for row in rows:
        d = _Due(**{k: row[k] for k in _Due.__dataclass_fields__})
        base: dict[str, Any] = {"id": d.id, "expected": _iso(d.next_slot)}
        try:
            done = plan(Cron.parse(d.cron, d.timezone), now=d.now, next_slot=d.next_slot,
                        anchor=d.anchor, missed=d.missed, catch_up=d.catch_up,
                        grace=d.grace)  # fmt: skip
        except errors.ConfigurationError as exc:
            found.append({**base, "error": str(exc)})
            continue
        except Exception as exc:  # croniter's own surprise: one schedule never stalls the rest
            found.append({**base, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            continue
        floor = max(d.anchor, d.last_slot) if d.last_slot is not None else d.anchor
        found.append({
            **base,
            "fire": [s.isoformat() for s in done.fire if s > floor],
            "skips": [{"slot": s.slot.isoformat(), "detail": s.detail} for s in done.skips],
            "next": done.next.isoformat(),
        })  # fmt: skip
    return found


def fired(rows: list[dict[str, Any]]) -> list[Fired]:
    return [Fired.model_validate(r) for r in rows]
