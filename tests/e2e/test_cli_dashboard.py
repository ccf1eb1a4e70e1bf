"""`jobforge dashboard` as a user runs it: one line and exit 2 for each mistake, one line naming
the extra when the web stack is missing, and a served dashboard that answers on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from jobforge.provision import Database
from tests.e2e.conftest import Cli, Run


def _one_line(result: Run, text: str) -> None:
    assert result.code == 2, (result.code, result.err)
    assert result.err.startswith("error: "), result.err
    assert result.err.count("\n") == 1, result.err
    assert text in result.err, result.err


def test_mistakes_are_one_line(cli: Cli, jobforge_db: Database, project: Path) -> None:
    env = {"JOBFORGE_DATABASE_URL": jobforge_db.dsn}
    _one_line(cli("dashboard", env=env), "say whose dashboard this is")
    _one_line(cli("dashboard", "--tenant", "a b", env=env), "is not a tenant id")
    _one_line(cli("dashboard", "--tokens", "nowhere.json", env=env), "no such file")
    (project / "t.json").write_text('{"tokens": [{"sha256": "x"}]}')
    _one_line(cli("dashboard", "--tokens", "t.json", env=env), "sha256 must be")
    _one_line(cli("dashboard", "--tokens", "t.json", "--tenant", "acme", env=env),
              "leave out --tenant")  # fmt: skip
    _one_line(cli("dashboard", "--tenant", "acme", "--actor-header", "X User", env=env),
              "is not a header name")  # fmt: skip


def test_without_the_web_stack_says_which_extra(cli: Cli, project: Path) -> None:
    """A core install has no Starlette: the command names the extra to install."""
    hide = project / "sitecustomize.py"
    hide.write_text("import sys\nsys.modules['starlette'] = None\n")
    result = cli("dashboard", "--tenant", "acme",
                 env={"PYTHONPATH": os.pathsep.join([str(project), *sys.path])})  # fmt: skip
    _one_line(result, "pip install 'jobforge[dashboard]'")
    assert "starlette is not installed" in result.err


@pytest.mark.slow
def test_serves_the_overview_on_localhost(jobforge_db: Database, project: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFORGE_")}
    env.update(JOBFORGE_DATABASE_URL=jobforge_db.dsn, JOBFORGE_TENANT="acme")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobforge.cli.app", "dashboard", "--port", str(port),
         "--actor", "ops"], cwd=project, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the dashboard did not answer"
                time.sleep(0.1)
        assert page.status_code == 200
        assert 'data-testid="tenant">acme<' in page.text
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert f"jobforge dashboard on http://127.0.0.1:{port}/ (tenant acme as ops)" in out
    assert "Traceback" not in err
