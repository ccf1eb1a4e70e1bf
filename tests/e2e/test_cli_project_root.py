"""From a subfolder of a project the CLI finds the project's development server: `db
start|stop|status|url` and the commands that fall back on it act on the one at the nearest folder
up that has [tool.jobforge] in its pyproject.toml or this user's running dev server, never a
second server inside the subfolder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobforge.provision import devserver
from tests.e2e.conftest import Cli, server_state

pytestmark = pytest.mark.slow


def test_a_runner_repositorys_subfolder_uses_the_server_at_its_root(
    cli: Cli, project: Path
) -> None:
    (project / "pyproject.toml").write_text("[tool.jobforge]\nrunners = []\n")
    package = project / "runners"
    package.mkdir()

    started = cli("db", "start", cwd=package)
    assert started.code == 0, started.err
    assert not (package / ".jobforge").exists()  # not a second server inside the package
    assert f"data in {project.resolve() / '.jobforge' / 'pgdata'}" in started.out
    pid = server_state(project)["pid"]

    listed = cli("jobs", "list", "--tenant", "acme", cwd=package)
    assert listed.code == 0, listed.err
    migrated = cli("migrate", cwd=package)
    assert f"the development server ({project.resolve()}/.jobforge/)" in migrated.out

    again = cli("db", "start", cwd=package)
    assert "already running" in again.out
    assert f"pid {pid}" in again.out
    status = cli("db", "status", cwd=package)
    assert status.code == 0, status.out
    assert cli("db", "url", cwd=package).out == cli("db", "url").out
    assert cli("db", "stop", cwd=package).code == 0
    assert cli("db", "status").code == 1
    assert not (package / ".jobforge").exists()


def test_a_running_server_is_found_from_a_subfolder(cli: Cli, project: Path) -> None:
    assert cli("db", "start").code == 0  # a plain folder: no pyproject.toml
    sub = project / "scripts" / "deep"
    sub.mkdir(parents=True)
    url = cli("db", "url").out
    assert cli("db", "url", cwd=sub).out == url
    assert cli("jobs", "list", "--tenant", "acme", cwd=sub).code == 0
    assert cli("db", "stop", cwd=sub).code == 0
    assert cli("db", "status").code == 1
    assert not (sub / ".jobforge").exists()


def test_a_state_file_above_is_never_taken_without_this_users_record(tmp_path: Path) -> None:
    planted = tmp_path / ".jobforge"
    planted.mkdir()
    (planted / "server.json").write_text(json.dumps({"pid": 1, "port": 5432}))
    sub = tmp_path / "work"
    sub.mkdir()
    assert devserver.find_project(sub) == sub.resolve()
    assert (planted / "server.json").exists()  # not even looked at
    (tmp_path / "pyproject.toml").write_text("[tool.jobforge]\n")
    assert devserver.find_project(sub) == tmp_path.resolve()
