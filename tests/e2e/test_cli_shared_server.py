"""`db url|status` output and `migrate` targets, locking and refusals, on one shared dev server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobforge import db, migrate
from tests.e2e.conftest import Run, server_state

pytestmark = pytest.mark.slow

UNREACHABLE = "postgresql://u@127.0.0.1:1/x"
SHIPPED = [m.name for m in migrate.discover()]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "jobforge.cli.app", *args]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFORGE_")}
    env["COLUMNS"] = "200"
    env.update(extra or {})
    return env


@dataclass
class Dev:
    """A dev server started once for this module, and how `db start` announced it."""

    project: Path
    url: str = ""
    started: Run | None = None
    busy_port: int = 0

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        result = subprocess.run(
            _command(*args), cwd=self.project, env=_env(env), capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert "Traceback" not in result.stderr, result.stderr
        return Run(result.returncode, result.stdout, result.stderr)

    def database(self, name: str) -> str:
        """A new, empty database on the dev server; its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return make_conninfo(self.url, dbname=name)


@pytest.fixture(scope="module")
def dev() -> Iterator[Dev]:
    project = Path(tempfile.mkdtemp(prefix="jf-e2e-"))
    project.chmod(0o755)  # the server's OS user must reach .jobforge/
    dev = Dev(project)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))  # a busy preferred port: `db start` must pick another
            sock.listen()
            dev.busy_port = sock.getsockname()[1]
            dev.started = dev.run("db", "start", env={"JOBFORGE_DEV_PORT": str(dev.busy_port)})
        assert dev.started.code == 0, dev.started
        dev.url = str(server_state(project)["url"])
        yield dev
    finally:
        try:
            data_dir: Path | None = Path(str(server_state(project)["data_dir"]))
        except (OSError, ValueError, KeyError):
            data_dir = None
        stopped = dev.run("db", "stop")
        if data_dir is not None and not data_dir.is_relative_to(project):
            shutil.rmtree(data_dir.parent, ignore_errors=True)  # kept in /var/tmp: see README
        shutil.rmtree(project, ignore_errors=True)
        assert stopped.code == 0, stopped


def _applied(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT name FROM jobforge.schema_migrations ORDER BY version")
        return [name for (name,) in rows]


def test_start_announces_the_url_on_another_port(dev: Dev) -> None:
    assert dev.started is not None
    assert dev.started.err == ""
    port = server_state(dev.project)["port"]
    assert port != dev.busy_port
    password = conninfo_to_dict(dev.url)["password"]
    assert dev.url == f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    masked = f"postgresql://postgres:***@127.0.0.1:{port}/postgres"
    assert f"url: {masked} (with its password: `jobforge db url`)\n" in dev.started.out
    assert str(password) not in dev.started.out


def test_db_url_prints_exactly_the_url(dev: Dev) -> None:
    result = dev.run("db", "url")
    assert result.code == 0
    assert result.out == dev.url + "\n"
    assert result.err == ""


def test_db_status_says_where(dev: Dev) -> None:
    state = server_state(dev.project)
    result = dev.run("db", "status")
    assert result.code == 0
    assert f"pid {state['pid']}, port {state['port']}" in result.out
    assert f"data: {state['data_dir']}\n" in result.out
    assert f"url: {db.redact(dev.url)} (with its password: `jobforge db url`)\n" in result.out


def test_migrate_target_precedence_option_then_env_then_dev_server(dev: Dev) -> None:
    by_option, by_env = dev.database("by_option"), dev.database("by_env")

    option = dev.run(
        "migrate", "--database-url", by_option, env={"JOBFORGE_DATABASE_URL": UNREACHABLE}
    )
    assert option.code == 0, option
    assert f"/by_option (--database-url): applied {SHIPPED[0]}" in option.out

    env = dev.run("migrate", env={"JOBFORGE_DATABASE_URL": by_env})
    assert env.code == 0, env
    assert f"/by_env (JOBFORGE_DATABASE_URL): applied {SHIPPED[0]}" in env.out

    server = dev.run("migrate")  # `db start` migrated it already
    assert server.code == 0, server
    assert "/postgres (the development server (.jobforge/)): already up to date" in server.out
    assert _applied(by_option) == _applied(by_env) == _applied(dev.url) == SHIPPED


def test_concurrent_migrates_apply_each_file_once(dev: Dev) -> None:
    url = dev.database("concurrent")
    command = _command("migrate", "--database-url", url)
    runs = [
        subprocess.Popen(command, cwd=dev.project, env=_env(), stdout=PIPE, stderr=PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    applied = [
        line.rsplit("applied ", 1)[1]
        for out, _ in outputs
        for line in out.splitlines()
        if ": applied " in line
    ]
    assert sorted(applied) == SHIPPED  # each once, whichever process got the lock
    assert sum("already up to date" in out for out, _ in outputs) >= 1
    assert _applied(url) == SHIPPED


def test_a_changed_migration_is_refused_by_name(dev: Dev) -> None:
    url = dev.database("changed")
    assert dev.run("migrate", "--database-url", url).code == 0
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE jobforge.schema_migrations SET checksum = 'sha256:' || repeat('0', 64) "
            "WHERE version = 1"
        )
    result = dev.run("migrate", "--database-url", url)
    assert result.code == 1, result  # a check failed, not a usage error
    assert result.err.startswith("error: ")
    assert result.err.count("\n") == 1
    assert f"migration '{SHIPPED[0]}' changed after it was applied" in result.err

    doctor = dev.run("doctor", env={"JOBFORGE_DATABASE_URL": url})
    assert doctor.code == 1, doctor
    assert SHIPPED[0] in doctor.out
    assert "problems found" in doctor.out


def test_a_migration_unknown_to_this_jobforge_is_refused(dev: Dev) -> None:
    url = dev.database("from_the_future")
    assert dev.run("migrate", "--database-url", url).code == 0
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO jobforge.schema_migrations (version, name, checksum) "
            "VALUES (9999, '9999_from_the_future.sql', 'sha256:' || repeat('0', 64))"
        )
    result = dev.run("migrate", "--database-url", url)
    assert result.code == 1, result
    assert "'9999_from_the_future.sql' applied, but no such file exists" in result.err
