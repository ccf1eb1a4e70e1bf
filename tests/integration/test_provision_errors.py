"""Provisioning failures a user can meet, each a clear `ProvisionError` naming its cause."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from jobforge import db, errors, migrate
from jobforge.provision import Server, Template, binaries, docker, osuser
from jobforge.provision.local import start_local

FAKE_VERSION = (
    "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'postgres (PostgreSQL) 15.99'; exit 0; fi\n"
)


def _script(path: Path, body: str) -> None:
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def fake_bindir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A bindir the server's OS user can run (tmp_path may be 0700), and a fresh cluster cache."""
    bindir = Path(tempfile.mkdtemp(prefix="jf-fakebin-"))
    bindir.chmod(0o755)
    monkeypatch.setenv("JOBFORGE_CACHE_DIR", str(tmp_path / "cache"))
    yield bindir
    shutil.rmtree(bindir, ignore_errors=True)


def test_a_failing_initdb_is_reported_with_its_output(fake_bindir: Path) -> None:
    _script(fake_bindir / "initdb", "#!/bin/sh\necho 'initdb: error: disk on fire' >&2\nexit 1\n")
    _script(fake_bindir / "postgres", FAKE_VERSION + "exit 1\n")
    found = binaries.find([str(fake_bindir)])
    assert found is not None
    assert found.version == "15.99"
    with pytest.raises(errors.ProvisionError, match=r"initdb .* failed .*disk on fire"):
        start_local(found, osuser.server_user())


def test_a_server_that_dies_at_start_is_reported_with_its_log(fake_bindir: Path) -> None:
    _script(fake_bindir / "initdb", '#!/bin/sh\nmkdir -p "$2" && echo 15 > "$2/PG_VERSION"\n')
    _script(
        fake_bindir / "postgres", FAKE_VERSION + "echo 'FATAL:  shared memory is gone'\nexit 3\n"
    )
    found = binaries.find([str(fake_bindir)])
    assert found is not None
    with pytest.raises(errors.ProvisionError, match=r"exited with code 3.*shared memory is gone"):
        start_local(found, osuser.server_user())


@pytest.fixture
def role_without_createdb(jobforge_server: Server) -> Iterator[str]:
    with db.connect(jobforge_server.dsn) as conn:
        conn.execute("DROP ROLE IF EXISTS jf_no_createdb")
        conn.execute("CREATE ROLE jf_no_createdb LOGIN NOCREATEDB")
    info = psycopg.conninfo.conninfo_to_dict(jobforge_server.dsn)
    info["user"] = "jf_no_createdb"
    yield psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})
    with db.connect(jobforge_server.dsn) as conn:
        conn.execute("DROP ROLE jf_no_createdb")


def test_a_role_without_createdb_is_told_so(role_without_createdb: str, tmp_path: Path) -> None:
    # Migrations of its own, so no other test has built this template already.
    (tmp_path / "0001_unique.sql").write_text(f"-- {tmp_path}\nSELECT 1;")
    with pytest.raises(errors.ProvisionError, match="needs CREATEDB"):
        Template(role_without_createdb, migrate.discover(tmp_path)).ensure()


def test_a_docker_engine_that_cannot_start_the_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # the probe passed; the start fails
    with pytest.raises(errors.ProvisionError, match=r"starting postgres:16-alpine failed"):
        docker.start_docker()


def test_a_missing_migrations_directory(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="does not exist"):
        migrate.discover(tmp_path / "nope")


@pytest.mark.skipif(os.geteuid() != 0, reason="the root path needs root")
def test_root_prefers_the_postgres_user_and_honours_the_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOBFORGE_SERVER_USER", "nobody")
    assert osuser.server_user().name == "nobody"
    monkeypatch.delenv("JOBFORGE_SERVER_USER")
    assert osuser.server_user().uid != 0
