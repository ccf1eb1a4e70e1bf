"""`jobforge contracts show RUNNER` as a subprocess in a throwaway runner repo: the contract as
JSON (exactly what `contract_of` states) or text, and one `error:` line (exit 2) for an unknown
runner, a runner module that fails to import, or a repo without `[tool.jobforge]`."""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobforge.contracts import RUNNERS, contract_of
from tests.e2e.conftest import Cli

PYPROJECT = """\
[project]
name = "runner-repo"
version = "0.0.0"

[tool.jobforge]
runners = ["myrunners"]
"""

RUNNERS_MODULE = """\
from pydantic import BaseModel, Field

from jobforge.contracts import Limits, RetryPolicy, runner


class ScanIn(BaseModel):
    target: str
    threshold: float = 0.2


class ScanOut(BaseModel):
    findings: list[str]
    savings_usd: float = Field(description="What acting on the findings saves, in dollars. " * 6)


@runner("ops.scan", version="1.4.0", input=ScanIn, output=ScanOut,
        trace_keys=["threshold", "picked"], artifacts=["report.md", "data/raw.json"],
        replayable=False, timeout_s=30, max_attempts=5, retry=RetryPolicy(base_s=2, cap_s=60),
        limits=Limits(max_running=4, rate_per_s=2.5))
def scan(inp, ctx):
    ctx.decide("threshold", inp.threshold)
    return ScanOut(findings=[], savings_usd=0.0)


@runner("ops.report", version="0.1.0", input=ScanIn, output=ScanOut)
async def report(inp, ctx):
    return ScanOut(findings=[], savings_usd=0.0)
"""


def _error_line(err: str) -> str:
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, f"not one line: {err!r}"
    return err


@pytest.fixture
def repo(project: Path) -> Path:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "myrunners.py").write_text(RUNNERS_MODULE)
    return project


