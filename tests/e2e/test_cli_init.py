"""`jobforge init`: a runner repository from nothing, whose CI commands pass as written, and an
existing project that gets what it lacks without losing a byte of what it has."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

WRITTEN = [
    "pyproject.toml",
    "runners/__init__.py",
    "runners/triage.py",
    "golden/example.triage/urgent-enterprise.json",
    "contracts/example.triage.json",
    "tests/test_triage.py",
    ".github/workflows/jobforge.yml",
    ".gitignore",
]


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _pytest(folder: Path) -> subprocess.CompletedProcess[str]:
    """`python -m pytest` in the new repository, as its CI runs it (CI=true: a golden case
    without an expectation fails), with nothing of this test session's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBFORGE_", "PYTEST_"))}
    env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_init_in_an_empty_folder_then_pytest_and_certify_pass(cli: Cli, project: Path) -> None:
    result = cli("init")
    assert result.code == 0, result.out + result.err
    assert sorted(_files(project)) == sorted(WRITTEN)
    config = tomllib.loads((project / "pyproject.toml").read_text())
    assert config["tool"]["jobforge"]["runners"] == ["runners.triage"]
    assert ".jobforge/" in (project / ".gitignore").read_text().splitlines()
    for path in WRITTEN:
        assert path in result.out

    tests = _pytest(project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout  # the golden case, the lock and the test

    certified = cli("certify")
    assert certified.code == 0, certified.out + certified.err

    # the workflow's own commands, word for word
    workflow = (project / ".github/workflows/jobforge.yml").read_text()
    commands = [c.split("#")[0].split() for c in re.findall(r"^\s*- run: (.+)$", workflow, re.M)]
    assert ["jobforge", "contracts", "check", "--format", "github"] in commands
    assert ["python", "-m", "pytest"] in commands
    assert ["jobforge", "certify", "--format", "github"] in commands
    for command in commands:
        if command[0] == "jobforge":
            ran = cli(*command[1:], env={"CI": "true", "GITHUB_ACTIONS": "true"})
            assert ran.code == 0, f"{command}: {ran.out}{ran.err}"


def test_init_adds_to_an_existing_project_and_keeps_its_bytes(cli: Cli, project: Path) -> None:
    pyproject = b'[project]\r\nname = "acme"\r\nversion = "1.0"  # kept as written\r\n'
    (project / "pyproject.toml").write_bytes(pyproject)
    (project / ".gitignore").write_text("venv/")  # no newline at its end
    (project / "tests").mkdir()
    (project / "tests" / "test_mine.py").write_text("def test_mine() -> None:\n    pass\n")

    result = cli("init")
    assert result.code == 0, result.out + result.err
    text = (project / "pyproject.toml").read_bytes()
    assert text.startswith(pyproject)
    assert tomllib.loads(text.decode())["tool"]["jobforge"]["runners"] == ["runners.triage"]
    assert "added pyproject.toml" in result.out
    assert "[tool.jobforge] appended" in result.out
    assert (project / ".gitignore").read_text().splitlines()[:1] == ["venv/"]
    assert ".jobforge/" in (project / ".gitignore").read_text().splitlines()
    assert "added .gitignore" in result.out
    assert (project / "tests" / "test_mine.py").read_text().startswith("def test_mine")
    assert cli("contracts", "check").code == 0

    # once more: a runner repository already, so nothing is touched
    before = _files(project)
    again = cli("init")
    assert again.code == 2
    assert again.err.startswith("error:")
    assert len(again.err.strip().splitlines()) == 1
    assert "has a [tool.jobforge] table already" in again.err
    assert _files(project) == before


def test_init_refuses_to_overwrite_anything(cli: Cli, project: Path) -> None:
    (project / "golden" / "example.triage").mkdir(parents=True)
    (project / "golden" / "example.triage" / "urgent-enterprise.json").write_text("{}")
    (project / "runners").mkdir()
    (project / "runners" / "triage.py").write_text("# mine\n")
    before = _files(project)
    result = cli("init")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert "would overwrite runners/triage.py, golden/example.triage/urgent-enterprise.json" in (
        result.err
    )
    assert "nothing written" in result.err
    assert _files(project) == before  # no pyproject.toml, no .gitignore either

    # another package name gets past the runner module, not past the golden case
    other = cli("init", "--package", "acme_jobs")
    assert other.code == 2
    assert "golden/example.triage/urgent-enterprise.json" in other.err
    assert "runners/triage.py" not in other.err


def test_init_keeps_a_gitignore_that_ignores_the_dev_server(cli: Cli, project: Path) -> None:
    (project / ".gitignore").write_text("/.jobforge\n*.pyc\n")
    result = cli("init", "--package", "acme_jobs")
    assert result.code == 0, result.out + result.err
    assert (project / ".gitignore").read_text() == "/.jobforge\n*.pyc\n"
    assert "kept .gitignore" in result.out
    runners = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["jobforge"]
    assert runners["runners"] == ["acme_jobs.triage"]
    assert (project / "acme_jobs" / "triage.py").is_file()


@pytest.mark.parametrize(
    ("package", "message"),
    [("a-b", "not a Python module name"), ("json", "exists already"), ("class", "not a Python")],
)
def test_init_refuses_a_package_name_that_is_not_ours(
    cli: Cli, project: Path, package: str, message: str
) -> None:
    result = cli("init", "--package", package)
    assert result.code == 2
    assert message in result.err
    assert _files(project) == {}


def test_init_makes_a_new_folder(cli: Cli, project: Path) -> None:
    result = cli("init", "new-repo")
    assert result.code == 0, result.out + result.err
    assert (project / "new-repo" / "runners" / "triage.py").is_file()
    assert "cd new-repo" in result.out
