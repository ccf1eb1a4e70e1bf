"""A single async enqueue runs on the libpq handle (`jobforge.db.lean`), past psycopg's cursor:
it must store what the cursor's path stores, raise what it raises, survive psycopg deallocating
its statement, and leave no connection mid-statement behind a canceled or broken call."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import pytest

from jobforge import db, errors
from jobforge.db import lean
from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, NewJob, QueueClient
from tests.integration.conftest import new_app_login

T = TypeVar("T")

_COLUMNS = (
    "tenant_id, project, type, payload, payload_hash, priority, run_at, max_attempts,"
    " idempotency_key, trace_id, envelope, status, attempts"
)


def _with_client(
    database: Database, scenario: Callable[[AsyncQueueClient], Awaitable[T]], **kw: Any
) -> T:
    async def main() -> T:
        client = await AsyncQueueClient.connect(
            database.dsn, tenant="acme", max_size=1, check=False, **kw
        )
        try:
            return await scenario(client)
        finally:
            await client.close()

    return asyncio.run(main())


def _stored(conn: db.Connection, job_id: int) -> tuple[Any, ...]:
    row = conn.execute(f"SELECT {_COLUMNS} FROM jobforge.jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return tuple(row)


_LATER = datetime(2031, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)

#: Jobs whose every field travels: text with quotes, backslashes and non-ASCII, nested JSON,
#: numbers at JSON's edges, a time with microseconds, an envelope.
_JOBS = [
    NewJob(type="ops.plain", payload={}),
    NewJob(
        type="ops.full",
        payload={"q": 'it\'s "quoted" \\ back', "u": "żółw ✓ 𝄞", "n": [1, 2.5, None, True]},
        idempotency_key="key with spaces ' and \\",
        priority=32767,
        run_at=_LATER,
        max_attempts=1000,
        trace_id="t" * 256,
        project="alpha",
        timeout_s=12.5,
    ),
    NewJob(
        type="ops.edges",
        payload={"big": 2**63 - 1, "small": -(2**63), "float": 1.7976931348623157e308, "e": ""},
        priority=0,
        max_attempts=1,
        token="tok.en",
    ),
]


@pytest.mark.parametrize("job", _JOBS, ids=[j.type for j in _JOBS])
def test_a_lean_enqueue_stores_what_a_cursors_does(
    jobforge_db: Database, jobforge_conn: db.Connection, job: NewJob
) -> None:
    async def scenario(client: AsyncQueueClient) -> int:
        return (await client.enqueue(job.type, job.payload, **_fields(job))).job_id

    async def lean_scenario(client: AsyncQueueClient) -> tuple[int, list[str]]:
        return await scenario(client), await _lean_statements(client)

    lean_id, statements = _with_client(jobforge_db, lean_scenario)
    assert statements == [_enqueue_name()]  # the lean path was taken
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as sync:
        cursor_id = sync.enqueue(
            job.type, job.payload, **{**_fields(job), "idempotency_key": _other(job)}
        ).job_id
    lean_row, cursor_row = _stored(jobforge_conn, lean_id), _stored(jobforge_conn, cursor_id)
    assert _comparable(lean_row, job) == _comparable(cursor_row, job)
    assert lean_row[_COLUMNS.split(", ").index("idempotency_key")] == job.idempotency_key


def _comparable(row: tuple[Any, ...], job: NewJob) -> tuple[Any, ...]:
    """The row without its key (each copy has its own) and, when the job left it to the
    database, its run_at (the time of its enqueue)."""
    named = dict(zip(_COLUMNS.split(", "), row, strict=True))
    del named["idempotency_key"]
    if job.run_at is None:
        del named["run_at"]
    return tuple(named.items())


def _fields(job: NewJob) -> dict[str, Any]:
    return job.model_dump(exclude={"type", "payload", "signatures"}, exclude_defaults=True)


def _other(job: NewJob) -> str | None:
    """A second key for the cursor's copy, so it is a job of its own."""
    return None if job.idempotency_key is None else job.idempotency_key + " (cursor)"


def test_the_statement_is_prepared_once_a_connection(jobforge_db: Database) -> None:
    async def scenario(client: AsyncQueueClient) -> list[str]:
        for i in range(3):
            await client.enqueue("ops.a", {"i": i})
        return await _lean_statements(client)

    assert _with_client(jobforge_db, scenario) == [_enqueue_name()]


def _enqueue_text() -> str:
    from jobforge.sql import query

    return query("job_enqueue_one")


