"""Per-process provisioning state: the session server, templates, clone pools.

Shared by the pytest plugin and `jobforge certify`/`replay`. Everything is created on first use,
so a test suite that uses no jobforge fixture starts no server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jobforge.errors import JobforgeError

if TYPE_CHECKING:
    from jobforge import db
    from jobforge.provision import ClonePool, Database, Server, SessionServer, Template


@dataclass
class Settings:
    database_url: str | None
    provider: str | None
    shared_dir: Path | None  # set in xdist workers: where the session's server is announced
    owner_pid: int | None  # the session's main process, which the server must not outlive


@dataclass
class ProvisionSession:
    settings: Settings
    _server: SessionServer | None = None
    _templates: dict[str, Template] = field(default_factory=dict)
    _pools: dict[str, ClonePool] = field(default_factory=dict)
    _tx: tuple[Database, db.Connection] | None = None
    #: why no server could be had: said again to every later caller, never tried again (an
    #: unreachable host would cost each test its connect timeout, and say the same)
    _failure: JobforgeError | None = None

    def server(self) -> Server:
        if self._failure is not None:
            raise self._failure.with_traceback(None)
        try:
            return self._provide()
        except JobforgeError as exc:
            self._failure = exc
            raise

    def _provide(self) -> Server:
        from jobforge.provision import SessionServer

        if self._server is None:
            s = self.settings
            self._server = SessionServer(
                s.shared_dir,
                database_url=s.database_url,
                provider=s.provider,
                owner_pid=s.owner_pid,
            )
        return self._server.get()

    def template(self, migrations_dir: Path | None = None) -> Template:
        from jobforge import migrate
        from jobforge.provision import Template

        key = str(migrations_dir or "")
        if key not in self._templates:
            files = migrate.discover(migrations_dir) if migrations_dir else None
            self._templates[key] = Template(self.server().dsn, files).ensure()
        return self._templates[key]

    def pool(self, template: Template) -> ClonePool:
        from jobforge.provision import ClonePool

        if template.name not in self._pools:
            self._pools[template.name] = ClonePool(template)
        return self._pools[template.name]

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        """The DSN of a fresh clone of the migrated template, dropped afterwards."""
        pool = self.pool(self.template())
        database = pool.acquire()
        try:
            yield database.dsn
        finally:
            pool.release(database)

    def tx_connection(self) -> db.Connection:
        """A connection to a database this process keeps for rolled-back-transaction tests."""
        from jobforge import db

        if self._tx is None or self._tx[1].closed:
            database = self.template().create()
            self._tx = (database, db.connect(database.dsn, autocommit=False))
        return self._tx[1]

    def close(self) -> None:
        """Drop what this process created and stop a server it owns."""
        if self._tx is not None:
            database, conn = self._tx
            conn.close()
            self.template().drop(database)
            self._tx = None
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._templates.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
