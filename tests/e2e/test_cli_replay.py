"""`jobforge runs` and `jobforge replay` as subprocesses: runs recorded by `jobforge worker`,
exported, replayed identically; the runner's logic changed, and the divergence reported at the
right step; each failure kind, every format, the failure store, and exit codes 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from jobforge.provision import Database, Server
from tests.e2e.conftest import Cli

PYPROJECT = """\
[tool.jobforge]
runners = ["pricing"]
"""

RUNNER = """\
from pydantic import BaseModel

from jobforge import RunContext, runner


class PriceIn(BaseModel):
    sku: str
    qty: int = 1


class PriceOut(BaseModel):
    total: float


@runner("e2e.price", version="1.0.0", input=PriceIn, output=PriceOut,
        trace_keys=["unit", "discount"])
def price(inp: PriceIn, ctx: RunContext) -> PriceOut:
    unit = ctx.decide("unit", 10.0, source="catalog")
    discount = ctx.decide("discount", DISCOUNT if inp.qty >= 10 else 0.0, rule=RULE)
    return PriceOut(total=unit * inp.qty * (1 - discount))
"""


def _write_runner(project: Path, discount: float = 0.1, rule: str = "bulk >= 10",
                  extra: str = "") -> None:  # fmt: skip
    body = RUNNER.replace("DISCOUNT", repr(discount)).replace("RULE", repr(rule))
    (project / "pricing.py").write_text(body + extra)
    for cached in project.rglob("__pycache__"):
        for file in cached.iterdir():
            file.unlink()


@pytest.fixture
def recorded(
    cli: Cli, project: Path, jobforge_db: Database, jobforge_server: Server
) -> dict[str, Any]:
    """Two runs recorded by `jobforge worker`, exported as bundles into project/bundles."""
    (project / "pyproject.toml").write_text(PYPROJECT)
    _write_runner(project)
    url = jobforge_db.dsn
    env = {"JOBFORGE_TENANT": "acme"}
    assert cli("enqueue", "e2e.price", '{"sku": "A", "qty": 12}', "--database-url", url,
               env=env).code == 0  # fmt: skip
    assert cli("enqueue", "e2e.price", '{"sku": "B", "qty": 2}', "--database-url", url,
               env=env).code == 0  # fmt: skip
    worker = cli("worker", "--exit-when-idle", "--database-url", url)
    assert worker.code == 0, worker.err
    return {"url": url, "server": {"JOBFORGE_SCRATCH_DATABASE_URL": jobforge_server.dsn}}


def test_runs_are_listed_shown_exported_and_replay_identically(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    url = recorded["url"]
    listing = cli("runs", "list", "--database-url", url, "--json")
    assert listing.code == 0, listing.err
    rows = json.loads(listing.out)
    assert [r["runner_id"] for r in rows] == ["e2e.price", "e2e.price"]
    assert {r["tenant_id"] for r in rows} == {"acme"}
    shown = cli("runs", "show", str(rows[0]["job_id"]), "--database-url", url)
    assert shown.code == 0
    assert json.loads(shown.out)["format"] == "jobforge.run/1"
    exported = cli("runs", "export", "--type", "e2e.price", "--database-url", url)
    assert exported.code == 0, exported.err
    assert "2 bundles written" in exported.out
    bundles = sorted((project / "bundles").glob("*.json"))
    assert len(bundles) == 2
    promoted = cli("runs", "export", "--job", str(rows[0]["job_id"]), "--to", "golden",
                   "--database-url", url)  # fmt: skip
    assert promoted.code == 0
    assert len(list((project / "golden" / "e2e.price").glob("*.json"))) == 1
    replayed = cli("replay", "bundles", env=recorded["server"])
    assert replayed.code == 0, replayed.out + replayed.err
    assert "replay" in replayed.out
    assert "ok" in replayed.out
    from_db = cli("replay", "--database-url", url, "--since", "1h", env=recorded["server"])
    assert from_db.code == 0, from_db.out + from_db.err


def test_changed_logic_is_reported_at_the_divergent_step_then_failed_runs_are_rerun(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    assert cli("runs", "export", "--type", "e2e.price", "--database-url", recorded["url"]).code == 0
    _write_runner(project, discount=0.2, rule="bulk >= 10 (raised)")
    replayed = cli("replay", "bundles", env=recorded["server"])
    assert replayed.code == 1, replayed.out + replayed.err
    out = replayed.out
    assert "diverged" in out
    assert "first divergent decision: trace[1]" in out
    assert "recorded: discount = 0.1  why: {'rule': 'bulk >= 10'}" in out
    assert "replayed: discount = 0.2  why: {'rule': 'bulk >= 10 (raised)'}" in out
    assert "output.total: expected 108, got 96" in out
    assert "the runner's source file changed" in out  # context, not the failure
    # qty 2 takes no discount, but the rule's text changed: the trace says so
    saved = sorted((project / ".jobforge" / "failed").glob("*.json"))
    assert len(saved) == 2
    assert "2 failures saved under .jobforge/failed/" in out
    _write_runner(project)  # the change is reverted
    again = cli("replay", "--failed", env=recorded["server"])
    assert again.code == 0, again.out + again.err
    assert "2 saved failures now pass and were dropped" in again.out
    assert not (project / ".jobforge" / "failed").exists()
    assert "no saved failures" in cli("replay", "--failed", env=recorded["server"]).out


def test_each_failure_kind_and_every_format(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    assert cli("runs", "export", "--type", "e2e.price", "--database-url", recorded["url"]).code == 0
    bundles = sorted((project / "bundles").glob("*.json"))
    first = json.loads(bundles[0].read_text())
    # an input the current contract rejects, and a bundle that is not one
    (project / "bundles" / "rejected.json").write_text(
        json.dumps({**first, "input": {"sku": 7}, "provenance": {**first["provenance"],
                                                                   "job_id": 999}})
    )  # fmt: skip
    (project / "bundles" / "broken.json").write_text("{not json")
    # hostile files: each its own error, the rest of the batch replayed (issue [2/10], 10)
    (project / "bundles" / "latin1.json").write_bytes(b'{"format": "caf\xe9"}')
    (project / "bundles" / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    env = recorded["server"]
    text = cli("replay", "bundles", env=env)
    assert text.code == 1
    assert "input rejected" in text.out
    assert "contract drift" in text.out
    assert "sku: Input should be a valid string" in text.out
    assert "unreadable bundle" in text.out
    assert "is not JSON" in text.out
    assert "latin1.json is not UTF-8" in text.out
    assert "deep.json is nested too deeply to read" in text.out

    report = json.loads(cli("replay", "bundles", "--format", "json", env=env).out)
    assert report["ok"] is False
    assert report["counts"]["replay"] == {"passed": 2, "failed": 1, "error": 3, "skipped": 0}
    junit = ElementTree.fromstring(cli("replay", "bundles", "--format", "junit", env=env).out)
    suite = junit.find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"
    assert suite.get("errors") == "3"
    github = cli("replay", "bundles", "--format", "github", env=env).out.splitlines()
    assert any(line.startswith("::error ") and "input_rejected" in line for line in github)
    assert github[-1].startswith("jobforge: FAILED")
    written = cli("replay", "bundles", "--format", "junit", "--output", "out/r.xml", env=env)
    assert written.code == 1
    assert ElementTree.parse(project / "out" / "r.xml").getroot() is not None

    # the runner is gone from the code
    (project / "pyproject.toml").write_text('[tool.jobforge]\nrunners = ["other"]\n')
    (project / "other.py").write_text("")
    gone = cli("replay", str(bundles[0]), env=env)
    assert gone.code == 1
    assert "no runner 'e2e.price' is declared any more" in gone.out


def test_usage_errors_exit_2_with_one_line(cli: Cli, project: Path) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT)
    _write_runner(project)
    for args, message in [
        (("replay",), "say what to replay"),
        (("replay", "nowhere"), "no such bundle file or folder: nowhere"),
        (("replay", "--since", "soon", "--database-url", "postgresql:///x"), "--since 'soon'"),
        (("runs", "export", "--database-url", "postgresql:///x"), "say which runs to export"),
    ]:
        run = cli(*args)
        assert run.code == 2, (args, run.out, run.err)
        assert run.err.startswith("error: "), run.err
        assert message in run.err, run.err


def test_contracts_check_validates_the_inputs_of_recorded_runs(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    assert cli("contracts", "lock").code == 0
    _write_runner(project)
    body = (project / "pricing.py").read_text()
    (project / "pricing.py").write_text(
        body.replace("    qty: int = 1\n", "    qty: int = 1\n    region: str\n")
    )
    run = cli("contracts", "check", "--database-url", recorded["url"], "--format", "json")
    assert run.code == 1, run.out + run.err
    assert "2 of 2 recorded inputs no longer validate" in run.out
    assert "run " in run.out


def test_worker_max_jobs_stops_after_that_many_jobs_are_recorded(
    cli: Cli, project: Path, jobforge_db: Database
) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT)
    _write_runner(project)
    url = jobforge_db.dsn
    env = {"JOBFORGE_TENANT": "acme"}
    for qty in (1, 2, 3):
        payload = json.dumps({"sku": "A", "qty": qty})
        assert cli("enqueue", "e2e.price", payload, "--database-url", url, env=env).code == 0
    # no --exit-when-idle: it stops because of --max-jobs, with the third job still queued
    worker = cli("worker", "--max-jobs", "2", "--concurrency", "8", "--database-url", url)
    assert worker.code == 0, worker.err
    assert "succeeded 2" in worker.out
    listing = cli("jobs", "list", "--database-url", url, "--json", env=env)
    statuses = sorted(j["status"] for j in json.loads(listing.out)["jobs"])
    assert statuses == ["queued", "succeeded", "succeeded"]
    assert len(json.loads(cli("runs", "list", "--database-url", url, "--json").out)) == 2
    bad = cli("worker", "--max-jobs", "0", "--database-url", url)
    assert bad.code == 2
    assert "--max-jobs" in bad.err
