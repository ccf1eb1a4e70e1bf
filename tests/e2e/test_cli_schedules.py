"""`jobforge schedules`, `jobforge features` and `jobforge enqueue --dry-run` as subprocesses:
a schedule added in a runner repository (its input checked against the runner's model), listed
with its next slot in UTC and in its zone, paused, resumed and removed; its log; the flag that
refuses it, and who may turn the flag on; one-line errors for bad input, told before any
connection; a dry-run enqueue that stores nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobforge.provision import Database
from jobforge.queue import QueueClient
from tests.e2e.conftest import Cli, Run

pytestmark = pytest.mark.slow

#: No server answers here: a value checked before connecting never reaches it.
NOWHERE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"

PYPROJECT = """\
[tool.jobforge]
runners = ["billing"]
"""

RUNNERS = """\
from pydantic import BaseModel, Field

from jobforge import RunContext, runner


class FeeIn(BaseModel):
    invoice: str
    days_late: int = Field(ge=0)


class FeeOut(BaseModel):
    fee: int


@runner("billing.late_fees", version="1.0.0", input=FeeIn, output=FeeOut, max_attempts=5)
def late_fees(inp: FeeIn, ctx: RunContext) -> FeeOut:
    return FeeOut(fee=ctx.decide("fee", 2 * inp.days_late))
