"""Queue limits held by real `jobforge worker` processes (migrations/0010): a per-type cap is
never exceeded across four processes, and a per-type rate holds within 10 % over 10 s.

The processes and helpers are test_worker_processes.py's; handlers record when they started and
completed in the `side_effects` table (the database's clock), which is how concurrency is read.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobforge import db
from jobforge.queue import NewJob, QueueClient
from jobforge.queue.limits import set_limit
from tests.e2e import test_worker_processes as processes
from tests.e2e import worker_runners as runners
from tests.e2e.test_worker_processes import PROCESSES, Spawn, wait_until

# The worker-process fixtures, used here by name.
launch, spawn, conn, client = processes.launch, processes.spawn, processes.conn, processes.client

pytestmark = pytest.mark.slow

CAP = 3
CAPPED_JOBS = 60
RATE = 20.0
BURST = 5


def _succeeded(conn: db.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM jobforge.jobs WHERE status = 'succeeded'").fetchone()
    assert row is not None
    return int(row[0])


def test_a_type_cap_holds_across_four_worker_processes(
    spawn: Spawn, conn: db.Connection, client: QueueClient
) -> None:
    set_limit(conn, "type", runners.HOLD, max_running=CAP)
    # Not --exit-when-idle: a worker whose claim comes back empty because of the cap would stop.
    # Every worker is up (and listening) before the jobs arrive, so they all claim from the
    # start; two slots each, so reaching the cap of 3 takes two workers at least (one worker
    # with more slots could take every job, its claims always first after its own finishes).
    workers = [spawn(f"cap-{n}", "--concurrency", "2") for n in range(PROCESSES)]
    for worker in workers:
        worker.ready()
    client.enqueue_many(
        [NewJob(type=runners.HOLD, payload={"seconds": 0.1}) for _ in range(CAPPED_JOBS)]
    )
    wait_until(lambda: _succeeded(conn) == CAPPED_JOBS, 120, "every capped job to succeed")
    for worker in workers:
        assert worker.stop() == 0, worker.logs()
    # Most jobs running at once, swept over the handlers' start and end (an end before a start
    # at the same instant): a handler runs inside its job's lease, so this is at most the
    # number of running jobs the claims allowed.
    rows = conn.execute("SELECT phase FROM side_effects ORDER BY at, phase = 'started'").fetchall()
    running = most = 0
    for (phase,) in rows:
        running += 1 if phase == "started" else -1
        most = max(most, running)
    assert len(rows) == 2 * CAPPED_JOBS
    assert most <= CAP, most
    assert most == CAP, f"the cap was never reached ({most}): the claim holds back too much"
    per_worker = conn.execute("SELECT count(DISTINCT worker) FROM side_effects").fetchone()
    assert per_worker is not None
    assert per_worker[0] >= 2


def test_a_type_rate_holds_within_ten_percent_over_ten_seconds(
    spawn: Spawn, conn: db.Connection, client: QueueClient
) -> None:
    """A bucket of BURST tokens refilled at RATE a second: BURST + 10 * RATE jobs take 10 s to
    claim, by the claims' own times in the event log. (The burst lets a worker that backed off
    while the bucket was empty catch up; with a burst of 1 the tokens that fall due between its
    polls are lost, and the rate reached is lower than the limit.)"""
    set_limit(conn, "type", runners.FAST, rate_per_s=RATE, burst=BURST)
    jobs = BURST + int(10 * RATE)
    client.enqueue_many([NewJob(type=runners.FAST, payload={"i": i}) for i in range(jobs)])
    workers = [spawn(f"rate-{n}", "--concurrency", "8") for n in range(2)]
    wait_until(lambda: _succeeded(conn) == jobs, 60, "every rate-limited job to succeed")
    for worker in workers:
        assert worker.stop() == 0, worker.logs()
    times = [
        at for (at,) in conn.execute(
            "SELECT at FROM jobforge.job_event_log WHERE kind = 'claimed' ORDER BY at"
        ).fetchall()
    ]  # fmt: skip
    assert len(times) == jobs
    span = (times[-1] - times[0]).total_seconds()
    assert 9.0 <= span <= 11.0, span
    # And no second of it went over the rate, but for the burst a full bucket holds.
    for start in times:
        window = [t for t in times if start <= t < start + timedelta(seconds=1)]
        assert len(window) <= RATE + BURST, (start, len(window))
