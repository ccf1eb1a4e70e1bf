"""`jobforge certify` as a subprocess: the shipped examples/ certify clean (exit 0), and a copy
with one failure of each kind (contract drift, golden mismatch, nondeterminism, replay divergence,
a runner gone) reports each one and exits 1, in every format."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from jobforge.provision import Server
from tests.e2e.conftest import Cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

STAMP = """\
import time

from pydantic import BaseModel

from jobforge import RunContext, runner


class StampIn(BaseModel):
    note: str


class StampOut(BaseModel):
    note: str
    at: float


@runner("notify.stamp", version="0.1.0", input=StampIn, output=StampOut)
def stamp(inp: StampIn, ctx: RunContext) -> StampOut:
    return StampOut(note=inp.note, at=time.time())
"""


@pytest.fixture
def examples(project: Path) -> Path:
    copy = project / "examples"
    shutil.copytree(EXAMPLES, copy, ignore=shutil.ignore_patterns("__pycache__", ".jobforge"))
    return copy


@pytest.fixture
def server_env(jobforge_server: Server) -> dict[str, str]:
    return {"JOBFORGE_SCRATCH_DATABASE_URL": jobforge_server.dsn}


def test_the_examples_certify_clean(cli: Cli, examples: Path, server_env: dict[str, str]) -> None:
    run = cli("certify", str(examples), env=server_env)
    assert run.code == 0, run.out + run.err
    for suite in ("contracts", "golden", "determinism", "replay"):
        assert suite in run.out
    report = json.loads(cli("certify", str(examples), "--format", "json", env=server_env).out)
    assert report["ok"] is True
    assert report["counts"]["golden"]["passed"] == 5
    assert report["counts"]["replay"]["passed"] == 3


def _break(examples: Path, cli: Cli) -> None:
    """One failure of each kind, each confined to one item."""
    # contract drift: the lock of ops.scan no longer matches its declaration
    lock_path = examples / "contracts" / "ops.scan.json"
    lock = json.loads(lock_path.read_text())
    lock["trace_keys"] = ["threshold"]
    lock_path.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    # golden mismatch: an expectation that the runner does not meet
    case_path = examples / "golden" / "billing.invoice" / "us-plain.json"
    case = json.loads(case_path.read_text())
    case["expect"]["output"]["total"] = "1.00"
    case_path.write_text(json.dumps(case, indent=2))
    # nondeterminism: a new runner that reads the wall clock, locked, with a golden case
    (examples / "example_runners" / "stamp.py").write_text(STAMP)
    pyproject = examples / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"example_runners.digest"]',
                                      '"example_runners.digest", "example_runners.stamp"]')
    )  # fmt: skip
    assert cli("contracts", "lock", "notify.stamp", cwd=examples).code == 0
    (examples / "golden" / "notify.stamp").mkdir()
    (examples / "golden" / "notify.stamp" / "hello.json").write_text('{"input": {"note": "hi"}}')
    # replay divergence: a recording made when the runner decided otherwise
    bundle_path = examples / "bundles" / "ops.scan-job1-a1.json"
    bundle: dict[str, Any] = json.loads(bundle_path.read_text())
    bundle["expect"]["trace"][0]["value"] = 0.5
    bundle_path.write_text(json.dumps(bundle, indent=2))
    # a recorded run of a runner that is gone
    bundle["runner_id"] = "ops.legacy"
    (examples / "bundles" / "ops.legacy-job9-a1.json").write_text(json.dumps(bundle))


def test_one_failure_of_each_kind_is_reported_and_exits_1(
    cli: Cli, examples: Path, server_env: dict[str, str]
) -> None:
    _break(examples, cli)
    run = cli("certify", str(examples), env=server_env)
    assert run.code == 1, run.out + run.err
    out = run.out
    assert "FAILED contracts ops.scan" in out
    assert "trace_key" in out  # the rule that fired
    assert "FAILED golden billing.invoice/us-plain" in out
    assert "output.total: expected '1.00', got '199.90'" in out
    assert "FAILED determinism notify.stamp/hello" in out
    assert "— wall clock (use ctx.now())" in out
    assert "FAILED replay bundles/ops.scan-job1-a1.json: diverged" in out
    assert "first divergent decision: trace[0]" in out
    assert "no runner 'ops.legacy' is declared any more" in out

    report = json.loads(cli("certify", str(examples), "--format", "json", env=server_env).out)
    counts = report["counts"]
    assert counts["contracts"]["failed"] == 1
    assert counts["golden"]["failed"] == 1
    assert counts["determinism"]["failed"] == 1
    assert counts["replay"]["failed"] == 2

    junit = cli("certify", str(examples), "--format", "junit", env=server_env)
    assert junit.code == 1
    suites = {s.get("name"): s for s in ElementTree.fromstring(junit.out).iter("testsuite")}
    assert set(suites) == {"contracts", "golden", "determinism", "replay"}
    assert suites["replay"].get("failures") == "2"

    github = cli("certify", str(examples), "--format", "github", env=server_env)
    lines = github.out.splitlines()
    # files as GitHub finds them from where certify ran (the project is ./examples)
    assert any(line.startswith("::error file=examples/example_runners/scan.py,line=")
               for line in lines)  # fmt: skip
    golden_error = "::error file=examples/golden/billing.invoice/us-plain.json"
    assert any(line.startswith(golden_error) for line in lines)
    assert lines[-1].startswith("jobforge: FAILED")


def test_certify_usage_errors_exit_2(cli: Cli, project: Path) -> None:
    missing = cli("certify", "nowhere")
    assert missing.code == 2
    assert "no such project folder: nowhere" in missing.err
    (project / "plain").mkdir()
    plain = cli("certify", "plain")
    assert plain.code == 2
    assert "no pyproject.toml with a [tool.jobforge] table" in plain.err


HOME_READER = """\
import os

