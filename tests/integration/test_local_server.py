"""Local binaries: started as an unprivileged user, test settings, and nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobforge import db, errors
from jobforge.provision import binaries, cluster, devserver, osuser
from jobforge.provision import local as provision_local
from jobforge.provision.local import LocalServer, start_local

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].splitlines()[0].lower()
    except (OSError, IndexError):
        return "zombie"


def _wait_gone(pid: int, path: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (_alive(pid) or path.exists()):
        time.sleep(0.05)
    assert not _alive(pid), f"postgres {pid} still running"
    assert not path.exists(), f"{path} still exists"


@pytest.fixture
def local() -> Iterator[LocalServer]:
    found = binaries.find()
    if found is None:
        pytest.skip("no local PostgreSQL binaries")
    server = start_local(found, osuser.server_user())
    yield server
    server.stop()


def test_runs_with_test_settings_on_a_private_socket(local: LocalServer) -> None:
    with db.connect(local.dsn) as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('fsync', 'synchronous_commit', 'full_page_writes', 'listen_addresses', 'TimeZone')"
        ).fetchall())  # fmt: skip
    assert settings == {
        "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
        "listen_addresses": "", "TimeZone": "UTC",
    }  # fmt: skip
    assert local.host.startswith(str(local.run_dir))


@pytest.mark.skipif(os.geteuid() != 0, reason="the root path needs root")
def test_as_root_the_server_runs_as_an_unprivileged_user(local: LocalServer) -> None:
    status = Path(f"/proc/{local.pid}/status").read_text()
    uid = int(status.split("Uid:")[1].split()[0])
    assert uid != 0
    assert uid == local.user.uid


def test_stop_removes_process_and_files(local: LocalServer) -> None:
    pid, run_dir = local.pid, local.run_dir
    local.stop()
    _wait_gone(pid, run_dir)
    local.stop()  # twice is fine


def test_the_watchdog_cleans_up_when_the_owner_dies() -> None:
    found = binaries.find()
    assert found is not None
    owner = subprocess.Popen(["sleep", "60"])
    server = start_local(found, osuser.server_user(), owner_pid=owner.pid)
    try:
        with db.connect(server.dsn) as conn:
            conn.execute("SELECT 1")
        owner.kill()
        owner.wait()
        _wait_gone(server.pid, server.run_dir)
    finally:
        server.stop()


def test_two_servers_at_once_do_not_clash() -> None:
    found = binaries.find()
    assert found is not None
    with (
        start_local(found, osuser.server_user()) as one,
        start_local(found, osuser.server_user()) as two,
    ):
        for server in (one, two):
            with db.connect(server.dsn) as conn:
                conn.execute("CREATE TABLE mine (x int)")


NONROOT_SCRIPT = """
import json, os
from jobforge import db
from jobforge.provision import provide_server, Template
server = provide_server(provider="local")
try:
    template = Template(server.dsn).ensure()
    clone = template.create()
    with db.connect(clone.dsn) as conn:
        applied = conn.execute("SELECT count(*) FROM jobforge.schema_migrations").fetchone()[0]
    template.drop(clone)
    print(json.dumps({"euid": os.geteuid(), "server_uid": os.stat(server.run_dir / "data").st_uid,
                      "applied": applied, "run_dir": str(server.run_dir)}))
finally:
    server.stop()
"""


def test_as_a_non_root_user() -> None:
    """As a normal user nothing switches user; as root we run the same code as `nobody`.

    Root's interpreter may live in a private home, so CI provides one `nobody` can run, with
    jobforge
    installed, in JOBFORGE_TEST_NONROOT_PYTHON.
    """
    if os.geteuid() != 0:
        command = [os.environ.get("PYTHON", "python3"), "-c", NONROOT_SCRIPT]
        env = dict(os.environ)
        cache = None
    else:
        python = os.environ.get("JOBFORGE_TEST_NONROOT_PYTHON")
        if not python:
            pytest.skip("as root this needs JOBFORGE_TEST_NONROOT_PYTHON (set by .ci/run)")
        runuser = shutil.which("runuser")
        assert runuser is not None
        cache = Path(tempfile.mkdtemp(prefix="jf-nonroot-cache-"))
        os.chown(cache, 65534, 65534)
        env = {"PATH": os.defpath, "HOME": str(cache), "JOBFORGE_CACHE_DIR": str(cache)}
        command = [runuser, "-u", "nobody", "--", python, "-c", NONROOT_SCRIPT]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=120, check=False, cwd="/"
        )
    finally:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["euid"] != 0
    assert report["server_uid"] == report["euid"]
    assert report["applied"] >= 1
    assert not Path(report["run_dir"]).exists()


def test_a_throwaway_cluster_never_trusts_a_tcp_connection(tmp_path: Path) -> None:
    """Point 7: the cached cluster every throwaway server copies was `initdb -A trust`; started
    listening on 127.0.0.1 (as the dev server used to start it), any local user was superuser.
    Its TCP lines now reject; only the private 0700 socket directory is a way in."""
    found = binaries.find()
    assert found is not None
    user = osuser.server_user()
    run_dir = Path(tempfile.mkdtemp(prefix="jf-tcp-", dir=cluster.scratch_root()))
    try:
        user.give(run_dir)
        provision_local.prepare_data_dir(found, user, run_dir / "data")
        port = devserver.free_port(0)
        args = provision_local.server_args(
            found, run_dir / "data", socket_dir=None, port=port, tcp=True, durable=False
        )
        process = provision_local.spawn_postgres(args, user, run_dir / "log", append=False)
        try:
            provision_local.wait_ready(process, run_dir / "data", run_dir / "log", 60)
            with pytest.raises(errors.DatabaseUnreachable, match="rejects connection"):
                db.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres").close()
        finally:
            process.terminate()
            process.wait(timeout=15)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs another OS user to attack from")
def test_another_os_user_cannot_reach_a_throwaway_servers_socket(local: LocalServer) -> None:
    psql = shutil.which("psql")
    runuser = shutil.which("runuser")
    if psql is None or runuser is None:
        pytest.skip("needs psql and runuser")
    assert local.run_dir.stat().st_mode & 0o777 == 0o700
    result = subprocess.run(
        [runuser, "-u", "nobody", "--", psql, "-h", local.host, "-p", str(local.port),
         "-U", "postgres", "-d", "postgres", "-Atc", "SELECT 1"],
        capture_output=True, text=True, timeout=30, check=False, cwd="/",
    )  # fmt: skip
    assert result.returncode != 0
    assert "Permission denied" in result.stderr
