"""`schema.sql`: jobforge's whole current schema in one file, dumped from a fresh database.

The migrations are the truth a database is built from, but they only say what changed: the live
`claim_v1` is the one 0004 wrote over 0003's, and a reader had to replay every file in order to
know it. `schema.sql` at the repository root holds the result instead: `pg_dump --schema-only
--no-owner` of a freshly migrated throwaway database (tables, indexes, constraints, functions,
triggers, row-level security and grants), headed by the server-wide roles it grants to, with
everything that varies between runs and PostgreSQL versions taken out (session `SET`s, pg_dump's
`\\restrict` keys, version lines). Databases never load it: it is for reading.

It lives in provision because it starts a throwaway server, and pg_dump comes from where
`binaries` finds initdb (the first of its directories whose pg_dump can read the server: one
never older than the server's major). Regenerate the checked-in file with
`python -m jobforge.provision.schema_dump --write`; without `--write` it only checks, and
tests/integration/test_schema_file.py fails when the file is stale. `jobforge db schema` prints it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobforge import db, errors, migrate
from jobforge.provision import binaries
from jobforge.provision.choose import provide_server
from jobforge.provision.databases import scratch_name

#: The schema every jobforge object lives in; the dump covers it alone, so whatever a scratch
#: server's template1 carries (an extension, a table) never reaches the file.
SCHEMA = "jobforge"
FILE_NAME = "schema.sql"
#: How to refresh the checked-in file: what a stale-file failure tells the reader to run.
REFRESH = "python -m jobforge.provision.schema_dump --write"
PG_DUMP_TIMEOUT_S = 300.0

_DUMP_TITLE = re.compile(r"^--\n-- PostgreSQL database dump(?: complete)?\n--\n", re.MULTILINE)
#: Lines of pg_dump's output that are not schema: session settings (the preamble, and the
#: `default_tablespace`/`default_table_access_method` ones before tables), the `\restrict` pair
#: with its random key (pg_dump releases since August 2025), and which versions dumped it.
_NOT_SCHEMA = re.compile(
    r"^(?:SET [a-z_]+ = .*;"
    r"|SELECT pg_catalog\.set_config\(.*\);"
    r"|\\(?:un)?restrict .*"
    r"|-- Dumped (?:from database|by pg_dump) version .*)$"
)
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


@dataclass(frozen=True, slots=True)
class PgDump:
    """A pg_dump executable and the major version it reports."""

    path: str
    major: int
    version: str


def _version(executable: str) -> str | None:
    try:
        out = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\d+(?:\.\d+)?", out)
    return match.group(0) if match else None


def _executables() -> Iterator[str]:
    """Every pg_dump to consider, in `binaries`' order of preference, then the one on PATH."""
    seen: set[str] = set()
    found = [str(directory / "pg_dump") for directory, _ in binaries.candidates()]
    if on_path := shutil.which("pg_dump"):
        found.append(on_path)
    for path in found:
        if path not in seen and os.access(path, os.X_OK):
            seen.add(path)
            yield path


def find_pg_dump(server_major: int) -> PgDump:
    """The first pg_dump that can dump a server of `server_major` (pg_dump refuses newer servers).
    `ProvisionError` saying where it looked when there is none."""
    looked: list[str] = []
    for path in _executables():
        version = _version(path)
        if version is None:
            continue
        major = int(version.split(".")[0])
        if major >= server_major:
            return PgDump(path, major, version)
        looked.append(f"{path} ({version})")
    where = ", ".join(looked) or f"none beside initdb ({binaries.where_we_looked()}) or on PATH"
    raise errors.ProvisionError(
        f"no pg_dump of PostgreSQL {server_major} or newer was found to dump the schema with "
        f"(found: {where}); install that version's client tools, point JOBFORGE_PG_BINDIR at "
        "them, or use a server no newer than your pg_dump (`--provider local`)"
    )


def _dollar_tag_after(line: str, tag: str | None) -> str | None:
    """The dollar-quote tag still open at the end of `line`, given the one open before it."""
    position = 0
    while True:
        if tag is None:
            match = _DOLLAR_TAG.search(line, position)
            if match is None:
                return None
            tag, position = match.group(0), match.end()
        else:
            end = line.find(tag, position)
            if end < 0:
                return tag
            position = end + len(tag)
            tag = None


def normalise(text: str) -> str:
    """pg_dump's output with what varies between runs and versions taken out: the title and
    version comments, session settings and `\\restrict` lines, and runs of more than two blank
    lines this leaves. Function bodies (dollar-quoted) are kept byte for byte."""
    text = _DUMP_TITLE.sub("", text.replace("\r\n", "\n"))
    kept: list[str] = []
    tag: str | None = None
    for line in text.split("\n"):
        if tag is None:
            if _NOT_SCHEMA.match(line):
                continue
            if not line.strip() and (not kept or kept[-2:] == ["", ""]):
                continue
        kept.append(line)
        tag = _dollar_tag_after(line, tag)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept) + "\n"


