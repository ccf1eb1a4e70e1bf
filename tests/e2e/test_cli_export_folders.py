"""Where `jobforge runs export` writes (security review, [3/10]): the project's bundles folder —
`bundles/` or [tool.jobforge] bundles_dir — is refused in one line, before connecting, when it
resolves outside the project (a `bundles` symlink committed to the repository, say), as `--to
golden` refuses a runner folder leading outside the golden folder; an explicit `--out` is written
wherever the user points it, and a symlink at a file's own name there is kept, never followed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobforge.provision import Database
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

RUNNER = """\
from pydantic import BaseModel

from jobforge import RunContext, runner


class In(BaseModel):
    n: int


class Out(BaseModel):
    n: int


@runner("e2e.echo", version="1.0.0", input=In, output=Out)
def echo(inp: In, ctx: RunContext) -> Out:
    return Out(n=inp.n)
"""


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_a_bundles_folder_leading_outside_the_project_is_refused(
    cli: Cli, project: Path, jobforge_db: Database
) -> None:
    repo, outside = project / "repo", project / "outside"
    repo.mkdir()
    outside.mkdir()
    (repo / "pyproject.toml").write_text('[tool.jobforge]\nrunners = ["echo"]\n')
    (repo / "echo.py").write_text(RUNNER)
    url = ["--database-url", jobforge_db.dsn]
    queued = cli("enqueue", "e2e.echo", '{"n": 1}', *url, "--tenant", "acme", cwd=repo)
    assert queued.code == 0, queued.err
    worker = cli("worker", "--exit-when-idle", *url, cwd=repo)
    assert worker.code == 0, worker.err

    (repo / "bundles").symlink_to(outside)
    refused = cli("runs", "export", "--type", "e2e.echo", *url, cwd=repo)
    assert refused.code == 2, refused.out + refused.err
    assert len(refused.err.strip().splitlines()) == 1
    assert "refusing to write bundles into" in refused.err
    assert "resolves outside the project" in refused.err
    assert _tree(outside) == []

    # the same refusal for a bundles_dir committed to the repository, before any connection
    (repo / "bundles").unlink()
    (repo / "pyproject.toml").write_text(
        '[tool.jobforge]\nrunners = ["echo"]\nbundles_dir = "../outside"\n'
    )
    unreachable = ["--database-url", "postgresql://nobody@127.0.0.1:1/none"]
    configured = cli("runs", "export", "--type", "e2e.echo", *unreachable, cwd=repo)
    assert configured.code == 2
    assert "refusing to write bundles into" in configured.err
    assert _tree(outside) == []

    # an explicit --out is written wherever it points; a symlink at a file's name is kept
    (repo / "pyproject.toml").write_text('[tool.jobforge]\nrunners = ["echo"]\n')
    chosen = cli("runs", "export", "--type", "e2e.echo", *url, "--out", str(outside), cwd=repo)
    assert chosen.code == 0, chosen.out + chosen.err
    (written,) = outside.glob("*.json")
    assert json.loads(written.read_text())["format"] == "jobforge.bundle/1"
    victim = project / "victim.txt"
    victim.write_text("untouched")
    written.unlink()
    written.symlink_to(victim)
    again = cli("runs", "export", "--type", "e2e.echo", *url, "--out", str(outside), cwd=repo)
    assert again.code == 1
    assert "kept" in again.out
    assert victim.read_text() == "untouched"
