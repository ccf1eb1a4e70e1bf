"""Running the `jobforge` CLI as a subprocess, and dev servers that never outlive a test."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge.provision import Database


@dataclass
class Run:
    code: int
    out: str
    err: str


Cli = Callable[..., Run]


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFORGE_")}
    env["COLUMNS"] = "200"  # rich wraps long lines at the terminal width
    env.update(extra or {})
    return env


@pytest.fixture
def project() -> Iterator[Path]:
    """A project directory the server's OS user can reach (pytest's tmp_path may be 0700)."""
    path = Path(tempfile.mkdtemp(prefix="jf-e2e-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cli(project: Path) -> Iterator[Cli]:
    """Run `jobforge ARGS` in `project`; dev servers started there are stopped and deleted after."""

    started_elsewhere: list[Path] = []

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
        if cwd is not None and args[:2] == ("db", "start"):
            started_elsewhere.append(cwd / ".jobforge" / "server.json")
        result = subprocess.run(
            [sys.executable, "-m", "jobforge.cli.app", *args],
            cwd=cwd or project, env=_env(env), capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert "Traceback" not in result.stderr, result.stderr
        return Run(result.returncode, result.stdout, result.stderr)

    yield run
    for state in [*project.rglob(".jobforge/server.json"), *started_elsewhere]:
        try:
            data_dir: Path | None = Path(json.loads(state.read_text())["data_dir"])
        except (OSError, ValueError, KeyError):
            data_dir = None
        run("db", "stop", cwd=state.parent.parent)
        if data_dir is not None and not data_dir.is_relative_to(state.parent.parent):
            shutil.rmtree(data_dir.parent, ignore_errors=True)


def server_state(project: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((project / ".jobforge" / "server.json").read_text())
    return data


@pytest.fixture
def app_login(jobforge_db: Database) -> Iterator[str]:
    """The URL of a fresh login that is a member of jobforge_app only (roles are cluster-wide)."""
    name = f"jf_cli_app_{secrets.token_hex(4)}"
    with jobforge_db.connect() as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_app").format(sql.Identifier(name))
        )
    yield make_conninfo(jobforge_db.dsn, user=name)
    with jobforge_db.connect() as admin:
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
