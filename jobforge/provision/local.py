"""A throwaway Postgres server from local binaries: copied cluster, started directly, unix socket.

Start: copy a cached initialised cluster to tmpfs (or initdb there when no cache), start
`postgres` directly (not `pg_ctl -w`, which polls every 100 ms) and poll `postmaster.pid` until
it says "ready". Stop: SIGINT (fast shutdown), then delete everything. A watchdog process stops
the server and deletes its files if the owning process dies without stopping it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jobforge import errors
from jobforge.provision import cluster
from jobforge.provision.binaries import Binaries
from jobforge.provision.osuser import ServerUser

#: Test-server settings: a throwaway cluster need not survive a crash, so nothing is flushed.
FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "1GB",
}
#: Settings every jobforge server gets: predictable timing and stable output for golden tests.
COMMON_SETTINGS: Mapping[str, str] = {
    "jit": "off",
    "TimeZone": "UTC",
    "DateStyle": "ISO, MDY",
    "lc_messages": "C",
    "max_connections": "200",
    "log_min_messages": "warning",
}
READY_TIMEOUT_S = 60.0
_POLL_S = 0.003
_PORT = 5432  # only names the socket file: each server has a private socket directory


@dataclass
class LocalServer:
    """A running local server. Use `start_local()`; stop with `stop()` or as a context manager."""

    binaries: Binaries
    user: ServerUser
    run_dir: Path
    process: subprocess.Popen[bytes]
    port: int
    host: str  # the socket directory, or 127.0.0.1 for TCP
    watchdog: subprocess.Popen[bytes] | None = None
    origin: str = "local"
    started_in_s: float = 0.0
    _stopped: bool = field(default=False, repr=False)

    @property
    def dsn(self) -> str:
        """Connection string of the maintenance database `postgres`."""
        return f"host={self.host} port={self.port} user=postgres dbname=postgres"

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def pid(self) -> int:
        return self.process.pid

    def describe(self) -> str:
        return (
            f"local PostgreSQL {self.binaries.version} ({self.binaries.bindir}, "
            f"as OS user {self.user.name}) on {self.host}"
        )

    def stop(self) -> None:
        """Fast shutdown, then delete the cluster; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        _shutdown(self.process)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.watchdog is not None and self.watchdog.poll() is None:
            self.watchdog.terminate()
            self.watchdog.wait(timeout=5)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _shutdown(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGINT, timeout_s), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        try:
            process.send_signal(sig)
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def _chown_tree(root: Path, user: ServerUser) -> None:
    if not user.switch or root.stat().st_uid == user.uid:
        return
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), user.uid, user.gid)
    os.chown(root, user.uid, user.gid)


def prepare_data_dir(binaries: Binaries, user: ServerUser, data_dir: Path) -> None:
    """Put a pristine cluster at `data_dir` (which must not exist): a cached copy, or initdb."""
    cached = cluster.cached_cluster(binaries, user)
    if cached is not None:
        cluster.copy_tree(cached, data_dir)
        _chown_tree(data_dir, user)
        data_dir.chmod(0o700)
    else:
        cluster.initdb(binaries, user, data_dir)


def server_args(
    binaries: Binaries,
    data_dir: Path,
    *,
    socket_dir: Path | None,
    port: int,
    tcp: bool,
    durable: bool,
    settings: Mapping[str, str] | None = None,
) -> list[str]:
    merged = {**COMMON_SETTINGS, **({} if durable else FAST_SETTINGS), **(settings or {})}
    merged["port"] = str(port)
    merged["listen_addresses"] = "127.0.0.1" if tcp else ""
    merged["unix_socket_directories"] = str(socket_dir) if socket_dir else ""
    args = [binaries.tool("postgres"), "-D", str(data_dir)]
    for key, value in merged.items():
        args += ["-c", f"{key}={value}"]
    return args


def spawn_postgres(
    args: list[str], user: ServerUser, log: Path, *, append: bool
) -> subprocess.Popen[bytes]:
    """Start the postmaster as `user`, its output in `log`, in its own session: a Ctrl-C meant
    for the caller does not reach it; its owner (or the watchdog) decides when it stops."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(log, flags, 0o600)  # a symlink planted at the log's name is not followed
    except OSError as exc:
        raise errors.ProvisionError(f"cannot open the server log {log}: {exc.strerror}") from None
    with open(fd, "ab") as log_file:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=cluster.SERVER_ENV,
            start_new_session=True,
            user=user.popen_user,
            group=user.popen_group,
            extra_groups=user.popen_extra_groups,
        )


def wait_ready(
    process: subprocess.Popen[bytes], data_dir: Path, log: Path, timeout_s: float
) -> None:
    """Poll postmaster.pid until its status line says ready; fail with the server's log."""
    pidfile = data_dir / "postmaster.pid"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise errors.ProvisionError(
                f"postgres exited with code {process.returncode} during start: {_tail(log)}"
            )
        try:
            lines = pidfile.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            lines = []
        if len(lines) >= 8 and lines[7].strip() == "ready" and lines[0].strip() == str(process.pid):
            return
        time.sleep(_POLL_S)
    _shutdown(process)
    raise errors.ProvisionError(
        f"postgres did not become ready within {timeout_s:.0f} s: {_tail(log)}"
    )


def _tail(log: Path, limit: int = 800) -> str:
    try:
        text = log.read_text(errors="replace").strip()
    except OSError:
        return "(no server log)"
    return text[-limit:] or "(empty server log)"


def spawn_watchdog(owner_pid: int, postmaster_pid: int, run_dir: Path) -> subprocess.Popen[bytes]:
    """Start the watchdog that cleans up if `owner_pid` dies without stopping the server."""
    script = Path(__file__).with_name("watchdog.py")
    return subprocess.Popen(
        [
            sys.executable,
            "-I",
            "-S",
            str(script),
            str(owner_pid),
            str(postmaster_pid),
            str(run_dir),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C aimed at pytest must not kill the safety net first
    )


def start_local(
    binaries: Binaries,
    user: ServerUser,
    *,
    durable: bool = False,
    owner_pid: int | None = None,
    settings: Mapping[str, str] | None = None,
) -> LocalServer:
    """Start a throwaway server; it is stopped and deleted when `owner_pid` (default: us) dies."""
    began = time.perf_counter()
    run_dir = Path(tempfile.mkdtemp(prefix="jf-", dir=cluster.scratch_root()))
    try:
        user.give(run_dir)
        data_dir = run_dir / "data"
        prepare_data_dir(binaries, user, data_dir)
        log = run_dir / "server.log"
        args = server_args(
            binaries, data_dir, socket_dir=run_dir, port=_PORT, tcp=False,
            durable=durable, settings=settings,
        )  # fmt: skip
        process = spawn_postgres(args, user, log, append=False)
        watchdog = spawn_watchdog(owner_pid or os.getpid(), process.pid, run_dir)
        server = LocalServer(binaries, user, run_dir, process, _PORT, str(run_dir), watchdog)
        try:
            wait_ready(process, data_dir, log, READY_TIMEOUT_S)
        except BaseException:
            server.stop()
            raise
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    server.started_in_s = time.perf_counter() - began
    return server