from pydantic import BaseModel

from jobforge import RunContext, runner


class HomeIn(BaseModel):
    note: str


class HomeOut(BaseModel):
    home: str
    token: str


@runner("notify.home", version="0.1.0", input=HomeIn, output=HomeOut)
def home(inp: HomeIn, ctx: RunContext) -> HomeOut:
    return HomeOut(home=os.environ.get("HOME", "-"), token="t-" + inp.note)  # reads the machine
"""


def test_warnings_and_notes_of_passing_cases_are_shown_and_fail_nothing(
    cli: Cli, examples: Path, server_env: dict[str, str]
) -> None:
    (examples / "example_runners" / "home.py").write_text(HOME_READER)
    pyproject = examples / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            '"example_runners.scan"', '"example_runners.scan", "example_runners.home"'
        )
    )
    assert "example_runners.home" in pyproject.read_text()
    assert cli("contracts", "lock", "notify.home", cwd=examples).code == 0
    case = examples / "golden" / "notify.home" / "hi.json"
    case.parent.mkdir()
    expect: dict[str, Any] = {"status": "succeeded", "output": {"home": os.environ.get("HOME", "-"),
              "token": "[redacted]"}, "trace": [], "artifacts": {}, "error": None}  # fmt: skip
    case.write_text(json.dumps({"input": {"note": "hi"}, "expect": expect}))
    run = cli("certify", str(examples), env=server_env)
    assert run.code == 0, run.out + run.err
    assert "WARNING determinism notify.home/hi: runs agree" in run.out
    assert "os.environ.get('HOME') at " in run.out
    assert "— an environment variable: the same on every run here, but another machine" in run.out
    assert "NOTE golden notify.home/hi: matches its expectation" in run.out
    assert "output.token: redacted in the expectation, not compared" in run.out
    github = cli("certify", str(examples), "--format", "github", env=server_env).out
    assert "::warning file=" in github
    assert "::notice file=examples/golden/notify.home/hi.json" in github


def test_the_clis_database_never_gets_scratch_databases(cli: Cli, examples: Path) -> None:
    """Point 11: with JOBFORGE_DATABASE_URL exported (for `jobforge jobs`, say, on production),
    certify and replay used to create and drop their scratch databases on that server. Now they
    provision as if it were not set; the "production" server here is a socket that would see any
    connection."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as production:
        production.bind(("127.0.0.1", 0))
        production.listen()
        production.settimeout(0.2)
        url = f"postgresql://app:secret@127.0.0.1:{production.getsockname()[1]}/jobs"
        run = cli("certify", str(examples), "--no-fresh", env={"JOBFORGE_DATABASE_URL": url})
        assert run.code == 0, run.out + run.err
        with pytest.raises(TimeoutError):
            production.accept()
