"""A golden case of rejected input, as subprocesses: refreshed by pytest as the case declares
(`"expect": {"status": "invalid_input"}`), it passes `jobforge contracts check` and `jobforge
certify` (it never validated, so it is no input that "no longer validates"); when the input model
widens so that it validates, both report it as drift, and when the model narrows under an
accepted case, that is drift as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import jobforge
from jobforge.provision import Server
from tests.e2e.conftest import Cli, Run

PYPROJECT = """\
[tool.jobforge]
runners = ["billing"]
"""

RUNNER = """\
from decimal import Decimal

from pydantic import BaseModel, Field

from jobforge import RunContext, runner


class PayIn(BaseModel):
    amount: Decimal = Field(CONSTRAINT, decimal_places=2)


class PayOut(BaseModel):
    charged: Decimal


@runner("billing.pay", version="VERSION", input=PayIn, output=PayOut)
def pay(inp: PayIn, ctx: RunContext) -> PayOut:
    return PayOut(charged=inp.amount)
"""


def _write_runner(project: Path, constraint: str = "ge=0", version: str = "1.0.0") -> None:
    body = RUNNER.replace("CONSTRAINT", constraint).replace("VERSION", version)
    (project / "billing.py").write_text(body)
    for cached in project.rglob("__pycache__"):
        for file in cached.iterdir():
            file.unlink()


def _pytest(project: Path, scratch: str, *args: str) -> Run:
    here = str(Path(jobforge.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFORGE_") and k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:benchmark",
         f"--jobforge-database-url={scratch}", "--jobforge-runs", "1", "--jobforge-fresh", "no",
         *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return Run(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def repo(cli: Cli, project: Path, jobforge_server: Server) -> dict[str, str]:
    """A runner repository with an accepted and a rejected case, refreshed and locked."""
    (project / "pyproject.toml").write_text(PYPROJECT)
    _write_runner(project)
    golden = project / "golden" / "billing.pay"
    golden.mkdir(parents=True)
    (golden / "ok.json").write_text(json.dumps({"input": {"amount": "5.00"}}))
    (golden / "negative.json").write_text(
        json.dumps({"input": {"amount": "-1.00"}, "expect": {"status": "invalid_input"}})
    )
    refreshed = _pytest(project, jobforge_server.dsn, "--jobforge-refresh")
    assert refreshed.code == 0, refreshed.out + refreshed.err
    negative = json.loads((golden / "negative.json").read_text())["expect"]
    assert negative["status"] == "invalid_input"
    assert "amount: Input should be greater than or equal to 0" in negative["error"]["message"]
    locked = cli("contracts", "lock")
    assert locked.code == 0, locked.out + locked.err
    return {"JOBFORGE_SCRATCH_DATABASE_URL": jobforge_server.dsn}


def test_a_case_of_rejected_input_passes_check_and_certify(
    cli: Cli, project: Path, repo: dict[str, str]
) -> None:
    checked = cli("contracts", "check")
    assert checked.code == 0, checked.out + checked.err
    assert "no longer validate" not in checked.out
    certified = cli("certify", ".", "--no-fresh", env=repo)
    assert certified.code == 0, certified.out + certified.err
    # the failure the case expects is the worker's business, not a log line in certify's output
    assert "not retried" not in certified.err + certified.out, certified.err


def test_an_input_that_used_to_be_rejected_and_now_validates_is_drift(
    cli: Cli, project: Path, repo: dict[str, str]
) -> None:
    _write_runner(project, constraint="ge=-100", version="1.1.0")  # widened: -1.00 is valid now
    assert cli("contracts", "lock").code == 0  # a compatible change with its minor bump
    checked = cli("contracts", "check")
    assert checked.code == 1, checked.out + checked.err
    assert "input.recorded_rejection_accepted" in checked.out
    assert (
        "1 of 1 inputs recorded as rejected now validate (their cases expect status "
        "invalid_input); first: golden/billing.pay/negative.json" in checked.out
    ), checked.out
    certified = cli("certify", ".", "--no-fresh", env=repo)
    assert certified.code == 1, certified.out + certified.err
    assert "now validate" in certified.out


def test_an_accepted_input_the_model_now_rejects_is_drift(
    cli: Cli, project: Path, repo: dict[str, str]
) -> None:
    _write_runner(project, constraint="ge=10", version="2.0.0")  # narrowed: 5.00 is refused now
    checked = cli("contracts", "check")
    assert checked.code == 1, checked.out + checked.err
    assert "1 of 1 recorded inputs no longer validate; first: golden/billing.pay/ok.json" in (
        checked.out
    ), checked.out
    assert "recorded as rejected now validate" not in checked.out
