"""A `.jobforge/server.json` that describes no running dev server: never trusted, never fatal."""

from __future__ import annotations

import json
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