"""

GOOD = '{"invoice": "A-1", "days_late": 3}'


@pytest.fixture
def repo(project: Path) -> Path:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "billing.py").write_text(RUNNERS)
    return project


def one_line_error(run: Run, code: int = 2) -> str:
    assert run.code == code, run.out + run.err
    assert run.err.startswith("error:"), run.err
    assert len(run.err.strip().splitlines()) == 1, run.err
    return run.err


def schedules(cli: Cli, db: Database, *args: str, tenant: str = "acme") -> Run:
    return cli("schedules", *args, "--database-url", db.dsn, "--tenant", tenant)


def add(cli: Cli, db: Database, name: str = "nightly", *args: str) -> Run:
    return schedules(cli, db, "add", name, "--cron", "0 3 * * *", "--tz", "Europe/Paris",
                     "--type", "billing.late_fees", "--input", GOOD, *args)  # fmt: skip


def listed(cli: Cli, db: Database) -> list[dict[str, Any]]:
    run = schedules(cli, db, "list", "--json")
    assert run.code == 0, run.err
    rows: list[dict[str, Any]] = json.loads(run.out)["schedules"]
    return rows


def test_a_schedule_s_life_from_the_command_line(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    err = one_line_error(add(cli, jobforge_db))
    assert "feature 'schedules' is disabled for tenant acme " in err
    assert "(jobforge features enable schedules --tenant acme)" in err

    run = cli("features", "enable", "schedules", "--tenant", "acme", "--database-url",
              jobforge_db.dsn)  # fmt: skip
    assert run.code == 0, run.err
    assert run.out.strip() == "feature schedules enabled for tenant acme"

    run = add(cli, jobforge_db)
    assert run.code == 0, run.err
    assert run.out.startswith("schedule nightly added for tenant acme: next slot ")
    assert "+01:00" in run.out or "+02:00" in run.out  # and on Paris's clock

    (row,) = listed(cli, jobforge_db)
    assert (row["name"], row["cron"], row["timezone"], row["type"]) == (
        "nightly", "0 3 * * *", "Europe/Paris", "billing.late_fees")  # fmt: skip
    assert row["input"] == json.loads(GOOD)
    assert row["max_attempts"] == 5  # the runner's
    assert (row["missed"], row["paused"], row["dry_run"]) == ("latest", False, False)
    assert row["next_slot_local"].startswith(row["next_slot_local"][:10])
    assert row["next_slot_local"][11:19] == "03:00:00"  # 03:00 in Paris, whatever UTC says
    text = schedules(cli, jobforge_db, "list")
    assert "nightly" in text.out
    assert "active" in text.out

    run = schedules(cli, jobforge_db, "pause", "nightly")
    assert run.out.strip() == "schedule nightly paused: it fires nothing until resumed"
    assert listed(cli, jobforge_db)[0]["paused"] is True
    run = schedules(cli, jobforge_db, "resume", "nightly")
    assert run.code == 0, run.err
    assert "resumed: slots count from now (none missed while paused is fired)" in run.out
    run = schedules(cli, jobforge_db, "firings", "nightly")
    assert run.out.strip() == "schedule nightly has not fired yet"

    err = one_line_error(add(cli, jobforge_db))
    assert "schedule 'nightly' already exists for tenant acme" in err

    # another tenant sees none of it, and cannot remove it
    assert listed_for(cli, jobforge_db, "globex") == []
    err = one_line_error(schedules(cli, jobforge_db, "rm", "nightly", tenant="globex"), code=1)
    assert err.strip() == "error: schedule 'nightly' not found for tenant globex"

    run = schedules(cli, jobforge_db, "rm", "nightly")
    assert run.out.strip() == "schedule nightly removed"
    assert listed(cli, jobforge_db) == []
    assert schedules(cli, jobforge_db, "list").out.strip() == "no schedules"
    err = one_line_error(schedules(cli, jobforge_db, "pause", "nightly"), code=1)
    assert "schedule 'nightly' not found for tenant acme" in err


def listed_for(cli: Cli, db: Database, tenant: str) -> list[dict[str, Any]]:
    run = schedules(cli, db, "list", "--json", tenant=tenant)
    assert run.code == 0, run.err
    rows: list[dict[str, Any]] = json.loads(run.out)["schedules"]
    return rows


def test_the_firing_log_of_a_dry_run_schedule(cli: Cli, repo: Path, jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, max_size=1) as worker:
        cli("features", "enable", "schedules", "--all-tenants", "--database-url", jobforge_db.dsn)
        run = schedules(cli, jobforge_db, "add", "tick", "--cron", "* * * * *", "--type",
                        "billing.late_fees", "--input", GOOD, "--dry-run")  # fmt: skip
        assert run.code == 0, run.err
        assert "(dry run: its slots are logged, nothing is enqueued)" in run.out
        (row,) = listed(cli, jobforge_db)
        at = datetime.fromisoformat(row["next_slot"]) + timedelta(seconds=5)
        worker.schedule_pass("w", now=at)  # a test database takes the caller's clock
    run = schedules(cli, jobforge_db, "firings", "tick", "--json")
    (firing,) = json.loads(run.out)["firings"]
    assert firing["outcome"] == "dry_run"
    assert firing["job"]["type"] == "billing.late_fees"
    assert firing["job"]["idempotency_key"].startswith("schedule:tick:")
    text = schedules(cli, jobforge_db, "firings", "tick")
    assert "dry_run" in text.out
    assert "would enqueue billing.late_fees schedule:tick:" in text.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cron", "61 * * * *"), "invalid cron expression '61 * * * *'"),
        (("--cron", "* * *"), "give five fields (minute hour day month weekday), not 3"),
        (("--tz", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (("--type", "billing.late_fee"), "did you mean 'billing.late_fees'?"),
        (("--input", '{"invoice": "A-1", "days_late": -1}'), "invalid input for billing.late_fees"),
        (("--input", "[1]"), "the input must be a JSON object, not list"),
        (("--input", "{nope"), "the input is not valid JSON"),
        (("--input-file", "missing.json"), "cannot read input file missing.json"),
        (("--missed", "sometimes"), "--missed 'sometimes': choose latest, all, skip"),
        (("--grace", "soon"), "--grace 'soon': give a duration from 0s up to 1d"),
        (("--grace", "2d"), "--grace '2d': give a duration from 0s up to 1d"),
        (("--name", "Bad Name"), "schedule name 'Bad Name' is invalid"),
    ],
)
def test_a_bad_schedule_is_one_line_before_any_connection(
    cli: Cli, repo: Path, args: tuple[str, ...], message: str
) -> None:
    given = dict(zip(args[::2], args[1::2], strict=True))
    name = given.pop("--name", "nightly")
    options = {"--cron": "0 3 * * *", "--tz": "UTC", "--type": "billing.late_fees",
               "--input": GOOD, **given}  # fmt: skip
    if "--input-file" in options:
        options.pop("--input")
    flat = [part for item in options.items() for part in item]
    run = cli("schedules", "add", name, *flat, "--database-url", NOWHERE, "--tenant", "acme")
    err = one_line_error(run)
    assert message in err


def test_features_refuse_bad_input_and_a_tenant_s_login(
    cli: Cli, jobforge_db: Database, app_login: str
) -> None:
    err = one_line_error(cli("features", "enable", "schedules", "--database-url", NOWHERE))
    assert "give --tenant TENANT or --all-tenants, one of them" in err
    err = one_line_error(cli("features", "enable", "schedules", "--tenant", "a", "--all-tenants",
                             "--database-url", NOWHERE))  # fmt: skip
    assert "give --tenant TENANT or --all-tenants, one of them" in err
    err = one_line_error(cli("features", "enable", "webhooks", "--all-tenants", "--database-url",
                             NOWHERE))  # fmt: skip
    assert "unknown feature 'webhooks': known features are events, schedules, triggers" in err
    for args in (("enable", "schedules", "--tenant", "acme"), ("list",)):
        err = one_line_error(cli("features", *args, "--database-url", app_login))
        assert "only a superuser or a member of jobforge_worker may manage feature flags" in err

    run = cli("features", "enable", "schedules", "--all-tenants", "--database-url",
              jobforge_db.dsn)  # fmt: skip
    assert run.out.strip() == "feature schedules enabled for every tenant without its own setting"
    cli("features", "disable", "schedules", "--tenant", "acme", "--database-url", jobforge_db.dsn)
    run = cli("features", "list", "--json", "--database-url", jobforge_db.dsn)
    (sched,) = [f for f in json.loads(run.out)["features"] if f["feature"] == "schedules"]
    assert sched["default"] is True
    settings = [(s["tenant"], s["enabled"]) for s in sched["settings"]]
    assert settings == [("*", True), ("acme", False)]
    run = cli("features", "clear", "schedules", "--tenant", "acme", "--database-url",
              jobforge_db.dsn)  # fmt: skip
    assert run.out.strip() == "tenant acme follows the deployment's setting of schedules again"
    text = cli("features", "list", "--database-url", jobforge_db.dsn).out
    assert "events" in text
    assert "no (never set)" in text


def test_enqueue_dry_run_checks_everything_and_stores_nothing(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    def enqueue(*args: str) -> Run:
        return cli("enqueue", "billing.late_fees", *args, "--database-url", jobforge_db.dsn,
                   "--tenant", "acme")  # fmt: skip

    run = enqueue(GOOD, "--dry-run", "--json", "--key", "k1")
    assert run.code == 0, run.err
    shown = json.loads(run.out)
    assert shown["dry_run"] is True
    assert shown["would"] == "enqueue"
    assert (shown["type"], shown["max_attempts"]) == ("billing.late_fees", 5)
    assert shown["payload"] == json.loads(GOOD)
    text = enqueue(GOOD, "--dry-run")
    assert "dry run: would enqueue a billing.late_fees job for tenant acme" in text.out
    assert "nothing was enqueued" in text.out
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client:
        assert client.list_jobs().jobs == []
    real = enqueue(GOOD, "--key", "k1", "--json")
    job_id = json.loads(real.out)["job_id"]
    again = json.loads(enqueue(GOOD, "--key", "k1", "--dry-run", "--json").out)
    assert (again["would"], again["existing_job_id"]) == ("return the existing job", job_id)
    # what only the database knows: the key taken by another payload
    err = one_line_error(enqueue('{"invoice": "B-2", "days_late": 1}', "--key", "k1",
                                 "--dry-run"), code=1)  # fmt: skip
    assert "idempotency key 'k1' is already used by job" in err
    err = one_line_error(enqueue('{"invoice": "A-1"}', "--dry-run"))
    assert "invalid input for billing.late_fees" in err
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client:
        assert [j.id for j in client.list_jobs().jobs] == [job_id]


def test_more_mistakes_are_one_line_before_any_connection(cli: Cli, repo: Path) -> None:
    (repo / "latin1.json").write_bytes(b'{"invoice": "\xe9"}')
    base = ("schedules", "add", "nightly", "--cron", "0 3 * * *", "--type", "billing.late_fees",
            "--database-url", NOWHERE, "--tenant", "acme")  # fmt: skip
    cases = [
        ((*base, "--input", GOOD, "--input-file", "in.json"),
         "give --input or --input-file, not both"),
        ((*base, "--input-file", "latin1.json"),
         "cannot read input file latin1.json: it is not UTF-8 text"),
        ((*base, "--input", GOOD, "--catch-up", "0"), "'--catch-up'"),
        ((*base, "--input", GOOD, "--actor", "adm\u200bin"), "actor"),
        (("schedules", "firings", "nightly", "--limit", "0", "--database-url", NOWHERE),
         "'--limit'"),
        (("features", "clear", "schedules", "--database-url", NOWHERE), "'--tenant'"),
        (("worker", "--schedules-every", "0", "--database-url", NOWHERE),
         "--schedules-every takes a number of seconds above 0, at most 3600, not 0"),
        (("worker", "--schedules-every", "7200", "--database-url", NOWHERE),
         "--schedules-every takes a number of seconds above 0, at most 3600, not 7200"),
    ]  # fmt: skip
    for args, message in cases:
        err = one_line_error(cli(*args))
        assert message in err, (args, err)
