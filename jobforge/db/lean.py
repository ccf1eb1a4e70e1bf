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
import weakref
from collections.abc import Mapping, Sequence
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
    """`statement` (psycopg's named placeholders) as libpq takes it; None if it is not for here."""
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
    """What one connection holds for the lean path: the statements prepared on it, and one
    transformer (building one costs a copy of the adapters map, ~5 us)."""

    __slots__ = ("prepared", "transformer")

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.prepared: set[bytes] = set()
        self.transformer: abc.Transformer = Transformer.from_context(conn)


_STATES: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], _State] = (
    weakref.WeakKeyDictionary()
)


async def run(
    conn: psycopg.AsyncConnection[Any], statement: str, params: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """The dict rows of `statement` run alone in its own implicit transaction, or None when the
    connection or the statement is not for the lean path (the caller then uses a cursor).
    Errors are psycopg's."""
    prepared = compiled(statement)
    pgconn = conn.pgconn
    if (
        prepared is None
        or conn.prepare_threshold is None  # prepared statements turned off (a pooler in front)
        or pgconn.transaction_status != _IDLE
        or pgconn.pipeline_status != _PIPELINE_OFF
    ):
        return None
    state = _STATES.get(conn)
    if state is None:
        state = _STATES[conn] = _State(conn)
    tx = state.transformer
    values = tx.dump_sequence(
        [params[name] for name in prepared.params], [PyFormat.TEXT] * len(prepared.params)
    )
    if prepared.name not in state.prepared:
        await _prepare(conn, prepared)
        state.prepared.add(prepared.name)
    result = await _send(conn, prepared.name, values)
    if result.status not in (_COMMAND_OK, _TUPLES_OK):
        error = psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        if error.sqlstate != _UNDEFINED_STATEMENT or prepared.name.decode() not in str(error):
            raise error
        # deallocated behind our back (psycopg's DEALLOCATE ALL): prepare again, send again
        state.prepared.discard(prepared.name)
        await _prepare(conn, prepared)
        state.prepared.add(prepared.name)
        result = await _send(conn, prepared.name, values)
        if result.status not in (_COMMAND_OK, _TUPLES_OK):
            raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
    return _rows(tx, result)


def _rows(tx: abc.Transformer, result: pq.abc.PGresult) -> list[dict[str, Any]]:
    """The result's rows as dicts, each value loaded by psycopg's loader for its type."""
    count = result.ntuples
    if not count:
        return []
    tx.set_pgresult(result)
    names = [(result.fname(i) or b"").decode() for i in range(result.nfields)]
    rows: list[dict[str, Any]] = tx.load_rows(
        0, count, lambda values: dict(zip(names, values, strict=True))
    )
    return rows


async def _prepare(conn: psycopg.AsyncConnection[Any], prepared: Prepared) -> None:
    """PREPARE the statement on the connection (types inferred by the server, as psycopg
    leaves a text parameter's type unknown)."""
    conn.pgconn.send_prepare(prepared.name, prepared.text)
    result = await _answer(conn)
    if result.status != _COMMAND_OK:
        raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)


async def _send(
    conn: psycopg.AsyncConnection[Any], name: bytes, values: Sequence[Any]
) -> pq.abc.PGresult:
    conn.pgconn.send_query_prepared(name, values)
    return await _answer(conn)


async def _answer(conn: psycopg.AsyncConnection[Any]) -> pq.abc.PGresult:
    """Flush what was sent, wait for the answer, and return its one result (every result is
    read, so the connection is idle again). A wait interrupted (a canceled task, a timeout
    around the call) cancels the statement in the server, as psycopg's own wait does."""
    pgconn = conn.pgconn
    try:
        await _answered(pgconn)
    except BaseException:
        if pgconn.transaction_status == _ACTIVE:
            await _cancel(conn)
        raise
    first = pgconn.get_result()
    _discard_results(pgconn)
    if first is None:
        raise psycopg.OperationalError("the server sent no result")
    return first


async def _answered(pgconn: pq.abc.PGconn) -> None:
    """Until the whole answer to what was sent has been read (`get_result` will not block)."""
    loop = asyncio.get_running_loop()
    fd = pgconn.socket
    while pgconn.flush():  # only when the socket's buffer is full: a large parameter
        await _ready(loop, fd, write=True)
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            return
        await _ready(loop, fd, write=False)


def _discard_results(pgconn: pq.abc.PGconn) -> None:
    while pgconn.get_result() is not None:
        pass  # a single statement has one result; the end of it is None


async def _cancel(conn: psycopg.AsyncConnection[Any]) -> None:
    """Cancel the running statement and read its answer, so the connection is idle again and
    a canceled enqueue did not happen; a server that does not answer within 5 s, or a second
    interruption, closes the connection instead (psycopg's rules, #1371 and #1435)."""
    try:
        await conn.cancel_safe(timeout=_CANCEL_TIMEOUT_S)
        async with asyncio.timeout(_CANCEL_TIMEOUT_S):
            await _answered(conn.pgconn)
        _discard_results(conn.pgconn)
    except BaseException as exc:  # the interruption being handled is raised by the caller
        logger.warning("a statement was not canceled (%s): closing its connection", exc)
        conn.pgconn.finish()


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> None:
    """Until the socket can be read (or written)."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)
