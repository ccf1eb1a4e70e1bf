"""The one database seam: psycopg 3 connections, named queries, and error translation.

Driver errors that a user can cause (an unreachable server, a bad URL) leave this layer as
`jobforge.errors` exceptions naming the host and port, never as a psycopg traceback.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.rows
import psycopg.types.json
import psycopg_pool
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobforge import errors
from jobforge.db import lean
from jobforge.sql import query

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]
DatabaseError = psycopg.Error
Jsonb = psycopg.types.json.Jsonb
dict_row = psycopg.rows.dict_row
ConnectionPool = psycopg_pool.ConnectionPool
AsyncConnectionPool = psycopg_pool.AsyncConnectionPool

#: Seconds to wait for a server before calling it unreachable (libpq's connect_timeout).
CONNECT_TIMEOUT_S = 5


#: The password of a URL (up to the last `@`) or of a keyword string (quoted with backslash
#: escapes, as libpq reads it). A password libpq itself splits differently (a raw `@`, `/` or
#: space in a URL) is found by `scrub`, which knows the connection string.
_PASSWORD = re.compile(r"(://[^:/@\s]*:)\S*@|(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def redact(text: str) -> str:
    """`text` with any password of a connection string in it replaced by ***."""
    return _PASSWORD.sub(lambda m: f"{m.group(1)}***@" if m.group(1) else f"{m.group(2)}***", text)


#: A URL's scheme, and the characters that end a piece of a password a parser split off.
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*)://")
_SPLITS = re.compile(r"[@/:?#&=\s]+")


def _secrets(dsn: str) -> list[str]:
    """Every text of `dsn` that may be (a piece of) its password, longest first: what libpq
    parsed as the password, a URL's userinfo after its first `:` up to the LAST `@` (libpq
    splits at the first one, so a raw `@`, `/` or space in a password lands in the host or
    database it reports), a keyword or query `password=`, and the pieces of each."""
    found: set[str] = set()
    if (scheme := _SCHEME.match(dsn)) is not None:
        rest = dsn[scheme.end() :]
        if "@" in rest:
            userinfo = rest[: rest.rindex("@")]
            if ":" in userinfo:
                found.add(userinfo.split(":", 1)[1])
    found.update(m.group(3).strip("'") for m in _PASSWORD.finditer(dsn) if m.group(3))
    found.update(re.findall(r"[?&]password=([^&#\s]*)", dsn))
    with suppress(psycopg.Error):
        found.add(str(conninfo_to_dict(dsn).get("password") or ""))
    pieces = {piece for text in found for piece in _SPLITS.split(text)}
    # a piece of 3 characters or fewer is left: replacing it everywhere would garble the message
    return sorted({t for t in found | pieces if len(t) > 3}, key=len, reverse=True)


def scrub(text: str, dsn: str) -> str:
    """`text` (a message about `dsn`) with the password and every piece of it replaced."""
    text = redact(text)
    for secret in _secrets(dsn):
        text = text.replace(secret, "***")
    return text


def _bad_url(dsn: str) -> errors.ConfigurationError:
    """Never libpq's own words: they quote the token it could not read, a password's included."""
    scheme = _SCHEME.match(dsn)
    if scheme is not None and scheme.group(1).lower() not in ("postgres", "postgresql"):
        return errors.ConfigurationError(
            f"invalid database URL: a {scheme.group(1)}:// URL, not a postgresql:// one"
        )
    return errors.ConfigurationError(
        "invalid database URL: libpq cannot read it (in a postgresql:// URL, percent-encode "
        "special characters of the user and password: @ as %40, / as %2F, % as %25, a space "
        "as %20)"
    )


def describe(dsn: str) -> str:
    """`host:port/dbname` of a connection string, for messages (never the password)."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise _bad_url(dsn) from None
    where = _where(info.get("host"), info.get("port"), info.get("dbname") or info.get("user"))
    return scrub(where, dsn)


def _where(host: object, port: object, dbname: object) -> str:
    host, port = str(host or "localhost"), str(port or "5432")
    where = f"{host}:{port}" if not host.startswith("/") else f"socket {host} port {port}"
    return f"{where}/{dbname or ''}"