def test_a_statement_deallocated_behind_its_back_is_prepared_again(
    jobforge_db: Database, jobforge_conn: db.Connection
) -> None:
    """psycopg sends DEALLOCATE ALL after a ROLLBACK or DROP it ran with statements of its own
    prepared: the lean statement goes with them, and the next call prepares it again."""

    async def scenario(client: AsyncQueueClient) -> tuple[list[int], list[str]]:
        first = await client.enqueue("ops.a", {"i": 1}, idempotency_key="one")
        async with client.pool.connection() as conn:
            await conn.execute("DEALLOCATE ALL")
        second = await client.enqueue("ops.a", {"i": 2}, idempotency_key="two")
        return [first.job_id, second.job_id], await _lean_statements(client)

    ids, statements = _with_client(jobforge_db, scenario)
    assert len(set(ids)) == 2
    assert statements == [_enqueue_name()]
    count = jobforge_conn.execute("SELECT count(*) FROM jobforge.jobs").fetchone()
    assert count == (2,)


async def _lean_statements(client: AsyncQueueClient) -> list[str]:
    """The lean statements prepared on the client's (one) connection."""
    async with client.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'jf%' ORDER BY name"
        )
        return [row[0] for row in await cursor.fetchall()]


def _enqueue_name() -> str:
    prepared = lean.compiled(_enqueue_text())
    assert prepared is not None
    return prepared.name.decode()


def test_a_prepare_whose_answer_was_thrown_away_is_taken_as_done(jobforge_db: Database) -> None:
    """A call canceled while its PREPARE was answered leaves the statement prepared in the
    server but not known to be: the next PREPARE's "already exists" means it is there."""

    async def scenario(client: AsyncQueueClient) -> list[str]:
        prepared = lean.compiled(_enqueue_text())
        assert prepared is not None
        async with client.pool.connection() as conn:
            await conn.set_autocommit(True)
            await conn.execute(f"PREPARE {prepared.name.decode()} AS {prepared.text.decode()}")
            await conn.set_autocommit(False)
        await client.enqueue("ops.a", {"i": 1})
        await client.enqueue("ops.a", {"i": 2})
        return await _lean_statements(client)

    assert _with_client(jobforge_db, scenario) == [_enqueue_name()]


def test_a_cached_plan_whose_result_changed_is_prepared_again(jobforge_db: Database) -> None:
    async def scenario() -> list[Any]:
        conn = await psycopg.AsyncConnection.connect(jobforge_db.dsn, autocommit=True)
        async with conn:
            await conn.execute("CREATE TABLE public.t (a int)")
            await conn.execute("INSERT INTO public.t VALUES (1)")
            before = await lean.run(conn, "SELECT * FROM public.t WHERE a = %(a)s", {"a": 1})
            await conn.execute("ALTER TABLE public.t ADD COLUMN b text DEFAULT 'x'")
            after = await lean.run(conn, "SELECT * FROM public.t WHERE a = %(a)s", {"a": 1})
            return [before, after]

    assert asyncio.run(scenario()) == [[{"a": 1}], [{"a": 1, "b": "x"}]]


def test_an_error_raised_by_the_database_is_the_typed_one(
    jobforge_db: Database, jobforge_conn: db.Connection
) -> None:
    async def scenario(client: AsyncQueueClient) -> str:
        await client.enqueue("ops.a", {"i": 1}, idempotency_key="k")
        with pytest.raises(errors.IdempotencyConflict) as raised:
            await client.enqueue("ops.a", {"i": 2}, idempotency_key="k")
        again = await client.enqueue("ops.a", {"i": 1}, idempotency_key="k")  # the same job
        assert not again.created
        return str(raised.value)

    message = _with_client(jobforge_db, scenario)
    assert "\n" not in message
    assert "idempotency" in message
    assert jobforge_conn.execute("SELECT count(*) FROM jobforge.jobs").fetchone() == (1,)


def test_a_function_dropped_before_or_after_its_statement_was_prepared_is_named(
    jobforge_db: Database,
) -> None:
    async def scenario(client: AsyncQueueClient) -> None:
        await client.enqueue("ops.a", {})  # prepared on the pool's one connection
        with jobforge_db.connect() as conn:
            conn.execute("DROP FUNCTION jobforge.enqueue_v1 CASCADE")
            conn.execute("DROP FUNCTION jobforge.enqueue_one_v1 CASCADE")
        for _ in range(2):  # the prepared statement fails; then the PREPARE itself would
            with pytest.raises(errors.SchemaNotReady, match=r"function jobforge\.enqueue_one_v1\("):
                await client.enqueue("ops.a", {})
            async with client.pool.connection() as conn:
                await conn.execute("DEALLOCATE ALL")

    _with_client(jobforge_db, scenario)