@pytest.fixture
def expected(repo: Path) -> Iterator[dict[str, Any]]:
    """`contract_of` of ops.scan, computed in this process from the same module file."""
    before = dict(RUNNERS)
    name = f"e2e_myrunners_{uuid.uuid4().hex[:10]}"
    spec = importlib.util.spec_from_file_location(name, repo / "myrunners.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield contract_of(RUNNERS["ops.scan"]).model_dump(mode="json")
    finally:
        RUNNERS.clear()
        RUNNERS.update(before)


def test_show_prints_the_contract_as_json(cli: Cli, repo: Path, expected: dict[str, Any]) -> None:
    result = cli("contracts", "show", "ops.scan")
    assert (result.code, result.err) == (0, "")
    shown = json.loads(result.out)
    assert shown == expected
    assert shown["runner_id"] == "ops.scan"
    assert shown["guarantees"]["replayable"] is False
    assert shown["trace_keys"] == ["picked", "threshold"]
    assert shown["artifacts"] == ["data/raw.json", "report.md"]
    assert shown["queue_limits"] == {"max_running": 4, "rate_per_s": 2.5, "burst": 2.5}
    assert result.out == json.dumps(expected, indent=2, sort_keys=True) + "\n"


def test_json_is_never_wrapped_on_a_narrow_terminal(
    cli: Cli, repo: Path, expected: dict[str, Any]
) -> None:
    result = cli("contracts", "show", "ops.scan", "--format", "json", env={"COLUMNS": "30"})
    assert result.code == 0, result.err
    assert json.loads(result.out) == expected


def test_show_as_text(cli: Cli, repo: Path) -> None:
    result = cli("contracts", "show", "ops.scan", "--format", "text")
    assert (result.code, result.err) == (0, "")
    assert result.out.splitlines() == [
        "ops.scan 1.4.0  (myrunners.scan)",
        "guarantees: decision_trace=yes, input_snapshot=yes, output_artifact=yes, replayable=no",
        "trace keys: picked, threshold",
        "artifacts: data/raw.json, report.md",
        "queue limits: max_running 4, rate_per_s 2.5/s, burst 2.5",
        "input: target, threshold?",
        "output: findings, savings_usd",
    ]


def test_show_as_text_without_trace_keys_or_artifacts(cli: Cli, repo: Path) -> None:
    result = cli("contracts", "show", "ops.report", "--format", "text")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "ops.report 0.1.0  (myrunners.report)"
    guarantees = "decision_trace=yes, input_snapshot=yes, output_artifact=yes, replayable=yes"
    assert f"guarantees: {guarantees}" in lines
    assert "trace keys: -" in lines
    assert "artifacts: -" in lines
    assert "queue limits: -" in lines


def test_the_project_is_found_from_a_subfolder_or_given_with_project(
    cli: Cli, repo: Path, tmp_path: Path, expected: dict[str, Any]
) -> None:
    sub = repo / "src" / "deeper"
    sub.mkdir(parents=True)
    below = cli("contracts", "show", "ops.scan", cwd=sub)
    assert below.code == 0, below.err
    assert json.loads(below.out) == expected
    elsewhere = cli("contracts", "show", "ops.scan", "--project", str(repo), cwd=tmp_path)
    assert elsewhere.code == 0, elsewhere.err
    assert json.loads(elsewhere.out) == expected


def test_an_unknown_runner_is_one_error_naming_it_and_the_runners_found(
    cli: Cli, repo: Path
) -> None:
    result = cli("contracts", "show", "ops.nope")
    assert (result.code, result.out) == (2, "")
    line = _error_line(result.err)
    assert "no runner 'ops.nope'" in line
    assert "found: ops.report, ops.scan" in line
    assert str(repo.resolve() / "pyproject.toml") in line


def test_a_runner_module_that_fails_to_import_is_one_error_naming_it(cli: Cli, repo: Path) -> None:
    (repo / "myrunners.py").write_text("raise RuntimeError('no credentials in this shell')\n")
    result = cli("contracts", "show", "ops.scan")
    assert (result.code, result.out) == (2, "")
    line = _error_line(result.err)
    assert "importing 'myrunners' failed: RuntimeError: no credentials in this shell" in line


def test_a_missing_runner_module_is_one_error_naming_it(cli: Cli, repo: Path) -> None:
    (repo / "pyproject.toml").write_text(PYPROJECT.replace('"myrunners"', '"myrunners", "gone"'))
    result = cli("contracts", "show", "ops.scan")
    assert (result.code, result.out) == (2, "")
    assert "cannot import runner module 'gone'" in _error_line(result.err)


def test_a_bad_declaration_is_one_error_naming_the_runner(cli: Cli, repo: Path) -> None:
    (repo / "myrunners.py").write_text(RUNNERS_MODULE.replace('"1.4.0"', '"1.4"'))
    result = cli("contracts", "show", "ops.scan")
    assert result.code == 2
    line = _error_line(result.err)
    assert "runner 'ops.scan' (myrunners.scan): version '1.4' is not semver" in line


def test_a_broken_pyproject_is_one_error_naming_it(cli: Cli, repo: Path) -> None:
    (repo / "pyproject.toml").write_text("[tool.jobforge\n")
    result = cli("contracts", "show", "ops.scan")
    assert result.code == 2
    assert str(repo.resolve() / "pyproject.toml") in _error_line(result.err)


def test_without_tool_jobforge_the_error_says_so(cli: Cli, project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "plain"\n')
    (project / "myrunners.py").write_text(RUNNERS_MODULE)  # present, but nobody points at it
    result = cli("contracts", "show", "ops.scan")
    assert (result.code, result.out) == (2, "")
    line = _error_line(result.err)
    assert "no runner 'ops.scan' (found: none;" in line
    assert "no pyproject.toml with [tool.jobforge]" in line
    assert str(project.resolve()) in line


def test_a_project_folder_that_does_not_exist_is_refused(cli: Cli, project: Path) -> None:
    missing = project / "nope"
    result = cli("contracts", "show", "ops.scan", "--project", str(missing))
    assert result.code == 2
    assert f"--project {missing}: no such folder" in _error_line(result.err)


def test_usage_errors_exit_2(cli: Cli, repo: Path) -> None:
    assert cli("contracts", "show", "ops.scan", "--format", "yaml").code == 2
    assert cli("contracts", "show").code == 2