def connect(dsn: str, *, autocommit: bool = True, **kwargs: Any) -> Connection:
    """Open a connection; an unreachable server raises `DatabaseUnreachable` naming it."""
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    try:
        return psycopg.connect(dsn, autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        raise _unreachable(dsn, exc) from None
    except psycopg.ProgrammingError:
        raise _bad_url(dsn) from None


#: What libpq puts before the reason a connection failed; we name the server ourselves.
_LIBPQ_PREFIX = re.compile(
    r"^(?:connection failed:\s*)?(?:connection to server (?:at|on socket) .*? failed:\s*)?"
    r"(?:FATAL:\s*)?"
)


def _unreachable(dsn: str, exc: psycopg.OperationalError) -> errors.DatabaseUnreachable:
    """One line: the server, and why it refused (no route, refused, bad password, no database)."""
    lines = [_LIBPQ_PREFIX.sub("", line.strip()) for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    reason = scrub("; ".join(dict.fromkeys(lines)), dsn) or type(exc).__name__
    return errors.DatabaseUnreachable(f"cannot connect to Postgres at {describe(dsn)}: {reason}")


def check_reachable(dsn: str) -> None:
    """`check_reachable_async` for synchronous callers."""
    connect(dsn).close()


async def check_reachable_async(dsn: str) -> None:
    """Connect once and hang up, so an unreachable server is one clear error up front (a pool
    would retry in the background and make every later call wait out its timeout)."""
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as exc:
        raise _unreachable(dsn, exc) from None
    except psycopg.ProgrammingError:
        raise _bad_url(dsn) from None
    await conn.close()


def with_dbname(dsn: str, dbname: str) -> str:
    """The same server and credentials as `dsn`, on database `dbname`."""
    return make_conninfo(dsn, dbname=dbname)


def error_message(exc: psycopg.Error) -> str:
    """The server's message of a database error, with its detail and hint when it has them."""
    diag = exc.diag
    parts = [diag.message_primary or str(exc).strip()]
    if diag.message_detail:
        parts.append(f"DETAIL: {diag.message_detail}")
    if diag.message_hint:
        parts.append(f"HINT: {diag.message_hint}")
    return "; ".join(parts)


def error_position(exc: psycopg.Error) -> int | None:
    """1-based character offset of the error in the statement sent, when the server gave one."""
    position = exc.diag.statement_position
    return int(position) if position else None


#: SQLSTATEs of a missing schema, table or function: jobforge's SQL names one that the database
#: does not have (an unmigrated or partly migrated database).
_MISSING_OBJECT = frozenset({"3F000", "42P01", "42883"})


def translated(
    exc: psycopg.Error, conn: Connection | AsyncConnection | None = None
) -> errors.JobforgeError | None:
    """Our error for a database error raised by jobforge's own SQL, or None."""
    message = exc.diag.message_primary or str(exc)
    if exc.sqlstate in _MISSING_OBJECT and "jobforge" in message:
        info = None if conn is None else conn.info
        where = "" if info is None else f" {_where(info.host, info.port, info.dbname)}"
        return errors.SchemaNotReady(
            f"the database{where} lacks jobforge's schema or part of it ({message}): "
            "run `jobforge migrate` on it"
        )
    kind = errors.SQLSTATE_ERRORS.get(exc.sqlstate or "")
    return None if kind is None else kind(message)


@contextmanager
def _typed_errors(conn: Connection | AsyncConnection) -> Iterator[None]:
    """Errors raised by jobforge's SQL functions (and by SQL naming what an unmigrated database
    lacks) leave as typed jobforge errors. Costs nothing unless a statement fails."""
    try:
        yield
    except psycopg.Error as exc:
        mapped = translated(exc, conn)
        if mapped is None:
            raise
        raise mapped from None


@contextmanager
def readable_or(message: str) -> Iterator[None]:
    """A read the login has no privilege for becomes a `ConfigurationError` carrying `message`
    (the login's name appended): for checks as a command starts, which must not end in a
    traceback on a login that was never granted what they read."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as exc:
        raise errors.ConfigurationError(f"{message} ({exc.diag.message_primary or exc})") from None


@dataclass(frozen=True, slots=True)
class Acting:
    """Who acts in a transaction and why (migrations/0014): set beside the tenant, written on
    every event of the transaction. The actor is the client's claim (a user, a service, a
    token's name); the login that wrote the event is recorded by the database itself."""

    actor: str | None = None
    reason: str | None = None


NOBODY = Acting()


def _scope(
    tenant: str | None,
    worker: bool,
    app_role: bool,
    acting: Acting = NOBODY,
    project: str | None = None,
) -> dict[str, str | bool]:
    return {
        "tenant": tenant or "",
        "project": project or "",
        "scope": "worker" if worker else "",
        "app_role": app_role,
        "actor": acting.actor or "",
        "reason": acting.reason or "",
    }


@contextmanager
def tenant_transaction(
    conn: Connection,
    tenant: str | None,
    *,
    worker: bool = False,
    app_role: bool = False,
    acting: Acting = NOBODY,
    project: str | None = None,
) -> Iterator[Connection]:
    """A transaction scoped to `tenant` (and, for workers, to every tenant), and to `project`
    when one is given (migrations/0016: the rows of other projects are out of sight; None: every
    project of the tenant).

    With `app_role` the transaction also takes the role `jobforge_app` when the login may (a
    superuser or a member of it), so the tenant policies bind its reads however privileged the
    login is (a superuser or a BYPASSRLS login would otherwise skip them)."""
    if conn.isolation_level is not _READ_COMMITTED and conn.info.transaction_status == _IDLE:
        conn.isolation_level = _READ_COMMITTED  # no I/O: the next BEGIN says it
    with _typed_errors(conn), conn.transaction():
        conn.execute(query("session_scope"), _scope(tenant, worker, app_role, acting, project))
        yield conn


@asynccontextmanager
async def tenant_transaction_async(
    conn: AsyncConnection,
    tenant: str | None,
    *,
    worker: bool = False,
    app_role: bool = False,
    acting: Acting = NOBODY,
    project: str | None = None,
) -> AsyncIterator[AsyncConnection]:
    """`tenant_transaction` for an async connection."""
    if conn.isolation_level is not _READ_COMMITTED and conn.info.transaction_status == _IDLE:
        await conn.set_isolation_level(_READ_COMMITTED)
    with _typed_errors(conn):
        async with conn.transaction():
            await conn.execute(
                query("session_scope"), _scope(tenant, worker, app_role, acting, project)
            )
            yield conn


class Flight:
    """The statements of one transaction, sent without waiting for each other's answers.

    `send` queues a statement (psycopg's pipeline mode) and returns its cursor. Reading a cursor
    inside the flight waits for the server (one round trip: a flush, the transaction stays open);
    reading it after the flight has landed costs nothing, its rows came back with the commit."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def send(self, statement: str, params: Mapping[str, Any] | None) -> Any:
        """Queue `statement`; its cursor (dict rows), to read now or after the flight."""
        cursor = self._conn.cursor(row_factory=dict_row)
        cursor.execute(statement, params)
        return cursor


class AsyncFlight:
    """`Flight` on an async connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def send(self, statement: str, params: Mapping[str, Any] | None) -> Any:
        """`Flight.send`, awaiting."""
        cursor = self._conn.cursor(row_factory=dict_row)
        await cursor.execute(statement, params)
        return cursor


#: BEGIN and COMMIT as statements of the pipeline (never prepared: nothing to plan). psycopg
#: would send its own BEGIN on a connection out of autocommit, and wait for it. Every jobforge
#: transaction is READ COMMITTED whatever the login's or database's default: the claim's limits
#: count what earlier claims committed (migrations/0011), and a SKIP LOCKED claim at REPEATABLE
#: READ fails on every row a concurrent claim took.
_BEGIN = pgsql.SQL("BEGIN ISOLATION LEVEL READ COMMITTED")
_COMMIT = pgsql.SQL("COMMIT")
_READ_COMMITTED = psycopg.IsolationLevel.READ_COMMITTED


@contextmanager
def flight(
    conn: Connection,
    tenant: str | None,
    *,
    worker: bool = False,
    app_role: bool = False,
    acting: Acting = NOBODY,
    project: str | None = None,
) -> Iterator[Flight]:
    """`tenant_transaction` in one round trip: BEGIN, the scope (`session_scope`: the tenant and
    scope set with `set_config(..., true)`, the role `jobforge_app` taken as there), the statements
    sent in the block and COMMIT go to the server together, in psycopg's pipeline mode, and the
    block's end waits once for all their answers. Four round trips were most of a call's cost.

    The server runs the messages of a pipeline in order, so each statement is parsed, planned and
    run after the scope before it has run: row-level security binds a statement, prepared or not,
    exactly as in `tenant_transaction` (a cached plan is re-planned for another role). The scope
    is the transaction's alone: BEGIN opens a real transaction block, and COMMIT or the ROLLBACK
    of a failed flight ends it, the role and settings with it. BEGIN and COMMIT are explicit,
    not the implicit transaction a pipeline's Sync would commit (two statements fewer), because
    a flight left by an exception of the client's own (a task canceled mid-call, rows that will
    not load before a statement saying `more`) must roll back, as `tenant_transaction` does,
    not commit. Statement errors leave as typed `jobforge.errors` exceptions."""
    restore = not conn.autocommit
    with _typed_errors(conn):
        try:
            if restore:  # no I/O on an idle connection; psycopg would BEGIN and wait for it
                conn.autocommit = True
            failed: BaseException | None = None
            try:
                with conn.pipeline():
                    conn.execute(_BEGIN, prepare=False)
                    conn.execute(
                        query("session_scope"), _scope(tenant, worker, app_role, acting, project)
                    )
                    try:
                        yield Flight(conn)
                        # an earlier statement's error may surface here, while COMMIT is sent
                        conn.execute(_COMMIT, prepare=False)
                    except BaseException as exc:
                        failed = exc  # raised below, once the pipeline is closed
            except BaseException as exc:
                # the pipeline's own end re-raises an error the block already raised (psycopg
                # logs it as "error ignored" when the block's exception crosses its exit)
                failed = failed or exc
            if failed is not None:
                if not conn.closed and conn.info.transaction_status != _IDLE:
                    conn.rollback()
                raise failed
        finally:
            if restore and not conn.closed:
                conn.autocommit = False


@asynccontextmanager
async def flight_async(
    conn: AsyncConnection,
    tenant: str | None,
    *,
    worker: bool = False,
    app_role: bool = False,
    acting: Acting = NOBODY,
    project: str | None = None,
) -> AsyncIterator[AsyncFlight]:
    """`flight` for an async connection."""
    restore = not conn.autocommit
    with _typed_errors(conn):
        try:
            if restore:
                await conn.set_autocommit(True)
            failed: BaseException | None = None
            try:
                async with conn.pipeline():
                    await conn.execute(_BEGIN, prepare=False)
                    await conn.execute(
                        query("session_scope"), _scope(tenant, worker, app_role, acting, project)
                    )
                    try:
                        yield AsyncFlight(conn)
                        await conn.execute(_COMMIT, prepare=False)
                    except BaseException as exc:
                        failed = exc  # raised below, once the pipeline is closed (see flight)
            except BaseException as exc:
                failed = failed or exc
            if failed is not None:
                if not conn.closed and conn.info.transaction_status != _IDLE:
                    await conn.rollback()
                raise failed
        finally:
            if restore and not conn.closed:
                await conn.set_autocommit(False)


_IDLE = psycopg.pq.TransactionStatus.IDLE


def solo_scope(
    tenant: str | None, acting: Acting = NOBODY, project: str | None = None
) -> dict[str, str]:
    """The scope a solo statement passes to its SQL function as arguments (see `solo`)."""
    return {
        "scope_tenant": tenant or "",
        "scope_project": project or "",
        "scope_actor": acting.actor or "",
        "scope_reason": acting.reason or "",
    }


def solo(conn: Connection, statement: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One statement alone, in autocommit: its own implicit transaction, one message and one
    wait, its dict rows. For a SQL function that takes the caller's scope as arguments and sets
    it itself for its transaction (`solo_scope`; migrations/0025): BEGIN, the scope and COMMIT
    cost as much again as a one-row insert, even in one pipeline. Errors leave typed."""
    restore = not conn.autocommit
    with _typed_errors(conn):
        try:
            if restore:  # no I/O on an idle connection
                conn.autocommit = True
            cursor = conn.cursor(row_factory=dict_row)
            return cursor.execute(statement, params).fetchall()
        finally:
            if restore and not conn.closed:
                conn.autocommit = False


async def solo_async(
    conn: AsyncConnection, statement: str, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """`solo` for an async connection: on the libpq handle when it can be (`lean`), which
    costs a third of a cursor's Python; through a cursor otherwise."""
    with _typed_errors(conn):
        rows = await lean.run(conn, statement, params)
        if rows is not None:
            return rows
    restore = not conn.autocommit
    with _typed_errors(conn):
        try:
            if restore:
                await conn.set_autocommit(True)
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(statement, params)
            return await cursor.fetchall()
        finally:
            if restore and not conn.closed:
                await conn.set_autocommit(False)


async def notifications(dsn: str, channel: str) -> AsyncIterator[str]:
    """Payloads of NOTIFYs on `channel`, on a dedicated autocommit connection that LISTEN holds."""
    try:
        conn = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
    except psycopg.OperationalError as exc:
        raise errors.DatabaseUnreachable(
            f"cannot listen for jobs on {describe(dsn)}: {scrub(error_message(exc), dsn)}"
        ) from None
    async with conn:
        await conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(channel)))
        async for note in conn.notifies():
            yield note.payload


def execute(conn: Connection, name: str, params: Mapping[str, Any] | None = None) -> Any:
    """Run the named query; returns the cursor for fetching."""
    return conn.execute(query(name), params)


def scalar(conn: Connection, name: str, params: Mapping[str, Any] | None = None) -> Any:
    """The first column of the first row of the named query."""
    row = conn.execute(query(name), params).fetchone()
    return None if row is None else row[0]


def execute_ddl(conn: Connection, name: str, **identifiers: str) -> None:
    """Run a named statement whose `{placeholders}` are identifiers, quoted by psycopg."""
    statement = pgsql.SQL(query(name)).format(
        **{key: pgsql.Identifier(value) for key, value in identifiers.items()}
    )
    conn.execute(statement)


#: What loading a value the driver cannot represent raises.
_UNLOADABLE = (psycopg.DataError, ValueError, RecursionError, OverflowError)


@dataclass(slots=True)
class Loaded:
    """One row of a result loaded on its own: the row, or why it could not be loaded and the
    raw text of the columns asked for (enough to act on the row without loading it)."""

    row: dict[str, Any] | None
    error: str | None
    raw: dict[str, str | None]


def _failed(cursor: Any, index: int, exc: Exception, keep: tuple[str, ...]) -> Loaded:
    names = [c.name for c in cursor.description or ()]
    result = cursor.pgresult
    raw: dict[str, str | None] = {}
    for name in keep:
        value = result.get_value(index, names.index(name)) if name in names else None
        raw[name] = None if value is None else bytes(value).decode("utf-8", "replace")
    message = " ".join(str(exc).split())[:300] or type(exc).__name__
    return Loaded(None, f"{type(exc).__name__}: {message}", raw)


def load_each(cursor: Any, keep: tuple[str, ...]) -> list[Loaded]:
    """The executed cursor's rows, each loaded on its own (dict rows): a value the driver cannot
    load (a timestamp before year 1, JSON nested past Python's recursion limit, an integer of
    5,000 digits) fails its row only, not the whole fetch."""
    try:
        return [Loaded(row, None, {}) for row in cursor.fetchall()]
    except _UNLOADABLE:
        pass  # one row or more cannot be loaded: each on its own
    out: list[Loaded] = []
    for index in range(cursor.rowcount if cursor.rowcount > 0 else 0):
        cursor.scroll(index, mode="absolute")
        try:
            out.append(Loaded(cursor.fetchone(), None, {}))
        except _UNLOADABLE as exc:
            out.append(_failed(cursor, index, exc, keep))
    return out


async def load_each_async(cursor: Any, keep: tuple[str, ...]) -> list[Loaded]:
    """`load_each` for an async cursor."""
    try:
        return [Loaded(row, None, {}) for row in await cursor.fetchall()]
    except _UNLOADABLE:
        pass  # one row or more cannot be loaded: each on its own
    out: list[Loaded] = []
    for index in range(cursor.rowcount if cursor.rowcount > 0 else 0):
        await cursor.scroll(index, mode="absolute")
        try:
            out.append(Loaded(await cursor.fetchone(), None, {}))
        except _UNLOADABLE as exc:
            out.append(_failed(cursor, index, exc, keep))
    return out
