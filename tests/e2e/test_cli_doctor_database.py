"""`jobforge doctor --database-url` means what it means on every command: the database commands
act on, checked read only (it answers, its migrations, its queued job types), never a server for
scratch databases; `--scratch-database-url` names one of those. A database that was named but
cannot be read, pending migrations, and a [tool.jobforge] that does not load fail (exit 1), with
or without `--no-start`; what is not applicable is a skip."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from jobforge import migrate
from jobforge.provision import Server
from tests.e2e.conftest import Cli, Run

pytestmark = pytest.mark.slow

SHIPPED = migrate.discover()
UNREACHABLE = "postgresql://postgres:s3cret-pw@127.0.0.1:1/postgres"


def _lines(result: Run, mark: str) -> list[str]:
    return [line for line in result.out.splitlines() if line.startswith(mark)]


def _templates(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'jobforge\\_tpl\\_%'"
        ).fetchall()
    return [str(name) for (name,) in rows]


@pytest.fixture
def empty(jobforge_server: Server) -> Iterator[str]:
    """A fresh database with nothing of jobforge in it."""
    name = f"jf_doctor_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(jobforge_server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(jobforge_server.dsn, dbname=name)
    finally:
        with psycopg.connect(jobforge_server.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_database_url_is_read_only_and_never_a_scratch_server(cli: Cli) -> None:
    assert cli("db", "start").code == 0
    url = cli("db", "url").out.strip()
    assert _templates(url) == []

    result = cli("doctor", "--database-url", url)
    assert result.code == 0, result.out + result.err
    assert _templates(url) == []  # nothing created on the database it was pointed at
    assert "skip path: url: JOBFORGE_SCRATCH_DATABASE_URL is not set" in result.out
    assert "JOBFORGE_SCRATCH_DATABASE_URL is set" not in result.out
    assert "(from JOBFORGE_SCRATCH_DATABASE_URL)" not in result.out
    (database,) = [line for line in result.out.splitlines() if line.startswith("ok   database:")]
    assert "127.0.0.1:" in database
    assert "(from --database-url)" in database
    assert f"ok   migrations: {len(SHIPPED)} applied, up to date" in result.out
    (scratch,) = [line for line in result.out.splitlines() if "scratch server:" in line]
    assert "local" in scratch  # the normal plan: local binaries here
    assert "ok   fresh database: migrated template jobforge_tpl_" in result.out


def test_a_scratch_server_is_named_with_its_own_option(cli: Cli, jobforge_server: Server) -> None:
    looked = cli("doctor", "--no-start", "--scratch-database-url", jobforge_server.dsn)
    assert looked.code == 0, looked.out + looked.err
    assert "ok   path: url: a server for scratch databases: given by --scratch-database-url" in (
        looked.out
    )
    result = cli("doctor", "--scratch-database-url", jobforge_server.dsn)
    assert result.code == 0, result.out + result.err
    assert "(from --scratch-database-url)" in result.out
    assert "ok   fresh database: migrated template" in result.out
    assert "skip database: none named" in result.out  # the scratch server is not the target


@pytest.mark.parametrize("via", ["option", "environment"])
def test_an_unreachable_database_fails_even_without_starting(cli: Cli, via: str) -> None:
    if via == "option":
        result = cli("doctor", "--no-start", "--database-url", UNREACHABLE)
        source = "--database-url"
    else:
        result = cli("doctor", "--no-start", env={"JOBFORGE_DATABASE_URL": UNREACHABLE})
        source = "JOBFORGE_DATABASE_URL"
    assert result.code == 1, result.out + result.err
    (failed,) = _lines(result, "FAIL")
    assert failed.startswith("FAIL database: cannot connect to Postgres at 127.0.0.1:1/postgres")
    assert f"(URL from {source})" in failed
    assert "s3cret-pw" not in result.out + result.err
    assert "all good" not in result.out
    assert "problems found" in result.out
    report = json.loads(
        cli("doctor", "--no-start", "--database-url", UNREACHABLE, "--format", "json").out
    )
    assert report["ok"] is False


def test_pending_migrations_fail_without_starting(cli: Cli, empty: str) -> None:
    result = cli("doctor", "--no-start", "--database-url", empty)
    assert result.code == 1, result.out + result.err
    (failed,) = _lines(result, "FAIL")
    assert f"FAIL migrations: 0 applied, {len(SHIPPED)} pending" in failed
    assert "run `jobforge migrate --database-url URL` with the same URL" in failed
    assert "scratch server" not in result.out  # --no-start: nothing started


def test_a_broken_tool_jobforge_fails(cli: Cli, project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.jobforge]\nrunner = ["billing"]\n')
    result = cli("doctor", "--no-start")
    assert result.code == 1, result.out + result.err
    (failed,) = _lines(result, "FAIL")
    assert "queued job types: cannot load this repository's runners" in failed
    assert "has no key 'runner' (did you mean 'runners'?)" in failed
    assert "problems found" in result.out
    report = json.loads(cli("doctor", "--no-start", "--format", "json").out)
    assert report["ok"] is False
    assert report["queued_types"]["mark"] == "fail"


def test_nothing_named_outside_a_runner_repository_is_a_skip(cli: Cli) -> None:
    result = cli("doctor", "--no-start")
    assert result.code == 0, result.out + result.err
    assert "skip database: none named" in result.out
    assert "queued job types" not in result.out
    assert "all good" in result.out
