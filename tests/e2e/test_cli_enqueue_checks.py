"""Silent mistakes made loud: in a runner repository `jobforge enqueue` refuses a type no runner
or handler knows (naming the closest), a golden case given as the payload, and a payload its
runner's input model rejects, each in one line with nothing stored; the worker logs a failure it
does not retry; `jobs list` never cuts a job type short."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobforge.provision import Database
from tests.e2e.conftest import Cli, Run

pytestmark = pytest.mark.slow

PYPROJECT = """\
[tool.jobforge]
runners = ["billing"]
"""

RUNNERS = """\
from pydantic import BaseModel, Field

from jobforge import RunContext, runner
from jobforge.errors import NonRetryable
from jobforge.worker import handler


class FeeIn(BaseModel):
    invoice: str
    days_late: int = Field(ge=0)
    refuse: bool = False


class FeeOut(BaseModel):
    fee: int


@runner("billing.late_fees", version="1.0.0", input=FeeIn, output=FeeOut, max_attempts=5)
def late_fees(inp: FeeIn, ctx: RunContext) -> FeeOut:
    if inp.refuse:
        raise NonRetryable("the customer is exempt")
    return FeeOut(fee=ctx.decide("fee", 2 * inp.days_late))


@handler("billing.notify")
def notify(payload: dict, ctx: object) -> dict:
    return {}
