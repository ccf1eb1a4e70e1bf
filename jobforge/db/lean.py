"""A solo statement run on the libpq handle psycopg holds (`conn.pgconn`), past the cursor.

Why: a single enqueue is one short statement in autocommit, and psycopg's async cursor spent
~85 us of Python on each (its prepared-statement bookkeeping, a generator per wait, a timer and a
reader registered per wait, a row factory per cursor): more than the server's work on the
statement and the whole call of an asyncpg-based peer. Here one call is one
`PQsendQueryPrepared`, one reader on the socket while the answer comes, and the rows loaded by
psycopg's own C loaders: ~30 us.

What it keeps from psycopg: the connection (its pool, its settings, its notice handlers), the
adapters (`Transformer` dumps the parameters and loads the rows, so a value means what it means
in a cursor), and the errors (`psycopg.errors.error_from_result`: the same classes, so
`db._typed_errors` translates them the same way).

What it asks of its caller: the connection checked out and idle, outside a transaction and a
pipeline, with prepared statements allowed (a connection whose `prepare_threshold` is None, as
one behind a transaction-mode pooler is configured, never prepares), and text placeholders only
(`%(name)s`); `run` returns None otherwise, and the caller takes the cursor's path. The
transformer is made once per connection: adapters registered on the connection after its first
lean statement are not seen by it (jobforge registers none).

Each statement is prepared once per connection under a name of its own (`jf_` and a digest of
its text), never one of psycopg's (`_pg3_*`). psycopg deallocates every prepared statement of a
connection after a ROLLBACK or a DROP it ran (DEALLOCATE ALL), so an answer that this statement
does not exist (26000, raised before anything ran) prepares it again and sends once more.

A canceled call cancels its statement in the server and reads the answer, as psycopg's cursor
does: the connection goes back to the pool idle, and the statement did not happen (unless it
had finished before the cancel arrived).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import abc, pq
from psycopg.adapt import PyFormat, Transformer

logger = logging.getLogger(__name__)

_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_IDLE = pq.TransactionStatus.IDLE
_ACTIVE = pq.TransactionStatus.ACTIVE
_CANCEL_TIMEOUT_S = 5.0
_PIPELINE_OFF = pq.PipelineStatus.OFF
_UNDEFINED_STATEMENT = "26000"
_DUPLICATE_STATEMENT = "42P05"
_PLAN_CHANGED = "0A000"

#: psycopg's placeholders: `%(name)s`, `%(name)b`, `%(name)t`, and `%%` for a literal percent.
_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)([sbt])|%")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A query text in libpq's terms: `$n` placeholders, its parameters' names in order, and
    the name it is prepared under. None from `compiled` for a text the lean path does not take
    (a binary placeholder, or a stray `%`)."""

    name: bytes
    text: bytes
    params: tuple[str, ...]


@lru_cache(maxsize=256)
def compiled(statement: str) -> Prepared | None:
    """`statement` (psycopg's named placeholders) as libpq takes it; None if it is not for here
    (a text that is not ASCII, too: it would be sent in each connection's own encoding)."""
    if not statement.isascii():
        return None
    names: list[str] = []
    lean = True

    def number(match: re.Match[str]) -> str:
        nonlocal lean
        if match.group(0) == "%%":
            return "%"
        if match.group(1) is None or match.group(2) != "s":
            lean = False  # a stray % (psycopg would refuse it) or a binary parameter
            return match.group(0)
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = _PLACEHOLDER.sub(number, statement)
    if not lean:
        return None
    digest = hashlib.blake2b(statement.encode(), digest_size=10).hexdigest()
    return Prepared(f"jf_{digest}".encode(), text.encode(), tuple(names))


class _State:
    """What one connection holds for the lean path: the statements prepared on it, and a
    transformer for its encoding (a fresh one costs ~2.5 us more a call: its dumpers are looked
    up again). Kept as an attribute of the connection, so it goes when the connection goes (a
    transformer refers to its connection: a weak-keyed map would keep both forever)."""

    __slots__ = ("encoding", "prepared", "transformer")

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.encoding = conn.info.encoding
        self.prepared: set[bytes] = set()
        self.transformer: abc.Transformer = Transformer.from_context(conn)


_ATTRIBUTE = "_jobforge_lean"


def _state(conn: psycopg.AsyncConnection[Any]) -> _State:
    state: _State | None = getattr(conn, _ATTRIBUTE, None)
    if state is None:
        state = _State(conn)
        setattr(conn, _ATTRIBUTE, state)
    elif state.encoding != conn.info.encoding:  # a SET client_encoding since: new dumpers
        fresh = _State(conn)
        fresh.prepared = state.prepared
        setattr(conn, _ATTRIBUTE, fresh)
        state = fresh
    return state


