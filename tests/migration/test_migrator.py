"""The migrator against a real server: apply, idempotence, checksum refusal, errors, concurrency."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge import db, errors, migrate
from jobforge.provision import Database, Server, Template


@pytest.fixture
def empty_db(jobforge_server: Server) -> Iterator[Database]:
    """A brand-new database with no migrations applied."""
    template = Template(jobforge_server.dsn, [])
    database = template.ensure().create()
    yield database
    template.drop(database)


def _files(folder: Path, files: dict[str, str]) -> list[migrate.Migration]:
    for name, body in files.items():
        (folder / name).write_text(body)
    return migrate.discover(folder)


def _applied(database: Database) -> list[tuple[int, str]]:
    with database.connect() as conn:
        return conn.execute(
            "SELECT version, name FROM jobforge.schema_migrations ORDER BY 1"
        ).fetchall()


def test_applies_in_order_then_does_nothing(empty_db: Database, tmp_path: Path) -> None:
    files = _files(tmp_path, {
        "0001_a.sql": "CREATE TABLE public.a (x int);",
        "0002_b.sql": "ALTER TABLE public.a ADD COLUMN y int;",
    })  # fmt: skip
    assert [m.name for m in migrate.migrate(empty_db.dsn, files)] == ["0001_a.sql", "0002_b.sql"]
    assert migrate.migrate(empty_db.dsn, files) == []
    assert _applied(empty_db) == [(1, "0001_a.sql"), (2, "0002_b.sql")]


def test_the_shipped_migrations_apply(jobforge_conn: db.Connection) -> None:
    state = migrate.status(jobforge_conn)
    assert state.up_to_date
    assert [a.name for a in state.applied] == [m.name for m in migrate.discover()]


def test_a_changed_applied_file_is_refused_by_name(empty_db: Database, tmp_path: Path) -> None:
    migrate.migrate(
        empty_db.dsn, _files(tmp_path, {"0001_a.sql": "CREATE TABLE public.a (x int);"})
    )
    changed = _files(tmp_path, {"0001_a.sql": "CREATE TABLE public.a (x bigint);"})
    with pytest.raises(errors.MigrationChecksumMismatch, match=r"0001_a\.sql"):
        migrate.migrate(empty_db.dsn, changed)


def test_an_applied_migration_without_file_is_refused(empty_db: Database, tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    migrate.migrate(empty_db.dsn, _files(tmp_path / "two", {
        "0001_a.sql": "SELECT 1;", "0002_b.sql": "SELECT 2;",
    }))  # fmt: skip
    with pytest.raises(errors.MigrationError, match=r"0002_b\.sql.*no such file"):
        migrate.migrate(empty_db.dsn, _files(tmp_path / "one", {"0001_a.sql": "SELECT 1;"}))


def test_a_syntax_error_names_file_and_line_and_is_rolled_back(
    empty_db: Database, tmp_path: Path
) -> None:
    files = _files(tmp_path, {
        "0001_ok.sql": "CREATE TABLE public.ok (x int);",
        "0002_bad.sql": "CREATE TABLE public.half (x int);\n\n-- comment\n"
                        "CREATE TABLE public.oops (x int,,);\n",
    })  # fmt: skip
    with pytest.raises(errors.MigrationError) as info:
        migrate.migrate(empty_db.dsn, files)
    assert "0002_bad.sql, line 4" in str(info.value)
    assert "syntax error" in str(info.value)
    assert _applied(empty_db) == [(1, "0001_ok.sql")]
    with empty_db.connect() as conn:
        assert conn.execute("SELECT to_regclass('public.half')").fetchone() == (None,)


def test_a_runtime_error_without_position_still_names_the_line(
    empty_db: Database, tmp_path: Path
) -> None:
    files = _files(tmp_path, {
        "0001_div.sql": "CREATE TABLE public.t (x int);\nINSERT INTO public.t VALUES (1);\n"
                        "INSERT INTO public.t SELECT 1 / 0;\n",
    })  # fmt: skip
    with pytest.raises(errors.MigrationError, match=r"0001_div.sql, line 3: division by zero"):
        migrate.migrate(empty_db.dsn, files)
    with empty_db.connect() as conn:
        assert conn.execute("SELECT to_regclass('public.t')").fetchone() == (None,)


def test_an_error_in_a_function_body_names_its_line(empty_db: Database, tmp_path: Path) -> None:
    body = (
        "CREATE FUNCTION public.f() RETURNS int LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "  RETURN 1 +;\n"
        "END $$;\n"
    )
    with pytest.raises(errors.MigrationError, match=r"0001_fn.sql, line 3"):
        migrate.migrate(empty_db.dsn, _files(tmp_path, {"0001_fn.sql": body}))


def test_concurrent_migrators_apply_each_file_once(empty_db: Database, tmp_path: Path) -> None:
    files = _files(tmp_path, {
        "0001_slow.sql": "SELECT pg_sleep(0.3); CREATE TABLE public.once (x int);",
        "0002_next.sql": "INSERT INTO public.once VALUES (1);",
    })  # fmt: skip
    results: list[list[str]] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            results.append([m.name for m in migrate.migrate(empty_db.dsn, files)])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(results) == [[], [], ["0001_slow.sql", "0002_next.sql"]]
    with empty_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.once").fetchone() == (1,)


def test_unreachable_database_names_host_and_port() -> None:
    with pytest.raises(errors.DatabaseUnreachable, match=r"127\.0\.0\.1:1"):
        migrate.migrate("postgresql://u@127.0.0.1:1/x")


MIGRATE_IN_A_PROCESS = """
import json, sys
from jobforge import migrate
applied = migrate.migrate(sys.argv[1], migrate.discover(sys.argv[2]))
print(json.dumps([m.name for m in applied]))
"""


def test_two_migrate_processes_at_once(empty_db: Database, tmp_path: Path) -> None:
    _files(tmp_path, {
        "0001_slow.sql": "SELECT pg_sleep(0.5); CREATE TABLE public.once (x int);",
        "0002_next.sql": "INSERT INTO public.once VALUES (1);",
    })  # fmt: skip
    command = [sys.executable, "-c", MIGRATE_IN_A_PROCESS, empty_db.dsn, str(tmp_path)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = sorted(json.loads(p.communicate(timeout=60)[0]) for p in procs)
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs == [[], ["0001_slow.sql", "0002_next.sql"]]
    with empty_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.once").fetchone() == (1,)


def test_a_function_planted_in_public_does_not_run_as_the_migrating_role(
    empty_db: Database,
) -> None:
    """The CVE-2018-1058 pattern against `jobforge migrate`: a low-privilege role that may
    create in `public` plants `format(text, text)` (a better match than pg_catalog's variadic
    one for the migrations' `format('CREATE POLICY … %I', t)`); whoever migrates must not run
    it. The migrator resolves everything in pg_catalog."""
    suffix = secrets.token_hex(4)
    evil = f"jf_planter_{suffix}"
    with empty_db.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(evil)))
        admin.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(
            sql.Identifier(evil)))  # fmt: skip
    try:
        with psycopg.connect(make_conninfo(empty_db.dsn, user=evil), autocommit=True) as conn:
            conn.execute(b"CREATE TABLE public.ran (who text)")
            conn.execute(
                "CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE plpgsql AS $$ "
                "BEGIN INSERT INTO public.ran VALUES (current_user); "
                "RETURN pg_catalog.format($1, $2); END $$"
            )
            conn.execute("GRANT INSERT ON public.ran TO PUBLIC")
        migrate.migrate(empty_db.dsn)
        with empty_db.connect() as admin:
            assert admin.execute("SELECT count(*) FROM public.ran").fetchone() == (0,)
    finally:
        with empty_db.connect() as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(evil)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(evil)))


def test_an_upgrade_with_history_keeps_it_until_a_retention_is_set(empty_db: Database) -> None:
    """0012 seeds the default retention at 30 days on a new database, but at forever on one that
    already holds jobs: an upgrade never deletes history nobody chose to delete."""
    shipped = migrate.discover()
    before = [m for m in shipped if m.version < 12]
    migrate.migrate(empty_db.dsn, before)
    with empty_db.connect() as conn:
        conn.execute("SELECT set_config('jobforge.tenant', 'acme', false)")
        conn.execute("SELECT jobforge.enqueue_v1(ARRAY['ops.old'], ARRAY['{}'::jsonb])")
    migrate.migrate(empty_db.dsn, shipped)
    with empty_db.connect() as conn:
        keep = conn.execute("SELECT keep FROM jobforge.retention WHERE type = '*'").fetchone()
    assert keep == (None,)


def test_a_new_database_prunes_after_thirty_days(jobforge_conn: db.Connection) -> None:
    keep = jobforge_conn.execute("SELECT keep FROM jobforge.retention WHERE type = '*'").fetchone()
    assert keep is not None
    assert keep[0].days == 30


def test_an_upgrade_gives_the_children_of_every_job_its_project(empty_db: Database) -> None:
    """0016 puts the job's project on its attempts, results, events and run records: 'default'
    for the jobs of before (the project could not be set), and the job's own for a job the owner
    had moved to another project."""
    shipped = migrate.discover()
    migrate.migrate(empty_db.dsn, [m for m in shipped if m.version < 16])
    with empty_db.connect() as conn:
        conn.execute("SELECT set_config('jobforge.tenant', 'acme', false), "
                     "set_config('jobforge.scope', 'worker', false)")  # fmt: skip
        ids = [r[0] for r in conn.execute(
            "SELECT job_id FROM jobforge.enqueue_v1(ARRAY['ops.old', 'ops.old'], "
            "ARRAY['{}'::jsonb, '{\"n\": 2}'::jsonb], ARRAY['k1', 'k2'])").fetchall()]  # fmt: skip
        conn.execute("UPDATE jobforge.jobs SET project = 'legacy' WHERE id = %s", (ids[1],))
        claimed = conn.execute("SELECT id, lease_token FROM jobforge.claim_v1('w', 10)").fetchall()
        conn.execute(
            "SELECT jobforge.finish_v1('w', %s, %s, ARRAY['succeeded', 'succeeded'], "
            "ARRAY['{}'::jsonb, '{}'::jsonb])",
            ([c[0] for c in claimed], [c[1] for c in claimed]),
        )
    migrate.migrate(empty_db.dsn, shipped)
    with empty_db.connect() as conn:
        for table in ("job_attempts", "job_results", "job_events"):
            rows = conn.execute(
                f"SELECT DISTINCT job_id, project FROM jobforge.{table} ORDER BY 1"
            ).fetchall()
            assert rows == [(ids[0], "default"), (ids[1], "legacy")], table
        # the keys of before stay unique per (tenant, project, type): nothing to repair
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'jobs_idempotency'"
        ).fetchone()
        assert index is not None
        assert "(tenant_id, project, type, idempotency_key)" in index[0]
