"""`jobforge worker` as real processes against a real database: a worker killed with SIGKILL
mid-job, heartbeats keeping a lease shorter than the job, four workers draining 10,000 jobs,
graceful SIGTERM with a grace period and lease release (and the released jobs run elsewhere), and
the command's configuration errors.

The handlers live in `worker_runners.py` next to this file; the workers run with this directory
as their working directory, so `--runners worker_runners` imports it (jobforge puts the working
directory on `sys.path`). Handlers record what they did in the test database's `side_effects`
table, which is how "exactly once" is counted.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobforge import db
from jobforge.provision import Database
from jobforge.queue import NewJob, QueueClient
from jobforge.queue.features import set_feature
from jobforge.queue.schedules import NewSchedule
from jobforge.queue.triggers import NewTrigger
from jobforge.states import JobState
from tests.e2e import worker_runners as runners
from tests.e2e.conftest import Cli

RUNNERS_DIR = Path(runners.__file__).resolve().parent
RUNNERS = "worker_runners"
TENANT = "acme"
SUMMARY = re.compile(r"^worker (?P<name>\S+) stopped after [0-9.]+ s: (?P<counts>.*)$", re.M)


# --------------------------------------------------------------------------------------------
# processes


@dataclass(eq=False)
class WorkerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"worker {self.name} did not exit within {timeout} s\n{self.logs()}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc.poll() is None, f"worker {self.name} already exited\n{self.logs()}"
        self.proc.send_signal(sig)

    def ready(self, timeout: float = 30.0) -> None:
        """Wait for the worker's start log line: its signal handlers are in place."""
        wait_until(
            lambda: f"worker {self.name} started" in self.err or self.proc.poll() is not None,
            timeout,
            f"worker {self.name} to start",
        )
        assert self.proc.poll() is None, f"worker {self.name} exited\n{self.logs()}"

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def logs(self) -> str:
        return f"--- stdout of {self.name}:\n{self.out}\n--- stderr of {self.name}:\n{self.err}"

    def counts(self) -> dict[str, int]:
        """The counters of the summary line the worker prints when it stops."""
        match = SUMMARY.search(self.out)
        assert match is not None, f"no stop summary line\n{self.logs()}"
        assert match["name"] == self.name
        if match["counts"] == "no jobs":
            return {}
        pairs = (item.rsplit(" ", 1) for item in match["counts"].split(", "))
        return {key: int(value) for key, value in pairs}


Spawn = Callable[..., WorkerProcess]
Launch = Callable[..., WorkerProcess]