async def run(
    conn: psycopg.AsyncConnection[Any], statement: str, params: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """The dict rows of `statement` run alone in its own implicit transaction, or None when the
    connection or the statement is not for the lean path (the caller then uses a cursor).
    Errors are psycopg's. One connection, one caller: psycopg's connection lock is not taken
    (a pool's connection is its borrower's alone)."""
    prepared = compiled(statement)
    pgconn = conn.pgconn
    if (
        prepared is None
        or conn.prepare_threshold is None  # prepared statements turned off (a pooler in front)
        or pgconn.transaction_status != _IDLE
        or pgconn.pipeline_status != _PIPELINE_OFF
    ):
        return None
    state = _state(conn)
    try:
        ordered = [params[name] for name in prepared.params]
    except KeyError as missing:
        raise psycopg.ProgrammingError(f"query parameter missing: {missing.args[0]}") from None
    values = state.transformer.dump_sequence(ordered, [PyFormat.TEXT] * len(ordered))
    if prepared.name not in state.prepared:
        await _prepare(conn, prepared)
        state.prepared.add(prepared.name)
    result = await _answer(conn, lambda: pgconn.send_query_prepared(prepared.name, values))
    if result.status not in (_COMMAND_OK, _TUPLES_OK):
        error = psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        if not _stale(error, prepared):
            raise error
        # Nothing ran: the statement was deallocated behind our back (psycopg's DEALLOCATE
        # ALL), or its cached plan no longer fits what it reads. Prepare it afresh, send again.
        state.prepared.discard(prepared.name)
        if error.sqlstate == _PLAN_CHANGED:
            await _deallocate(conn, prepared)
        await _prepare(conn, prepared)
        state.prepared.add(prepared.name)
        result = await _answer(conn, lambda: pgconn.send_query_prepared(prepared.name, values))
        if result.status not in (_COMMAND_OK, _TUPLES_OK):
            raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
    return _rows(state.transformer, result, conn.info.encoding)


def _stale(error: psycopg.Error, prepared: Prepared) -> bool:
    """Whether `error` says this statement must be prepared again, before anything ran: it
    does not exist (26000, naming it), or its cached plan's result type changed (0A000)."""
    if error.sqlstate == _UNDEFINED_STATEMENT:
        return prepared.name.decode() in str(error)
    return error.sqlstate == _PLAN_CHANGED and "cached plan" in str(error)


def _rows(tx: abc.Transformer, result: pq.abc.PGresult, encoding: str) -> list[dict[str, Any]]:
    """The result's rows as dicts, each value loaded by psycopg's loader for its type."""
    count = result.ntuples
    if not count:
        return []
    tx.set_pgresult(result)
    names = [(result.fname(i) or b"").decode(encoding) for i in range(result.nfields)]
    rows: list[dict[str, Any]] = tx.load_rows(
        0, count, lambda values: dict(zip(names, values, strict=True))
    )
    return rows


async def _prepare(conn: psycopg.AsyncConnection[Any], prepared: Prepared) -> None:
    """PREPARE the statement on the connection (types inferred by the server, as psycopg
    leaves a text parameter's type unknown). A statement of its name already there is this one
    (the name is a digest of the text): a PREPARE whose answer a cancellation threw away."""
    result = await _answer(conn, lambda: conn.pgconn.send_prepare(prepared.name, prepared.text))
    if result.status == _COMMAND_OK:
        return
    error = psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
    if error.sqlstate == _DUPLICATE_STATEMENT and prepared.name.decode() in str(error):
        return
    raise error


async def _deallocate(conn: psycopg.AsyncConnection[Any], prepared: Prepared) -> None:
    """DEALLOCATE the statement (its name is `jf_` and hex digits: nothing to quote)."""
    result = await _answer(conn, lambda: conn.pgconn.send_query(b"DEALLOCATE " + prepared.name))
    if result.status != _COMMAND_OK:
        raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)


async def _answer(conn: psycopg.AsyncConnection[Any], send: Callable[[], None]) -> pq.abc.PGresult:
    """Send, wait for the whole answer, and return its first result; every result is read
    up to the server's ReadyForQuery, so the connection is idle again. An interrupted wait (a
    canceled task, a timeout around the call) cancels the statement in the server, as
    psycopg's own wait does."""
    pgconn = conn.pgconn
    send()
    try:
        results = await _results(pgconn)
    except BaseException:
        if pgconn.transaction_status == _ACTIVE:
            await _cancel(conn)
        raise
    if not results:
        raise psycopg.OperationalError("the server sent no result")
    return results[0]


async def _results(pgconn: pq.abc.PGconn) -> list[pq.abc.PGresult]:
    """Flush what was sent and read every result of it, never calling libpq where it would
    block the event loop (psycopg's own rules: `get_result` only once `is_busy` says it will
    not wait, input consumed while a large message is flushed)."""
    loop = asyncio.get_running_loop()
    fd = pgconn.socket
    while pgconn.flush():  # the socket's buffer is full: a large parameter
        if await _ready(loop, fd, write=True):
            pgconn.consume_input()
    results: list[pq.abc.PGresult] = []
    while True:
        pgconn.consume_input()
        while pgconn.is_busy():
            await _ready(loop, fd, write=False)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            return results
        results.append(result)


async def _cancel(conn: psycopg.AsyncConnection[Any]) -> None:
    """Cancel the running statement and read its answer, so the connection is idle again and
    a canceled enqueue did not happen; a server that does not answer within 5 s, or a second
    interruption, closes the connection instead (psycopg's rules, #1371 and #1435)."""
    try:
        await conn.cancel_safe(timeout=_CANCEL_TIMEOUT_S)
        async with asyncio.timeout(_CANCEL_TIMEOUT_S):
            await _results(conn.pgconn)
    except BaseException as exc:  # the interruption being handled is raised by the caller
        logger.warning("a statement was not canceled (%s): closing its connection", exc)
        conn.pgconn.finish()


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> bool:
    """Until the socket can be read or, with `write`, written; True when it can be read."""
    ready: asyncio.Future[bool] = loop.create_future()

    def wake(readable: bool) -> None:
        if not ready.done():
            ready.set_result(readable)

    loop.add_reader(fd, wake, True)
    if write:
        loop.add_writer(fd, wake, False)
    try:
        return await ready
    finally:
        loop.remove_reader(fd)
        if write:
            loop.remove_writer(fd)
