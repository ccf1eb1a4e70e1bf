"""`jobforge db start|stop|status|url`: a development server whose data persists in `.jobforge/`.

Unlike a throwaway server it keeps default durability (fsync on: the data is meant to last),
listens on 127.0.0.1 (a free port, preferring DEFAULT_PORT), outlives the command that started
it, and is found again through `.jobforge/server.json`. A state file left by a killed run is
recognised as stale (its pid is gone) and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from jobforge import errors
from jobforge.provision import binaries as pgbin
from jobforge.provision.local import prepare_data_dir, server_args, spawn_postgres, wait_ready
from jobforge.provision.osuser import can_traverse, server_user
from jobforge.provision.processes import alive

DEFAULT_PORT = 54329
PORT_ATTEMPTS = 5
STATE_DIR = ".jobforge"


@dataclass(frozen=True, slots=True)
class DevServerState:
    pid: int
    port: int
    data_dir: str
    version: str
    url: str


def state_path(project: Path) -> Path:
    return project / STATE_DIR / "server.json"


def status(project: Path) -> DevServerState | None:
    """The running dev server of `project`, or None (a stale state file is removed)."""
    path = state_path(project)
    if not path.is_file():
        return None
    try:
        state = DevServerState(**json.loads(path.read_text()))
        valid = isinstance(state.pid, int) and state.pid > 1 and isinstance(state.port, int)
    except (ValueError, TypeError):
        valid = False
    if not valid:
        path.unlink()  # not written by us, or damaged: never signal a pid read from it
        return None
    if alive(state.pid) and _postmaster_pid(Path(state.data_dir)) == state.pid:
        return state
    path.unlink()  # left by a killed run: the server is gone (its pid may even be reused)
    return None


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _preferred_port() -> int:
    value = os.environ.get("JOBFORGE_DEV_PORT", str(DEFAULT_PORT))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise errors.ConfigurationError(f"JOBFORGE_DEV_PORT={value!r} is not a TCP port")
    return int(value)


def free_port(preferred: int = DEFAULT_PORT) -> int:
    """`preferred` when nothing listens there, else a port the kernel picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise errors.ProvisionError("no free TCP port on 127.0.0.1")


def data_dir_for(project: Path) -> Path:
    """`.jobforge/pgdata`, unless the server's OS user cannot reach it (e.g. root's 0700 home)."""
    user = server_user()
    preferred = project / STATE_DIR / "pgdata"
    if can_traverse(user, preferred.parent):
        return preferred
    digest = hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:12]
    return Path("/var/tmp" if Path("/var/tmp").is_dir() else tempfile.gettempdir()) / (
        f"jobforge-{digest}"
    ) / "pgdata"  # fmt: skip


def start(project: Path, *, port: int | None = None) -> tuple[DevServerState, bool]:
    """Start (or find) the dev server; returns its state and whether this call started it."""
    if (running := status(project)) is not None:
        return running, False
    found = pgbin.find()
    if found is None:
        raise errors.ProvisionError(
            "no PostgreSQL server binaries found for `jobforge db start` (looked in "
            f"{pgbin.where_we_looked()}): install them (`apt-get install postgresql`, "
            "`brew install postgresql@16`) or set JOBFORGE_PG_BINDIR"
        )
    user = server_user()
    (project / STATE_DIR).mkdir(exist_ok=True)
    data_dir = data_dir_for(project)
    if not (data_dir / "PG_VERSION").is_file():
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        user.give(data_dir.parent)
        prepare_data_dir(found, user, data_dir)
    _clear_stale_pidfile(data_dir)
    log = project / STATE_DIR / "server.log"
    for attempt in range(PORT_ATTEMPTS):
        chosen = free_port(port or _preferred_port())
        if port is not None and chosen != port:
            raise errors.ConfigurationError(f"port {port} on 127.0.0.1 is in use: choose another")
        args = server_args(found, data_dir, socket_dir=None, port=chosen, tcp=True, durable=True)
        process = spawn_postgres(args, user, log, append=True)  # outlives this command
        try:
            wait_ready(process, data_dir, log, timeout_s=60)
            break
        except errors.ProvisionError as exc:
            # Another process took the port between our check and the server's bind: try again.
            lost_race = "could not create any TCP/IP sockets" in str(exc)
            if not lost_race or port is not None or attempt == PORT_ATTEMPTS - 1:
                raise
    state = DevServerState(
        pid=process.pid,
        port=chosen,
        data_dir=str(data_dir),
        version=found.version,
        url=f"postgresql://postgres@127.0.0.1:{chosen}/postgres",
    )
    state_path(project).write_text(json.dumps(asdict(state), indent=2))
    return state, True


def _clear_stale_pidfile(data_dir: Path) -> None:
    """Remove a postmaster.pid left by a killed server; refuse if its server still runs.

    Postgres checks the pid itself, but a killed postmaster can linger as a zombie (in a
    container whose pid 1 does not reap) and is then taken for a live one.
    """
    pidfile = data_dir / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    if alive(pid):
        raise errors.ProvisionError(
            f"a Postgres server (pid {pid}) is already running on {data_dir}, but not as this "
            "project's development server: stop it first"
        )
    pidfile.unlink(missing_ok=True)


def stop(project: Path, timeout_s: float = 30.0) -> DevServerState | None:
    """Fast-shutdown the dev server; returns what was stopped, or None if nothing ran."""
    state = status(project)
    if state is None:
        return None
    os.kill(state.pid, signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    while alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(state.pid):
        raise errors.ProvisionError(
            f"the dev server (pid {state.pid}) did not stop in {timeout_s:.0f} s"
        )
    state_path(project).unlink(missing_ok=True)
    return state