def test_a_canceled_enqueue_is_canceled_in_the_server_and_keeps_its_connection(
    jobforge_db: Database, jobforge_conn: db.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """A job whose key another transaction is inserting waits for it: the wait is canceled,
    the statement is canceled in the server (it never enqueues), and the connection goes back
    to the pool idle and is used again."""
    with psycopg.connect(jobforge_db.dsn) as holder:  # a transaction of its own, held open
        holder.execute("SELECT jobforge.enqueue_one_v1('acme', '', '', '', 'ops.a', '{}', 'held')")

        async def scenario(client: AsyncQueueClient) -> tuple[bool, int, int]:
            await client.enqueue("ops.a", {"before": True})
            async with client.pool.connection() as conn:
                before = conn.info.backend_pid
            waiting = client.enqueue("ops.a", {}, idempotency_key="held")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(waiting, 0.5)
            holder.rollback()
            again = await client.enqueue("ops.a", {}, idempotency_key="held")
            async with client.pool.connection() as conn:
                return again.created, before, conn.info.backend_pid

        created, before, after = _with_client(jobforge_db, scenario)
    assert created  # the canceled enqueue did not happen
    assert before == after  # the same connection, idle again
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    keys = jobforge_conn.execute(
        "SELECT count(*) FROM jobforge.jobs WHERE idempotency_key = 'held'"
    ).fetchone()
    assert keys == (1,)


def test_a_connection_the_server_ended_fails_one_call_and_is_replaced(
    jobforge_db: Database, jobforge_conn: db.Connection
) -> None:
    async def scenario(client: AsyncQueueClient) -> int:
        await client.enqueue("ops.a", {"i": 1})
        async with client.pool.connection() as conn:
            pid = conn.info.backend_pid
        jobforge_conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await asyncio.sleep(0.2)
        with pytest.raises(psycopg.OperationalError):
            await client.enqueue("ops.a", {"i": 2})
        return (await client.enqueue("ops.a", {"i": 3})).job_id

    assert _with_client(jobforge_db, scenario) > 0
    assert jobforge_conn.execute("SELECT count(*) FROM jobforge.jobs").fetchone() == (2,)


def test_a_connection_in_a_transaction_or_pipeline_takes_the_cursors_path(
    jobforge_db: Database,
) -> None:
    async def scenario() -> list[Any]:
        conn = await psycopg.AsyncConnection.connect(jobforge_db.dsn, autocommit=True)
        async with conn:
            answers = [await lean.run(conn, "SELECT %(x)s::int AS x", {"x": 7})]
            async with conn.transaction():
                answers.append(await lean.run(conn, "SELECT %(x)s::int AS x", {"x": 8}))
            async with conn.pipeline():
                answers.append(await lean.run(conn, "SELECT %(x)s::int AS x", {"x": 9}))
            return answers

    assert asyncio.run(scenario()) == [[{"x": 7}], None, None]


def test_a_connection_that_never_prepares_takes_the_cursors_path(jobforge_db: Database) -> None:
    """psycopg's way to say a pooler in transaction mode is in front: prepare_threshold=None."""

    async def scenario() -> tuple[Any, list[Any]]:
        conn = await psycopg.AsyncConnection.connect(
            jobforge_db.dsn, autocommit=True, prepare_threshold=None
        )
        async with conn:
            answer = await lean.run(conn, "SELECT %(x)s::int AS x", {"x": 7})
            cursor = await conn.execute("SELECT name FROM pg_prepared_statements")
            return answer, await cursor.fetchall()

    assert asyncio.run(scenario()) == (None, [])


def test_values_come_back_as_a_cursor_loads_them(jobforge_db: Database) -> None:
    statement = (
        "SELECT %(i)s::bigint AS i, %(b)s::boolean AS b, %(t)s::timestamptz AS t,"
        " %(j)s::jsonb AS j, %(a)s::text[] AS a, %(n)s::text AS n, '100%%' AS pct,"
        " %(i)s::bigint + 1 AS again"
    )
    when = datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    params = {"i": -(2**63), "b": False, "t": when, "j": db.Jsonb({"k": ["v", 1]}),
              "a": ["x", "y,z", 'q"'], "n": None}  # fmt: skip

    async def scenario() -> tuple[Any, Any]:
        conn = await psycopg.AsyncConnection.connect(jobforge_db.dsn, autocommit=True)
        async with conn:
            leaned = await lean.run(conn, statement, params)
            cursor = conn.cursor(row_factory=db.dict_row)
            await cursor.execute(statement, params)
            return leaned, await cursor.fetchall()

    leaned, through_cursor = asyncio.run(scenario())
    assert leaned == through_cursor
    assert leaned is not None
    assert leaned[0]["pct"] == "100%"


@pytest.mark.parametrize(
    ("statement", "text", "params"),
    [
        ("SELECT %(a)s, %(b)s, %(a)s", "SELECT $1, $2, $1", ("a", "b")),
        ("SELECT '5%%' || %(x)s", "SELECT '5%' || $1", ("x",)),
        ("SELECT 1", "SELECT 1", ()),
    ],
)
def test_placeholders_are_numbered_in_order_of_first_use(
    statement: str, text: str, params: tuple[str, ...]
) -> None:
    prepared = lean.compiled(statement)
    assert prepared is not None
    assert (prepared.text.decode(), prepared.params) == (text, params)
    assert prepared.name.startswith(b"jf_")


@pytest.mark.parametrize(
    "statement", ["SELECT %(ids)b::bigint[]", "SELECT %(x)t", "SELECT 5 % 2", "SELECT %s"]
)
def test_a_binary_or_stray_placeholder_is_left_to_the_cursor(statement: str) -> None:
    assert lean.compiled(statement) is None


def test_a_payload_larger_than_the_sockets_buffer_is_sent_whole(
    jobforge_db: Database, jobforge_conn: db.Connection
) -> None:
    payload = {"blob": "é" * 400_000, "n": list(range(1000))}  # ~800 kB of JSON

    async def scenario(client: AsyncQueueClient) -> tuple[int, list[str]]:
        job = await client.enqueue("ops.big", payload)
        return job.job_id, await _lean_statements(client)

    job_id, statements = _with_client(jobforge_db, scenario)
    assert statements == [_enqueue_name()]
    stored = jobforge_conn.execute(
        "SELECT payload FROM jobforge.jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert stored == (payload,)


def test_a_missing_parameter_is_psycopgs_error(jobforge_db: Database) -> None:
    async def scenario() -> None:
        conn = await psycopg.AsyncConnection.connect(jobforge_db.dsn, autocommit=True)
        async with conn:
            await lean.run(conn, "SELECT %(a)s::int, %(b)s::int", {"a": 1})

    with pytest.raises(psycopg.ProgrammingError, match="query parameter missing: b"):
        asyncio.run(scenario())


def test_a_changed_client_encoding_is_followed(jobforge_db: Database) -> None:
    """The server must read "ça" as two characters, the first U+00E7, in either encoding."""
    statement = "SELECT length(%(t)s::text) AS n, ascii(%(t)s::text) AS c"

    async def scenario() -> list[Any]:
        conn = await psycopg.AsyncConnection.connect(jobforge_db.dsn, autocommit=True)
        async with conn:
            first = await lean.run(conn, statement, {"t": "ça"})
            await conn.execute("SET client_encoding TO 'LATIN1'")
            second = await lean.run(conn, statement, {"t": "ça"})
            return [first, second]

    assert asyncio.run(scenario()) == [[{"n": 2, "c": 231}]] * 2


def test_a_statement_that_is_not_ascii_is_left_to_the_cursor() -> None:
    """Its text would have to be encoded in each connection's encoding (jobforge's are ASCII)."""
    assert lean.compiled("SELECT 'ça' || %(x)s") is None


def test_a_closed_connection_is_not_kept_alive_by_its_lean_state(jobforge_db: Database) -> None:
    async def scenario() -> weakref.ref[Any]:
        conn = await psycopg.AsyncConnection.connect(jobforge_db.dsn, autocommit=True)
        async with conn:
            assert await lean.run(conn, "SELECT %(a)s::int AS a", {"a": 1}) == [{"a": 1}]
        return weakref.ref(conn)

    gone = asyncio.run(scenario())
    gc.collect()
    assert gone() is None


def test_a_login_bound_to_one_tenant_is_held_to_it_on_the_lean_path(
    jobforge_db: Database, jobforge_conn: db.Connection
) -> None:
    """From the other side: a non-owner login bound to tenant acme enqueues for globex through
    the lean statement, on a connection's first call (the PREPARE too) and on one whose
    statement acme's enqueue prepared: refused both times in one line, nothing stored."""
    with new_app_login(jobforge_db, ["acme"]) as url:

        async def scenario() -> list[str]:
            pool = db.AsyncConnectionPool(url, min_size=1, max_size=1, open=False)
            await pool.open()
            refused = []
            try:
                for tenant in ("globex", "acme", "globex"):
                    try:
                        await AsyncQueueClient(pool, tenant=tenant).enqueue("ops.a", {})
                    except errors.TenantRequired as exc:
                        refused.append(str(exc))
                statements = await _lean_statements(AsyncQueueClient(pool, tenant="acme"))
            finally:
                await pool.close()
            assert statements == [_enqueue_name()]  # the one connection, prepared
            return refused

        refused = asyncio.run(scenario())
    assert len(refused) == 2
    assert all("may not act for tenant 'globex'" in r and "\n" not in r for r in refused)
    stored = jobforge_conn.execute("SELECT tenant_id, count(*) FROM jobforge.jobs GROUP BY 1")
    assert stored.fetchall() == [("acme", 1)]
