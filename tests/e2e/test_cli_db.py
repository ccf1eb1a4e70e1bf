"""`jobforge db start|stop|status|url` and `jobforge migrate`, as a user runs them."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg.conninfo
import pytest

from jobforge import migrate
from tests.e2e.conftest import Cli, server_state

pytestmark = pytest.mark.slow


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_start_status_url_migrate_stop_and_data_persists(cli: Cli, project: Path) -> None:
    started = cli("db", "start")
    assert started.code == 0, started.err
    assert "url: postgresql://postgres:***@127.0.0.1:" in started.out
    url = cli("db", "url").out.strip()
    assert url.startswith("postgresql://")
    assert cli("db", "status").code == 0
    again = cli("db", "start")
    assert again.code == 0
    assert "already running" in again.out
    assert str(server_state(project)["pid"]) in again.out

    assert "schema: migrated" in started.out  # `db start` migrates the database it serves
    migrated = cli("migrate")
    assert migrated.code == 0, migrated.err
    assert "development server" in migrated.out
    assert "already up to date" in migrated.out

    assert cli("db", "stop").code == 0
    assert cli("db", "status").code == 1
    stopped_url = cli("db", "url")
    assert stopped_url.code == 2
    assert stopped_url.err.startswith("error:")

    assert cli("db", "start").code == 0
    with psycopg.connect(cli("db", "url").out.strip()) as conn:
        rows = conn.execute("SELECT name FROM jobforge.schema_migrations").fetchall()
    assert rows == [(m.name,) for m in migrate.discover()]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_in_use_is_refused_by_name_when_asked_for(cli: Cli, busy_port: int) -> None:
    result = cli("db", "start", "--port", str(busy_port))
    assert result.code == 2
    assert f"port {busy_port}" in result.err


def test_the_preferred_port_in_use_picks_another(cli: Cli, project: Path, busy_port: int) -> None:
    result = cli("db", "start", env={"JOBFORGE_DEV_PORT": str(busy_port)})
    assert result.code == 0, result.err
    assert server_state(project)["port"] != busy_port


def test_a_bad_preferred_port_is_a_usage_error(cli: Cli) -> None:
    result = cli("db", "start", env={"JOBFORGE_DEV_PORT": "http"})
    assert result.code == 2
    assert "JOBFORGE_DEV_PORT='http' is not a TCP port" in result.err


def test_a_killed_server_is_recovered_from(cli: Cli, project: Path) -> None:
    assert cli("db", "start").code == 0
    pid = int(str(server_state(project)["pid"]))
    os.kill(pid, signal.SIGKILL)
    assert _gone(pid)
    assert cli("db", "status").code == 1  # the stale state file is recognised
    restarted = cli("db", "start")
    assert restarted.code == 0, restarted.err
    assert int(str(server_state(project)["pid"])) != pid


def test_a_garbage_state_file_is_not_a_crash(cli: Cli, project: Path) -> None:
    (project / ".jobforge").mkdir()
    (project / ".jobforge" / "server.json").write_text("{not json")
    assert cli("db", "status").code == 1


def test_stop_when_nothing_runs(cli: Cli) -> None:
    result = cli("db", "stop")
    assert result.code == 0
    assert "no development server" in result.out


def test_migrate_an_unreachable_url_names_host_and_port(cli: Cli) -> None:
    result = cli("migrate", "--database-url", "postgresql://u@127.0.0.1:1/x")
    assert result.code == 2
    assert "127.0.0.1:1" in result.err
    assert result.err.startswith("error:")


def test_migrate_without_any_database(cli: Cli) -> None:
    result = cli("migrate")
    assert result.code == 2
    assert "no database" in result.err


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another OS user")
def test_a_project_the_server_user_cannot_reach_keeps_its_data_elsewhere(
    cli: Cli, tmp_path: Path
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    result = cli("db", "start", cwd=private)
    assert result.code == 0, result.err
    data_dir = Path(str(server_state(private)["data_dir"]))
    assert not data_dir.is_relative_to(private)
    assert data_dir.name == "pgdata"
    assert str(data_dir) in cli("db", "status", cwd=private).out


def test_a_server_running_without_its_state_file_is_not_started_twice(
    cli: Cli, project: Path
) -> None:
    assert cli("db", "start").code == 0
    state_file = project / ".jobforge" / "server.json"
    saved = state_file.read_text()
    state_file.unlink()
    try:
        result = cli("db", "start")
        assert result.code == 2
        assert "already running" in result.err
        assert "stop it first" in result.err
    finally:
        state_file.write_text(saved)  # so the fixture can stop it


def test_the_dev_server_lets_in_only_who_has_its_password(cli: Cli, project: Path) -> None:
    """Point 7: it was `initdb -A trust` on 127.0.0.1, so any local OS user was superuser."""
    started = cli("db", "start")
    assert started.code == 0, started.err
    state_file = project / ".jobforge" / "server.json"
    assert state_file.stat().st_mode & 0o777 == 0o600
    url = cli("db", "url").out.strip()
    password = psycopg.conninfo.conninfo_to_dict(url)["password"]
    assert len(str(password or "")) >= 24
    for shown in (started.out, cli("db", "status").out, cli("migrate").out):
        assert str(password) not in shown
    port = server_state(project)["port"]
    for attempt in (
        f"postgresql://postgres@127.0.0.1:{port}/postgres",
        f"postgresql://postgres:guess@127.0.0.1:{port}/postgres",
        f"postgresql://postgres@127.0.0.1:{port}/postgres?user=jobforge_app",
    ):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(attempt, connect_timeout=5).close()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        rules = conn.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules").fetchall()
    assert rules == [("scram-sha-256",)]
    assert not list(project.rglob(".pw-*")), "the password file given to initdb was left behind"


def test_a_symlink_planted_at_the_data_directory_is_refused(cli: Cli, project: Path) -> None:
    """Point 8: `.jobforge/pgdata` planted as a symlink (a checkout can ship one) is not used,
    copied into or chowned; `db start` says so in one line."""
    victim = project / "victim"
    victim.mkdir()
    (victim / "keep").write_text("mine")
    before = victim.stat()
    (project / ".jobforge").mkdir()
    (project / ".jobforge" / "pgdata").symlink_to(victim)
    result = cli("db", "start")
    assert result.code == 2, result
    assert result.err.count("\n") == 1
    assert "refusing" in result.err
    assert str(project / ".jobforge" / "pgdata") in result.err
    assert sorted(p.name for p in victim.iterdir()) == ["keep"]
    after = victim.stat()
    assert (after.st_uid, after.st_gid, after.st_mode) == (
        before.st_uid,
        before.st_gid,
        before.st_mode,
    )


def test_a_data_directory_this_user_did_not_create_is_refused(cli: Cli, project: Path) -> None:
    """A cluster shipped in a checkout (whose postgresql.conf could run any command) is never
    started: only the data directory this user's `db start` recorded is."""
    (project / ".jobforge" / "pgdata").mkdir(parents=True, mode=0o700)
    (project / ".jobforge" / "pgdata" / "PG_VERSION").write_text("15\n")
    result = cli("db", "start")
    assert result.code == 2, result
    assert "no record of it" in result.err
    assert server_state_missing(project)


