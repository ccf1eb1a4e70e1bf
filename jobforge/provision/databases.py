"""Migrated template databases and per-test clones on a provisioned server.

The migrations run once into a template named after their checksums; every test gets a
`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY` clone (~10 ms on tmpfs) and drops it after.
`ClonePool` prepares clones ahead on a background thread, so a test waits for none of that.
Identifiers are always quoted by psycopg (`db.execute_ddl`), never formatted into SQL.
"""

from __future__ import annotations

import hashlib
import os
import queue
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from jobforge import db, errors, migrate

TEMPLATE_PREFIX = "jobforge_tpl_"
SCRATCH_PREFIX = "jobforge_t_"
#: Released clones a pool may leave undropped while it prepares new ones first.
MAX_PENDING_DROPS = 16


@dataclass(frozen=True, slots=True)
class Database:
    """One database on a server: its name and a connection string for it."""

    name: str
    dsn: str

    def connect(self, **kwargs: object) -> db.Connection:
        return db.connect(self.dsn, **kwargs)  # type: ignore[arg-type]


def scratch_name() -> str:
    return f"{SCRATCH_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"


def _admin_error(server_dsn: str, action: str, exc: db.DatabaseError) -> errors.ProvisionError:
    return errors.ProvisionError(
        f"cannot {action} on {db.describe(server_dsn)}: {db.error_message(exc)} "
        "(the role needs CREATEDB)"
    )


class Template:
    """A database migrated once, that clones are copied from."""

    def __init__(self, server_dsn: str, migrations: Iterable[migrate.Migration] | None = None):
        self.server_dsn = server_dsn
        self.migrations = list(migrate.discover() if migrations is None else migrations)
        digest = hashlib.sha256("|".join(m.checksum for m in self.migrations).encode())
        self.name = TEMPLATE_PREFIX + digest.hexdigest()[:16]
        self._clone_query = "database_clone"

    def ensure(self) -> Template:
        """Create and migrate the template unless it exists; safe across processes."""
        with db.connect(self.server_dsn) as conn:
            if db.scalar(conn, "server_version_num") < 150000:
                self._clone_query = "database_clone_pre15"
            if db.scalar(conn, "database_exists", {"name": self.name}):
                return self
            db.scalar(conn, "template_lock", {"name": self.name})
            try:
                if not db.scalar(conn, "database_exists", {"name": self.name}):
                    self._build(conn)
            finally:
                db.scalar(conn, "template_unlock", {"name": self.name})
        return self

    def _build(self, conn: db.Connection) -> None:
        # Build under a temporary name and rename: a crash mid-migration leaves no half template.
        building = f"{self.name}_build_{secrets.token_hex(3)}"
        try:
            db.execute_ddl(conn, "database_create", db=building)
        except db.DatabaseError as exc:
            raise _admin_error(self.server_dsn, "create a database", exc) from None
        try:
            migrate.migrate(db.with_dbname(self.server_dsn, building), self.migrations)
            with db.connect(db.with_dbname(self.server_dsn, building)) as built:
                db.execute(built, "template_caller_clock")
                built.commit()
            db.execute_ddl(conn, "database_rename", db=building, new=self.name)
            db.execute_ddl(conn, "database_mark_template", db=self.name)
        except BaseException:
            db.execute_ddl(conn, "database_drop", db=building)
            raise

    def clone(self, conn: db.Connection, name: str | None = None) -> Database:
        """A fresh copy of the template, through an open maintenance connection."""
        name = name or scratch_name()
        try:
            db.execute_ddl(conn, self._clone_query, db=name, template=self.name)
        except db.DatabaseError as exc:
            raise _admin_error(self.server_dsn, f"clone {self.name}", exc) from None
        return Database(name, db.with_dbname(self.server_dsn, name))

    def create(self) -> Database:
        with db.connect(self.server_dsn) as conn:
            return self.clone(conn)

    def drop(self, database: Database | str) -> None:
        name = database if isinstance(database, str) else database.name
        with db.connect(self.server_dsn) as conn:
            db.execute_ddl(conn, "database_drop", db=name)


class ClonePool:
    """Clones prepared ahead of demand and dropped behind it, on background threads.

    `acquire()` returns a ready clone at once when the threads have kept up (the stretch goal:
    ≤ 5 ms per test); otherwise it waits for the next one. `release()` queues the drop. Two
    threads by default: one clone costs about as much as a short test, and one thread alone
    falls behind a suite of short tests (measured in benchmarks/provision.py).
    """

    def __init__(self, template: Template, *, ahead: int = 2, threads: int = 2) -> None:
        self.template = template
        self._ready: queue.Queue[Database | BaseException] = queue.Queue()
        self._drops: queue.Queue[str | None] = queue.Queue()
        self._ahead = ahead
        self._wanted = threading.Semaphore(ahead)
        self._closed = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"jobforge-clones-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def acquire(self, timeout_s: float = 60.0) -> Database:
        item = self._ready.get(timeout=timeout_s)
        if isinstance(item, BaseException):
            raise item
        self._wanted.release()
        return item

    def release(self, database: Database) -> None:
        self._drops.put(database.name)

    def close(self) -> None:
        """Drop every prepared and released clone, and stop the threads."""
        self._closed.set()
        for _ in self._threads:
            self._wanted.release()
            self._drops.put(None)
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self) -> None:
        # Creating comes first (a test may be waiting for it); drops wait until no clone is
        # wanted, unless more than MAX_PENDING_DROPS pile up (each clone holds disk or tmpfs).
        try:
            with db.connect(self.template.server_dsn) as conn:
                while not self._closed.is_set():
                    if self._drops.qsize() > MAX_PENDING_DROPS:
                        self._drop_one(conn, block=False)
                    elif self._wanted.acquire(blocking=False):
                        if self._closed.is_set():
                            break
                        self._ready.put(self.template.clone(conn))
                    elif not self._drop_one(conn, block=False) and self._wanted.acquire(
                        timeout=0.02
                    ):
                        self._wanted.release()  # only waited for demand; the loop serves it
                while self._drop_one(conn, block=False):
                    pass
                while True:
                    try:
                        item = self._ready.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(item, Database):
                        db.execute_ddl(conn, "database_drop", db=item.name)
        except BaseException as exc:  # surface it to the next acquire(), never lose it silently
            self._ready.put(exc)

    def _drop_one(self, conn: db.Connection, *, block: bool) -> bool:
        """Drop one released clone; False when there was none."""
        try:
            name = self._drops.get(block=block)
        except queue.Empty:
            return False
        if name is not None:
            db.execute_ddl(conn, "database_drop", db=name)
        return True
