"""A new user's trial, as subprocesses in a repository `jobforge init` wrote: a misspelt folder
in `[tool.jobforge]` is one configuration error (exit 2), never a check turned off in silence; a
misspelt runner module or runner id gets the close name; `contracts check` counts the rows of its
table and says what fixes recorded inputs; `jobs list --type` with a type no runner handles says
so beside its empty table."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobforge.provision import Database
from tests.e2e.conftest import Cli, Run

pytestmark = pytest.mark.slow


@pytest.fixture
def repo(cli: Cli, project: Path) -> Path:
    assert cli("init").code == 0
    return project


def _set(repo: Path, old: str, new: str, file: str = "pyproject.toml") -> None:
    path = repo / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _one_line_error(run: Run) -> str:
    assert run.code == 2, run.out + run.err
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1, run.err
    assert lines[0].startswith("error: "), run.err
    return lines[0]


@pytest.mark.parametrize("command", [("certify",), ("contracts", "check"), ("contracts", "lock")])
def test_a_misspelt_golden_dir_is_one_configuration_error(
    cli: Cli, repo: Path, command: tuple[str, ...]
) -> None:
    _set(repo, 'golden_dir = "golden"', 'golden_dir = "goldne"')
    line = _one_line_error(cli(*command))
    assert f"{repo.resolve() / 'pyproject.toml'}: [tool.jobforge] golden_dir = 'goldne': no " \
        f"such folder {repo.resolve() / 'goldne'} (did you mean 'golden'?)" in line  # fmt: skip


def test_a_misspelt_bundles_dir_fails_certify_before_anything_runs(cli: Cli, repo: Path) -> None:
    _set(repo, 'contracts_dir = "contracts"', 'contracts_dir = "contracts"\nbundles_dir = "nope"')
    run = cli("certify")
    line = _one_line_error(run)
    assert f"[tool.jobforge] bundles_dir = 'nope': no such folder {repo.resolve() / 'nope'}" in line
    assert run.out == ""  # nothing ran, nothing was counted
    assert cli("contracts", "check").code == 0  # the gate reads no bundles


def test_a_misspelt_runner_submodule_gets_the_close_name(cli: Cli, repo: Path) -> None:
    _set(repo, 'runners = ["runners.triage"]', 'runners = ["runners.triag"]')
    line = _one_line_error(cli("contracts", "check"))
    assert "no module named 'runners.triag' (did you mean 'runners.triage'?)" in line


@pytest.mark.parametrize(
    "command",
    [("contracts", "show"), ("contracts", "check"), ("contracts", "diff"), ("contracts", "lock")],
)
def test_an_unknown_runner_id_gets_the_close_name(
    cli: Cli, repo: Path, command: tuple[str, ...]
) -> None:
    line = _one_line_error(cli(*command, "example.triag"))
    assert "no runner 'example.triag' " in line
    assert " (did you mean 'example.triage'?) " in line


def test_contracts_check_counts_the_rows_of_its_table(cli: Cli, repo: Path) -> None:
    _set(repo, "    urgent: bool = False\n", "    urgent: bool = False\n    customer: str\n",
         file="runners/triage.py")  # fmt: skip
    run = cli("contracts", "check")
    assert run.code == 1, run.out + run.err
    rows = [line for line in run.out.splitlines() if line.strip().startswith("example.triage ")]
    assert len(rows) == 2, run.out  # the new required field, the case that lacks it
    assert "DRIFT example.triage: 2 changes (2 breaking, 0 compatible); version still 1.0.0" in (
        run.out
    )
    assert "bump the version to 2.0.0 or later" in run.out
    assert "whatever the version, fix the cases that hold them or undo the change" in run.out


def test_jobs_list_says_when_a_type_filter_matches_no_runner(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    args = ("jobs", "list", "--database-url", jobforge_db.dsn, "--tenant", "acme")
    typo = cli(*args, "--type", "example.triag")
    assert typo.code == 0, typo.err
    assert typo.err.strip() == (
        "note: no runner or handler of this repository handles job type 'example.triag' "
        "(did you mean 'example.triage'?)"
    )
    known = cli(*args, "--type", "example.triage")
    assert (known.code, known.err) == (0, "")
