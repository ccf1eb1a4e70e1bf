"""Slots in a time zone (jobforge/cron.py): daylight saving time both ways, the missed-slot
policies, and properties over random expressions, zones and instants (hypothesis)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from jobforge import errors
from jobforge.cron import LOG_LIMIT, SCAN_LIMIT, Cron, iso, plan
from jobforge.queue.schedules import plans


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
        ) -> datetime:  # fmt: skip
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def first(cron: Cron, after: datetime, n: int) -> list[datetime]:
    slots: list[datetime] = []
    at = after
    for _ in range(n):
        at = cron.next_after(at)
        slots.append(at)
    return slots


# daylight saving time: Europe/Paris springs forward on 2026-03-29 at 02:00 (01:00 UTC) and
# falls back on 2026-10-25 at 03:00 (01:00 UTC)


def test_a_daily_slot_in_the_skipped_hour_fires_once_at_the_end_of_the_gap() -> None:
    cron = Cron.parse("30 2 * * *", "Europe/Paris")
    assert first(cron, utc(2026, 3, 27, 12), 3) == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 0),  # 02:30 does not exist: 03:00 CEST, the gap's end
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]


def test_slots_in_the_skipped_hour_merge_into_the_end_of_the_gap() -> None:
    cron = Cron.parse("*/30 * * * *", "Europe/Paris")
    assert first(cron, utc(2026, 3, 29, 0, 0), 3) == [
        utc(2026, 3, 29, 0, 30),  # 01:30 CET
        utc(2026, 3, 29, 1, 0),  # 02:00, 02:30 do not exist; 03:00 CEST fires once
        utc(2026, 3, 29, 1, 30),
    ]


def test_a_fixed_hour_slot_in_the_repeated_hour_fires_once_at_the_first() -> None:
    cron = Cron.parse("30 2 * * *", "Europe/Paris")
    assert first(cron, utc(2026, 10, 24, 12), 2) == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST; 02:30 CET (01:30 UTC) does not fire again
        utc(2026, 10, 26, 1, 30),
    ]
    steps = Cron.parse("*/30 2 * * *", "Europe/Paris")  # a fixed hour, minutes stepped
    assert first(steps, utc(2026, 10, 24, 23, 45), 3) == [
        utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 0)]  # fmt: skip


def test_an_elapsed_time_schedule_fires_in_both_passes_of_the_repeated_hour() -> None:
    cron = Cron.parse("*/30 * * * *", "Europe/Paris")
    assert first(cron, utc(2026, 10, 24, 23, 45), 5) == [
        utc(2026, 10, 25, 0, 0),  # 02:00 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 1, 0),  # 02:00 CET
        utc(2026, 10, 25, 1, 30),  # 02:30 CET
        utc(2026, 10, 25, 2, 0),
    ]


def test_new_york_springs_forward_and_falls_back_too() -> None:
    cron = Cron.parse("30 2 * * *", "America/New_York")
    assert first(cron, utc(2026, 3, 7, 12), 2) == [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]
    repeated = Cron.parse("30 1 * * *", "America/New_York")  # 01:00-02:00 happens twice
    assert first(repeated, utc(2026, 10, 31, 12), 2) == [utc(2026, 11, 1, 5, 30),
                                                          utc(2026, 11, 2, 6, 30)]  # fmt: skip


def test_latest_at_agrees_with_next_after_across_the_transitions() -> None:
    cron = Cron.parse("30 2 * * *", "Europe/Paris")
    assert cron.latest_at(utc(2026, 10, 26, 3), 3) == [
        utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]  # fmt: skip
    assert cron.latest_at(utc(2026, 3, 29, 1, 0), 1) == [utc(2026, 3, 29, 1, 0)]  # at: included


# one-line refusals


@pytest.mark.parametrize(
    ("expression", "zone", "message"),
    [
        ("* * *", "UTC", "give five fields (minute hour day month weekday), not 3"),
        ("* * * * * *", "UTC", "give five fields (minute hour day month weekday), not 6"),
        ("61 * * * *", "UTC", "invalid cron expression '61 * * * *': "),
        ("@reboot", "UTC", "the aliases are @yearly"),
        ("0 0 30 2 *", "UTC", "it names no time that exists"),
        ("", "UTC", "give five fields (minute hour day month weekday), not 0"),
        ("*/5 * * * *\x1b[2J", "UTC", "give 1-200 printable characters"),
        ("x" * 201, "UTC", "give 1-200 printable characters"),
        ("* * * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("* * * * *", "../../etc/passwd", "unknown time zone '../../etc/passwd'"),
        ("* * * * *", "", "unknown time zone ''"),
        ("* * * * *", "/usr/share/zoneinfo/UTC", "unknown time zone"),
    ],
)
def test_a_bad_expression_or_zone_is_one_line(expression: str, zone: str, message: str) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        Cron.parse(expression, zone)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_aliases_and_spacing() -> None:
    assert Cron.parse("@daily", "UTC").next_after(utc(2026, 1, 1, 5)) == utc(2026, 1, 2)
    assert Cron.parse("  */5   *  * * * ", "UTC").expression == "*/5 * * * *"


# the missed-slot policies


EVERY_MINUTE = Cron.parse("* * * * *", "UTC")
T0 = utc(2026, 3, 2, 9, 0, 30)


def test_on_time_slots_fire_and_the_next_slot_is_after_now() -> None:
    done = plan(EVERY_MINUTE, now=utc(2026, 3, 2, 9, 1, 5), next_slot=utc(2026, 3, 2, 9, 1),
                anchor=T0, missed="skip")  # fmt: skip
    assert done.fire == (utc(2026, 3, 2, 9, 1),)
    assert done.skips == ()
    assert done.next == utc(2026, 3, 2, 9, 2)


def test_no_next_slot_counts_from_the_anchor() -> None:
    done = plan(EVERY_MINUTE, now=T0, next_slot=None, anchor=T0, missed="latest")
    assert done.fire == ()
    assert done.next == utc(2026, 3, 2, 9, 1)


def test_a_week_down_is_walked_a_bounded_number_of_slots() -> None:
    now = T0 + timedelta(days=7)
    for missed, fired in (("latest", 1), ("all", 6), ("skip", 1)):  # all: 5 late + 1 on time
        done = plan(EVERY_MINUTE, now=now, next_slot=utc(2026, 3, 2, 9, 1), anchor=T0,
                    missed=missed, catch_up=5)  # type: ignore[arg-type]  # fmt: skip
        assert len(done.fire) == fired
        assert done.fire[-1] == utc(2026, 3, 9, 9, 0)  # the most recent, on time
        (summary,) = done.skips
        assert summary.slot == utc(2026, 3, 2, 9, 1)
        assert f"policy {missed}" in summary.detail
        assert "at least" in summary.detail
        assert done.next == utc(2026, 3, 9, 9, 1)


missed_policies = st.sampled_from(["latest", "all", "skip"])


@settings(max_examples=200, deadline=None)
@given(
    down_s=st.integers(min_value=0, max_value=6 * 3600),
    grace_s=st.integers(min_value=0, max_value=600),
    catch_up=st.integers(min_value=1, max_value=20),
    missed=missed_policies,
    step=st.sampled_from([1, 2, 5, 15, 60]),
)
def test_every_due_slot_is_fired_or_skipped_once_and_the_policy_holds(
    down_s: int, grace_s: int, catch_up: int, missed: str, step: int
) -> None:
    cron = Cron.parse(f"*/{step} * * * *", "UTC")
    next_slot = cron.next_after(T0)
    now = next_slot + timedelta(seconds=down_s)
    grace = timedelta(seconds=grace_s)
    done = plan(cron, now=now, next_slot=next_slot, anchor=T0, missed=missed,  # type: ignore[arg-type]
                catch_up=catch_up, grace=grace)  # fmt: skip
    due = list(_until(cron, next_slot, now))
    on_time = [s for s in due if now - s <= grace]
    late = [s for s in due if now - s > grace]
    assert list(done.fire) == sorted(done.fire)
    assert set(done.fire) <= set(due)
    assert set(on_time) <= set(done.fire)  # on time always fires
    fired_late = [s for s in done.fire if s in late]
    if missed == "skip":
        assert fired_late == []
    elif missed == "latest":
        assert fired_late == ([] if on_time else late[-1:])
    else:
        assert fired_late == late[-catch_up:]
    skipped = [s for s in due if s not in done.fire]
    if len(skipped) <= LOG_LIMIT:
        assert [s.slot for s in done.skips] == skipped
    else:
        assert len(done.skips) == 1
        assert f"({len(skipped)} slots from" in done.skips[0].detail
    assert done.next > now
    assert done.next == cron.next_after(now)


def _until(cron: Cron, start: datetime, end: datetime) -> list[datetime]:
    slots: list[datetime] = []
    at = start
    while at <= end and len(slots) <= SCAN_LIMIT:
        slots.append(at)
        at = cron.next_after(at)
    return slots


# properties over random expressions, zones and instants

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
         "America/Santiago", "Pacific/Chatham", "Europe/London", "Africa/Casablanca"]  # fmt: skip


@st.composite
def expressions(draw: st.DrawFn) -> str:
    def field(low: int, high: int) -> str:
        kind = draw(st.sampled_from(["*", "n", "step", "list", "range"]))
        if kind == "*":
            return "*"
        if kind == "n":
            return str(draw(st.integers(low, high)))
        if kind == "step":
            return f"*/{draw(st.integers(1, max(1, (high - low) // 2)))}"
        if kind == "list":
            values = draw(st.lists(st.integers(low, high), min_size=2, max_size=3, unique=True))
            return ",".join(map(str, sorted(values)))
        a = draw(st.integers(low, high - 1))
        return f"{a}-{draw(st.integers(a + 1, high))}"

    day = draw(st.sampled_from(["*", "*", "1", "15", "1-10"]))
    month = draw(st.sampled_from(["*", "*", "3", "10,11"]))
    weekday = draw(st.sampled_from(["*", "*", "0", "1-5"]))
    return f"{field(0, 59)} {field(0, 23)} {day} {month} {weekday}"


instants = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2037, 12, 1),
                        timezones=st.just(UTC))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(expression=expressions(), zone=st.sampled_from(ZONES), start=instants,
       fraction=st.floats(0, 1))  # fmt: skip
def test_slots_increase_and_next_after_is_consistent(
    expression: str, zone: str, start: datetime, fraction: float
) -> None:
    cron = Cron.parse(expression, zone)
    slots = first(cron, start, 4)
    assert slots[0] > start
    assert slots == sorted(set(slots))  # strictly increasing
    # any instant between two slots has the later one next
    between = slots[0] + (slots[1] - slots[0]) * fraction
    if between < slots[1]:
        assert cron.next_after(between) == slots[1]
    assert cron.latest_at(slots[1])[-1] == slots[1]
    assert cron.latest_at(slots[1] - timedelta(microseconds=1))[-1] == slots[0]
    tz = ZoneInfo(zone)
    for slot in slots:
        local = slot.astimezone(tz)
        # on the wall clock the slot matches the expression, unless it is the end of a gap (a
        # wall time that did not exist moved to where the clock jumped)
        moved = (slot - timedelta(hours=3)).astimezone(tz).utcoffset() != local.utcoffset()
        assert croniter.match(cron._fields, local.replace(tzinfo=None)) or moved
        assert slot.second == 0 or moved


@settings(max_examples=100, deadline=None)
@given(hour=st.integers(0, 23), minute=st.integers(0, 59), zone=st.sampled_from(ZONES),
       start=instants)  # fmt: skip
def test_a_fixed_time_of_day_fires_once_a_day(
    hour: int, minute: int, zone: str, start: datetime
) -> None:
    cron = Cron.parse(f"{minute} {hour} * * *", zone)
    slots = first(cron, start, 5)
    tz = ZoneInfo(zone)
    days = [s.astimezone(tz).date() for s in slots]
    assert len(days) == len(set(days))  # never twice on one local day (fall back)
    assert all(timedelta(hours=20) <= b - a <= timedelta(hours=28)
               for a, b in itertools.pairwise(slots))  # fmt: skip


def test_iso_is_utc_to_the_second() -> None:
    paris = datetime(2026, 3, 29, 3, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert iso(paris) == "2026-03-29T01:00:00Z"


def test_a_row_no_worker_can_plan_gets_an_error_not_an_exception() -> None:
    row = {"id": 1, "cron": "0 0 30 2 *", "timezone": "UTC", "missed": "latest", "catch_up": 1,
           "grace": timedelta(seconds=60), "anchor": T0, "next_slot": None, "last_slot": None,
           "now": T0}  # fmt: skip
    broken = {**row, "id": 2, "timezone": "Nowhere/Else"}
    fine = {**row, "id": 3, "cron": "* * * * *", "now": T0 + timedelta(minutes=1)}
    planned = plans([row, broken, fine])
    assert "it names no time that exists" in planned[0]["error"]
    assert "unknown time zone 'Nowhere/Else'" in planned[1]["error"]
    assert planned[2]["fire"] == [utc(2026, 3, 2, 9, 1).isoformat()]


def test_a_daily_0230_job_across_both_2027_transitions_in_berlin() -> None:
    """The issue's vector: Europe/Berlin springs forward on 2027-03-28 at 02:00 (01:00 UTC) and
    falls back on 2027-10-31 at 03:00 (01:00 UTC); a daily 02:30 job fires once on each night."""
    cron = Cron.parse("30 2 * * *", "Europe/Berlin")
    assert first(cron, utc(2027, 3, 26, 12), 4) == [
        utc(2027, 3, 27, 1, 30),  # 02:30 CET
        utc(2027, 3, 28, 1, 0),  # 02:30 does not exist: 03:00 CEST, the gap's end, once
        utc(2027, 3, 29, 0, 30),  # 02:30 CEST
        utc(2027, 3, 30, 0, 30),
    ]
    assert first(cron, utc(2027, 10, 29, 12), 4) == [
        utc(2027, 10, 30, 0, 30),  # 02:30 CEST
        utc(2027, 10, 31, 0, 30),  # the first 02:30 (CEST); the second (01:30 UTC) does not fire
        utc(2027, 11, 1, 1, 30),  # 02:30 CET
        utc(2027, 11, 2, 1, 30),
    ]
    assert cron.latest_at(utc(2027, 10, 31, 2), 1) == [utc(2027, 10, 31, 0, 30)]
