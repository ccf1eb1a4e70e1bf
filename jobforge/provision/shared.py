"""One server per test session, shared by every process of the session (pytest-xdist workers).

The first process that needs a server starts it under a file lock in a directory all the
session's processes know, and writes its connection string there; the others attach. The
server belongs to the session's main process: its watchdog watches that pid, and the main process
stops it at the end (`stop_shared`). Without a shared directory this is simply a lazy server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from jobforge.provision.choose import provide_server
from jobforge.provision.local import LocalServer
from jobforge.provision.processes import signal_and_wait
from jobforge.provision.server import Server

_STATE = "server.json"


@dataclass
class AttachedServer:
    """A server another process of this session started; stopping it is that process's job."""

    dsn: str
    origin: str
    description: str
    started_in_s: float = 0.0

    def describe(self) -> str:
        return self.description

    def stop(self) -> None:
        """Not ours to stop."""


class SessionServer:
    """Lazily provides the session's server; `close()` stops it if this process owns it."""

    def __init__(
        self,
        shared_dir: Path | None = None,
        *,
        database_url: str | None = None,
        provider: str | None = None,
        owner_pid: int | None = None,
    ) -> None:
        self.shared_dir = shared_dir
        self.database_url = database_url
        self.provider = provider
        self.owner_pid = owner_pid or os.getpid()
        self._server: Server | None = None
        self._kept: Server | None = None  # a started server another process stops; keep its handles

    def get(self) -> Server:
        if self._server is None:
            self._server = self._start() if self.shared_dir is None else self._get_shared()
        return self._server

    def _start(self) -> Server:
        return provide_server(
            database_url=self.database_url, provider=self.provider, owner_pid=self.owner_pid
        )

    def _get_shared(self) -> Server:
        assert self.shared_dir is not None
        self.shared_dir.mkdir(parents=True, exist_ok=True)
        state = self.shared_dir / _STATE
        with FileLock(str(self.shared_dir / "server.lock"), timeout=300):
            if state.is_file():
                data = json.loads(state.read_text())
                return AttachedServer(data["dsn"], data["origin"], data["description"])
            server = self._start()
            if server.origin == "docker":
                # testcontainers' reaper removes a container when the process that started it
                # exits, and an xdist worker may exit before the others: one container per worker.
                return server
            data = {"dsn": server.dsn, "origin": server.origin, "description": server.describe()}
            if isinstance(server, LocalServer):
                data |= {"postmaster_pid": server.pid, "run_dir": str(server.run_dir)}
                data["watchdog_pid"] = server.watchdog.pid if server.watchdog else None
            state.write_text(json.dumps(data))
            self._kept = server
            # A local server outlives this process: the session's main process stops it.
            return AttachedServer(server.dsn, server.origin, server.describe(), server.started_in_s)

    def close(self) -> None:
        if self._server is not None and not isinstance(self._server, AttachedServer):
            self._server.stop()
        self._server = None


def stop_shared(shared_dir: Path, timeout_s: float = 15.0) -> None:
    """Stop the server a session's worker started in `shared_dir`, if any (main process only)."""
    state = shared_dir / _STATE
    if not state.is_file():
        return
    data = json.loads(state.read_text())
    state.unlink()
    pid = data.get("postmaster_pid")
    if pid:
        signal_and_wait(pid, signal.SIGINT, timeout_s) or signal_and_wait(pid, signal.SIGKILL, 5)
    if run_dir := data.get("run_dir"):
        shutil.rmtree(run_dir, ignore_errors=True)
    if watchdog := data.get("watchdog_pid"):
        signal_and_wait(watchdog, signal.SIGTERM, 5)
