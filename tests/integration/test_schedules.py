"""Schedules and feature flags (migrations/0018) on a real database: the flag refuses, a pass
fires each slot once with its idempotency key, passes in parallel never fire a slot twice, a
pass killed mid-transaction loses nothing, missed slots follow the policy, pause and resume,
dry runs, broken schedules, and the walls: another tenant's login (a real second login) sees
and touches nothing, and a tenant's login cannot turn a feature on or fire schedules itself.

Time is the caller's clock (a test database takes one): `T0` is a fixed instant, and each pass
says what time it is."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from jobforge import db, errors
from jobforge.provision import Database
from jobforge.queue import QueueClient
from jobforge.queue.features import clear_feature, list_features, set_feature
from jobforge.queue.schedules import NewSchedule
from jobforge.worker import Registry, Worker, WorkerConfig, WorkerReport
from tests.integration.conftest import new_app_login

T0 = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)  # a Monday, 30 s past a minute
MINUTE = timedelta(minutes=1)


def enable(database: Database, tenant: str | None = "acme", on: bool = True) -> None:
    with database.connect() as conn:
        set_feature(conn, "schedules", tenant, on)


def every_minute(name: str = "tick", **fields: object) -> NewSchedule:
    return NewSchedule(name=name, cron="* * * * *", timezone="UTC", type="ops.tick",
                       input={"n": 1}, **fields)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture
def acme(jobforge_db: Database) -> Iterator[QueueClient]:
    enable(jobforge_db)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        yield client


@pytest.fixture
def worker(jobforge_db: Database) -> Iterator[QueueClient]:
    with QueueClient.connect(jobforge_db.dsn) as client:
        yield client


def jobs_of(database: Database, tenant: str = "acme") -> list[tuple[str, datetime, str]]:
    with database.connect() as conn, db.tenant_transaction(conn, tenant):
        rows = conn.execute(
            "SELECT idempotency_key, run_at, type FROM jobforge.jobs ORDER BY run_at, id"
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


# feature flags


def test_schedules_are_off_until_enabled_and_the_refusal_names_the_flag(
    jobforge_db: Database,
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        with pytest.raises(errors.FeatureDisabled) as info:
            client.schedule_add(every_minute(), now=T0)
        assert str(info.value) == (
            "feature 'schedules' is disabled for tenant acme "
            "(jobforge features enable schedules --tenant acme)"
        )
        assert info.value.exit_code == 2
        enable(jobforge_db, "acme")
        assert client.schedule_add(every_minute(), now=T0).name == "tick"
    with (
        QueueClient.connect(jobforge_db.dsn, tenant="other") as other,
        pytest.raises(errors.FeatureDisabled),
    ):
        other.schedule_add(every_minute(), now=T0)  # one tenant's flag is not another's


def test_a_tenant_s_own_setting_wins_over_the_deployment_s(jobforge_db: Database) -> None:
    enable(jobforge_db, None)  # every tenant
    enable(jobforge_db, "acme", on=False)  # but acme
    with QueueClient.connect(jobforge_db.dsn, tenant="other") as other:
        other.schedule_add(every_minute(), now=T0)
    with (
        QueueClient.connect(jobforge_db.dsn, tenant="acme") as client,
        pytest.raises(errors.FeatureDisabled),
    ):
        client.schedule_add(every_minute(), now=T0)
    with jobforge_db.connect() as conn:
        assert clear_feature(conn, "schedules", "acme") is True
        assert clear_feature(conn, "schedules", "acme") is False
        flags = list_features(conn)
    assert [(f.feature, f.tenant, f.enabled) for f in flags] == [("schedules", None, True)]
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        client.schedule_add(every_minute(), now=T0)


def test_an_unknown_feature_is_one_line(jobforge_db: Database) -> None:
    with jobforge_db.connect() as conn, pytest.raises(errors.ConfigurationError) as info:
        set_feature(conn, "webhooks", "acme", True)
    assert str(info.value) == (
        "unknown feature 'webhooks': known features are events, schedules, triggers"
    )
    with (
        pytest.raises(errors.InvalidJob, match="unknown feature 'webhooks': known features are"),
        jobforge_db.connect() as conn,
        db.tenant_transaction(conn, None, worker=True),
    ):
        conn.execute("SELECT jobforge.set_feature_v1('webhooks', 'acme', true)")


def test_a_tenant_s_login_cannot_turn_a_feature_on_or_read_the_flags(
    jobforge_db: Database,
) -> None:
    enable(jobforge_db, "acme", on=False)
    with (
        new_app_login(jobforge_db, ["acme"]) as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        attempts = (
            "SELECT jobforge.set_feature_v1('schedules', 'acme', true)",
            "SELECT jobforge.clear_feature_v1('schedules', 'acme')",
            "INSERT INTO jobforge.features VALUES ('schedules', 'acme', true, now())",
            "UPDATE jobforge.features SET enabled = true",
            "DELETE FROM jobforge.features",
            "SELECT * FROM jobforge.features",
            "SELECT jobforge.feature_enabled('schedules', 'acme')",
            "SELECT jobforge.require_feature('schedules', 'acme')",
        )
        for scope in ("", "worker"):  # asking for the worker scope is not enough
            conn.execute(
                "SELECT set_config('jobforge.tenant', 'acme', false), "
                "set_config('jobforge.scope', %s, false)",
                (scope,),
            )
            for statement in attempts:
                with pytest.raises(psycopg.Error) as info:
                    conn.execute(statement.encode())
                assert info.value.sqlstate == "42501", statement
    with (
        QueueClient.connect(jobforge_db.dsn, tenant="acme") as client,
        pytest.raises(errors.FeatureDisabled),
    ):
        client.schedule_add(every_minute(), now=T0)  # still off


# firing


def test_a_pass_fires_each_slot_once_with_the_slot_in_the_key(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    added = acme.schedule_add(every_minute(priority=7, max_attempts=2), now=T0)
    assert added.next_slot is None
    assert added.anchor == T0
    assert worker.schedule_pass("w1", now=T0) == ([], False)  # computes: 09:01 is not due
    assert acme.schedule_get("tick").next_slot == T0.replace(minute=1, second=0)
    fired, more = worker.schedule_pass("w1", now=T0 + MINUTE)
    assert more is False
    assert [(f.name, f.slot, f.outcome) for f in fired] == [
        ("tick", datetime(2026, 3, 2, 9, 1, tzinfo=UTC), "enqueued")
    ]
    assert worker.schedule_pass("w2", now=T0 + MINUTE) == ([], False)  # fired: not due again
    (job,) = acme.list_jobs().jobs
    assert job.id == fired[0].job_id
    assert job.idempotency_key == "schedule:tick:2026-03-02T09:01:00Z"
    assert (job.type, job.payload, job.priority, job.max_attempts) == ("ops.tick", {"n": 1}, 7, 2)
    assert job.run_at == datetime(2026, 3, 2, 9, 1, tzinfo=UTC)
    (created,) = acme.events(job.id)
    assert created.actor == "schedule:tick"  # the audit trail names the schedule
    state = acme.schedule_get("tick")
    assert state.last_slot == datetime(2026, 3, 2, 9, 1, tzinfo=UTC)
    assert state.next_slot == datetime(2026, 3, 2, 9, 2, tzinfo=UTC)
    (firing,) = acme.schedule_firings("tick")
    assert (firing.outcome, firing.job_id, firing.worker) == ("enqueued", job.id, "w1")


def test_passes_in_parallel_never_fire_a_slot_twice(
    jobforge_db: Database, acme: QueueClient
) -> None:
    for i in range(30):
        acme.schedule_add(every_minute(f"s{i}"), now=T0)
    with QueueClient.connect(jobforge_db.dsn) as first:
        first.schedule_pass("w0", now=T0)  # every next slot computed: 09:01
    barrier = threading.Barrier(6)
    fired: list[tuple[int, datetime | None, str]] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        with QueueClient.connect(jobforge_db.dsn, max_size=1) as mine:
            barrier.wait()
            for minute in range(1, 4):
                got, _ = mine.schedule_pass(f"w{i}", limit=7, now=T0 + minute * MINUTE)
                with lock:
                    fired.extend((f.schedule_id, f.slot, f.outcome) for f in got)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every pass may leave rows another held; the last ones sweep up what is left
    with QueueClient.connect(jobforge_db.dsn) as sweep:
        while True:
            got, more = sweep.schedule_pass("sweep", now=T0 + 3 * MINUTE)
            fired.extend((f.schedule_id, f.slot, f.outcome) for f in got)
            if not got and not more:
                break
    assert len(fired) == len(set(fired))
    assert {o for _, _, o in fired} == {"enqueued"}
    keys = [k for k, _, _ in jobs_of(jobforge_db)]
    assert len(keys) == len(set(keys))
    # each schedule fired 09:01, 09:02 and 09:03, each once, whichever pass got there
    per_schedule: dict[int, list[datetime | None]] = {}
    for schedule_id, slot, _ in fired:
        per_schedule.setdefault(schedule_id, []).append(slot)
    assert len(per_schedule) == 30
    for slots in per_schedule.values():
        assert len(slots) == len(set(slots))
        assert max(s for s in slots if s is not None) == datetime(2026, 3, 2, 9, 3, tzinfo=UTC)


def test_a_pass_holding_a_schedule_makes_another_skip_it_not_wait(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    acme.schedule_add(every_minute(), now=T0)
    worker.schedule_pass("w0", now=T0)
    with jobforge_db.connect() as held, db.tenant_transaction(held, None, worker=True):
        rows = held.execute("SELECT id FROM jobforge.schedules_due_v1(10, %s)", (T0 + MINUTE,))
        assert len(rows.fetchall()) == 1  # this transaction holds it
        assert worker.schedule_pass("w1", now=T0 + MINUTE) == ([], False)  # skipped, at once
    fired, _ = worker.schedule_pass("w1", now=T0 + MINUTE)  # the holder went away without firing
    assert [f.outcome for f in fired] == ["enqueued"]


def test_a_pass_killed_mid_transaction_loses_nothing_and_fires_nothing_twice(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    acme.schedule_add(every_minute(), now=T0)
    worker.schedule_pass("w0", now=T0)
    doomed = jobforge_db.connect(autocommit=False)
    doomed.execute(
        "SELECT set_config('jobforge.scope', 'worker', true), set_config('jobforge.tenant', '', "
        "true)"
    )
    (due_id,) = doomed.execute(
        "SELECT id FROM jobforge.schedules_due_v1(10, %s)", (T0 + MINUTE,)
    ).fetchone() or (None,)
    plan = [{"id": due_id, "expected": (T0.replace(minute=1, second=0)).isoformat(),
             "fire": [T0.replace(minute=1, second=0).isoformat()], "skips": [],
             "next": T0.replace(minute=2, second=0).isoformat()}]  # fmt: skip
    fired = doomed.execute(
        "SELECT outcome FROM jobforge.schedule_fire_v1(%s::jsonb, 'doomed', %s)",
        (db.Jsonb(plan), T0 + MINUTE),
    ).fetchall()
    assert fired == [("enqueued",)]  # enqueued inside the doomed transaction ...
    pid = doomed.info.backend_pid
    with jobforge_db.connect() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))  # ... and the worker dies
    doomed.close()
    assert jobs_of(jobforge_db) == []  # nothing of it stayed
    assert acme.schedule_get("tick").next_slot == T0.replace(minute=1, second=0)
    fired_again, _ = worker.schedule_pass("w1", now=T0 + MINUTE)
    assert [(f.slot, f.outcome) for f in fired_again] == [
        (datetime(2026, 3, 2, 9, 1, tzinfo=UTC), "enqueued")
    ]
    assert [k for k, _, _ in jobs_of(jobforge_db)] == ["schedule:tick:2026-03-02T09:01:00Z"]


def test_a_slot_whose_job_exists_already_is_logged_existing_not_enqueued_twice(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    acme.schedule_add(every_minute(), now=T0)
    worker.schedule_pass("w0", now=T0)
    first = acme.enqueue("ops.tick", {"n": 1}, idempotency_key="schedule:tick:2026-03-02T09:01:00Z")
    fired, _ = worker.schedule_pass("w1", now=T0 + MINUTE)
    assert [(f.outcome, f.job_id) for f in fired] == [("existing", first.job_id)]
    assert len(jobs_of(jobforge_db)) == 1


def test_a_slot_that_cannot_be_enqueued_is_logged_failed_and_the_schedule_moves_on(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    acme.schedule_add(every_minute(), now=T0)
    acme.schedule_add(every_minute("other"), now=T0)
    worker.schedule_pass("w0", now=T0)
    # the key taken by a job with another payload: an idempotency conflict
    acme.enqueue("ops.tick", {"n": 2}, idempotency_key="schedule:tick:2026-03-02T09:01:00Z")
    fired, _ = worker.schedule_pass("w1", now=T0 + MINUTE)
    assert sorted((f.name, f.outcome) for f in fired) == [("other", "enqueued"),
                                                         ("tick", "failed")]  # fmt: skip
    (log,) = acme.schedule_firings("tick")
    assert log.outcome == "failed"
    assert log.detail is not None
    assert "already used by job" in log.detail
    assert acme.schedule_get("tick").next_slot == datetime(2026, 3, 2, 9, 2, tzinfo=UTC)
    fired, _ = worker.schedule_pass("w1", now=T0 + 2 * MINUTE)
    assert [(f.name, f.outcome) for f in sorted(fired, key=lambda f: f.name)] == [
        ("other", "enqueued"), ("tick", "enqueued")]  # fmt: skip


# missed slots


@pytest.mark.parametrize(
    ("policy", "grace", "fired", "skipped"),
    [
        # down from 09:00:30 to 12:02:15: 09:01 .. 12:01 are late, 12:02 (15 s) is on time
        ("latest", 60, ["12:02"], 181),  # the on-time slot is the most recent: the rest skipped
        ("latest", 0, ["12:02"], 181),  # nothing on time: the most recent late slot fires
        ("all", 60, ["11:59", "12:00", "12:01", "12:02"], 178),  # catch-up 3, and the on-time
        ("skip", 60, ["12:02"], 181),
        ("skip", 0, [], 182),
    ],
)
def test_missed_slots_after_downtime_follow_the_policy(
    jobforge_db: Database,
    acme: QueueClient,
    worker: QueueClient,
    policy: str,
    grace: int,
    fired: list[str],
    skipped: int,
) -> None:
    schedule = every_minute(missed=policy, catch_up=3, grace=timedelta(seconds=grace))
    acme.schedule_add(schedule, now=T0)
    worker.schedule_pass("w0", now=T0)
    done, _ = worker.schedule_pass("w1", now=datetime(2026, 3, 2, 12, 2, 15, tzinfo=UTC))
    assert [f"{f.slot:%H:%M}" for f in done] == fired
    assert {f.outcome for f in done} <= {"enqueued"}
    skips = [f for f in acme.schedule_firings("tick", limit=1000) if f.outcome == "skipped"]
    # more than 100 skipped slots: one row says how many, from when to when
    assert len(skips) == 1
    assert skips[0].slot == datetime(2026, 3, 2, 9, 1, tzinfo=UTC)
    assert skips[0].detail is not None
    assert f"policy {policy}" in skips[0].detail
    assert f"({skipped} slots from 2026-03-02T09:01:00Z to " in skips[0].detail
    assert acme.schedule_get("tick").next_slot == datetime(2026, 3, 2, 12, 3, tzinfo=UTC)


def test_a_few_missed_slots_are_each_logged(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    acme.schedule_add(every_minute(), now=T0)
    worker.schedule_pass("w0", now=T0)
    fired, _ = worker.schedule_pass("w1", now=T0 + timedelta(minutes=5))
    # at 09:05:30, 09:01, 09:02, 09:03, 09:04 are late (more than 60 s); 09:05 is on time
    assert [f.slot for f in fired] == [datetime(2026, 3, 2, 9, 5, tzinfo=UTC)]
    skips = [f.slot for f in acme.schedule_firings("tick") if f.outcome == "skipped"]
    assert sorted(s for s in skips if s is not None) == [
        datetime(2026, 3, 2, 9, m, tzinfo=UTC) for m in (1, 2, 3, 4)
    ]


# pause, resume, remove, dry run


def test_a_paused_schedule_fires_nothing_and_resumes_from_now(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    acme.schedule_add(every_minute(), now=T0)
    worker.schedule_pass("w0", now=T0)
    assert acme.schedule_pause("tick", now=T0).paused
    assert worker.schedule_pass("w1", now=T0 + 10 * MINUTE) == ([], False)
    resumed = acme.schedule_pause("tick", paused=False, now=T0 + 10 * MINUTE)
    assert (resumed.paused, resumed.next_slot, resumed.anchor) == (False, None,
                                                                   T0 + 10 * MINUTE)  # fmt: skip
    fired, _ = worker.schedule_pass("w1", now=T0 + 11 * MINUTE)
    assert [f.slot for f in fired] == [datetime(2026, 3, 2, 9, 11, tzinfo=UTC)]
    assert [f.outcome for f in acme.schedule_firings("tick")] == ["enqueued"]  # no skips logged


def test_resume_needs_the_feature_and_pause_does_not(
    jobforge_db: Database, acme: QueueClient
) -> None:
    acme.schedule_add(every_minute(), now=T0)
    enable(jobforge_db, "acme", on=False)
    assert acme.schedule_pause("tick", now=T0).paused  # a tenant can always stop it
    with pytest.raises(errors.FeatureDisabled, match="jobforge features enable schedules"):
        acme.schedule_pause("tick", paused=False, now=T0)
    assert acme.schedule_remove("tick") > 0  # and remove it


def test_a_disabled_feature_stops_the_firing_and_enabling_it_again_follows_the_policy(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    acme.schedule_add(every_minute(), now=T0)
    worker.schedule_pass("w0", now=T0)
    enable(jobforge_db, "acme", on=False)
    assert acme.schedule_get("tick").held  # out of the due index: passes never walk it
    assert worker.schedule_pass("w1", now=T0 + 5 * MINUTE) == ([], False)
    enable(jobforge_db, "acme")
    assert not acme.schedule_get("tick").held
    fired, _ = worker.schedule_pass("w1", now=T0 + 10 * MINUTE)
    assert [f.slot for f in fired] == [datetime(2026, 3, 2, 9, 10, tzinfo=UTC)]


def test_the_deployment_s_flag_and_clearing_a_tenant_s_hold_and_release_its_schedules(
    jobforge_db: Database, acme: QueueClient
) -> None:
    acme.schedule_add(every_minute(), now=T0)
    enable(jobforge_db, None, on=False)  # the deployment off: acme's own setting (on) wins
    assert not acme.schedule_get("tick").held
    with jobforge_db.connect() as conn:
        assert clear_feature(conn, "schedules", "acme")  # now the deployment's: off
    assert acme.schedule_get("tick").held
    enable(jobforge_db, None)
    assert not acme.schedule_get("tick").held


def test_a_dry_run_schedule_logs_the_job_and_enqueues_nothing(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    acme.schedule_add(every_minute(dry_run=True), now=T0)
    worker.schedule_pass("w0", now=T0)
    fired, _ = worker.schedule_pass("w1", now=T0 + MINUTE)
    assert [f.outcome for f in fired] == ["dry_run"]
    assert jobs_of(jobforge_db) == []
    (log,) = acme.schedule_firings("tick")
    assert log.job == {
        "type": "ops.tick", "payload": {"n": 1}, "priority": 0, "max_attempts": 3,
        "run_at": "2026-03-02T09:01:00+00:00",
        "idempotency_key": "schedule:tick:2026-03-02T09:01:00Z",
    }  # fmt: skip


def test_remove_takes_the_log_with_it_and_leaves_the_jobs(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    acme.schedule_add(every_minute(), now=T0)
    worker.schedule_pass("w0", now=T0)
    worker.schedule_pass("w0", now=T0 + MINUTE)
    acme.schedule_remove("tick")
    with pytest.raises(errors.JobNotFound, match="schedule 'tick' not found for tenant acme"):
        acme.schedule_remove("tick")
    with pytest.raises(errors.JobNotFound):
        acme.schedule_firings("tick")
    assert len(jobs_of(jobforge_db)) == 1
    with jobforge_db.connect() as conn, db.tenant_transaction(conn, "acme"):
        assert conn.execute("SELECT count(*) FROM jobforge.schedule_firings").fetchone() == (0,)


def test_a_schedule_a_worker_cannot_read_is_paused_with_the_reason(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    # the database knows no cron: a tenant calling the function itself stores what it likes
    with acme.transaction() as conn:
        conn.execute(
            "SELECT jobforge.schedule_add_v1('bad', '99 * * * *', 'UTC', 'ops.tick', '{}', "
            "p_now => %s)",
            (T0,),
        )
    acme.schedule_add(every_minute(), now=T0)
    fired, _ = worker.schedule_pass("w0", now=T0)
    assert [(f.name, f.outcome) for f in fired] == [("bad", "failed")]
    bad = acme.schedule_get("bad")
    assert bad.paused
    assert bad.broken is not None
    assert "99 * * * *" in bad.broken
    (log,) = acme.schedule_firings("bad")
    assert log.outcome == "failed"
    assert log.detail is not None
    assert log.detail.startswith("paused:")
    fired, _ = worker.schedule_pass("w0", now=T0 + MINUTE)  # the others go on
    assert [(f.name, f.outcome) for f in fired] == [("tick", "enqueued")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Bad Name"}, "schedule name 'Bad Name' is invalid"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"type": "Bad Type"}, "job type 'Bad Type' is invalid"),
        ({"input": "[1]"}, "the input must be a JSON object, not array"),
        ({"priority": 40000}, "priority 40000 is out of range 0-32767"),
        ({"max_attempts": 0}, "max_attempts 0 is out of range 1-1000"),
        ({"missed": "some"}, "missed-slot policy 'some' is unknown: use latest, all or skip"),
        ({"catch_up": 0}, "catch_up 0 is out of range 1-1000"),
        ({"grace": "2 days"}, "grace 2 days is out of range"),
        ({"cron": ""}, "the cron expression must be 1-200 printable characters"),
    ],
)
def test_the_database_refuses_bad_schedules_in_one_line(
    jobforge_db: Database, acme: QueueClient, change: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"name": "ok", "cron": "* * * * *", "timezone": "UTC",
                               "type": "ops.tick", "input": "{}", "priority": 0,
                               "max_attempts": None, "missed": "latest", "catch_up": 10,
                               "grace": "60 s"}  # fmt: skip
    args.update(change)
    with pytest.raises(errors.InvalidJob) as info, acme.transaction() as conn:
        conn.execute(
            "SELECT jobforge.schedule_add_v1(%(name)s, %(cron)s, %(timezone)s, %(type)s, "
            "%(input)s::jsonb, %(priority)s, %(max_attempts)s, %(missed)s, %(catch_up)s, "
            "%(grace)s::interval)",
            args,
        )
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_name_taken_is_one_line(acme: QueueClient) -> None:
    acme.schedule_add(every_minute(), now=T0)
    with pytest.raises(errors.InvalidJob) as info:
        acme.schedule_add(every_minute(), now=T0)
    assert str(info.value) == (
        "schedule 'tick' already exists for tenant acme (remove it first: jobforge schedules rm "
        "tick)"
    )


# walls


def test_another_tenant_s_login_sees_and_touches_none_of_a_tenant_s_schedules(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    enable(jobforge_db, "globex")
    acme.schedule_add(every_minute(), now=T0)
    worker.schedule_pass("w0", now=T0)
    worker.schedule_pass("w0", now=T0 + MINUTE)
    with new_app_login(jobforge_db, ["globex"]) as url:
        with QueueClient.connect(url, tenant="globex") as globex:
            assert globex.schedule_list() == []
            for action in (globex.schedule_get, globex.schedule_firings, globex.schedule_remove,
                           globex.schedule_pause):  # fmt: skip
                with pytest.raises(errors.JobNotFound):
                    action("tick")
            with pytest.raises(errors.JobNotFound):
                globex.schedule_pause("tick", paused=False, now=T0)
            globex.schedule_add(every_minute(), now=T0)  # the same name: its own
        with QueueClient.connect(url, tenant="acme") as forged:
            assert forged.schedule_list() == []  # a bound login naming another tenant: none
            with pytest.raises(errors.TenantRequired, match="may not act for tenant 'acme'"):
                forged.schedule_remove("tick")
            with pytest.raises(errors.TenantRequired, match="may not act for tenant 'acme'"):
                forged.schedule_add(every_minute("mine"), now=T0)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET jobforge.tenant = 'globex'")
            conn.execute("SET jobforge.scope = 'worker'")  # asking is not enough
            for table in ("schedules", "schedule_firings"):
                seen = conn.execute(f"SELECT DISTINCT tenant_id FROM jobforge.{table}").fetchall()
                assert seen in ([], [("globex",)]), table
            for statement in (
                "UPDATE jobforge.schedules SET paused = false",
                "DELETE FROM jobforge.schedule_firings",
                "INSERT INTO jobforge.schedule_firings (tenant_id, schedule_id, fired_at, outcome)"
                " VALUES ('acme', 1, now(), 'skipped')",
                "SELECT * FROM jobforge.schedules_due_v1(10)",
                "SELECT * FROM jobforge.schedule_fire_v1('[]', 'w')",
            ):
                with pytest.raises(psycopg.Error) as info:
                    conn.execute(statement.encode())
                assert info.value.sqlstate == "42501", statement
    assert [s.name for s in acme.schedule_list()] == ["tick"]
    assert not acme.schedule_get("tick").paused
    assert len(acme.schedule_firings("tick")) == 1


# a worker end to end


def test_a_worker_fires_a_schedule_and_runs_its_job(jobforge_db: Database) -> None:
    enable(jobforge_db)
    ran: list[dict[str, object]] = []
    registry = Registry()
    registry.register("ops.tick", lambda payload, ctx: ran.append(payload))
    now = datetime.now(UTC)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        # added a minute ago (the caller's clock), daily at the minute that began in between:
        # exactly one slot is due now, and the next is a day away (an every-minute schedule
        # fired again when the test ran across the next minute's start)
        slot = (now - timedelta(seconds=1)).replace(second=0, microsecond=0)
        daily = NewSchedule(name="tick", cron=f"{slot.minute} {slot.hour} * * *", timezone="UTC",
                            type="ops.tick", input={"n": 1})  # fmt: skip
        client.schedule_add(daily, now=now - timedelta(seconds=61))
    config = WorkerConfig(name="w", schedules_every_s=0.1, poll_min_s=0.05, poll_max_s=0.1)

    async def until_ran() -> WorkerReport:
        worker = Worker(jobforge_db.dsn, registry, config)
        running = asyncio.ensure_future(worker.run())
        for _ in range(200):
            await asyncio.sleep(0.05)
            if ran:
                break
        await asyncio.sleep(0.5)  # more passes: the slot does not fire again
        worker.stop()
        return await running

    report = asyncio.run(until_ran())
    assert ran == [{"n": 1}]
    assert report.counts["scheduled"] == 1
    assert report.counts["succeeded"] == 1
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        (job,) = client.list_jobs().jobs
        assert job.status.value == "succeeded"
        assert job.idempotency_key is not None
        assert job.idempotency_key.startswith("schedule:tick:")
        (firing,) = client.schedule_firings("tick")
        assert (firing.outcome, firing.job_id, firing.worker) == ("enqueued", job.id, "w")


def test_a_worker_told_no_schedules_fires_none(jobforge_db: Database) -> None:
    enable(jobforge_db)
    registry = Registry()
    registry.register("ops.tick", lambda payload, ctx: None)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        client.schedule_add(every_minute(), now=datetime.now(UTC) - timedelta(seconds=61))
    config = WorkerConfig(name="w", schedules_every_s=None, poll_min_s=0.05, poll_max_s=0.1)

    async def briefly() -> WorkerReport:
        worker = Worker(jobforge_db.dsn, registry, config)
        running = asyncio.ensure_future(worker.run())
        await asyncio.sleep(1.0)
        worker.stop()
        return await running

    assert asyncio.run(briefly()).counts["scheduled"] == 0
    assert jobs_of(jobforge_db) == []
    with pytest.raises(errors.ConfigurationError, match="schedules_every_s must be above 0"):
        WorkerConfig(schedules_every_s=0).checked()


def test_pause_and_resume_name_who_did_it_and_a_tenant_s_schedules_are_bounded(
    jobforge_db: Database, acme: QueueClient
) -> None:
    assert acme.acting_as("alice").schedule_add(every_minute(), now=T0).actor == "alice"
    assert acme.acting_as("bob").schedule_pause("tick", now=T0).actor == "bob"
    with jobforge_db.connect() as conn, db.tenant_transaction(conn, "acme"):
        conn.execute(
            "INSERT INTO jobforge.schedules (tenant_id, name, cron, timezone, type, input, anchor, "
            "created_at, updated_at) SELECT 'acme', 'n' || g, '* * * * *', 'UTC', 'ops.tick', "
            "'{}', now(), now(), now() FROM generate_series(1, 999) g"
        )
    with pytest.raises(errors.InvalidJob) as info:
        acme.schedule_add(every_minute("one-more"), now=T0)
    assert str(info.value) == (
        "schedule one-more: tenant acme has 1000 schedules already, the most it may have"
    )


def test_a_plan_out_of_bounds_pauses_its_schedule_and_the_pass_goes_on(
    jobforge_db: Database, acme: QueueClient, worker: QueueClient
) -> None:
    acme.schedule_add(every_minute("one"), now=T0)
    acme.schedule_add(every_minute("two"), now=T0)
    worker.schedule_pass("w0", now=T0)
    with jobforge_db.connect() as conn, db.tenant_transaction(conn, None, worker=True):
        due = conn.execute(
            "SELECT id, name, next_slot FROM jobforge.schedules_due_v1(10, %s) ORDER BY name",
            (T0 + MINUTE,),
        ).fetchall()
        slot = datetime(2026, 3, 2, 9, 1, tzinfo=UTC).isoformat()
        plans = [
            {"id": due[0][0], "expected": due[0][2].isoformat(), "fire": [slot], "skips": [],
             "next": T0.isoformat()},  # a next slot in the past: out of bounds
            {"id": due[1][0], "expected": due[1][2].isoformat(), "fire": [slot], "skips": [],
             "next": datetime(2026, 3, 2, 9, 2, tzinfo=UTC).isoformat()},
        ]  # fmt: skip
        fired = conn.execute(
            "SELECT name, outcome FROM jobforge.schedule_fire_v1(%s::jsonb, 'w1', %s)",
            (db.Jsonb(plans), T0 + MINUTE),
        ).fetchall()
    assert sorted(fired) == [("one", "failed"), ("two", "enqueued")]
    one = acme.schedule_get("one")
    assert one.paused
    assert one.broken is not None
    assert "out of bounds" in one.broken