def _env(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFORGE_")}
    env["COLUMNS"] = "200"  # rich wraps long lines at the terminal width
    env[runners.DSN_ENV] = dsn
    return env


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start `jobforge worker --runners worker_runners --database-url URL --name NAME ARGS…`;
    every process still alive at the end of the test is killed."""
    started: list[WorkerProcess] = []

    def start(url: str, name: str, *args: str) -> WorkerProcess:
        out_path, err_path = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        command = [
            sys.executable, "-m", "jobforge.cli.app", "worker", "--runners", RUNNERS,
            "--database-url", url, "--name", name, *args,
        ]  # fmt: skip
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(command, cwd=RUNNERS_DIR, env=_env(url), stdout=out, stderr=err)
        worker = WorkerProcess(name, proc, out_path, err_path)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.kill()


@pytest.fixture
def spawn(launch: Launch, jobforge_db: Database) -> Spawn:
    """`launch` on the test's database: `spawn(NAME, ARGS…)`."""

    def start(name: str, *args: str) -> WorkerProcess:
        return launch(jobforge_db.dsn, name, *args)

    return start


@pytest.fixture
def conn(jobforge_db: Database) -> Iterator[db.Connection]:
    """An autocommit connection that sees the tenant's jobs, with `side_effects` created."""
    with jobforge_db.connect() as connection:
        connection.execute(runners.SIDE_EFFECTS_DDL)
        connection.execute("SELECT set_config('jobforge.tenant', %s, false)", (TENANT,))
        yield connection


@pytest.fixture
def client(jobforge_db: Database) -> Iterator[QueueClient]:
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as queue:
        yield queue


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def effects(conn: db.Connection, job_id: int) -> list[tuple[str, int, str]]:
    """(worker, attempt, phase) of a job's side effects, in the order they happened."""
    rows = conn.execute(
        "SELECT worker, attempt, phase FROM side_effects WHERE job_id = %s ORDER BY at, phase",
        (job_id,),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def started(conn: db.Connection, job_ids: list[int]) -> int:
    row = conn.execute(
        "SELECT count(DISTINCT job_id) FROM side_effects WHERE phase = 'started' "
        "AND job_id = ANY (%s)",
        (job_ids,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def db_now(conn: db.Connection) -> datetime:
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


def event_log(client: QueueClient, job_id: int) -> list[tuple[str, int | None, str | None]]:
    return [(e.kind, e.attempt, e.worker) for e in client.events(job_id)]


def attempt_rows(client: QueueClient, job_id: int) -> list[tuple[int, str, str | None]]:
    return [(a.attempt, a.worker, a.outcome) for a in client.attempts(job_id)]


def event_at(client: QueueClient, job_id: int, kind: str, worker: str | None = None) -> datetime:
    (at,) = [
        e.at
        for e in client.events(job_id)
        if e.kind == kind and (worker is None or e.worker == worker)
    ]
    return at


# --------------------------------------------------------------------------------------------
# SIGKILL mid-job: the lease expires and another worker runs the job exactly once


@pytest.mark.slow
def test_a_job_of_a_killed_worker_is_taken_over_after_its_lease_and_completes_once(
    spawn: Spawn, conn: db.Connection, client: QueueClient
) -> None:
    (enqueued,) = client.enqueue_many(
        [NewJob(type=runners.HOLD, payload={"hold_in": ["worker-a"]})]
    )
    job_id = enqueued.job_id

    worker_a = spawn("worker-a", "--lease", "2", "--concurrency", "2")
    wait_until(lambda: started(conn, [job_id]) == 1, 30, "worker-a to start the job")
    worker_a.signal(signal.SIGKILL)
    assert worker_a.wait(10) == -signal.SIGKILL
    orphaned = client.get(job_id)
    assert orphaned.status is JobState.RUNNING
    assert orphaned.lease_holder == "worker-a"
    assert orphaned.lease_expires_at is not None

    worker_b = spawn("worker-b", "--lease", "2", "--concurrency", "2")
    wait_until(lambda: client.get(job_id).status is JobState.SUCCEEDED, 30, "the job to succeed")
    assert worker_b.stop() == 0, worker_b.logs()
    assert worker_b.counts()["succeeded"] == 1

    assert effects(conn, job_id) == [
        ("worker-a", 1, "started"),
        ("worker-b", 2, "started"),
        ("worker-b", 2, "completed"),
    ]
    job = client.get(job_id)
    assert (job.status, job.attempts, job.lease_holder) == (JobState.SUCCEEDED, 2, None)
    assert client.result(job_id) == {"worker": "worker-b", "attempt": 2}
    assert event_log(client, job_id) == [
        ("created", None, None),
        ("claimed", 1, "worker-a"),
        ("lease_expired", 1, "worker-a"),
        ("claimed", 2, "worker-b"),
        ("succeeded", 2, "worker-b"),
    ]
    assert attempt_rows(client, job_id) == [
        (1, "worker-a", "lease_expired"),
        (2, "worker-b", "succeeded"),
    ]
    # Taken over only once the lease had run out, not before.
    assert event_at(client, job_id, "claimed", "worker-b") >= orphaned.lease_expires_at


@pytest.mark.slow
def test_a_job_longer_than_its_lease_keeps_it_by_heartbeats(
    spawn: Spawn, conn: db.Connection, client: QueueClient
) -> None:
    """Two live workers with 1 s leases, one 4 s job: the one that claims it keeps its lease by
    heartbeats, the other, polling all along, never takes it over, and the job runs once."""
    workers = [spawn(name, "--lease", "1") for name in ("w-one", "w-two")]
    for worker in workers:
        worker.ready()
    (enqueued,) = client.enqueue_many([NewJob(type=runners.HOLD, payload={"seconds": 4})])
    job_id = enqueued.job_id
    wait_until(lambda: client.get(job_id).status is JobState.SUCCEEDED, 30, "the job to succeed")
    for worker in workers:
        assert worker.stop() == 0, worker.logs()

    rows = effects(conn, job_id)
    owner = rows[0][0]
    assert rows == [(owner, 1, "started"), (owner, 1, "completed")]
    assert client.get(job_id).attempts == 1
    assert event_log(client, job_id) == [
        ("created", None, None),
        ("claimed", 1, owner),
        ("succeeded", 1, owner),
    ]
    assert {w.name: w.counts() for w in workers} == {
        w.name: {"claimed": 1, "succeeded": 1} if w.name == owner else {} for w in workers
    }


# --------------------------------------------------------------------------------------------
# four processes, concurrency 8 each, 10,000 jobs: each runs exactly once

JOBS = 10_000
PROCESSES = 4


def test_two_worker_processes_fire_each_slot_of_a_schedule_once_and_run_its_jobs(
    spawn: Spawn, client: QueueClient, conn: db.Connection, jobforge_db: Database
) -> None:
    """A schedule added ten minutes ago (the caller's clock), catching up 5 missed slots: two
    worker processes passing every 0.2 s fire each slot once between them, and run each job."""
    with jobforge_db.connect() as owner:
        set_feature(owner, "schedules", TENANT, True)
    began = db_now(conn)
    tick = NewSchedule(name="catch", cron="* * * * *", type=runners.FAST, missed="all", catch_up=5)
    client.schedule_add(tick, now=began - timedelta(minutes=10))
    workers = [spawn(f"sched{i}", "--schedules-every", "0.2", "--concurrency", "2")
               for i in range(2)]  # fmt: skip
    for worker in workers:
        worker.ready()

    def ran() -> int:
        row = conn.execute("SELECT count(DISTINCT job_id) FROM side_effects").fetchone()
        return 0 if row is None else int(row[0])

    wait_until(lambda: ran() >= 6, 30, "the catch-up's jobs to run")
    time.sleep(1.0)  # a few more passes of each: nothing fires twice
    for worker in workers:
        assert worker.stop() == 0, worker.logs()
    jobs = client.list_jobs().jobs
    keys = sorted(j.idempotency_key or "" for j in jobs)
    assert len(keys) == len(set(keys)), keys
    assert all(k.startswith("schedule:catch:") for k in keys)
    assert 6 <= len(jobs) <= 7, keys  # 5 late and the on-time slot (and one more if a minute began)
    assert {j.status for j in jobs} == {JobState.SUCCEEDED}
    assert ran() == len(jobs)
    rows = conn.execute("SELECT job_id, count(*) FROM side_effects GROUP BY job_id").fetchall()
    assert {n for _, n in rows} == {1}  # each job ran once
    assert sum(w.counts().get("scheduled", 0) for w in workers) == len(jobs)
    skipped = [f for f in client.schedule_firings("catch") if f.outcome == "skipped"]
    assert len(skipped) == 4  # 9 late, 5 caught up


@pytest.mark.slow
def test_an_event_submitted_from_the_command_line_fires_a_trigger_whose_job_a_worker_runs(
    spawn: Spawn, client: QueueClient, conn: db.Connection, jobforge_db: Database, cli: Cli
) -> None:
    with jobforge_db.connect() as owner:
        for feature in ("events", "triggers"):
            set_feature(owner, feature, TENANT, True)
    mapping = {"order": "$.subject", "total": "$.data.total"}
    client.trigger_add(
        NewTrigger(name="on-paid", event_type="order.paid", job_type=runners.FAST, input=mapping)
    )
    worker = spawn("ev0")
    worker.ready()
    run = cli("events", "submit", "--type", "order.paid", "--source", "shop", "--subject", "o-1",
              "--data", '{"total": 12}', "--dedupe-key", "pay-o-1", "--database-url",
              jobforge_db.dsn, "--tenant", TENANT, "--json")  # fmt: skip
    assert run.code == 0, run.err
    (evaluation,) = json.loads(run.out)["evaluations"]
    assert evaluation["outcome"] == "fired"
    job_id = evaluation["job_id"]
    wait_until(lambda: client.get(job_id).status is JobState.SUCCEEDED, 30, "the fired job")
    again = cli("events", "submit", "--type", "order.paid", "--source", "shop", "--subject", "o-1",
                "--data", '{"total": 12}', "--dedupe-key", "pay-o-1", "--database-url",
                jobforge_db.dsn, "--tenant", TENANT, "--json")  # fmt: skip
    assert json.loads(again.out)["created"] is False
    time.sleep(0.5)
    assert worker.stop() == 0, worker.logs()
    job = client.get(job_id)
    assert job.payload == {"order": "o-1", "total": 12}
    assert job.idempotency_key == f"trigger:on-paid:{json.loads(run.out)['event']['id']}"
    assert [e[:2] for e in effects(conn, job_id)] == [("ev0", 1)]  # ran once
    assert len(client.list_jobs().jobs) == 1


@pytest.mark.slow
def test_four_workers_run_ten_thousand_jobs_exactly_once(
    spawn: Spawn, conn: db.Connection, client: QueueClient
) -> None:
    for first in range(0, JOBS, 2_000):
        client.enqueue_many(
            [NewJob(type=runners.FAST, payload={"i": i}) for i in range(first, first + 2_000)]
        )
    began = time.monotonic()
    workers = [
        spawn(f"drain-{n}", "--concurrency", "8", "--exit-when-idle") for n in range(PROCESSES)
    ]
    for worker in workers:
        assert worker.wait(max(5.0, 90 - (time.monotonic() - began))) == 0, worker.logs()

    def one(sql: str) -> tuple[Any, ...]:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return tuple(row)

    assert dict(
        conn.execute("SELECT status::text, count(*) FROM jobforge.jobs GROUP BY 1").fetchall()
    ) == {"succeeded": JOBS}
    assert one("SELECT count(*) FROM jobforge.jobs WHERE attempts <> 1") == (0,)
    # Side effects: exactly one per job, and none for anything else.
    assert one("SELECT count(*), count(DISTINCT job_id) FROM side_effects") == (JOBS, JOBS)
    assert one(
        "SELECT count(*) FROM jobforge.jobs j "
        "WHERE NOT EXISTS (SELECT 1 FROM side_effects s WHERE s.job_id = j.id)"
    ) == (0,)
    # One attempt row per job, every one succeeded.
    assert one(
        "SELECT count(*), count(DISTINCT job_id), count(*) FILTER (WHERE outcome = 'succeeded') "
        "FROM jobforge.job_attempts"
    ) == (JOBS, JOBS, JOBS)
    assert one(
        "SELECT count(*) FROM jobforge.job_event_log WHERE kind NOT IN ('created', 'claimed', "
        "'succeeded')"
    ) == (0,)
    # The processes shared the work, and what each says it did is what it did.
    per_worker = dict(
        conn.execute("SELECT worker, count(*) FROM side_effects GROUP BY worker").fetchall()
    )
    assert len(per_worker) >= 2, per_worker
    counts = {w.name: w.counts() for w in workers}
    assert {name: c.get("succeeded", 0) for name, c in counts.items()} == {
        w.name: per_worker.get(w.name, 0) for w in workers
    }
    assert all(c.get("claimed", 0) == c.get("succeeded", 0) for c in counts.values()), counts


# --------------------------------------------------------------------------------------------
# SIGTERM: jobs get the grace period; those still running after it are released

GRACE_S = 4.0
QUICK_S = 2.0


@pytest.mark.slow
def test_sigterm_lets_jobs_finish_within_the_grace_and_releases_the_rest(
    spawn: Spawn, conn: db.Connection, client: QueueClient
) -> None:
    """Two jobs finish within the grace; three are still running after it (a cooperative sync
    handler, an async one, and a sync one that ignores `ctx.cancelled`)."""
    hold = {"hold_in": ["w-term"], "hold_s": 60}
    ids = [
        e.job_id
        for e in client.enqueue_many(
            [
                NewJob(type=runners.HOLD, payload={"seconds": QUICK_S}),
                NewJob(type=runners.HOLD_ASYNC, payload={"seconds": QUICK_S}),
                NewJob(type=runners.HOLD, payload=hold),
                NewJob(type=runners.HOLD_ASYNC, payload=hold),
                NewJob(type=runners.HOLD, payload={**hold, "ignore_cancel": True}),
            ]
        )
    ]
    quick, long = ids[:2], ids[2:]
    worker = spawn("w-term", "--concurrency", "5", "--grace", str(GRACE_S))
    wait_until(lambda: started(conn, ids) == 5, 30, "all five jobs to start")

    term_at = db_now(conn)
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(GRACE_S + 20) == 0, worker.logs()
    took = time.monotonic() - sent
    assert GRACE_S - 0.5 <= took <= GRACE_S + 10, f"exited {took:.1f} s after SIGTERM"
    assert "Traceback" not in worker.err, worker.logs()
    counts = worker.counts()
    assert (counts["claimed"], counts["succeeded"], counts["released"]) == (5, 2, 3), counts

    for job_id in quick:  # finished within the grace: recorded as usual
        job = client.get(job_id)
        assert (job.status, job.attempts) == (JobState.SUCCEEDED, 1)
        assert effects(conn, job_id) == [("w-term", 1, "started"), ("w-term", 1, "completed")]
        assert (
            term_at < event_at(client, job_id, "succeeded") < term_at + timedelta(seconds=GRACE_S)
        )
        assert attempt_rows(client, job_id) == [(1, "w-term", "succeeded")]

    # Still running when the grace ran out (one of them deaf to the cancellation, its thread
    # abandoned): released, no attempt consumed.
    for job_id in long:
        job = client.get(job_id)
        assert (job.status, job.attempts) == (JobState.QUEUED, 0), job
        assert (job.lease_holder, job.lease_token, job.lease_expires_at) == (None, None, None)
        assert job.run_at <= db_now(conn)
        assert event_log(client, job_id) == [
            ("created", None, None),
            ("claimed", 1, "w-term"),
            ("released", 1, "w-term"),
        ]
        assert attempt_rows(client, job_id) == [(1, "w-term", "released")]
        assert event_at(client, job_id, "released") >= term_at + timedelta(seconds=GRACE_S - 0.2)
        assert "completed" not in [phase for _, _, phase in effects(conn, job_id)]


@pytest.mark.slow
def test_a_running_worker_picks_up_the_jobs_another_released_at_shutdown(
    spawn: Spawn, conn: db.Connection, client: QueueClient
) -> None:
    hold = {"hold_in": ["w-first"], "hold_s": 60}
    ids = [
        e.job_id
        for e in client.enqueue_many(
            [NewJob(type=runners.HOLD, payload=hold), NewJob(type=runners.HOLD_ASYNC, payload=hold)]
        )
    ]
    first = spawn("w-first", "--concurrency", "2", "--grace", "0.5")  # default lease: 30 s
    wait_until(lambda: started(conn, ids) == 2, 30, "w-first to start both jobs")
    second = spawn("w-second", "--concurrency", "2", "--log-format", "json")  # idle for now
    second.ready()

    assert first.stop() == 0, first.logs()
    wait_until(
        lambda: all(client.get(i).status is JobState.SUCCEEDED for i in ids),
        20,
        "w-second to run the released jobs",
    )
    assert second.stop() == 0, second.logs()
    assert first.counts()["released"] == 2
    assert second.counts()["succeeded"] == 2
    records = [json.loads(line) for line in second.err.splitlines()]  # --log-format json
    assert records[0]["message"].startswith("worker w-second started")
    assert all(r["worker"] == "w-second" for r in records), records

    for job_id in ids:
        job = client.get(job_id)
        assert (job.status, job.attempts) == (JobState.SUCCEEDED, 1)
        assert [e for e in effects(conn, job_id) if e[0] == "w-second"] == [
            ("w-second", 1, "started"),
            ("w-second", 1, "completed"),
        ]
        assert "completed" not in [p for w, _, p in effects(conn, job_id) if w == "w-first"]
        assert event_log(client, job_id) == [
            ("created", None, None),
            ("claimed", 1, "w-first"),
            ("released", 1, "w-first"),
            ("claimed", 1, "w-second"),
            ("succeeded", 1, "w-second"),
        ]
        assert attempt_rows(client, job_id) == [
            (1, "w-first", "released"),
            (1, "w-second", "succeeded"),
        ]
        # Picked up because it was released, long before w-first's 30 s lease would have run out.
        released_at = event_at(client, job_id, "released")
        assert event_at(client, job_id, "claimed", "w-second") - released_at < timedelta(seconds=10)


@pytest.mark.slow
def test_a_second_sigterm_cuts_the_grace_short(
    spawn: Spawn, conn: db.Connection, client: QueueClient
) -> None:
    (enqueued,) = client.enqueue_many(
        [NewJob(type=runners.HOLD, payload={"hold_in": ["w-twice"], "hold_s": 120})]
    )
    worker = spawn("w-twice", "--grace", "60")
    wait_until(lambda: started(conn, [enqueued.job_id]) == 1, 30, "the job to start")
    worker.signal(signal.SIGTERM)
    wait_until(lambda: "waiting up to 60.0 s" in worker.err, 10, "the grace period to begin")
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0, worker.logs()
    assert time.monotonic() - sent < 10
    assert worker.counts()["released"] == 1
    job = client.get(enqueued.job_id)
    assert (job.status, job.attempts) == (JobState.QUEUED, 0)
    assert attempt_rows(client, enqueued.job_id) == [(1, "w-twice", "released")]


# --------------------------------------------------------------------------------------------
# configuration errors: exit 2, one `error:` line on stderr, no traceback


def _one_error_line(err: str) -> str:
    assert err.startswith("error: "), err
    assert err.endswith("\n"), err
    assert err.count("\n") == 1, f"not one line: {err!r}"
    return err


OK_RUNNERS = """
from jobforge.worker import Registry

registry = Registry()


@registry.handler("e2e.ok")
def ok(payload, ctx):
    return None
"""


@pytest.mark.parametrize(
    ("args", "files", "in_runners_dir", "with_db", "message"),
    [
        pytest.param(
            ("--runners", "no_such_module"),
            {},
            False,
            True,
            "cannot import runner module 'no_such_module': no module named 'no_such_module'",
            id="no-such-module",
        ),
        pytest.param(
            ("--runners", "broken_runners"),
            {"broken_runners.py": "raise RuntimeError('broken on purpose')\n"},
            False,
            True,
            "importing 'broken_runners' failed: RuntimeError: broken on purpose",
            id="module-raises-on-import",
        ),
        pytest.param(
            ("--runners", RUNNERS, "--types", "e2e.nope"),
            {},
            True,
            True,
            "no handler for job type(s) e2e.nope (registered: e2e.fast, e2e.hold, e2e.hold.async)",
            id="unknown-type",
        ),
        pytest.param(
            ("--runners", "ok_runners", "--log-format", "xml"),
            {"ok_runners.py": OK_RUNNERS},
            False,
            True,
            "--log-format must be text or json, not 'xml'",
            id="log-format-xml",
        ),
        pytest.param(
            ("--runners", "ok_runners"),
            {"ok_runners.py": OK_RUNNERS},
            False,
            False,
            "no database: pass --database-url, set JOBFORGE_DATABASE_URL",
            id="no-database",
        ),
    ],
)
def test_worker_configuration_errors(
    cli: Cli,
    project: Path,
    request: pytest.FixtureRequest,
    args: tuple[str, ...],
    files: dict[str, str],
    in_runners_dir: bool,
    with_db: bool,
    message: str,
) -> None:
    for name, text in files.items():
        (project / name).write_text(text)
    target: tuple[str, ...] = ()
    if with_db:
        database: Database = request.getfixturevalue("jobforge_db")
        target = ("--database-url", database.dsn)
    result = cli(
        "worker", *args, *target, "--exit-when-idle", cwd=RUNNERS_DIR if in_runners_dir else None
    )
    assert result.code == 2, result
    assert result.out == ""
    assert message in _one_error_line(result.err)


@pytest.mark.slow
def test_an_unreachable_database_is_one_error_at_startup(launch: Launch) -> None:
    """Like `jobforge migrate`, the worker names an unreachable server once and exits 2, rather
    than reporting itself started and retrying (with tracebacks) for ever."""
    worker = launch("postgresql://u@127.0.0.1:1/x", "w-nowhere")
    try:
        code: int | None = worker.proc.wait(20)
    except subprocess.TimeoutExpired:
        code = None
    assert code is not None, f"still running after 20 s; its stderr began:\n{worker.err[:1500]}"
    assert code == 2, worker.logs()
    assert "Traceback" not in worker.err, worker.logs()
    errors = [line for line in worker.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, worker.logs()
    assert "127.0.0.1:1" in errors[0]
    assert worker.err.splitlines()[-1] == errors[0]
