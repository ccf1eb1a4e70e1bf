"""What `schema.sql` keeps of pg_dump's output, and how pg_dump is chosen and called."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from jobforge import errors
from jobforge.provision import schema_dump

ROOT = Path(__file__).resolve().parents[2]

PG_DUMP_18 = """--
-- PostgreSQL database dump
--

\\restrict L6zwDoaDuAhT2a2phj6wRNib22g2gzqorYKUpcC6tCmNcTZ4xoHkXZ6kU5mczQz

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 18.6

SET statement_timeout = 0;
SET transaction_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
SET row_security = off;

--
-- Name: f(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.f() RETURNS void
    LANGUAGE sql
    AS $_$
SET lock_timeout = 0;



SELECT $1$x$1$;
$_$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: t; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.t (
    id integer
);


--
-- PostgreSQL database dump complete
--

\\unrestrict L6zwDoaDuAhT2a2phj6wRNib22g2gzqorYKUpcC6tCmNcTZ4xoHkXZ6kU5mczQz

"""

EXPECTED = """--
-- Name: f(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.f() RETURNS void
    LANGUAGE sql
    AS $_$
SET lock_timeout = 0;



SELECT $1$x$1$;
$_$;


--
-- Name: t; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.t (
    id integer
);
"""


def test_run_and_version_dependent_lines_go_and_function_bodies_stay_whole() -> None:
    assert schema_dump.normalise(PG_DUMP_18) == EXPECTED


def test_normalising_twice_changes_nothing() -> None:
    assert schema_dump.normalise(EXPECTED) == EXPECTED


def test_older_pg_dump_output_normalises_the_same() -> None:
    older = PG_DUMP_18.replace("SET transaction_timeout = 0;\n", "").replace("18.6", "15.18")
    older = "\n".join(line for line in older.split("\n") if "restrict" not in line)
    assert schema_dump.normalise(older) == EXPECTED


@pytest.mark.parametrize(
    ("line", "before", "after"),
    [
        ("    AS $$", None, "$$"),
        ("END $$;", "$$", None),
        ("SELECT $1 || $2;", "$_$", "$_$"),
        ("SELECT $1 || $2;", None, None),
        ("AS $_$ SELECT $$a$$ $_$;", None, None),
        ("$_$ AS $body$", "$_$", "$body$"),
    ],
)
def test_dollar_quotes_are_followed_across_lines(
    line: str, before: str | None, after: str | None
) -> None:
    assert schema_dump._dollar_tag_after(line, before) == after


@pytest.fixture
def old_pg_dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A pg_dump that says it is 14.2, the only one `find_pg_dump` may consider."""
    script = tmp_path / "pg_dump"
    script.write_text('#!/bin/sh\necho "pg_dump (PostgreSQL) 14.2"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(schema_dump, "_executables", lambda: iter([str(script)]))
    return str(script)


def test_a_pg_dump_as_new_as_the_server_is_chosen(old_pg_dump: str) -> None:
    found = schema_dump.find_pg_dump(14)
    assert (found.path, found.major, found.version) == (old_pg_dump, 14, "14.2")


def test_only_older_pg_dumps_is_an_error_naming_them(old_pg_dump: str) -> None:
    with pytest.raises(errors.ProvisionError, match="PostgreSQL 16 or newer") as info:
        schema_dump.find_pg_dump(16)
    assert f"{old_pg_dump} (14.2)" in str(info.value)


def test_the_password_travels_in_the_environment_not_on_the_command_line() -> None:
    pg_dump = schema_dump.PgDump("/opt/pg/bin/pg_dump", 16, "16.4")
    argv, env = schema_dump.invocation(
        pg_dump, "postgresql://jf:s3cret-pass@db.example:5433/scratch?sslmode=require"
    )
    assert env["PGPASSWORD"] == "s3cret-pass"
    assert not any("s3cret" in arg for arg in argv)
    assert argv[0] == pg_dump.path
    assert {"--schema-only", "--no-owner", "--schema=jobforge"} <= set(argv)
    dbname = next(arg for arg in argv if arg.startswith("--dbname="))
    for part in ("host=db.example", "port=5433", "dbname=scratch", "user=jf", "sslmode=require"):
        assert part in dbname


def test_the_checked_in_file_is_at_the_repository_root_beside_the_migrations() -> None:
    assert schema_dump.checked_in() == ROOT / "schema.sql"
    assert schema_dump.checked_in().is_file()
    assert "`python -m jobforge.provision.schema_dump --write`" in schema_dump.header()
