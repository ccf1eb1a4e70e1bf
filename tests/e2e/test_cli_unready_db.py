"""A database that is not ready: no jobforge schema, migrations pending, or no server at all.

Every command that needs the schema says so in one line naming the database and the
`jobforge migrate` to run (exit 2), instead of a traceback or a retry loop; a server that does not
answer is one line naming host, port and where the URL came from, within seconds; `db start`
leaves a migrated database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobforge import migrate
from jobforge.provision import Server
from tests.e2e.conftest import Cli, Run

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHIPPED = migrate.discover()


def _one_error_line(result: Run) -> str:
    assert result.code == 2, result
    assert result.err.startswith("error: "), result
    assert result.err.count("\n") == 1, f"not one line: {result.err!r}"
    return result.err


def _database(server: Server, migrations: list[migrate.Migration]) -> Iterator[str]:
    name = f"jf_unready_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(server.dsn, dbname=name)
    try:
        if migrations:
            assert migrate.migrate(dsn, migrations) == migrations
        yield dsn
    finally:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty(jobforge_server: Server) -> Iterator[str]:
    """A fresh database with nothing of jobforge in it."""
    yield from _database(jobforge_server, [])


@pytest.fixture
def partly(jobforge_server: Server) -> Iterator[str]:
    """A database migrated up to all but the last two migrations."""
    yield from _database(jobforge_server, SHIPPED[:-2])


#: Each command that needs the schema, as (arguments, working directory); URL goes where {url} is.
COMMANDS = {
    "enqueue": (("enqueue", "ops.scan", '{"target": "x"}', "--tenant", "acme"), None),
    "jobs-list": (("jobs", "list", "--tenant", "acme"), None),
    "jobs-show": (("jobs", "show", "1", "--tenant", "acme"), None),
    "jobs-cancel": (("jobs", "cancel", "1", "--tenant", "acme"), None),
    "runs-list": (("runs", "list"), None),
    "runs-export": (("runs", "export", "--job", "1"), None),
    "replay": (("replay", "--job", "1"), None),
    "worker": (("worker", "--exit-when-idle"), EXAMPLES),
}


def _run(cli: Cli, name: str, url: str, env: dict[str, str] | None = None) -> tuple[Run, float]:
    args, cwd = COMMANDS[name]
    began = time.monotonic()
    result = cli(*args, "--database-url", url, env=env, cwd=cwd)
    return result, time.monotonic() - began


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_command_on_a_database_without_the_schema_says_migrate(
    cli: Cli, empty: str, name: str
) -> None:
    result, _ = _run(cli, name, empty)
    line = _one_error_line(result)
    assert result.out == ""
    database = conninfo_to_dict(empty)["dbname"]
    assert f"/{database} (--database-url) has no jobforge schema" in line
    assert f"({len(SHIPPED)} migrations pending)" in line
    assert "run `jobforge migrate --database-url URL` with the same URL" in line


@pytest.mark.parametrize("name", ["jobs-list", "worker"])
def test_a_partly_migrated_database_names_the_pending_migrations(
    cli: Cli, partly: str, name: str
) -> None:
    line = _one_error_line(_run(cli, name, partly)[0])
    pending = ", ".join(m.name for m in SHIPPED[-2:])
    assert f"is not up to date: 2 of {len(SHIPPED)} migrations pending ({pending})" in line
    assert "jobforge migrate --database-url" in line


def test_the_fix_follows_where_the_url_came_from(cli: Cli, empty: str) -> None:
    result = cli("jobs", "list", "--tenant", "acme", env={"JOBFORGE_DATABASE_URL": empty})
    line = _one_error_line(result)
    assert "(JOBFORGE_DATABASE_URL) has no jobforge schema" in line
    assert "run `jobforge migrate` (it migrates $JOBFORGE_DATABASE_URL)" in line
    assert cli("migrate", env={"JOBFORGE_DATABASE_URL": empty}).code == 0
    after = cli("jobs", "list", "--tenant", "acme", env={"JOBFORGE_DATABASE_URL": empty})
    assert after.code == 0, after


def test_doctor_fails_when_migrations_are_pending_and_says_what_to_run(
    cli: Cli, empty: str
) -> None:
    result = cli("doctor", "--database-url", empty)
    assert result.code == 1, result  # doctor: a check failed
    assert "all good" not in result.out
    assert "problems found" in result.out
    failed = [line for line in result.out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1, result.out
    assert f"0 applied, {len(SHIPPED)} pending" in failed[0]
    assert "run `jobforge migrate --database-url URL` with the same URL" in failed[0]


UNREACHABLE = "postgresql://someone:s3cret-pw@127.0.0.1:1/x"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_an_unreachable_server_is_one_line_within_seconds(cli: Cli, name: str) -> None:
    result, seconds = _run(cli, name, UNREACHABLE)
    line = _one_error_line(result)
    assert seconds < 5, f"{seconds:.1f} s"  # the acceptance bound, not a benchmark
    assert "cannot connect to Postgres at 127.0.0.1:1/x" in line
    assert "Connection refused" in line
    assert "(URL from --database-url)" in line
    assert "s3cret-pw" not in line


def test_an_unreachable_server_names_the_variable_the_url_came_from(cli: Cli) -> None:
    result = cli("runs", "list", env={"JOBFORGE_DATABASE_URL": UNREACHABLE})
    line = _one_error_line(result)
    assert "127.0.0.1:1/x" in line
    assert "(URL from JOBFORGE_DATABASE_URL)" in line


def test_db_start_migrates_and_bad_credentials_are_one_line(cli: Cli) -> None:
    started = cli("db", "start")
    assert started.code == 0, started
    assert f"schema: migrated, applied {len(SHIPPED)} migrations" in started.out
    again = cli("db", "start")
    assert f"schema: up to date (latest {SHIPPED[-1].name})" in again.out

    listed = cli("jobs", "list", "--tenant", "acme")  # no `jobforge migrate` needed
    assert listed.code == 0, listed
    url = cli("db", "url").out.strip()
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT name FROM jobforge.schema_migrations ORDER BY version")
        assert [name for (name,) in rows] == [m.name for m in SHIPPED]

    parts = conninfo_to_dict(url)
    where = f"127.0.0.1:{parts['port']}"
    wrong = make_conninfo(url, password="not-the-password")
    line = _one_error_line(cli("jobs", "list", "--tenant", "acme", "--database-url", wrong))
    assert f"cannot connect to Postgres at {where}/postgres" in line
    assert 'password authentication failed for user "postgres"' in line
    assert "not-the-password" not in line
    assert str(parts["password"]) not in line

    missing = make_conninfo(url, dbname="nope")
    line = _one_error_line(cli("runs", "list", "--database-url", missing))
    assert f"cannot connect to Postgres at {where}/nope" in line
    assert 'database "nope" does not exist' in line
    assert str(parts["password"]) not in line


@pytest.fixture
def bare_login(jobforge_server: Server) -> Iterator[str]:
    """A login with no jobforge role at all (roles are cluster-wide); its URL without a database."""
    name = f"jf_bare_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(jobforge_server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN')
    yield name
    with psycopg.connect(jobforge_server.dsn, autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def test_a_login_that_may_not_read_the_migrations_is_one_line(
    cli: Cli, jobforge_server: Server, bare_login: str
) -> None:
    """A login never granted jobforge_app, or an app login on a schema from before 0009 (which
    grants the read): one line saying what to grant or run, never a permission traceback."""
    for dsn in _database(jobforge_server, SHIPPED):
        as_bare = make_conninfo(dsn, user=bare_login)
        line = _one_error_line(cli("jobs", "list", "--tenant", "acme", "--database-url", as_bare))
        assert "may not read jobforge.schema_migrations" in line
        assert "grant it jobforge_app or jobforge_worker" in line
        with psycopg.connect(dsn, autocommit=True) as conn:  # as before migration 0009
            conn.execute(f'GRANT jobforge_app TO "{bare_login}"')
            conn.execute("REVOKE SELECT ON jobforge.schema_migrations FROM jobforge_app")
        line = _one_error_line(cli("runs", "list", "--tenant", "acme", "--database-url", as_bare))
        assert "run `jobforge migrate --database-url URL` with the same URL as the schema's" in line