"""

CASE = {"input": {"invoice": "A-1", "days_late": 3}, "expect": {"status": "succeeded"}}
LONG_TYPE = "billing.reminders.second_notice_for_overdue_invoices"


@pytest.fixture
def repo(project: Path) -> Path:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "billing.py").write_text(RUNNERS)
    return project


@pytest.fixture
def elsewhere() -> Iterator[Path]:
    """A folder outside any runner repository (a producer's)."""
    path = Path(tempfile.mkdtemp(prefix="jf-e2e-producer-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _enqueue(cli: Cli, db: Database, *args: str, cwd: Path | None = None) -> Run:
    return cli("enqueue", *args, "--database-url", db.dsn, "--tenant", "acme", "--json", cwd=cwd)


def _jobs(cli: Cli, db: Database) -> list[dict[str, Any]]:
    run = cli("jobs", "list", "--json", "--database-url", db.dsn, "--tenant", "acme")
    assert run.code == 0, run.err
    jobs: list[dict[str, Any]] = json.loads(run.out)["jobs"]
    return jobs


def _one_line_error(run: Run) -> str:
    assert run.code == 2, run.out + run.err
    assert run.err.startswith("error:")
    assert len(run.err.strip().splitlines()) == 1, run.err
    return run.err


def test_a_type_no_runner_knows_is_refused_naming_the_closest(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    err = _one_line_error(_enqueue(cli, jobforge_db, "billing.late_fee", '{"invoice": "A-1"}'))
    assert err.startswith(
        "error: no runner or handler of this repository handles job type 'billing.late_fee' "
        "(did you mean 'billing.late_fees'?), nor does the runner catalogue: for a worker "
        "elsewhere, sync its runners into the catalogue (jobforge runners sync, in their "
        "repository) or pass --allow-unknown-type (declared in "
    ), err
    assert err.rstrip().endswith("billing.late_fees, billing.notify)")  # what is declared
    # one of jobforge's own runners, not declared here: the fix is to declare its module
    own = _one_line_error(_enqueue(cli, jobforge_db, "jobforge.webhook.deliver", "{}"))
    assert (
        "it is jobforge's own runner: add 'jobforge.runners.webhook' to [tool.jobforge] "
        "runners, or pass --allow-unknown-type" in own
    ), own
    assert _jobs(cli, jobforge_db) == []

    allowed = _enqueue(cli, jobforge_db, "billing.late_fee", "--allow-unknown-type")
    assert allowed.code == 0, allowed.err
    assert _enqueue(cli, jobforge_db, "billing.notify", '{"to": "ops"}').code == 0  # a handler
    assert sorted(j["type"] for j in _jobs(cli, jobforge_db)) == [
        "billing.late_fee",
        "billing.notify",
    ]


def test_outside_a_runner_repository_any_type_goes(
    cli: Cli, elsewhere: Path, jobforge_db: Database
) -> None:
    run = _enqueue(cli, jobforge_db, "billing.late_fee", '{"invoice": "A-1"}', cwd=elsewhere)
    assert run.code == 0, run.err


def test_a_golden_case_is_not_a_payload(
    cli: Cli, repo: Path, elsewhere: Path, jobforge_db: Database
) -> None:
    case = repo / "case.json"
    case.write_text(json.dumps(CASE))
    err = _one_line_error(_enqueue(cli, jobforge_db, "billing.late_fees", "--payload-file",
                                   str(case)))  # fmt: skip
    assert f"--payload-file {case} is a golden case, not a payload" in err
    assert 'its payload is its "input"' in err

    # with its format named, and from a producer's folder, where no runner is known
    case.write_text(json.dumps({"format": "jobforge.golden/1", **CASE}))
    err = _one_line_error(
        _enqueue(cli, jobforge_db, "billing.late_fees", "--payload-file", str(case), cwd=elsewhere)
    )
    assert "is a jobforge.golden/1 file, not a payload" in err
    assert _jobs(cli, jobforge_db) == []

    # its input is the payload
    case_input = repo / "input.json"
    case_input.write_text(json.dumps(CASE["input"]))
    run = _enqueue(cli, jobforge_db, "billing.late_fees", "--payload-file", str(case_input))
    assert run.code == 0, run.err


def test_a_payload_is_checked_against_its_runners_input_model(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    err = _one_line_error(
        _enqueue(cli, jobforge_db, "billing.late_fees", '{"invoice": "A-1", "days_late": -2}')
    )
    assert "invalid input for billing.late_fees" in err
    assert "days_late" in err
    err = _one_line_error(_enqueue(cli, jobforge_db, "billing.late_fees", "{}"))
    assert "invoice: Field required" in err
    assert _jobs(cli, jobforge_db) == []

    ok = _enqueue(cli, jobforge_db, "billing.late_fees", '{"invoice": "A-1", "days_late": 2}')
    assert ok.code == 0, ok.err
    (job,) = _jobs(cli, jobforge_db)
    assert job["max_attempts"] == 5  # the runner's, not the CLI's default of 3


def test_the_worker_logs_each_failure_it_does_not_retry(
    cli: Cli, repo: Path, elsewhere: Path, jobforge_db: Database
) -> None:
    refused = _enqueue(cli, jobforge_db, "billing.late_fees",
                       '{"invoice": "A-1", "days_late": 1, "refuse": true}')  # fmt: skip
    # invalid input can only come from a producer that does not know the runner
    invalid = _enqueue(cli, jobforge_db, "billing.late_fees", '{"invoice": "A-2"}', cwd=elsewhere)
    ids = [json.loads(r.out)["job_id"] for r in (refused, invalid)]

    worker = cli("worker", "--exit-when-idle", "--database-url", jobforge_db.dsn)
    assert worker.code == 0, worker.err
    lines = worker.err.splitlines()
    exempt = [line for line in lines if f"job {ids[0]} (billing.late_fees) failed" in line]
    assert len(exempt) == 1, worker.err
    assert "ERROR" in exempt[0]
    assert "not retried (NonRetryable): the customer is exempt" in exempt[0]
    bad = [line for line in lines if f"job {ids[1]} (billing.late_fees) failed" in line]
    assert len(bad) == 1, worker.err
    assert "not retried (invalid input)" in bad[0]
    assert "days_late" in bad[0]
    assert sorted(j["status"] for j in _jobs(cli, jobforge_db)) == ["failed", "failed"]


def test_jobs_list_never_cuts_a_type_short(
    cli: Cli, elsewhere: Path, jobforge_db: Database
) -> None:
    assert _enqueue(cli, jobforge_db, LONG_TYPE, cwd=elsewhere).code == 0
    listed = cli("jobs", "list", "--database-url", jobforge_db.dsn, "--tenant", "acme",
                 env={"COLUMNS": "60"})  # fmt: skip
    assert listed.code == 0, listed.err
    assert LONG_TYPE in listed.out
    wide = cli("jobs", "list", "--database-url", jobforge_db.dsn, "--tenant", "acme")
    assert LONG_TYPE in wide.out
    assert "┃ type" in wide.out  # a table where it fits


def test_doctor_counts_queued_jobs_no_runner_handles(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    for _ in range(2):
        assert _enqueue(cli, jobforge_db, "billing.late_fee", "--allow-unknown-type").code == 0
    assert (
        _enqueue(cli, jobforge_db, "billing.late_fees", '{"invoice": "A", "days_late": 1}').code
        == 0
    )
    assert _enqueue(cli, jobforge_db, "zzz.other", "--allow-unknown-type").code == 0

    run = cli("doctor", "--no-start", "--database-url", jobforge_db.dsn)
    assert run.code == 0, run.out + run.err  # a warning: a worker elsewhere may serve them
    (line,) = [line for line in run.out.splitlines() if "queued job types" in line]
    assert line.startswith("warn")
    assert "billing.late_fee (2 queued; did you mean billing.late_fees?)" in line
    assert "zzz.other (1 queued)" in line
    assert "billing.late_fees (" not in line

    report = json.loads(cli("doctor", "--no-start", "--database-url", jobforge_db.dsn,
                            "--format", "json").out)  # fmt: skip
    assert report["queued_types"]["unknown"] == {"billing.late_fee": 2, "zzz.other": 1}


def test_doctor_says_when_every_queued_type_is_handled(
    cli: Cli, repo: Path, elsewhere: Path, jobforge_db: Database
) -> None:
    assert _enqueue(cli, jobforge_db, "billing.notify").code == 0
    run = cli("doctor", "--no-start", "--database-url", jobforge_db.dsn)
    assert "ok   queued job types: 1 queued job, of types this repository handles" in run.out
    # outside a runner repository there is nothing to compare with
    away = cli("doctor", "--no-start", "--database-url", jobforge_db.dsn, cwd=elsewhere)
    assert "queued job types" not in away.out


def test_the_worker_takes_its_claim_sizes_from_the_command_line(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    """`--prefetch 0 --claim-batch 1`: one job per claim, none held ahead; all of them run."""
    for n in range(3):
        body = json.dumps({"invoice": f"A-{n}", "days_late": 1})
        assert _enqueue(cli, jobforge_db, "billing.late_fees", body).code == 0
    worker = cli("worker", "--exit-when-idle", "--prefetch", "0", "--claim-batch", "1",
                 "--concurrency", "2", "--database-url", jobforge_db.dsn)  # fmt: skip
    assert worker.code == 0, worker.err
    assert [j["status"] for j in _jobs(cli, jobforge_db)] == ["succeeded"] * 3
    with jobforge_db.connect() as conn:
        claims = conn.execute(
            "SELECT count(DISTINCT at) FROM jobforge.job_event_log WHERE kind = 'claimed'"
        ).fetchone()
    assert claims == (3,)  # one claim per job
