"""One round trip per queue call (`db.flight`), counted in libpq's protocol trace, and what the
flight keeps of the scoped transaction it replaced: the tenant, scope and role are the
transaction's alone, a failed call leaves nothing behind, and row-level security binds a
prepared statement for the role of each transaction it runs in."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import psycopg
import pytest

from jobforge import db, errors
from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, NewJob, Outcome, QueueClient

T = TypeVar("T")

#: One message a line, its direction (F or B) first.
_NO_TIMESTAMPS = psycopg.pq.Trace.SUPPRESS_TIMESTAMPS


@pytest.fixture
def pool(jobforge_db: Database) -> Iterator[db.ConnectionPool]:
    """One connection, so every call reuses it (and its prepared statements)."""
    with db.ConnectionPool(jobforge_db.dsn, min_size=1, max_size=1, open=True) as shared:
        yield shared


def _round_trips(trace: str) -> int:
    """Times the client waited for the server: a run of frontend messages, then an answer."""
    trips, last = 0, ""
    for line in trace.splitlines():
        direction = line.split("\t", 1)[0]
        if direction == "B" and last == "F":
            trips += 1
        if direction in ("F", "B"):
            last = direction
    return trips


def _counted(conn: Any, call: Callable[[], T]) -> tuple[T, int]:
    """The call's answer, and the round trips it took on `conn` (the pool's only connection)."""
    fd, path = tempfile.mkstemp()
    try:
        conn.pgconn.trace(fd)
        conn.pgconn.set_trace_flags(_NO_TIMESTAMPS)
        try:
            answer = call()
        finally:
            conn.pgconn.untrace()
        with open(path, encoding="utf-8", errors="replace") as trace:
            return answer, _round_trips(trace.read())
    finally:
        os.close(fd)
        os.unlink(path)


def _only(pool: db.ConnectionPool) -> psycopg.Connection[Any]:
    """The pool's one connection, handed back: the clients take it for each call."""
    conn = pool.getconn()
    pool.putconn(conn)
    return conn


def _leftover(pool: db.ConnectionPool) -> tuple[Any, ...]:
    """What a call could leave on its connection: scope settings, a role, a transaction."""
    with pool.connection() as conn:
        autocommit = conn.autocommit
        row = conn.execute(
            "SELECT current_setting('jobforge.tenant', true),"
            " current_setting('jobforge.scope', true), current_user = session_user"
        ).fetchone()
        conn.rollback()
    assert row is not None
    return (row[0] or "", row[1] or "", row[2], autocommit)


def test_a_call_is_one_round_trip_a_claim_too(pool: db.ConnectionPool) -> None:
    tenant, worker = QueueClient(pool, tenant="acme"), QueueClient(pool)
    conn = _only(pool)
    for _ in range(6):  # past psycopg's prepare_threshold: prepared statements as well
        tenant.enqueue("ops.a", {})
    enqueued, trips = _counted(conn, lambda: tenant.enqueue("ops.a", {"n": 1}))
    assert trips == 1
    batch = [NewJob(type="ops.a", payload={"i": i}) for i in range(50)]
    assert _counted(conn, lambda: tenant.enqueue_many(batch))[1] == 1
    assert _counted(conn, lambda: tenant.get(enqueued.job_id))[1] == 1
    # the job is checked visible before its events are read, in the same transaction
    assert _counted(conn, lambda: tenant.events(enqueued.job_id))[1] == 2
    # the claim commits with its rows (unloadable ones are failed in a second transaction)
    jobs, trips = _counted(conn, lambda: worker.claim("w1", 5))
    assert trips == 1
    leases = [(j.id, j.lease_token) for j in jobs if j.lease_token is not None]
    assert _counted(conn, lambda: worker.heartbeat("w1", leases))[1] == 1
    outcomes = [Outcome(job_id=i, lease_token=t, outcome="succeeded") for i, t in leases]
    states, trips = _counted(conn, lambda: worker.finish("w1", outcomes))
    assert (set(states.values()), trips) == ({"succeeded"}, 1)
    assert _counted(conn, lambda: tenant.cancel(enqueued.job_id))[1] == 1


def test_the_async_client_is_one_round_trip_too(jobforge_db: Database) -> None:
    async def scenario() -> tuple[list[int], bool]:
        pool = db.AsyncConnectionPool(jobforge_db.dsn, min_size=1, max_size=1, open=False)
        await pool.open()
        try:
            client = AsyncQueueClient(pool, tenant="acme")
            conn = await pool.getconn()
            await pool.putconn(conn)

            async def counted(call: Callable[[], Awaitable[object]]) -> int:
                fd, path = tempfile.mkstemp()
                conn.pgconn.trace(fd)
                conn.pgconn.set_trace_flags(_NO_TIMESTAMPS)
                try:
                    await call()
                finally:
                    conn.pgconn.untrace()
                    os.close(fd)
                with open(path, encoding="utf-8", errors="replace") as trace:
                    text = trace.read()
                os.unlink(path)
                return _round_trips(text)

            enqueued = await client.enqueue("ops.a", {})
            trips = [
                await counted(lambda: client.enqueue("ops.a", {"n": 1})),
                await counted(lambda: client.events(enqueued.job_id)),
            ]
            return trips, conn.autocommit
        finally:
            await pool.close()

    # a single enqueue prepares its statement on a connection's first (db.lean), as psycopg
    # does on a statement's fifth: one more round trip, once
    assert asyncio.run(scenario()) == ([1, 2], False)  # autocommit as the pool made it