def server_state_missing(project: Path) -> bool:
    return not (project / ".jobforge" / "server.json").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the attack is on root's `db start`")
def test_root_does_not_follow_a_planted_fallback_data_directory(cli: Cli, tmp_path: Path) -> None:
    """Point 8: the fallback used to be `/var/tmp/jobforge-<sha256(project)[:12]>`: another user
    pre-created it as a symlink to a folder of theirs, and root's `db start` chowned the target
    to the server's user (and wrote a cluster into it)."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    victim = Path(tempfile.mkdtemp(prefix="jf-victim-"))
    os.chown(victim, 65534, 65534)  # the attacker's folder (nobody's)
    digest = hashlib.sha256(str(private.resolve()).encode()).hexdigest()[:12]
    planted = Path("/var/tmp") / f"jobforge-{digest}"
    planted.symlink_to(victim)
    try:
        result = cli("db", "start", cwd=private)
        assert result.code == 0, result.err
        data_dir = Path(str(server_state(private)["data_dir"]))
        assert not data_dir.is_relative_to(planted)
        assert not data_dir.resolve().is_relative_to(victim)
        st = data_dir.parent.lstat()
        assert stat.S_ISDIR(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o700
        assert (victim.stat().st_uid, list(victim.iterdir())) == (65534, [])
    finally:
        planted.unlink()
        shutil.rmtree(victim)
