"""The URL path, template databases, clone isolation and the clone pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobforge import db, errors, migrate
from jobforge.provision import ClonePool, Server, Template, provide_server
from jobforge.provision.external import ExternalServer


def _databases(server: Server) -> set[str]:
    with db.connect(server.dsn) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()}


def test_a_url_is_used_as_is_and_scratch_databases_are_created_in_it(
    jobforge_server: Server,
) -> None:
    server = provide_server(database_url=jobforge_server.dsn)
    assert isinstance(server, ExternalServer)
    assert server.origin == "url"
    template = Template(server.dsn).ensure()
    clone = template.create()
    assert clone.name in _databases(server)
    template.drop(clone)
    assert clone.name not in _databases(server)
    server.stop()  # a no-op: not ours


def test_an_unreachable_url_names_host_and_port() -> None:
    with pytest.raises(errors.DatabaseUnreachable, match=r"127\.0\.0\.1:1/x"):
        provide_server(database_url="postgresql://u@127.0.0.1:1/x")


def test_a_malformed_url_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigurationError, match="invalid database URL"):
        provide_server(database_url="nonsense ===")


def test_template_is_built_once_and_shared(jobforge_server: Server) -> None:
    first = Template(jobforge_server.dsn).ensure()
    second = Template(jobforge_server.dsn).ensure()
    assert first.name == second.name
    assert sum(name.startswith(first.name) for name in _databases(jobforge_server)) == 1


def test_a_failing_migration_leaves_no_template_behind(
    jobforge_server: Server, tmp_path: Path
) -> None:
    (tmp_path / "0001_bad.sql").write_text("CREATE TABLE oops (;")
    template = Template(jobforge_server.dsn, migrate.discover(tmp_path))
    with pytest.raises(errors.MigrationError, match=r"0001_bad\.sql, line 1"):
        template.ensure()
    assert not any(name.startswith(template.name) for name in _databases(jobforge_server))


def test_clones_are_isolated(jobforge_template: Template) -> None:
    one, two = jobforge_template.create(), jobforge_template.create()
    try:
        with one.connect() as conn:
            conn.execute("CREATE TABLE public.mine (x int)")
        with two.connect() as conn:
            assert conn.execute("SELECT to_regclass('public.mine')").fetchone() == (None,)
    finally:
        jobforge_template.drop(one)
        jobforge_template.drop(two)


def test_the_pool_hands_out_fresh_databases_and_drops_them(jobforge_server: Server) -> None:
    template = Template(jobforge_server.dsn).ensure()
    pool = ClonePool(template, ahead=2)
    seen = []
    for _ in range(4):
        database = pool.acquire()
        seen.append(database.name)
        with database.connect() as conn:
            assert conn.execute("SELECT to_regclass('public.leftover')").fetchone() == (None,)
            conn.execute("CREATE TABLE public.leftover (x int)")
        pool.release(database)
    pool.close()
    assert len(set(seen)) == 4
    assert not set(seen) & _databases(jobforge_server)


def test_first_of_two_tests_writes(jobforge_conn: db.Connection) -> None:
    jobforge_conn.execute("CREATE TABLE public.written_by_first (x int)")


def test_second_of_two_tests_does_not_see_it(jobforge_conn: db.Connection) -> None:
    assert jobforge_conn.execute("SELECT to_regclass('public.written_by_first')").fetchone() == (
        None,
    )


def test_rolled_back_fixture_first(jobforge_tx: db.Connection) -> None:
    jobforge_tx.execute("CREATE TABLE public.in_tx (x int)")


def test_rolled_back_fixture_second(jobforge_tx: db.Connection) -> None:
    assert jobforge_tx.execute("SELECT to_regclass('public.in_tx')").fetchone() == (None,)


def test_rolled_back_fixture_refuses_commit(jobforge_tx: db.Connection) -> None:
    with pytest.raises(Exception, match="commit"):
        jobforge_tx.commit()