def test_a_call_leaves_no_scope_role_or_transaction_behind(pool: db.ConnectionPool) -> None:
    tenant = QueueClient(pool, tenant="acme")
    clean = _leftover(pool)
    assert clean == ("", "", True, False)
    tenant.enqueue("ops.a", {})
    assert _leftover(pool) == clean
    QueueClient(pool).reap()
    assert _leftover(pool) == clean
    with pytest.raises(errors.PayloadTooLarge):  # fails inside the flight: rolled back
        QueueClient(pool, tenant="acme", max_payload_bytes=10).enqueue("ops.a", {"x": "y" * 20})
    assert _leftover(pool) == clean
    with pytest.raises(errors.JobNotFound):  # fails after it: committed, nothing written
        tenant.events(10**9)
    assert _leftover(pool) == clean
    assert tenant.enqueue("ops.a", {"after": True}).created  # the connection still serves


def test_row_level_security_binds_a_reused_prepared_statement_per_transaction(
    pool: db.ConnectionPool,
) -> None:
    """A statement with no tenant filter of its own, run past the prepare threshold in flights
    that alternate between a tenant (as jobforge_app) and the worker scope (as the login): each
    run sees what its own transaction's role and tenant may see."""
    QueueClient(pool, tenant="acme").enqueue_many([NewJob(type="ops.a", payload={})] * 2)
    QueueClient(pool, tenant="other").enqueue("ops.a", {})
    seen: list[tuple[str, str, int]] = []
    with pool.connection() as conn:
        for index in range(12):
            worker = index % 2 == 1
            with db.flight(
                conn, None if worker else "acme", worker=worker, app_role=not worker
            ) as f:
                cursor = f.send(
                    "SELECT current_user AS role, count(*) AS jobs FROM jobforge.jobs"
                    " WHERE %(any)s::boolean",
                    {"any": True},
                )
            row = cursor.fetchone()
            seen.append(("worker" if worker else "acme", row["role"], row["jobs"]))
        prepared = conn.execute(
            "SELECT count(*) FROM pg_prepared_statements"
            " WHERE statement LIKE '%current_user AS role%'"
        ).fetchone()
        conn.rollback()
    assert prepared == (1,)
    login = seen[1][1]
    assert set(seen) == {("acme", "jobforge_app", 2), ("worker", login, 3)}
    assert login != "jobforge_app"


def test_a_flight_left_by_an_exception_of_the_client_rolls_back(pool: db.ConnectionPool) -> None:
    """A task canceled mid-call, or rows that fail to load before a statement saying `more`:
    what the flight sent is rolled back, not committed by the pipeline's Sync."""
    enqueue = "SELECT job_id FROM jobforge.enqueue_v1(ARRAY['ops.a'], ARRAY['{}'::jsonb])"

    def abandoned(conn: psycopg.Connection[Any], read_midway: bool) -> None:
        with db.flight(conn, "acme", app_role=True) as flight:
            cursor = flight.send(enqueue, None)
            if read_midway:
                assert len(cursor.fetchall()) == 1  # run, in the open transaction
            raise RuntimeError("the client's own")

    for read_midway in (False, True):
        with pool.connection() as conn:
            with pytest.raises(RuntimeError, match="client"):
                abandoned(conn, read_midway)
            assert not conn.autocommit
    assert _leftover(pool) == ("", "", True, False)
    assert QueueClient(pool, tenant="acme").list_jobs().jobs == []


def _fail_early(flight: db.Flight) -> None:
    """A failing statement, then more sent while its error comes back: psycopg processes the
    error while sending a later one, so it is raised inside the flight's block, with statements
    (and, in a real call, COMMIT) queued behind it that the server never answers."""
    flight.send("SELECT 1 / 0", None)
    for i in range(200):
        flight.send("SELECT %(i)s", {"i": i})
        time.sleep(0.001)
    raise AssertionError("the error never came back inside the flight")


async def _fail_early_async(flight: db.AsyncFlight) -> None:
    await flight.send("SELECT 1 / 0", None)
    for i in range(200):
        await flight.send("SELECT %(i)s", {"i": i})
        await asyncio.sleep(0.001)
    raise AssertionError("the error never came back inside the flight")


def test_an_error_inside_a_flight_is_raised_once_and_not_logged(
    jobforge_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The error is raised once and rolled back; the pipeline's own end must not log it again as
    "error ignored terminating …", which a CLI user reads as a second error line (it did, now
    and then, for `jobforge jobs cancel 999`)."""
    caplog.set_level("WARNING")
    with db.connect(jobforge_db.dsn) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero), db.flight(conn, "t1") as flight:
            _fail_early(flight)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []


def test_an_error_inside_an_async_flight_is_raised_once_and_not_logged(
    jobforge_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING")

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(jobforge_db.dsn) as conn:
            with pytest.raises(psycopg.errors.DivisionByZero):
                async with db.flight_async(conn, "t1") as flight:
                    await _fail_early_async(flight)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    asyncio.run(main())
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []


def test_an_error_that_surfaces_as_commit_is_sent_is_raised_once_and_not_logged(
    jobforge_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The block ends after the server has already answered a failing statement: psycopg raises
    it while COMMIT is sent, still inside the pipeline (`jobs retry` of an exhausted job)."""
    caplog.set_level("WARNING")
    with db.connect(jobforge_db.dsn) as conn:
        for _ in range(5):
            with pytest.raises(psycopg.errors.DivisionByZero), db.flight(conn, "t1") as flight:
                _fail_then_wait(flight)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []


def _fail_then_wait(flight: db.Flight) -> None:
    flight.send("SELECT 1 / 0", None)
    time.sleep(0.05)  # its error is back before the block ends and COMMIT is sent
