"""The queue's SQL functions against a real database: event sequences, fencing, idempotency.

The Python client arrives later in [2/7]; these tests call the functions the client will wrap.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from jobforge import db
from jobforge.provision import Database
from jobforge.states import TRANSITIONS, JobState

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _tenant(conn: db.Connection, tenant: str = "acme") -> None:
    conn.execute("SELECT set_config('jobforge.tenant', %s, false)", (tenant,))


def enqueue(conn: db.Connection, *payloads: dict[str, Any], key: str | None = None,
            max_attempts: int = 3, now: datetime = T0) -> list[tuple[int, int, bool]]:  # fmt: skip
    types = ["ops.scan"] * len(payloads)
    keys = [key] * len(payloads) if key else None
    return conn.execute(
        "SELECT * FROM jobforge.enqueue_v1(%s, %s::jsonb[], %s, NULL, NULL, %s, NULL, %s)",
        (types, [Jsonb(p) for p in payloads], keys,
         [max_attempts] * len(payloads), now),
    ).fetchall()  # fmt: skip


def claim(conn: db.Connection, worker: str = "w1", limit: int = 10, now: datetime = T0,
          lease_s: float = 30) -> list[dict[str, Any]]:  # fmt: skip
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(
        "SELECT * FROM jobforge.claim_v1(%s, %s, NULL, %s, %s)", (worker, limit, lease_s, now)
    ).fetchall()


def finish(conn: db.Connection, job: dict[str, Any], outcome: str, worker: str = "w1",
           now: datetime = T0) -> str:  # fmt: skip
    row = conn.execute(
        "SELECT state FROM jobforge.finish_v1(%s, %s, %s, %s, %s::jsonb[], %s::jsonb[], %s)",
        (worker, [job["id"]], [job["lease_token"]], [outcome],
         [Jsonb({"ok": True})], [Jsonb({"m": "boom"})], now),
    ).fetchone()  # fmt: skip
    assert row is not None
    return str(row[0])


def events(conn: db.Connection, job_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT kind FROM jobforge.job_event_log WHERE job_id = %s ORDER BY id", (job_id,)
    ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def conn(jobforge_db: Database) -> Any:
    with jobforge_db.connect() as connection:
        _tenant(connection)
        yield connection


def test_the_sql_transition_table_mirrors_states_py(conn: db.Connection) -> None:
    rows = conn.execute("SELECT from_status::text, to_status::text FROM jobforge.job_transitions")
    assert {(a, b) for a, b in rows.fetchall()} == {(a.value, b.value) for a, b in TRANSITIONS}


#: Any status, with the lease and finish columns its constraints ask for.
_MOVE = """
UPDATE jobforge.jobs SET status = %(status)s::jobforge.job_status,
    lease_token = CASE WHEN %(status)s = 'running' THEN gen_random_uuid() END,
    lease_holder = CASE WHEN %(status)s = 'running' THEN 'w1' END,
    lease_expires_at = CASE WHEN %(status)s = 'running' THEN now() END,
    finished_at = CASE WHEN %(status)s IN ('succeeded', 'failed', 'dead', 'canceled') THEN now() END
