"""A `.jobforge/server.json` that describes no running dev server of this user: never trusted;
stale or damaged, it is removed; planted or shared with others, it is a one-line error."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli


def _write_state(project: Path, **fields: object) -> Path:
    state = project / ".jobforge" / "server.json"
    state.parent.mkdir(exist_ok=True)
    defaults: dict[str, object] = {
        "pid": 1,
        "port": 54329,
        "data_dir": str(project / ".jobforge" / "pgdata"),
        "version": "15",
        "url": "postgresql://postgres@127.0.0.1:54329/postgres",
    }
    state.write_text(json.dumps({**defaults, **fields}))
    return state


def test_a_garbage_state_file_is_neither_stopped_nor_given_a_url(cli: Cli, project: Path) -> None:
    state = project / ".jobforge" / "server.json"
    state.parent.mkdir()
    state.write_text('{"pid": "not a state file"')
    stopped = cli("db", "stop")
    assert stopped.code == 0, stopped
    assert "no development server is running" in stopped.out
    assert not state.exists()  # recognised as stale and removed
    state.write_text("[]")
    url = cli("db", "url")
    assert url.code == 2
    assert url.out == ""
    assert url.err.startswith("error: ")
    assert not state.exists()


def test_a_state_file_whose_pid_is_gone_is_stale(cli: Cli, project: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    state = _write_state(project, pid=gone.pid)
    assert cli("db", "status").code == 1
    assert not state.exists()


def test_a_state_file_with_a_string_pid_is_not_a_crash(cli: Cli, project: Path) -> None:
    state = _write_state(project, pid="12")
    try:
        assert cli("db", "status").code == 1  # the runner asserts there is no traceback
    finally:
        state.unlink(missing_ok=True)  # or the fixture's `db stop` trips over it too


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not Postgres (what a recycled pid points at)."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_a_recycled_pid_is_not_signalled(
    cli: Cli, project: Path, stranger: subprocess.Popen[bytes]
) -> None:
    data_dir = project / ".jobforge" / "pgdata"
    data_dir.mkdir(parents=True)
    (data_dir / "postmaster.pid").write_text("999999\n")  # left behind by a killed postmaster
    _write_state(project, pid=stranger.pid, data_dir=str(data_dir))
    cli("db", "stop")
    assert stranger.poll() is None, "db stop signalled a process that is not its postmaster"


@pytest.fixture
def attacker() -> Iterator[socket.socket]:
    """A server of the attacker's: it only needs to be told about, never connected to."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.settimeout(0.5)
        yield sock


def _connected(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
    except TimeoutError:
        return False
    return True


def test_a_state_file_shipped_in_a_checkout_is_not_a_database_to_connect_to(
    cli: Cli, project: Path, stranger: subprocess.Popen[bytes], attacker: socket.socket
) -> None:
    """Point 11: a checkout ships `.jobforge/server.json` (with a postmaster.pid naming some live
    process) whose URL is the attacker's server; `migrate`, `jobs`, `db url` used to take it."""
    port = attacker.getsockname()[1]
    data_dir = project / ".jobforge" / "pgdata"
    data_dir.mkdir(parents=True)
    (data_dir / "postmaster.pid").write_text(f"{stranger.pid}\n{data_dir}\n0\n{port}\n")
    state = _write_state(
        project, pid=stranger.pid, port=port, data_dir=str(data_dir),
        url=f"postgresql://postgres@127.0.0.1:{port}/postgres",
    )  # fmt: skip
    for args in (("migrate",), ("jobs", "list", "--tenant", "t"), ("db", "url")):
        result = cli(*args)
        assert result.code == 2, (args, result)
        assert result.err.count("\n") == 1
        assert f"refusing the dev server state file {state}" in result.err
        assert "did not start" in result.err
    assert not _connected(attacker)
    assert stranger.poll() is None
    state.unlink()  # so the fixture's `db stop` does not trip over it


@pytest.mark.parametrize("kind", ["symlink", "writable by others"])
def test_a_state_file_others_could_have_written_is_refused(
    cli: Cli, project: Path, kind: str
) -> None:
    state = _write_state(project)
    if kind == "symlink":
        real = project / "elsewhere.json"
        state.rename(real)
        state.symlink_to(real)
    else:
        state.chmod(0o666)
    result = cli("migrate")
    assert result.code == 2, result
    assert result.err.count("\n") == 1
    assert f"refusing the dev server state file {state}" in result.err
    state.unlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_state_file_owned_by_another_user_is_refused(cli: Cli, project: Path) -> None:
    state = _write_state(project)
    os.chown(state, 65534, 65534)
    result = cli("db", "status")
    assert result.code == 2, result
    assert "is owned by uid 65534" in result.err
    state.unlink()
