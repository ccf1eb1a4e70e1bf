"""Events and triggers (migrations/0020) on a real database: the flags refuse in one line, a
submit evaluates the matching triggers in its own transaction (fired, dry run, skipped and why,
each logged), dedupe keys of events and jobs hold under concurrent submits, so do the cooldown and
the hourly cap, a dry-run submit keeps nothing, and the walls: another tenant's bound login sees
and touches none of a tenant's events, triggers or evaluations, and writes none directly.

Time is the caller's clock (a test database takes one) where the cooldown or the cap is tested."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from jobforge import db, errors
from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, QueueClient
from jobforge.queue.events import NewEvent
from jobforge.queue.features import set_feature
from jobforge.queue.triggers import NewTrigger, Predicate
from jobforge.worker import Registry, Worker, WorkerConfig, WorkerReport
from tests.integration.conftest import new_app_login

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


def enable(database: Database, tenant: str | None = "acme", *features: str) -> None:
    with database.connect() as conn:
        for feature in features or ("events", "triggers"):
            set_feature(conn, feature, tenant, True)


def paid(amount: float = 120, **fields: Any) -> NewEvent:
    return NewEvent(type="order.paid", source="shop", subject=fields.pop("subject", "o-1"),
                    data={"order": {"id": fields.pop("order", "o-1"), "total": amount},
                          "region": "eu"}, **fields)  # fmt: skip


def on_paid(name: str = "invoice", **fields: Any) -> NewTrigger:
    base: dict[str, Any] = {
        "name": name, "event_type": "order.paid", "job_type": "billing.invoice",
        "predicates": [Predicate(path="order.total", op="gt", value=100)],
        "input": {"order": "$.data.order.id", "total": "$.data.order.total", "who": "$.subject",
                  "fixed": 1},
    }  # fmt: skip
    base.update(fields)
    return NewTrigger(**base)


@pytest.fixture
def acme(jobforge_db: Database) -> Iterator[QueueClient]:
    enable(jobforge_db)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        yield client


def jobs_of(database: Database, tenant: str = "acme") -> list[tuple[str, str, dict[str, Any]]]:
    with database.connect() as conn, db.tenant_transaction(conn, tenant):
        rows = conn.execute(
            "SELECT idempotency_key, type, payload FROM jobforge.jobs ORDER BY id"
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


# flags


def test_events_and_triggers_are_off_until_enabled_and_the_refusal_names_the_flag(
    jobforge_db: Database,
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        with pytest.raises(errors.FeatureDisabled) as info:
            client.event_submit(paid())
        assert str(info.value) == (
            "feature 'events' is disabled for tenant acme "
            "(jobforge features enable events --tenant acme)"
        )
        with pytest.raises(errors.FeatureDisabled, match="feature 'triggers' is disabled"):
            client.trigger_add(on_paid())
        enable(jobforge_db, "acme", "triggers")
        client.trigger_add(on_paid())
        with pytest.raises(errors.FeatureDisabled, match="feature 'events' is disabled"):
            client.event_submit(paid())


def test_with_triggers_off_the_event_is_stored_and_each_trigger_logs_why_it_did_not_fire(
    jobforge_db: Database,
) -> None:
    enable(jobforge_db)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        client.trigger_add(on_paid())
        with jobforge_db.connect() as conn:
            set_feature(conn, "triggers", "acme", False)
        done = client.event_submit(paid())
        assert done.created
        (evaluation,) = done.evaluations
        assert (evaluation.outcome, evaluation.reason) == ("skipped", "feature_off")
        assert evaluation.detail is not None
        assert "jobforge features enable triggers --tenant acme" in evaluation.detail
        assert [e.id for e in client.event_list()] == [done.event.id]
        assert jobs_of(jobforge_db) == []
        with pytest.raises(errors.FeatureDisabled, match="'triggers'"):
            client.trigger_test("invoice", paid())
        with pytest.raises(errors.FeatureDisabled, match="'triggers'"):
            client.trigger_pause("invoice", paused=False)
        client.trigger_pause("invoice")  # pausing needs no feature


# evaluation


def test_a_matching_event_fires_its_trigger_with_the_mapped_input_in_one_transaction(
    jobforge_db: Database, acme: QueueClient
) -> None:
    acme.trigger_add(on_paid())
    acme.trigger_add(on_paid("other-type", event_type="order.refunded"))
    done = acme.event_submit(paid())
    (evaluation,) = done.evaluations  # the other type is not evaluated
    assert evaluation.outcome == "fired"
    assert evaluation.job_id is not None
    key = f"trigger:invoice:{done.event.id}"
    assert jobs_of(jobforge_db) == [
        (key, "billing.invoice", {"order": "o-1", "total": 120, "who": "o-1", "fixed": 1})
    ]
    job = acme.get(evaluation.job_id)
    assert job.idempotency_key == key
    assert (job.priority, job.max_attempts) == (0, 3)
    acme.trigger_add(on_paid("urgent", priority=1, max_attempts=7, dedupe="$.data.order.id"))
    urgent = next(e for e in acme.event_submit(paid()).evaluations if e.trigger == "urgent")
    assert urgent.job_id is not None
    job = acme.get(urgent.job_id)
    assert (job.priority, job.max_attempts, job.idempotency_key) == (1, 7, "trigger:urgent:o-1")
    logged = acme.trigger_evaluations("invoice")[-1]  # the oldest: the first event's
    assert (logged.outcome, logged.job_id, logged.event_id, logged.trigger) == (
        "fired", evaluation.job_id, done.event.id, "invoice")  # fmt: skip


def test_a_predicate_false_is_logged_skipped_with_the_value_it_saw(acme: QueueClient) -> None:
    acme.trigger_add(on_paid())
    (evaluation,) = acme.event_submit(paid(50)).evaluations
    assert (evaluation.outcome, evaluation.reason) == ("skipped", "predicate")
    assert evaluation.detail == "order.total gt 100 is false (data.order.total is 50)"


def test_a_mapping_the_event_cannot_fill_is_logged_skipped_as_a_mapping_error(
    acme: QueueClient,
) -> None:
    acme.trigger_add(on_paid(input={"x": "$.data.missing.key"}))
    (evaluation,) = acme.event_submit(paid()).evaluations
    assert (evaluation.outcome, evaluation.reason) == ("skipped", "mapping")
    assert (
        evaluation.detail == "mapping: the event has no $.data.missing.key (absent from its data)"
    )


def test_a_dry_run_trigger_logs_the_checked_job_and_enqueues_nothing(
    jobforge_db: Database, acme: QueueClient
) -> None:
    acme.trigger_add(on_paid(dry_run=True))
    done = acme.event_submit(paid())
    (evaluation,) = done.evaluations
    assert evaluation.outcome == "dry_run"
    assert evaluation.job == {
        "type": "billing.invoice", "idempotency_key": f"trigger:invoice:{done.event.id}",
        "priority": 0, "max_attempts": 3,
        "payload": {"order": "o-1", "total": 120, "who": "o-1", "fixed": 1},
    }  # fmt: skip
    assert jobs_of(jobforge_db) == []


def test_a_dry_run_submit_evaluates_everything_and_keeps_nothing(
    jobforge_db: Database, acme: QueueClient
) -> None:
    acme.trigger_add(on_paid())
    done = acme.event_submit(paid(dedupe_key="k1"), dry_run=True)
    assert done.dry_run
    assert done.created
    (evaluation,) = done.evaluations
    assert evaluation.outcome == "dry_run"
    assert evaluation.job is not None
    assert evaluation.job["payload"]["total"] == 120
    assert acme.event_list() == []
    assert acme.trigger_evaluations() == []
    assert jobs_of(jobforge_db) == []
    assert acme.trigger_get("invoice").last_fired_at is None
    assert acme.event_submit(paid(dedupe_key="k1")).created  # the key was not kept either


def test_a_paused_trigger_logs_its_skips_and_fires_again_once_resumed(acme: QueueClient) -> None:
    acme.trigger_add(on_paid(paused=True))
    (evaluation,) = acme.event_submit(paid()).evaluations
    assert (evaluation.outcome, evaluation.reason) == ("skipped", "paused")
    acme.trigger_pause("invoice", paused=False)
    assert acme.event_submit(paid()).evaluations[0].outcome == "fired"


def test_a_mapped_dedupe_key_fires_once_per_value(jobforge_db: Database, acme: QueueClient) -> None:
    acme.trigger_add(on_paid(dedupe="$.data.order.id"))
    first = acme.event_submit(paid(order="o-7")).evaluations[0]
    again = acme.event_submit(paid(order="o-7")).evaluations[0]
    assert first.outcome == "fired"
    assert (again.outcome, again.reason, again.job_id) == ("skipped", "dedupe", first.job_id)
    assert again.detail is not None
    assert "trigger:invoice:o-7" in again.detail
    other = acme.event_submit(paid(130, order="o-7")).evaluations[0]  # same key, other input
    assert (other.outcome, other.reason) == ("skipped", "dedupe")
    assert [k for k, _, _ in jobs_of(jobforge_db)] == ["trigger:invoice:o-7"]


def test_the_cooldown_and_the_hourly_cap_hold(acme: QueueClient) -> None:
    acme.trigger_add(on_paid(cooldown=timedelta(seconds=60), max_per_hour=2))
    outcomes = []
    for minutes in (0, 0.5, 1, 2, 3, 61.5):
        ev = acme.event_submit(paid(), now=T0 + timedelta(minutes=minutes)).evaluations[0]
        outcomes.append(ev.reason or ev.outcome)
    assert outcomes == ["fired", "cooldown", "fired", "hourly_cap", "hourly_cap", "fired"]


# event dedupe


def test_a_resubmit_under_the_same_key_returns_the_first_event_and_evaluates_nothing(
    jobforge_db: Database, acme: QueueClient
) -> None:
    acme.trigger_add(on_paid())
    first = acme.event_submit(paid(dedupe_key="pay-1"))
    again = acme.event_submit(paid(dedupe_key="pay-1"))
    assert (first.created, again.created) == (True, False)
    assert again.event == first.event
    assert again.evaluations == []
    assert len(jobs_of(jobforge_db)) == 1
    with pytest.raises(errors.IdempotencyConflict) as info:
        acme.event_submit(paid(999, dedupe_key="pay-1"))
    assert str(info.value) == (
        f"dedupe key 'pay-1' is already used by event {first.event.id} with a different body"
    )


def run_together(count: int, action: Callable[[int], Any]) -> list[Any]:
    """`action(i)` for each i in threads started together; their answers (or exceptions)."""
    barrier = threading.Barrier(count)
    found: list[Any] = [None] * count

    def one(i: int) -> None:
        barrier.wait()
        try:
            found[i] = action(i)
        except Exception as exc:
            found[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return found


def submit_as(clients: list[QueueClient], key: str, i: int) -> Any:
    return clients[i].event_submit(paid(dedupe_key=key))


def test_two_submits_of_the_same_event_in_parallel_fire_once(jobforge_db: Database) -> None:
    enable(jobforge_db)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as setup:
        setup.trigger_add(on_paid())
    for round_ in range(5):
        clients = [QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1)
                   for _ in range(2)]  # fmt: skip
        try:
            done = run_together(2, functools.partial(submit_as, clients, f"same-{round_}"))
        finally:
            for c in clients:
                c.close()
        assert sorted(d.created for d in done) == [False, True]
        assert done[0].event.id == done[1].event.id
    assert len(jobs_of(jobforge_db)) == 5


def test_the_cooldown_and_the_cap_hold_under_concurrent_submits(jobforge_db: Database) -> None:
    enable(jobforge_db)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as setup:
        setup.trigger_add(on_paid("cool", cooldown=timedelta(hours=1)))
        setup.trigger_add(on_paid("capped", max_per_hour=3))
    clients = [QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) for _ in range(8)]
    try:
        done = run_together(8, lambda i: clients[i].event_submit(paid(order=f"o-{i}")))
    finally:
        for c in clients:
            c.close()
    fired: dict[str, int] = {"cool": 0, "capped": 0}
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        for e in client.trigger_evaluations(limit=100):
            assert e.trigger is not None
            fired[e.trigger] += e.outcome == "fired"
    assert all(not isinstance(d, Exception) for d in done), done
    assert fired == {"cool": 1, "capped": 3}
    assert len(jobs_of(jobforge_db)) == 4


# the async client


def test_the_async_client_submits_and_lists(jobforge_db: Database) -> None:
    enable(jobforge_db)

    async def go() -> tuple[int, int]:
        client = await AsyncQueueClient.connect(jobforge_db.dsn, tenant="acme")
        try:
            await client.trigger_add(on_paid())
            done = await client.event_submit(paid())
            listed = await client.event_list(type="order.paid")
            return len(done.evaluations), len(listed)
        finally:
            await client.close()

    assert asyncio.run(go()) == (1, 1)


# test, list, filters


def test_trigger_test_shows_the_input_without_storing_anything(
    jobforge_db: Database, acme: QueueClient
) -> None:
    acme.trigger_add(on_paid())
    found = acme.trigger_test("invoice", paid())
    assert found.matched
    assert found.input == {"order": "o-1", "total": 120, "who": "o-1", "fixed": 1}
    missed = acme.trigger_test("invoice", paid(10))
    assert (missed.matched, missed.reason) == (False, "predicate")
    wrong = acme.trigger_test("invoice", NewEvent(type="x", source="s"))
    assert (wrong.matched, wrong.reason) == (False, "type")
    no_subject = acme.trigger_test("invoice", paid(subject=None))
    assert (no_subject.matched, no_subject.reason, no_subject.input) == (True, "mapping", None)
    assert acme.event_list() == []
    assert acme.trigger_evaluations() == []
    assert jobs_of(jobforge_db) == []
    with pytest.raises(errors.JobNotFound, match="trigger 'nope' not found for tenant acme"):
        acme.trigger_test("nope", paid())


def test_events_list_filters_by_type_and_since(acme: QueueClient) -> None:
    a = acme.event_submit(paid(), now=T0)
    b = acme.event_submit(NewEvent(type="user.signed-up", source="web"), now=T0 + timedelta(1))
    assert [e.id for e in acme.event_list()] == [b.event.id, a.event.id]
    assert [e.id for e in acme.event_list(type="order.paid")] == [a.event.id]
    assert [e.id for e in acme.event_list(since=T0 + timedelta(hours=1))] == [b.event.id]
    assert [e.id for e in acme.event_list(limit=1)] == [b.event.id]
    assert a.event.occurred_at == T0
    assert acme.event_list()[0].login


def test_the_database_refuses_bad_events_and_triggers_in_one_line(
    jobforge_db: Database, acme: QueueClient
) -> None:
    with jobforge_db.connect() as conn:
        conn.execute("UPDATE jobforge.settings SET max_payload_bytes = 1000")
    with pytest.raises(
        errors.PayloadTooLarge, match=r"the data is \d+ bytes, over the limit of 1000"
    ):
        acme.event_submit(NewEvent(type="big", source="s", data={"x": "y" * 2000}))
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as raw, raw.transaction() as conn:
        for statement, message in (
            ("SELECT jobforge.event_submit_v1('bad type', 's', NULL, '{}')",
             "event type 'bad type' is invalid"),
            ("SELECT jobforge.event_submit_v1('t', '', NULL, '{}')",
             "the source must be 1-500 printable characters"),
            ("SELECT jobforge.event_submit_v1('t', 's', NULL, '[]')",
             "the data must be a JSON object, not array"),
            ("SELECT jobforge.trigger_add_v1('t', 'e', '[{\"path\": \"a\", \"op\": \"gt\", "
             "\"value\": \"x\"}]', 'j', '{}')",
             "predicate #1: gt compares numbers"),
            ("SELECT jobforge.trigger_add_v1('t', 'e', '[{\"path\": \"a\", \"op\": \"like\", "
             "\"value\": 1}]', 'j', '{}')", "op \"like\" is unknown"),
            ("SELECT jobforge.trigger_add_v1('t', 'e', '[]', 'j', '{\"a\": \"$.nope\"}')",
             "$.nope is not an event field"),
            ("SELECT jobforge.trigger_add_v1('t', 'e', '[]', 'j', '{}', '$.what')",
             "dedupe mapping: $.what is not an event field"),
            ("SELECT jobforge.trigger_add_v1('t', 'e', '[]', 'j', '{}', NULL, '2 days')",
             "cooldown 2 days is out of range"),
            ("SELECT jobforge.trigger_add_v1('t', 'e', '[]', 'j', '{}', NULL, '0', 0)",
             "max per hour 0 is out of range 1-1000"),
        ):  # fmt: skip
            with pytest.raises(psycopg.Error) as info, conn.transaction():
                conn.execute(statement.encode())
            primary = info.value.diag.message_primary or ""
            assert message in primary, statement
            assert "\n" not in primary, statement
    acme.trigger_add(on_paid())
    with pytest.raises(errors.InvalidJob, match="trigger 'invoice' already exists"):
        acme.trigger_add(on_paid())


# walls


def test_another_tenant_s_login_sees_and_touches_none_of_a_tenant_s_events_and_triggers(
    jobforge_db: Database, acme: QueueClient
) -> None:
    enable(jobforge_db, "globex")
    acme.trigger_add(on_paid())
    acme.event_submit(paid(dedupe_key="k"))
    with new_app_login(jobforge_db, ["globex"]) as url:
        with QueueClient.connect(url, tenant="globex") as globex:
            assert globex.event_list() == []
            assert globex.trigger_list() == []
            assert globex.trigger_evaluations() == []
            for action in (globex.trigger_get, globex.trigger_evaluations, globex.trigger_remove,
                           globex.trigger_pause):  # fmt: skip
                with pytest.raises(errors.JobNotFound):
                    action("invoice")
            # the same dedupe key is its own; acme's trigger does not see globex's event
            done = globex.event_submit(paid(dedupe_key="k"))
            assert (done.created, done.evaluations) == (True, [])
            globex.trigger_add(on_paid())  # the same name: its own
        with QueueClient.connect(url, tenant="acme") as forged:
            assert forged.event_list() == []  # a bound login naming another tenant: none
            with pytest.raises(errors.TenantRequired, match="may not act for tenant 'acme'"):
                forged.event_submit(paid())
            with pytest.raises(errors.TenantRequired, match="may not act for tenant 'acme'"):
                forged.trigger_remove("invoice")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET jobforge.tenant = 'globex'")
            conn.execute("SET jobforge.scope = 'worker'")  # asking is not enough
            for table in ("events", "triggers", "trigger_evaluations"):
                seen = conn.execute(f"SELECT DISTINCT tenant_id FROM jobforge.{table}").fetchall()
                assert seen in ([], [("globex",)]), table
            for statement in (
                "UPDATE jobforge.triggers SET paused = false",
                "DELETE FROM jobforge.events",
                "INSERT INTO jobforge.events (tenant_id, type, source, data, occurred_at, "
                "submitted_at) VALUES ('acme', 't', 's', '{}', now(), now())",
                "INSERT INTO jobforge.trigger_evaluations (tenant_id, trigger_id, event_id, "
                "evaluated_at, outcome) VALUES ('acme', 1, 1, now(), 'fired')",
                "UPDATE jobforge.trigger_evaluations SET outcome = 'fired'",
                "SELECT * FROM jobforge.evaluate_triggers(NULL, now(), false)",
                "SELECT jobforge.trigger_locked('acme', 'invoice')",
            ):
                with pytest.raises(psycopg.Error) as info:
                    conn.execute(statement.encode())
                assert info.value.sqlstate == "42501", statement
    assert [t.name for t in acme.trigger_list()] == ["invoice"]
    assert len(acme.event_list()) == 1
    assert len(acme.trigger_evaluations()) == 1


# a worker end to end


def test_an_event_fires_a_trigger_and_a_worker_runs_the_job(jobforge_db: Database) -> None:
    enable(jobforge_db)
    ran: list[dict[str, object]] = []
    registry = Registry()
    registry.register("billing.invoice", lambda payload, ctx: ran.append(payload))
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        client.trigger_add(on_paid())
        done = client.event_submit(paid())
    config = WorkerConfig(name="w", schedules_every_s=None, poll_min_s=0.05, poll_max_s=0.1)

    async def until_ran() -> WorkerReport:
        worker = Worker(jobforge_db.dsn, registry, config)
        running = asyncio.ensure_future(worker.run())
        for _ in range(200):
            await asyncio.sleep(0.05)
            if ran:
                break
        worker.stop()
        return await running

    report = asyncio.run(until_ran())
    assert ran == [{"order": "o-1", "total": 120, "who": "o-1", "fixed": 1}]
    assert report.counts["succeeded"] == 1
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        job_id = done.evaluations[0].job_id
        assert job_id is not None
        assert client.get(job_id).status.value == "succeeded"