WHERE id = %(id)s
"""


def test_the_trigger_refuses_every_move_the_table_does_not_list(conn: db.Connection) -> None:
    """The legal moves live in the trigger's WHEN clause (built from job_transitions, 0011):
    every move the table lists passes, every other one is refused in one line."""
    ((_, job_id, _),) = enqueue(conn, {"target": "a"})
    states = [s.value for s in JobState]
    for old in states:
        for new in states:
            if old == new:
                continue
            conn.execute("SET session_replication_role = replica")  # place it, triggers off
            conn.execute(_MOVE, {"status": old, "id": job_id})
            conn.execute("SET session_replication_role = DEFAULT")
            if (JobState(old), JobState(new)) in TRANSITIONS:
                conn.execute(_MOVE, {"status": new, "id": job_id})
                continue
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(_MOVE, {"status": new, "id": job_id})
            assert caught.value.diag.sqlstate == "JF002"
            assert caught.value.diag.message_primary == (
                f"job {job_id} cannot go from {old} to {new}"
            )


def test_success(conn: db.Connection) -> None:
    ((_, job_id, created),) = enqueue(conn, {"target": "a"})
    assert created
    (job,) = claim(conn)
    assert finish(conn, job, "succeeded") == "succeeded"
    assert events(conn, job_id) == ["created", "claimed", "succeeded"]
    result = conn.execute("SELECT result FROM jobforge.job_results WHERE job_id = %s", (job_id,))
    assert result.fetchone() == ({"ok": True},)


def test_a_null_result_writes_no_results_row(conn: db.Connection) -> None:
    ((_, job_id, _),) = enqueue(conn, {"target": "a"})
    (job,) = claim(conn)
    state = conn.execute(
        "SELECT state FROM jobforge.finish_v1('w1', %s, %s, %s)",
        ([job_id], [job["lease_token"]], ["succeeded"]),
    ).fetchone()
    assert state == ("succeeded",)
    rows = conn.execute("SELECT count(*) FROM jobforge.job_results WHERE job_id = %s", (job_id,))
    assert rows.fetchone() == (0,)


def test_deleting_jobs_deletes_their_events_attempts_and_results(conn: db.Connection) -> None:
    ((_, job_id, _),) = enqueue(conn, {"target": "a"})
    (job,) = claim(conn)
    finish(conn, job, "succeeded")
    conn.execute("DELETE FROM jobforge.jobs WHERE id = %s", (job_id,))
    for table in ("job_events", "job_attempts", "job_results"):
        left = conn.execute(f"SELECT count(*) FROM jobforge.{table} WHERE job_id = %s", (job_id,))
        assert left.fetchone() == (0,), table


def test_retry_then_success_with_backoff(conn: db.Connection) -> None:
    ((_, job_id, _),) = enqueue(conn, {"target": "a"})
    (job,) = claim(conn)
    assert finish(conn, job, "retry") == "retry_scheduled"
    assert claim(conn) == []  # not due yet: backoff
    (again,) = claim(conn, now=T0 + timedelta(seconds=2))
    assert again["attempts"] == 2
    assert finish(conn, again, "succeeded", now=T0 + timedelta(seconds=3)) == "succeeded"
    assert events(conn, job_id) == ["created", "claimed", "retry_scheduled", "claimed", "succeeded"]
    attempts = conn.execute(
        "SELECT attempt, outcome FROM jobforge.job_attempts WHERE job_id = %s ORDER BY id",
        (job_id,),
    ).fetchall()
    assert attempts == [(1, "retry"), (2, "succeeded")]


def test_retries_exhausted_is_dead(conn: db.Connection) -> None:
    ((_, job_id, _),) = enqueue(conn, {"target": "a"}, max_attempts=2)
    now = T0
    for _ in range(2):
        (job,) = claim(conn, now=now)
        outcome = finish(conn, job, "retry", now=now)
        now += timedelta(hours=2)
    assert outcome == "dead"
    assert events(conn, job_id) == [
        "created", "claimed", "retry_scheduled", "claimed", "dead",
    ]  # fmt: skip


def test_non_retryable_is_failed(conn: db.Connection) -> None:
    ((_, job_id, _),) = enqueue(conn, {"target": "a"})
    (job,) = claim(conn)
    assert finish(conn, job, "failed") == "failed"
    assert events(conn, job_id) == ["created", "claimed", "failed"]


def test_a_crashed_worker_s_job_is_taken_over(conn: db.Connection) -> None:
    ((_, job_id, _),) = enqueue(conn, {"target": "a"})
    (first,) = claim(conn, worker="dies", lease_s=30)
    assert claim(conn, worker="w2", now=T0 + timedelta(seconds=10)) == []
    (second,) = claim(conn, worker="w2", now=T0 + timedelta(seconds=31))
    assert second["lease_token"] != first["lease_token"]
    assert finish(conn, first, "succeeded", worker="dies") == "lost"  # the late original
    assert finish(conn, second, "succeeded", worker="w2") == "succeeded"
    assert events(conn, job_id) == ["created", "claimed", "lease_expired", "claimed", "succeeded"]


def test_an_expired_lease_with_no_attempts_left_is_dead(conn: db.Connection) -> None:
    ((_, job_id, _),) = enqueue(conn, {"target": "a"}, max_attempts=1)
    claim(conn, lease_s=5)
    assert claim(conn, now=T0 + timedelta(seconds=6)) == []
    assert events(conn, job_id) == ["created", "claimed", "lease_expired", "dead"]


def test_cancel_of_a_running_job_then_a_late_complete_is_rejected(conn: db.Connection) -> None:
    ((_, job_id, _),) = enqueue(conn, {"target": "a"})
    (job,) = claim(conn)
    assert conn.execute("SELECT jobforge.cancel_v1(%s)", (job_id,)).fetchone() == ("canceled",)
    beat = conn.execute(
        "SELECT state FROM jobforge.heartbeat_v1('w1', %s, %s)", ([job_id], [job["lease_token"]])
    ).fetchone()
    assert beat == ("canceled",)
    assert finish(conn, job, "succeeded") == "lost"
    status = conn.execute("SELECT status::text FROM jobforge.jobs WHERE id = %s", (job_id,))
    assert status.fetchone() == ("canceled",)
    assert events(conn, job_id) == ["created", "claimed", "canceled"]


def test_reschedule_needs_a_reset_when_attempts_are_used_up(conn: db.Connection) -> None:
    ((_, job_id, _),) = enqueue(conn, {"target": "a"}, max_attempts=1)
    (job,) = claim(conn)
    finish(conn, job, "failed")
    with pytest.raises(psycopg.Error, match="reset_attempts"):
        conn.execute("SELECT jobforge.reschedule_v1(%s)", (job_id,))
    conn.execute("SELECT jobforge.reschedule_v1(%s, true)", (job_id,))
    assert events(conn, job_id)[-1] == "rescheduled"
    assert len(claim(conn, now=datetime.now(UTC) + timedelta(seconds=1))) == 1


def test_idempotent_enqueue(conn: db.Connection) -> None:
    (first,) = enqueue(conn, {"target": "a"}, key="k1")
    (again,) = enqueue(conn, {"target": "a"}, key="k1")
    assert again[1] == first[1]
    assert (first[2], again[2]) == (True, False)
    with pytest.raises(psycopg.Error, match=rf"'k1' is already used by job {first[1]}") as info:
        enqueue(conn, {"target": "b"}, key="k1")
    assert info.value.sqlstate == "JF001"


@pytest.mark.parametrize(
    ("payload", "sqlstate", "message"),
    [
        ([1, 2], "JF006", "must be a JSON object, not array"),
        ({"big": "x" * 2_000_000}, "JF005", "over the limit"),
    ],
)
def test_bad_payloads_write_nothing(conn: db.Connection, payload: Any, sqlstate: str,
                                    message: str) -> None:  # fmt: skip
    with pytest.raises(psycopg.Error, match=message) as info:
        conn.execute(
            "SELECT * FROM jobforge.enqueue_v1(%s, %s::jsonb[])",
            (["ops.ok", "ops.scan"], [Jsonb({}), Jsonb(payload)]),
        )  # fmt: skip
    assert info.value.sqlstate == sqlstate
    assert conn.execute("SELECT count(*) FROM jobforge.jobs").fetchone() == (0,)


def test_no_tenant_is_refused(jobforge_db: Database) -> None:
    with jobforge_db.connect() as conn, pytest.raises(psycopg.Error) as info:
        conn.execute("SELECT * FROM jobforge.enqueue_v1(ARRAY['ops.scan'], ARRAY['{}'::jsonb])")
    assert info.value.sqlstate == "JF003"


def test_an_illegal_transition_is_rejected_by_the_database(conn: db.Connection) -> None:
    ((_, job_id, _),) = enqueue(conn, {"target": "a"})
    with pytest.raises(psycopg.Error, match="cannot go from queued to succeeded") as info:
        conn.execute(
            "UPDATE jobforge.jobs SET status = 'succeeded', finished_at = now() WHERE id = %s",
            (job_id,),
        )
    assert info.value.sqlstate == "JF002"


def test_parallel_claimers_never_share_a_job(jobforge_db: Database) -> None:
    with jobforge_db.connect() as setup:
        _tenant(setup)
        for _ in range(10):
            enqueue(setup, *({"n": i} for i in range(500)))
    claimed: list[int] = []
    lock = threading.Lock()

    def consume(worker: str) -> None:
        with jobforge_db.connect() as conn:
            while batch := claim(conn, worker=worker, limit=25, now=datetime.now(UTC)):
                for job in batch:
                    assert finish(conn, job, "succeeded", worker=worker,
                                  now=datetime.now(UTC)) == "succeeded"  # fmt: skip
                with lock:
                    claimed.extend(job["id"] for job in batch)

    threads = [threading.Thread(target=consume, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 5000
    assert len(set(claimed)) == 5000
    with jobforge_db.connect() as conn:
        _tenant(conn)
        counts = conn.execute("SELECT status::text, count(*) FROM jobforge.jobs GROUP BY 1")
        assert counts.fetchall() == [("succeeded", 5000)]
