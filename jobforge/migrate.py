"""Applies `migrations/NNNN_name.sql` in order, and records what it applied.

Each file runs in its own transaction, under a session-level advisory lock held for the whole
run, so concurrent migrators serialise and nothing is applied twice. The migrations table keeps
each file's name and checksum; a file changed after it was applied is refused, by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import sqlparse

from jobforge import canonical, db, errors
from jobforge.types import AppliedMigration

_FILENAME = re.compile(r"^(\d{4})_([a-z0-9][a-z0-9_]*)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str  # the file name, e.g. "0001_core.sql"
    sql: str
    checksum: str  # "sha256:<hex>" of the file's bytes


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """Where a database stands against the migration files."""

    applied: tuple[AppliedMigration, ...]
    pending: tuple[Migration, ...]

    @property
    def up_to_date(self) -> bool:
        return not self.pending


def default_directory() -> Traversable:
    """jobforge's own migrations: inside the wheel, or the repo's in a source checkout."""
    shipped = resources.files("jobforge") / "_migrations"
    if shipped.is_dir():
        return shipped
    checkout = Path(str(resources.files("jobforge"))).parent / "migrations"
    if checkout.is_dir():
        return checkout
    raise errors.ConfigurationError(
        "jobforge's migrations are missing: neither jobforge/_migrations (wheel) nor "
        "migrations/ beside the package (source checkout) exists; reinstall jobforge"
    )


def checksum(data: bytes) -> str:
    return canonical.sha256_of(data)


def discover(directory: Traversable | Path | str | None = None) -> list[Migration]:
    """The migration files of `directory`, ordered by version; bad names are refused."""
    if directory is None:
        folder: Traversable | Path = default_directory()
    else:
        folder = Path(directory) if isinstance(directory, str) else directory
    if not folder.is_dir():
        raise errors.ConfigurationError(f"migrations directory {str(folder)!r} does not exist")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILENAME.match(entry.name)
        if match is None:
            raise errors.MigrationError(
                f"migration file {entry.name!r} is misnamed: expected NNNN_lowercase_name.sql"
            )
        version = int(match.group(1))
        if version == 0:
            raise errors.MigrationError(f"migration file {entry.name!r}: versions start at 0001")
        if version in found:
            raise errors.MigrationError(
                f"migration files {found[version].name!r} and {entry.name!r} "
                f"share version {version}"
            )
        data = entry.read_bytes()
        found[version] = Migration(version, entry.name, data.decode("utf-8"), checksum(data))
    return [found[v] for v in sorted(found)]


def status(conn: db.Connection, migrations: Iterable[Migration] | None = None) -> MigrationStatus:
    """Compare the database with the files; refuses changed or unknown applied migrations."""
    files = list(discover() if migrations is None else migrations)
    applied = _applied(conn)
    _verify(applied, files)
    done = {a.version for a in applied}
    return MigrationStatus(tuple(applied), tuple(m for m in files if m.version not in done))


def require_up_to_date(
    dsn: str, migrations: Iterable[Migration] | None = None, *, source: str | None = None
) -> MigrationStatus:
    """The database's status; `SchemaNotReady` naming what is pending, and the command that
    applies it, when it is not up to date. One connection and two small queries: for commands as
    they start, never per job. `source` is where the URL came from (`--database-url`, ...)."""
    files = list(discover() if migrations is None else migrations)
    where = db.describe(dsn) + (f" ({source})" if source else "")
    denied = (
        f"this login may not read jobforge.schema_migrations in the database {where}: grant it "
        "jobforge_app or jobforge_worker, or, on a schema older than migration 0009 (which "
        f"grants that read), {fix_command(source)} as the schema's owner"
    )
    with db.connect(dsn) as conn, db.readable_or(denied):
        state = status(conn, files)
    if state.pending:
        raise errors.SchemaNotReady(f"the database {where} {not_ready(state, source)}")
    return state


def not_ready(state: MigrationStatus, source: str | None = None) -> str:
    """What `state` lacks and what to run, to follow "the database X ..."."""
    names = [m.name for m in state.pending]
    total = len(state.applied) + len(names)
    if not state.applied:
        lack = f"has no jobforge schema ({total} migrations pending)"
    else:
        lack = f"is not up to date: {len(names)} of {total} migrations pending ({', '.join(names)})"
    return f"{lack}; {fix_command(source)}"


def fix_command(source: str | None = None) -> str:
    """How to apply the pending migrations, given where the URL came from."""
    if source == "--database-url":
        return "run `jobforge migrate --database-url URL` with the same URL"
    if source == "JOBFORGE_DATABASE_URL":
        return "run `jobforge migrate` (it migrates $JOBFORGE_DATABASE_URL)"
    return "run `jobforge migrate`"


def migrate(dsn: str, migrations: Iterable[Migration] | None = None) -> list[Migration]:
    """Bring the database at `dsn` up to date; returns the migrations this call applied."""
    files = list(discover() if migrations is None else migrations)
    with db.connect(dsn) as conn:
        db.scalar(conn, "migrations_pin_path")
        db.scalar(conn, "migrations_lock")
        try:
            with conn.transaction():
                db.execute(conn, "migrations_bootstrap")
            pending = status(conn, files).pending
            for migration in pending:
                _apply(conn, migration)
            return list(pending)
        finally:
            if not conn.closed:
                db.scalar(conn, "migrations_unlock")


def _applied(conn: db.Connection) -> list[AppliedMigration]:
    if not db.scalar(conn, "migrations_table_exists"):
        return []
    rows = db.execute(conn, "migrations_applied").fetchall()
    return [AppliedMigration(version, name, digest) for version, name, digest in rows]


def _verify(applied: list[AppliedMigration], files: list[Migration]) -> None:
    by_version = {m.version: m for m in files}
    for row in applied:
        current = by_version.get(row.version)
        if current is None:
            raise errors.MigrationError(
                f"the database has migration {row.name!r} applied, but no such file exists: "
                "this jobforge is older than the schema (upgrade jobforge, or use a fresh database)"
            )
        if current.checksum != row.checksum:
            raise errors.MigrationChecksumMismatch(
                f"migration {current.name!r} changed after it was applied "
                f"(applied {row.checksum[:19]}…, file now {current.checksum[:19]}…): "
                "migrations are append-only; add a new migration file instead"
            )


def _apply(conn: db.Connection, migration: Migration) -> None:
    try:
        with conn.transaction():
            conn.execute(migration.sql.encode("utf-8"))
            db.execute(
                conn,
                "migrations_record",
                {
                    "version": migration.version,
                    "name": migration.name,
                    "checksum": migration.checksum,
                },
            )
    except db.DatabaseError as exc:
        line = _error_line(conn, migration, exc)
        where = f"{migration.name}, line {line}" if line else migration.name
        raise errors.MigrationError(
            f"migration {where}: {db.error_message(exc)} (rolled back; nothing of it was applied)"
        ) from None


def _error_line(conn: db.Connection, migration: Migration, exc: db.DatabaseError) -> int | None:
    """The 1-based line of the file where the failing statement (or the error) is."""
    position = db.error_position(exc)
    if position is not None:
        return migration.sql.count("\n", 0, max(position - 1, 0)) + 1
    # No position: find the failing statement by replaying the file one statement at a time in a
    # transaction that is always rolled back. Only the error path pays for the SQL split.
    cursor = 0
    try:
        with conn.transaction(force_rollback=True):
            for statement in sqlparse.split(migration.sql, strip_semicolon=False):
                start = migration.sql.find(statement, cursor)
                cursor = start + len(statement) if start >= 0 else cursor
                try:
                    with conn.transaction():
                        conn.execute(statement.encode("utf-8"))
                except db.DatabaseError:
                    return migration.sql.count("\n", 0, max(start, 0)) + 1
    except db.DatabaseError:
        return None
    return None
