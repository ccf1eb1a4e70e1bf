"""Cron slots in a time zone, and what a worker fires of them: the schedules' arithmetic, pure.

A schedule's slots are the instants its cron expression (five fields: minute hour day month
weekday, or an alias such as @daily) names on the wall clock of its time zone, computed by
croniter; the database stores them as UTC instants (migrations/0018). Daylight saving time:

* Spring forward: a wall time in the skipped hour (02:30 in Europe/Paris on the last Sunday of
  March) does not exist. Its slot fires once, at the end of the gap (03:00 local), merged with
  any slot already there, as cron daemons (Vixie cron, cronie) do.
* Fall back: a wall time in the repeated hour happens twice. A schedule with a fixed hour
  (`30 2 * * *`: "at 02:30") fires once, at the first; one whose hour field is a wildcard or a
  step of one (`*/15 * * * *`: "every 15 minutes") fires at both, its slots being about elapsed
  time, not a time of day (Vixie cron's rule too).

A worker that gets to a schedule late (it was down, the schedule's feature was off) finds slots
more than `grace` old: *missed* slots, which the schedule's policy decides (`plan`): `latest`
fires the most recent once and skips the rest, `all` fires up to `catch_up` of the most recent
and skips older ones, `skip` fires none. Slots within `grace` always fire.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from jobforge import errors

Missed = Literal["latest", "all", "skip"]
MISSED_POLICIES: tuple[Missed, ...] = ("latest", "all", "skip")
#: Slots a worker walks from a schedule's next slot before it stops counting them one by one
#: (a week of downtime of an every-minute schedule is 10,080): the rest are skipped in one row.
SCAN_LIMIT = 1000
#: Skipped slots logged one by one; beyond this, one row says how many and from when to when.
LOG_LIMIT = 100
#: The largest catch-up of the `all` policy (the database's bound too).
MAX_CATCH_UP = 1000
#: Slots this late or less are on time: fired whatever the policy (a pass runs every second or
#: so, but a busy database or a restarting worker may take longer).
DEFAULT_GRACE = timedelta(seconds=60)
MAX_GRACE = timedelta(days=1)

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_PRINTABLE = re.compile(r"^[\x20-\x7e]{1,200}$")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or one line saying it is unknown."""
    if not 1 <= len(name) <= 64 or name.startswith(("/", ".")) or ".." in name:
        raise errors.ConfigurationError(
            f"unknown time zone {name[:70]!r}: give an IANA name such as Europe/Paris or UTC"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise errors.ConfigurationError(
            f"unknown time zone {name[:70]!r}: give an IANA name such as Europe/Paris or UTC"
        ) from None


@dataclass(frozen=True)
class Cron:
    """A cron expression read in a time zone. `Cron.parse` checks both; `next_after` and
    `latest_at` walk its slots as UTC instants."""

    expression: str
    timezone: str
    _fields: str = field(repr=False, compare=False)
    _tz: ZoneInfo = field(repr=False, compare=False)

    @classmethod
    def parse(cls, expression: str, timezone: str) -> Cron:
        """The schedule, or one line naming what is wrong with the expression or the zone."""
        text = " ".join(expression.split())
        if not _PRINTABLE.match(text or " "):
            raise errors.ConfigurationError(
                "invalid cron expression: give 1-200 printable characters, e.g. '*/5 * * * *'"
            )
        fields = _ALIASES.get(text.lower(), text)
        if fields.startswith("@"):
            raise errors.ConfigurationError(
                f"invalid cron expression {text!r}: the aliases are {', '.join(_ALIASES)}"
            )
        if len(fields.split()) != 5:
            raise errors.ConfigurationError(
                f"invalid cron expression {text!r}: give five fields (minute hour day month "
                f"weekday), not {len(fields.split())}, e.g. '*/5 * * * *'"
            )
        tz = zone(timezone)
        try:
            croniter(fields, datetime(2000, 1, 1, tzinfo=tz))
        except (CroniterError, ValueError, KeyError, IndexError) as exc:
            reason = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise errors.ConfigurationError(f"invalid cron expression {text!r}: {reason}") from None
        cron = cls(text, timezone, fields, tz)
        try:
            cron.next_after(datetime(2000, 1, 1, tzinfo=UTC))
        except errors.ConfigurationError:
            raise errors.ConfigurationError(
                f"invalid cron expression {text!r}: it names no time that exists (e.g. February 30)"
            ) from None
        return cron

    @property
    def _elapsed(self) -> bool:
        """Whether the hour field is a wildcard or a step of one (`*`, `*/2`): slots about
        elapsed time, which fire in both passes of a repeated hour."""
        return self._fields.split()[1].startswith("*")

    def _counts(self, slot: datetime) -> bool:
        """False for the second pass of a repeated wall time of a fixed-hour schedule."""
        local = slot.astimezone(self._tz)
        if self._elapsed or local.fold == 0:
            return True
        return local.replace(fold=0).utcoffset() == local.utcoffset()

    def _walk(self, start: datetime, forward: bool) -> Iterator[datetime]:
        try:
            it = croniter(self._fields, start.astimezone(self._tz))
            while True:
                found = it.get_next(datetime) if forward else it.get_prev(datetime)
                slot = found.astimezone(UTC)
                if self._counts(slot):
                    yield slot
        except (CroniterError, ValueError, OverflowError) as exc:
            raise errors.ConfigurationError(
                f"cron expression {self.expression!r} in {self.timezone}: "
                f"{' '.join(str(exc).split())[:160]}"
            ) from None

    def next_after(self, instant: datetime) -> datetime:
        """The first slot strictly after `instant` (aware), in UTC."""
        for slot in self._walk(instant, True):
            if slot > instant:
                return slot
        raise AssertionError("unreachable")  # pragma: no cover

    def slots(self, after: datetime) -> Iterator[datetime]:
        """The slots strictly after `after`, in order (endless)."""
        slot = after
        while True:
            slot = self.next_after(slot)
            yield slot

    def before(self, instant: datetime) -> Iterator[datetime]:
        """The slots at or before `instant`, most recent first (endless)."""
        for slot in self._walk(instant + timedelta(microseconds=1), False):
            if slot <= instant:
                yield slot

    def latest_at(self, instant: datetime, count: int = 1) -> list[datetime]:
        """Up to `count` slots at or before `instant`, most recent last."""
        found: list[datetime] = []
        for slot in self.before(instant):
            found.append(slot)
            if len(found) >= count:
                break
        return sorted(found)

    def local(self, instant: datetime) -> datetime:
        """`instant` on the schedule's wall clock."""
        return instant.astimezone(self._tz)


@dataclass(frozen=True)
class Skip:
    """A slot not fired, and why (one row of the firing log)."""

    slot: datetime
    detail: str


@dataclass(frozen=True)
class Plan:
    """What one pass does with one due schedule: the slots to fire (oldest first), the skips to
    log, and the schedule's next slot (strictly after now)."""

    fire: tuple[datetime, ...]
    skips: tuple[Skip, ...]
    next: datetime


def iso(instant: datetime) -> str:
    """`instant` in UTC as the idempotency key and the log show it: 2026-03-29T01:00:00Z."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan(
    cron: Cron,
    *,
    now: datetime,
    next_slot: datetime | None,
    anchor: datetime,
    missed: Missed,
    catch_up: int = 10,
    grace: timedelta = DEFAULT_GRACE,
) -> Plan:
    """The slots due at `now` (from `next_slot`, or the first after `anchor` when no worker has
    computed it yet) under the missed-slot policy: see the module's docstring."""
    first = next_slot if next_slot is not None else cron.next_after(anchor)
    due: list[datetime] = []
    slot = first
    while slot <= now and len(due) < SCAN_LIMIT:
        due.append(slot)
        slot = cron.next_after(slot)
    beyond = slot <= now  # more due than were walked: their number is not known
    if beyond:  # the most recent slots instead: those on time, and as many late as may fire
        tail = _recent(cron, now, grace, catch_up if missed == "all" else 1)
        due = [s for s in due if s < tail[0]] + tail
        slot = cron.next_after(now)
    on_time = [s for s in due if now - s <= grace]
    late = [s for s in due if now - s > grace]
    if missed == "skip" or not late:
        fire, skipped = on_time, late
    elif missed == "latest":  # an on-time slot is the most recent: it supersedes the late ones
        fire, skipped = (on_time, late) if on_time else (late[-1:], late[:-1])
    else:
        keep = late[-catch_up:]
        fire, skipped = keep + on_time, late[: len(late) - len(keep)]
    return Plan(tuple(fire), _skips(skipped, missed, beyond), slot)


def _recent(cron: Cron, now: datetime, grace: timedelta, late: int) -> list[datetime]:
    """The slots at or before `now` back to the `late`-th one more than `grace` old (at most
    `SCAN_LIMIT`), oldest first."""
    found: list[datetime] = []
    for slot in cron.before(now):
        found.append(slot)
        late -= now - slot > grace
        if late <= 0 or len(found) >= SCAN_LIMIT:
            break
    return found[::-1]


def _skips(skipped: list[datetime], missed: Missed, beyond: bool) -> tuple[Skip, ...]:
    why = {
        "latest": "missed: policy latest fires only the most recent missed slot",
        "all": "missed: beyond the catch-up limit of policy all",
        "skip": "missed: policy skip fires no missed slot",
    }[missed]
    if len(skipped) <= LOG_LIMIT and not beyond:
        return tuple(Skip(s, why) for s in skipped)
    if not skipped:
        return ()
    many = f"at least {len(skipped)}" if beyond else str(len(skipped))
    span = f"{iso(skipped[0])} to {iso(skipped[-1])}" + (" and later" if beyond else "")
    return (Skip(skipped[0], f"{why} ({many} slots from {span} skipped)"),)