def _role_statements(conn: db.Connection) -> list[str]:
    rows = db.execute(conn, "schema_dump_roles", {"schema": SCHEMA}).fetchall()
    statements = []
    memberships = []
    for name, login, superuser, createdb, createrole, inherit, bypassrls, member_of in rows:
        attributes = ["LOGIN" if login else "NOLOGIN"]
        attributes += [word for word, on in (("SUPERUSER", superuser), ("CREATEDB", createdb),
                       ("CREATEROLE", createrole), ("NOINHERIT", not inherit),
                       ("BYPASSRLS", bypassrls)) if on]  # fmt: skip
        statements.append(f"CREATE ROLE {name} {' '.join(attributes)};")
        memberships += [f"GRANT {group} TO {name};" for group in member_of]
    return statements + memberships


def _roles_section(conn: db.Connection) -> str:
    statements = _role_statements(conn)
    if not statements:
        return ""
    return (
        "--\n"
        "-- Roles: server-wide, so a database's dump leaves them out. These are the ones\n"
        "-- the schema grants to; the migrations create them when missing.\n"
        "--\n\n" + "\n".join(statements) + "\n\n\n"
    )


def header(migrations: Iterable[migrate.Migration] | None = None) -> str:
    files = list(migrate.discover() if migrations is None else migrations)
    latest = files[-1].name if files else "(no migrations)"
    return (
        "-- jobforge's database schema as every migration up to and including\n"
        f"-- migrations/{latest} leaves it: `pg_dump --schema-only --no-owner`\n"
        f"-- of the {SCHEMA} schema of a freshly migrated database, without session settings or\n"
        "-- version lines. Rows the migrations insert (job_transitions, settings) are data, not\n"
        "-- shown here.\n"
        "--\n"
        "-- Generated, do not edit: databases are built by the migrations (`jobforge migrate`),\n"
        "-- never from this file, which is for reading the live definitions in one place.\n"
        f"-- Refresh it with `{REFRESH}`.\n\n"
    )


def invocation(pg_dump: PgDump, dsn: str) -> tuple[list[str], dict[str, str]]:
    """pg_dump's arguments and environment for the database at `dsn`: its password goes in the
    environment, never on a command line that `ps` shows."""
    params = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    env = dict(os.environ)
    if (password := params.pop("password", None)) is not None:
        env["PGPASSWORD"] = password
    argv = [pg_dump.path, "--schema-only", "--no-owner", "--no-tablespaces",
            f"--schema={SCHEMA}", f"--dbname={make_conninfo(**params)}"]  # fmt: skip
    return argv, env


def dump(dsn: str, migrations: Iterable[migrate.Migration] | None = None) -> str:
    """The text of `schema.sql` for the migrated database at `dsn`: header, roles, pg_dump."""
    with db.connect(dsn) as conn:
        pg_dump = find_pg_dump(int(db.scalar(conn, "server_version_num")) // 10000)
        roles = _roles_section(conn)
    argv, env = invocation(pg_dump, dsn)
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=PG_DUMP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise errors.ProvisionError(f"cannot run {pg_dump.path}: {exc}") from None
    if result.returncode != 0:
        reason = db.scrub(" ".join(result.stderr.split()), dsn) or f"exit {result.returncode}"
        raise errors.ProvisionError(f"{pg_dump.path} failed on {db.describe(dsn)}: {reason}")
    return header(migrations) + roles + normalise(result.stdout)


def generate(
    *, provider: str | None = None, migrations: Iterable[migrate.Migration] | None = None
) -> str:
    """`schema.sql` from a database made and migrated for it on a throwaway server, then dropped."""
    files = list(migrate.discover() if migrations is None else migrations)
    server = provide_server(provider=provider)
    try:
        name = scratch_name()
        with db.connect(server.dsn) as conn:
            db.execute_ddl(conn, "database_create", db=name)
        try:
            dsn = db.with_dbname(server.dsn, name)
            migrate.migrate(dsn, files)
            return dump(dsn, files)
        finally:
            with db.connect(server.dsn) as conn:
                db.execute_ddl(conn, "database_drop", db=name)
    finally:
        server.stop()


def checked_in() -> Path:
    """`schema.sql` of the source checkout this jobforge runs from (beside `migrations/`)."""
    root = Path(str(resources.files("jobforge"))).parent
    if not ((root / "migrations").is_dir() and (root / "pyproject.toml").is_file()):
        raise errors.ConfigurationError(
            f"jobforge runs from {root}, not from a source checkout: there is no checked-in "
            f"{FILE_NAME} to check or write (`jobforge db schema` prints the schema)"
        )
    return root / FILE_NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobforge.provision.schema_dump",
        description="Check (or with --write, rewrite) the checked-in schema.sql against a "
        "freshly migrated throwaway database.",
    )
    parser.add_argument("--write", action="store_true", help=f"rewrite {FILE_NAME}")
    parser.add_argument(
        "--provider", default=None, help="where the throwaway Postgres comes from: "
        "auto, url, docker, local (default: $JOBFORGE_PROVIDER, else auto)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        path = checked_in()
        text = generate(provider=args.provider)
    except errors.JobforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.write:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {FILE_NAME}")
        return 0
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        print(f"stale: {FILE_NAME} (refresh it with `{REFRESH}`)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
