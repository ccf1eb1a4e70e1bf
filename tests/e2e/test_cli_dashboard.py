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

from jobforge.cli.app import main
from jobforge.provision import Database
from tests.e2e.conftest import Cli, Run


def _one_line(result: Run, text: str) -> None:
    assert result.code == 2, (result.code, result.err)
    assert result.err.startswith("error: "), result.err
    assert result.err.count("\n") == 1, result.err
    assert text in result.err, result.err


@pytest.mark.parametrize(
    ("args", "text"),
    [((), "say whose dashboard this is"),
     (("--tenant", "a b"), "is not a tenant id"),
     (("--tokens", "nowhere.json"), "no such file"),
     (("--tokens", "t.json"), "sha256 must be"),
     (("--tokens", "t.json", "--tenant", "acme"), "leave out --tenant"),
     (("--tokens", "t.json", "--project-scope", "billing"), "leave out --tenant"),
     (("--tenant", "acme", "--project-scope", "../x"), "project"),
     (("--tenant", "acme", "--actor-header", "X User"), "is not a header name"),
     (("--tenant", "acme", "--project", "nowhere"), "no such folder")],
)  # fmt: skip
def test_mistakes_are_one_line(
    args: tuple[str, ...], text: str, jobforge_db: Database, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """In process (`main`, as the subprocess runs it): each mistake is found before a server
    binds."""
    for name in [n for n in os.environ if n.startswith("JOBFORGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("JOBFORGE_DATABASE_URL", jobforge_db.dsn)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.json").write_text('{"tokens": [{"sha256": "x"}]}')
    assert main(["dashboard", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert text in err, err


def test_a_mistake_from_the_command_line(cli: Cli) -> None:
    _one_line(cli("dashboard"), "say whose dashboard this is")


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
