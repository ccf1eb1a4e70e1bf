"""`jobforge contracts lock|check|diff` as subprocesses in a throwaway runner repo: exit codes
0 / 1 / 2, every report format, runners added and removed, and `--against` in a git repo."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.e2e.conftest import Cli

PYPROJECT = """\
[project]
name = "runner-repo"
version = "0.0.0"

[tool.jobforge]
runners = ["myrunners"]
"""

MODULE = """\
from typing import Literal

from pydantic import BaseModel

from jobforge.contracts import runner


class ScanIn(BaseModel):
    target: str
    threshold: float = 0.2


class ScanOut(BaseModel):
    findings: list[str]
    status: Literal["ok", "warn"]


@runner("ops.scan", version="1.0.0", input=ScanIn, output=ScanOut, trace_keys=["threshold"])
def scan(inp, ctx):
    return ScanOut(findings=[], status="ok")


class TidyIn(BaseModel):
    folder: str


class TidyOut(BaseModel):
    removed: int


@runner("ops.tidy", version="0.3.0", input=TidyIn, output=TidyOut)
def tidy(inp, ctx):
    return TidyOut(removed=0)
"""

_THRESHOLD = "    threshold: float = 0.2\n"
#: a new required input field and a new output enum value: both breaking
BREAKING = MODULE.replace(_THRESHOLD, _THRESHOLD + "    mode: str\n").replace(
    'Literal["ok", "warn"]', 'Literal["ok", "warn", "fail"]'
)
#: a new optional input field: compatible
COMPATIBLE = MODULE.replace(_THRESHOLD, _THRESHOLD + '    note: str = ""\n')


def def_line(source: str) -> int:
    """The line of `def scan` in `source`, where annotations must point."""
    return source.splitlines().index("def scan(inp, ctx):") + 1


@pytest.fixture
def repo(project: Path) -> Path:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "myrunners.py").write_text(MODULE)
    golden = project / "golden" / "ops.scan"
    golden.mkdir(parents=True)
    (golden / "small.json").write_text(json.dumps({"input": {"target": "a"}}))
    return project


@pytest.fixture
def locked(cli: Cli, repo: Path) -> Path:
    result = cli("contracts", "lock")
    assert result.code == 0, result.err + result.out
    return repo


def write(repo: Path, source: str) -> None:
    (repo / "myrunners.py").write_text(source)
    for cached in repo.rglob("__pycache__"):
        shutil.rmtree(cached)


def one_error_line(err: str) -> str:
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, f"not one line: {err!r}"
    return err


# -- lock and check: exit 0 and 1 -------------------------------------------------------------


def test_lock_then_check_is_clean(cli: Cli, repo: Path) -> None:
    first = cli("contracts", "check")
    assert first.code == 1
    assert "runner.added" in first.out
    lock = cli("contracts", "lock")
    assert (lock.code, lock.err) == (0, "")
    assert "written ops.scan: 1.0.0 locked (new runner)" in lock.out
    assert sorted(p.name for p in (repo / "contracts").iterdir()) == [
        "ops.scan.json",
        "ops.tidy.json",
    ]
    text = (repo / "contracts" / "ops.scan.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    check = cli("contracts", "check")
    assert (check.code, check.err) == (0, "")
    assert "ok ops.scan: 1.0.0 matches its lock" in check.out
    assert "contracts: ok (2 runners match)" in check.out
    again = cli("contracts", "lock")
    assert "unchanged ops.scan" in again.out
    assert (repo / "contracts" / "ops.scan.json").read_text() == text


def test_drift_fails_check_with_each_change_classified(cli: Cli, locked: Path) -> None:
    write(locked, BREAKING)
    result = cli("contracts", "check")
    assert (result.code, result.err) == (1, "")
    for expected in (
        "input.required_added",
        "input.properties.mode",
        "output.enum_widened",
        "input.recorded_inputs_invalid",
        "1 of 1 recorded inputs no longer validate; first: golden/ops.scan/small.json",
        "DRIFT ops.scan",
        "version still 1.0.0: the changes need a major bump, this is no bump",
        "ok ops.tidy",
        "contracts: FAILED (1 of 2 runners drifted)",
    ):
        assert expected in result.out, expected


def test_a_compatible_change_fails_check_too(cli: Cli, locked: Path) -> None:
    write(locked, COMPATIBLE.replace('version="1.0.0"', 'version="1.1.0"'))
    result = cli("contracts", "check")
    assert result.code == 1
    assert "input.property_added" in result.out
    assert "version 1.0.0 → 1.1.0 (minor bump) covers the changes" in result.out


def test_lock_refuses_an_unbumped_breaking_change_and_force_writes(cli: Cli, locked: Path) -> None:
    write(locked, BREAKING.replace('version="1.0.0"', 'version="1.1.0"'))
    refused = cli("contracts", "lock")
    assert refused.code == 1
    assert "refused ops.scan" in refused.out
    assert "bump the version to 2.0.0 or later, or pass --force" in refused.out
    assert json.loads((locked / "contracts" / "ops.scan.json").read_text())["version"] == "1.0.0"
    forced = cli("contracts", "lock", "--force")
    assert forced.code == 0, forced.out
    assert json.loads((locked / "contracts" / "ops.scan.json").read_text())["version"] == "1.1.0"


def test_lock_accepts_a_major_bump_and_a_single_runner(cli: Cli, locked: Path) -> None:
    source = COMPATIBLE.replace("    folder: str\n", "    folder: str\n    depth: int = 1\n")
    write(locked, source.replace('version="0.3.0"', 'version="0.3.1"'))
    result = cli("contracts", "lock", "ops.tidy")
    assert result.code == 0, result.out
    assert "ops.scan" not in result.out
    assert "written ops.tidy: version 0.3.0 → 0.3.1 (minor bump) covers the changes" in result.out
    assert cli("contracts", "check", "ops.tidy").code == 0
    assert cli("contracts", "check").code == 1


def test_a_runner_removed_and_one_added(cli: Cli, locked: Path) -> None:
    source = MODULE.replace('"ops.tidy"', '"ops.sweep"')
    write(locked, source)
    result = cli("contracts", "check")
    assert result.code == 1
    assert "runner.removed" in result.out
    assert "DRIFT ops.tidy: no longer declared, but contracts/ops.tidy.json locks it" in result.out
    assert "runner.added" in result.out
    assert "DRIFT ops.sweep: not locked yet" in result.out
    kept = cli("contracts", "lock")
    assert kept.code == 0
    assert "kept ops.tidy" in kept.out
    assert "written ops.sweep" in kept.out
    assert (locked / "contracts" / "ops.tidy.json").exists()
    pruned = cli("contracts", "lock", "--prune")
    assert "pruned ops.tidy" in pruned.out
    assert not (locked / "contracts" / "ops.tidy.json").exists()
    assert cli("contracts", "check").code == 0


# -- formats ----------------------------------------------------------------------------------


def test_json_format(cli: Cli, locked: Path) -> None:
    write(locked, BREAKING)
    result = cli("contracts", "check", "--format", "json", env={"COLUMNS": "40"})
    assert result.code == 1
    body = json.loads(result.out)
    assert body["ok"] is False
    assert body["counts"]["contracts"] == {"error": 0, "failed": 1, "passed": 1, "skipped": 0}
    (scan,) = [i for i in body["items"] if i["name"] == "ops.scan"]
    rules = {f["rule"]: f for f in scan["findings"]}
    assert rules["input.required_added"]["severity"] == "breaking"
    assert rules["input.required_added"]["path"] == "input.properties.mode"
    assert rules["input.required_added"]["file"] == "myrunners.py"
    assert rules["input.required_added"]["line"] == def_line(BREAKING)


def test_junit_format_parses(cli: Cli, locked: Path) -> None:
    write(locked, BREAKING)
    result = cli("contracts", "check", "--format", "junit")
    assert result.code == 1
    root = ElementTree.fromstring(result.out.encode())
    (suite,) = root.iter("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("contracts", "2", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    failure = cases["ops.scan"].find("failure")
    assert failure is not None
    assert "input.required_added" in (failure.text or "")
    assert cases["ops.tidy"].find("failure") is None


def test_github_format_annotates_the_runner_def(cli: Cli, locked: Path) -> None:
    source = COMPATIBLE.replace('trace_keys=["threshold"]', "trace_keys=[]")
    write(locked, source)
    result = cli("contracts", "check", "--format", "github")
    assert result.code == 1
    lines = result.out.splitlines()
    annotations = [line for line in lines if line.startswith("::")]
    assert annotations, result.out
    for line in annotations:
        assert line.startswith(("::error ", "::notice "))
        assert f"file=myrunners.py,line={def_line(source)}," in line
    assert any(a.startswith("::error ") and "trace_keys.removed" in a for a in annotations)
    assert any(a.startswith("::notice ") and "input.property_added" in a for a in annotations)
    assert lines[-1] == "jobforge: FAILED (contracts: 1 passed, 1 failed)"


def test_github_annotation_of_a_removed_runner_points_at_its_lock(cli: Cli, locked: Path) -> None:
    write(locked, MODULE.split('@runner("ops.tidy"')[0])
    result = cli("contracts", "check", "--format", "github")
    assert result.code == 1
    (line,) = [x for x in result.out.splitlines() if x.startswith("::")]
    assert line.startswith("::error file=contracts/ops.tidy.json,line=1,")
    assert "runner.removed" in line


def test_output_file_gets_the_report_and_the_terminal_the_summary(cli: Cli, locked: Path) -> None:
    write(locked, BREAKING)
    target = locked / "reports" / "contracts.xml"
    result = cli("contracts", "check", "--format", "junit", "--output", str(target))
    assert result.code == 1
    ElementTree.fromstring(target.read_bytes())
    assert "contracts: FAILED" in result.out
    assert "<testsuite" not in result.out


def test_diff_is_informational(cli: Cli, locked: Path) -> None:
    write(locked, BREAKING)
    result = cli("contracts", "diff")
    assert (result.code, result.err) == (0, "")
    assert "differs ops.scan" in result.out
    assert "same ops.tidy" in result.out
    assert "input.required_added" in result.out
    as_json = cli("contracts", "diff", "ops.scan", "--format", "json")
    assert as_json.code == 0
    assert [i["name"] for i in json.loads(as_json.out)["items"]] == ["ops.scan"]


# -- exit 2 -----------------------------------------------------------------------------------


def test_no_tool_jobforge_is_exit_2(cli: Cli, project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "plain"\n')
    for verb in ("check", "lock", "diff"):
        result = cli("contracts", verb)
        assert (result.code, result.out) == (2, "")
        assert "no pyproject.toml with a [tool.jobforge] table" in one_error_line(result.err)


def test_an_unimportable_runner_module_is_exit_2(cli: Cli, repo: Path) -> None:
    write(repo, "raise RuntimeError('no credentials here')\n")
    result = cli("contracts", "check")
    assert result.code == 2
    assert "importing 'myrunners' failed: RuntimeError" in one_error_line(result.err)


def test_an_invalid_lock_file_is_exit_2(cli: Cli, locked: Path) -> None:
    (locked / "contracts" / "ops.scan.json").write_text('{"format": "jobforge.contract/1"}')
    result = cli("contracts", "check")
    assert result.code == 2
    assert "invalid lock file contracts/ops.scan.json" in one_error_line(result.err)
    assert cli("contracts", "lock").code == 2
    assert cli("contracts", "lock", "--force").code == 0


def test_usage_errors_are_exit_2(cli: Cli, locked: Path) -> None:
    assert cli("contracts", "check", "--format", "yaml").code == 2
    unknown = cli("contracts", "check", "ops.nope")
    assert unknown.code == 2
    assert "no runner 'ops.nope' is declared or locked" in one_error_line(unknown.err)
    missing = cli("contracts", "check", "--project", str(locked / "nope"))
    assert missing.code == 2


# -- --against in a git repo ------------------------------------------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo, check=True, capture_output=True,
    )  # fmt: skip


@needs_git
def test_against_a_revision(cli: Cli, locked: Path) -> None:
    git(locked, "init", "-q")
    git(locked, "add", "pyproject.toml", "myrunners.py", "contracts", "golden")
    git(locked, "commit", "-q", "-m", "v1")
    git(locked, "tag", "v1")

    # a compatible change with a minor bump, locked and committed
    write(locked, COMPATIBLE.replace('version="1.0.0"', 'version="1.1.0"'))
    assert cli("contracts", "lock").code == 0
    git(locked, "commit", "-q", "-am", "v1.1")
    assert cli("contracts", "check").code == 0
    covered = cli("contracts", "check", "--against", "HEAD~1")
    assert covered.code == 0, covered.out
    assert "input.property_added" in covered.out  # reported, and covered by the bump
    assert cli("contracts", "check", "--against", "v1", "--format", "json").code == 0

    # a breaking change without a major bump, forced into the lock: --against still catches it
    write(locked, BREAKING.replace('version="1.0.0"', 'version="1.2.0"'))
    assert cli("contracts", "lock", "--force").code == 0
    assert cli("contracts", "check").code == 1  # the golden input no longer validates
    against = cli("contracts", "check", "--against", "v1")
    assert against.code == 1
    assert "version 1.0.0 → 1.2.0: the changes need a major bump" in against.out
    assert "input.required_added" in against.out
    diff = cli("contracts", "diff", "--against", "v1", "--format", "github")
    assert diff.code == 0
    assert "::error file=myrunners.py" in diff.out


@needs_git
def test_against_errors_are_exit_2(cli: Cli, locked: Path) -> None:
    outside = cli("contracts", "check", "--against", "HEAD")
    assert outside.code == 2
    assert "is not in a git repository" in one_error_line(outside.err)
    git(locked, "init", "-q")
    git(locked, "add", ".")
    git(locked, "commit", "-q", "-m", "v1")
    unknown = cli("contracts", "check", "--against", "no-such-tag")
    assert unknown.code == 2
    assert "--against no-such-tag: unknown revision" in one_error_line(unknown.err)
