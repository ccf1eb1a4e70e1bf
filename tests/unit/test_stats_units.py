"""Stats, health, bulk filters and metrics without a database: the figures a `QueueStats` derives,
the breach lines, the duration parser, the batch loop, the per-type counters and the gauges'
samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobforge import errors
from jobforge.cli.durations import parse_duration
from jobforge.queue import bulk
from jobforge.queue.health import Thresholds, breaches, span
from jobforge.queue.stats import STATES, QueueStats, StatsRow
from jobforge.worker.metrics import Metrics, queue_families

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _stats(*rows: StatsRow) -> QueueStats:
    return QueueStats(at=T0, rows=rows)


def test_figures_add_up_over_tenants_and_types() -> None:
    stats = _stats(
        StatsRow("a", "x", "due", 2, earliest_run_at=T0 - timedelta(seconds=30)),
        StatsRow("b", "y", "due", 1, earliest_run_at=T0 - timedelta(seconds=90)),
        StatsRow("a", "x", "running", 4, expiring=2, expired=1),
        StatsRow("b", "x", "running", 1, expiring=0, expired=0),
        StatsRow("a", "x", "dead", 5, recent=3),
        StatsRow("b", "y", "dead", 1, recent=1),
    )
    assert stats.totals == dict.fromkeys(STATES, 0) | {"due": 3, "running": 5, "dead": 6}
    assert (stats.oldest_due_s, stats.oldest_due_at) == (90, T0 - timedelta(seconds=90))
    assert (stats.leases_expiring, stats.leases_expired, stats.dead_24h) == (2, 1, 4)
    assert stats.by_type() == {"x": {"due": 2, "running": 5, "dead": 5}, "y": {"due": 1, "dead": 1}}


def test_nothing_due_has_no_age_and_breaches_nothing() -> None:
    empty = _stats()
    assert (empty.oldest_due_s, empty.oldest_due_at) == (0.0, None)
    assert breaches(empty, Thresholds(0, 0, 0, 0)) == []
    assert empty.figures()["oldest_due_at"] is None


def test_a_due_job_in_the_future_of_the_clock_is_not_a_negative_age() -> None:
    ahead = _stats(StatsRow("a", "x", "due", 1, earliest_run_at=T0 + timedelta(seconds=5)))
    assert ahead.oldest_due_s == 0.0


def test_one_line_per_breach_in_a_fixed_order() -> None:
    stats = _stats(
        StatsRow("a", "x", "due", 7, earliest_run_at=T0 - timedelta(hours=2, minutes=5)),
        StatsRow("a", "x", "running", 3, expiring=3, expired=2),
        StatsRow("a", "x", "dead", 9, recent=4),
    )
    assert breaches(stats, Thresholds(3600, 6, 3, 2)) == [
        "the oldest due job has waited 2h5m, over --max-oldest-due 1h (7 jobs due)",
        "7 jobs are due, over --max-due 6",
        "4 jobs died in the last 24 h, over --max-dead-24h 3",
        "3 leases end within 10s without renewal (2 already expired), over --max-expiring 2",
    ]
    assert breaches(stats, Thresholds(None, 7, 4, 3)) == []  # at the limit is healthy


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.4, "0.4s"), (9.96, "10.0s"), (45, "45s"), (300, "5m"), (432, "7m12s"),
     (7500, "2h5m"), (90061, "1d1h")],
)  # fmt: skip
def test_span(seconds: float, shown: str) -> None:
    assert span(seconds) == shown


@given(st.lists(st.tuples(st.integers(0, 500), st.sampled_from("smhdw")), min_size=1, max_size=4))
def test_a_duration_is_the_sum_of_its_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    unit_s = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total = sum(n * unit_s[u] for n, u in parts)
    if total <= 366 * 86400:
        assert parse_duration(text, "--x") == total
    else:
        with pytest.raises(errors.ConfigurationError, match="is out of range"):
            parse_duration(text, "--x")


@pytest.mark.parametrize("text", ["banana", "", "5 minutes", "-5s", "1e400", "nan", "5m banana"])
def test_a_duration_that_is_not_one_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"^--max-oldest-due ") as raised:
        parse_duration(text, "--max-oldest-due")
    assert "\n" not in str(raised.value)


def test_a_bare_number_is_seconds() -> None:
    assert parse_duration(" 90 ", "--x") == 90
    assert parse_duration("1.5m", "--x") == 90


def test_filters_default_and_refuse_statuses_per_action() -> None:
    assert bulk.check_filter("retry", None, None, None).statuses == ("dead",)
    assert bulk.check_filter("cancel", [], ["t"], None) == bulk.Filter(("queued",), ("t",), None)
    assert bulk.check_filter("retry", ["failed", "dead", "failed"], None, None).statuses == (
        "failed",
        "dead",
    )
    with pytest.raises(errors.ConfigurationError, match="'running' cannot be retried"):
        bulk.check_filter("retry", ["running"], None, None)
    with pytest.raises(errors.ConfigurationError, match="'Dead' is not a job status"):
        bulk.check_filter("retry", ["Dead"], None, None)
    with pytest.raises(errors.ConfigurationError, match="--batch 10001 is out of range"):
        bulk.check_filter("cancel", None, None, None, batch=10_001)


@given(st.integers(0, 5000), st.integers(1, 700))
def test_the_batch_loop_goes_on_from_each_last_id_until_a_short_batch(
    jobs: int, batch: int
) -> None:
    """A fake database of `jobs` matching ids: each batch takes the next `batch` of them."""
    asked: list[int] = []

    def one(after_id: int, ids: object) -> bulk.Batch:
        assert ids is None
        asked.append(after_id)
        taken = list(range(after_id + 1, min(jobs, after_id + batch) + 1))
        last = taken[-1] if len(taken) == batch else None
        return bulk.Batch(len(taken), len(taken), 0, last)

    seen: list[int] = []
    done = bulk.run("retry", one, dry_run=False, on_batch=lambda r: seen.append(r.changed))
    assert (done.matched, done.changed) == (jobs, jobs)
    assert done.batches == jobs // batch + 1
    assert asked == [i * batch for i in range(done.batches)]
    assert seen[-1] == jobs


def test_a_dry_run_is_one_counting_call() -> None:
    done = bulk.run("cancel", lambda after, ids: bulk.Batch(9, 0, 0, None), dry_run=True)
    assert (done.matched, done.changed, done.batches, done.dry_run) == (9, 0, 1, True)


def test_busy_jobs_are_tried_again_by_id_with_backoff_until_the_patience_runs_out() -> None:
    """Job 2 is held in the pass and the first retry, job 5 for good: 2 is done late, 5 is
    reported busy."""
    now = [0.0]
    naps: list[float] = []
    held = {2: 2, 5: 10**9}
    calls: list[tuple[int, object]] = []

    def one(after_id: int, ids: object) -> bulk.Batch:
        calls.append((after_id, ids))
        wanted = range(after_id + 1, min(after_id + 3, 6) + 1) if ids is None else list(ids)  # type: ignore[call-overload]
        busy = tuple(i for i in wanted if held.get(i, 0) > 0)
        for i in busy:
            held[i] -= 1
        done = len(wanted) - len(busy)
        last = max(wanted) if ids is None and len(wanted) == 3 else None
        return bulk.Batch(done, done, 0, last, busy)

    def nap(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    got = bulk.run("retry", one, dry_run=False, batch=3, patience_s=1.0, sleep=nap,
                   clock=lambda: now[0])  # fmt: skip
    assert calls[:3] == [(0, None), (3, None), (6, None)]
    assert calls[3:5] == [(0, [2, 5]), (0, [2, 5])]
    assert all(c == (0, [5]) for c in calls[5:])
    assert (got.changed, got.busy) == (5, 1)
    assert naps[:4] == [0.05, 0.1, 0.2, 0.4]
    assert sum(naps[:-1]) < 1.0 <= sum(naps)


def test_counters_are_kept_per_type_and_in_total() -> None:
    metrics = Metrics()
    metrics.inc("claimed", job_type="a")
    metrics.inc("claimed", 2, job_type="b")
    metrics.inc("reaped", 3)
    assert metrics.counts["claimed"] == 3
    assert metrics.by_type == {("claimed", "a"): 1, ("claimed", "b"): 2, ("reaped", ""): 3}
    assert metrics.snapshot()["claimed"] == 3


def test_the_gauges_samples_come_from_the_stats() -> None:
    assert list(queue_families(None)) == []
    stats = _stats(
        StatsRow("a", "x", "due", 2, earliest_run_at=T0 - timedelta(seconds=30)),
        StatsRow("b", "x", "due", 1, earliest_run_at=T0 - timedelta(seconds=10)),
        StatsRow("a", "x", "running", 1, expiring=1, expired=0),
    )
    families = {name: samples for name, _, _, samples in queue_families(stats)}
    assert families["jobforge_queue_jobs"] == [(["x", "due"], 3.0), (["x", "running"], 1.0)]
    assert families["jobforge_queue_oldest_due_seconds"] == [([], 30.0)]
    assert families["jobforge_queue_leases_expiring"] == [([], 1.0)]
    assert families["jobforge_queue_dead_24h"] == [([], 0.0)]
    assert families["jobforge_queue_stats_timestamp_seconds"] == [([], T0.timestamp())]
