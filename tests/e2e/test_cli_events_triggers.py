"""`jobforge events` and `jobforge triggers` as subprocesses, in a runner repository: a trigger
added (its template checked against the runner's model), tested on an event file without
storing anything, fired by a submitted event, its evaluation log; submit from options or an
event file, dedupe, dry run, list; the flags that refuse; one-line errors for bad input, told
before any connection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobforge.provision import Database
from tests.e2e.conftest import Cli, Run

pytestmark = pytest.mark.slow

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

TEMPLATE = '{"invoice": "$.subject", "days_late": "$.data.days"}'
EVENT = {"type": "invoice.overdue", "source": "ledger", "subject": "A-1", "data": {"days": 3}}


@pytest.fixture
def repo(project: Path) -> Path:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "billing.py").write_text(RUNNERS)
    (project / "event.json").write_text(json.dumps(EVENT))
    return project


def one_line_error(run: Run, code: int = 2) -> str:
    assert run.code == code, run.out + run.err
    assert run.err.startswith("error:"), run.err
    assert len(run.err.strip().splitlines()) == 1, run.err
    return run.err


def on(cli: Cli, db: Database, group: str, *args: str, tenant: str = "acme") -> Run:
    return cli(group, *args, "--database-url", db.dsn, "--tenant", tenant)


def add(cli: Cli, db: Database, *args: str, name: str = "late") -> Run:
    return on(cli, db, "triggers", "add", name, "--on", "invoice.overdue", "--where",
              "days gt 0", "--type", "billing.late_fees", "--input", TEMPLATE, *args)  # fmt: skip


def as_json(run: Run) -> Any:
    assert run.code == 0, run.out + run.err
    return json.loads(run.out)


def test_a_trigger_s_life_from_the_command_line(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    err = one_line_error(add(cli, jobforge_db))
    assert "feature 'triggers' is disabled for tenant acme" in err
    assert "(jobforge features enable triggers --tenant acme)" in err
    err = one_line_error(on(cli, jobforge_db, "events", "submit", "event.json"))
    assert "feature 'events' is disabled for tenant acme" in err
    for feature in ("events", "triggers"):
        run = cli("features", "enable", feature, "--tenant", "acme", "--database-url",
                  jobforge_db.dsn)  # fmt: skip
        assert run.code == 0, run.err

    run = add(cli, jobforge_db, "--cooldown", "1m", "--max-per-hour", "10")
    assert run.code == 0, run.err
    assert run.out.strip() == (
        "trigger late added for tenant acme: on invoice.overdue where days gt 0 enqueue "
        "billing.late_fees"
    )
    (row,) = as_json(on(cli, jobforge_db, "triggers", "list", "--json"))["triggers"]
    assert (row["on"], row["cooldown"], row["max_per_hour"]) == ("invoice.overdue", "1m", 10)
    assert (row["priority"], row["max_attempts"]) == (0, 5)  # the runner's max_attempts
    assert row["where"] == [{"path": "days", "op": "gt", "value": 0}]
    assert "late" in on(cli, jobforge_db, "triggers", "list").out

    # test: matched, the input shown and checked; nothing stored
    run = on(cli, jobforge_db, "triggers", "test", "late", "event.json")
    assert run.code == 0, run.err
    assert run.out.startswith("matched: would enqueue billing.late_fees with input")
    assert '"invoice": "A-1"' in run.out
    found = as_json(on(cli, jobforge_db, "triggers", "test", "late", "event.json", "--json"))
    assert found["input"] == {"invoice": "A-1", "days_late": 3}
    assert found["invalid"] is None
    (repo / "early.json").write_text(json.dumps({**EVENT, "data": {"days": 0}}))
    run = on(cli, jobforge_db, "triggers", "test", "late", "early.json")
    assert run.code == 1
    assert run.out.strip() == "not matched: days gt 0 is false (data.days is 0)"
    (repo / "odd.json").write_text(json.dumps({**EVENT, "data": {"days": 2.5}}))
    run = on(cli, jobforge_db, "triggers", "test", "late", "odd.json")
    assert run.code == 1
    assert "but the input is not valid: invalid input for billing.late_fees: days_late" in run.out
    assert as_json(on(cli, jobforge_db, "events", "list", "--json"))["events"] == []

    # a dry-run submit keeps nothing
    run = on(cli, jobforge_db, "events", "submit", "event.json", "--dry-run")
    assert run.code == 0, run.err
    assert "dry run: event invoice.overdue would be stored (nothing was kept)" in run.out
    assert "trigger late: dry run: would enqueue billing.late_fees trigger:late:" in run.out
    assert as_json(on(cli, jobforge_db, "events", "list", "--json"))["events"] == []

    # submit fires; the resubmit under the same key returns the first
    done = as_json(on(cli, jobforge_db, "events", "submit", "event.json", "--dedupe-key", "k1",
                      "--json"))  # fmt: skip
    assert done["created"] is True
    (evaluation,) = done["evaluations"]
    assert evaluation["outcome"] == "fired"
    job_id = evaluation["job_id"]
    again = on(cli, jobforge_db, "events", "submit", "event.json", "--dedupe-key", "k1")
    assert again.code == 0, again.err
    assert "was submitted before under dedupe key k1: returned as it was" in again.out
    err = one_line_error(on(cli, jobforge_db, "events", "submit", "--type", "invoice.overdue",
                            "--source", "other", "--dedupe-key", "k1"), code=1)  # fmt: skip
    assert "dedupe key 'k1' is already used by event" in err

    # within the cooldown: logged, skipped
    run = on(cli, jobforge_db, "events", "submit", "--type", "invoice.overdue", "--source",
             "ledger", "--subject", "A-2", "--data", '{"days": 9}',
             "--actor", "ops-bot")  # fmt: skip
    assert run.code == 0, run.err
    assert "trigger late: skipped (cooldown)" in run.out

    log = as_json(on(cli, jobforge_db, "triggers", "evaluations", "late", "--json"))
    assert [e["reason"] or e["outcome"] for e in log["evaluations"]] == ["cooldown", "fired"]
    assert log["evaluations"][1]["job_id"] == job_id
    assert "fired job" in on(cli, jobforge_db, "triggers", "evaluations").out

    events = as_json(on(cli, jobforge_db, "events", "list", "--json"))["events"]
    assert [e["subject"] for e in events] == ["A-2", "A-1"]
    assert events[0]["actor"] == "ops-bot"  # the audit actor of the submit
    err = one_line_error(on(cli, jobforge_db, "triggers", "evaluations", "nope"), code=1)
    assert err.strip() == "error: trigger 'nope' not found for tenant acme"
    err = one_line_error(on(cli, jobforge_db, "triggers", "test", "nope", "event.json"), code=1)
    assert err.strip() == "error: trigger 'nope' not found for tenant acme"
    typed = on(cli, jobforge_db, "events", "list", "--type", "nope", "--since", "1h", "--json")
    assert as_json(typed)["events"] == []
    job = as_json(cli("jobs", "show", str(job_id), "--json", "--database-url", jobforge_db.dsn,
                      "--tenant", "acme"))  # fmt: skip
    assert job["job"]["payload"] == {"invoice": "A-1", "days_late": 3}
    assert job["job"]["max_attempts"] == 5  # the runner's, as for an enqueue

    # another tenant sees none of it
    assert as_json(on(cli, jobforge_db, "events", "list", "--json", tenant="globex")) == {
        "events": []}  # fmt: skip
    err = one_line_error(on(cli, jobforge_db, "triggers", "rm", "late", tenant="globex"), code=1)
    assert err.strip() == "error: trigger 'late' not found for tenant globex"

    assert on(cli, jobforge_db, "triggers", "pause", "late").code == 0
    assert on(cli, jobforge_db, "triggers", "resume", "late").code == 0
    run = on(cli, jobforge_db, "triggers", "rm", "late")
    assert run.out.strip() == "trigger late removed"
    assert on(cli, jobforge_db, "triggers", "list").out.strip() == "no triggers"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--where", "days gt"), "--where 'days gt': give 'PATH OP VALUE' as one argument"),
        (("--where", "days like 3"), "the op must be one of eq, ne, in, exists"),
        (("--where", "days gt many"), "gt compares numbers: give a number"),
        (("--where", "region in eu"), "in needs a JSON array"),
        (("--where", "a..b eq 1"), "the path must be dotted keys into the data"),
        (("--input", '{"invoice": "$.nope", "days_late": 1}'), "'$.nope' is not an event field"),
        (("--input", '{"invoice": "A-1"}'), "invalid input for billing.late_fees: days_late"),
        (("--input", '{"invoice": 1, "days_late": "$.data.d"}'), "invoice: Input should be"),
        (("--input", "[1]"), "the input template must be a JSON object, not list"),
        (("--type", "billing.late_fee"), "did you mean 'billing.late_fees'?"),
        (("--cooldown", "2d"), "--cooldown '2d': give a duration from 0s up to 1d"),
        (("--dedupe", "order"), "dedupe 'order' is not an event field"),
        (("--on", "bad type"), "event type 'bad type' is invalid"),
        (("--name", "Bad Name"), "trigger name 'Bad Name' is invalid"),
        (("--actor", "x\x07"), "actor"),
    ],
)
def test_a_bad_trigger_is_one_line_before_any_connection(
    cli: Cli, repo: Path, args: tuple[str, ...], message: str
) -> None:
    given = dict(zip(args[::2], args[1::2], strict=True))
    name = given.pop("--name", "late")
    options = {"--on": "invoice.overdue", "--type": "billing.late_fees", "--input": TEMPLATE,
               **given}  # fmt: skip
    flat = [part for item in options.items() for part in item]
    run = cli("triggers", "add", name, *flat, "--database-url", NOWHERE, "--tenant", "acme")
    assert message in one_line_error(run)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give --type and --source (or an event file with the whole envelope)"),
        (("--type", "t"), "give --type and --source"),
        (("--type", "bad type", "--source", "s"), "the event: type: String should match"),
        (("--type", "t", "--source", "s", "--data", "[1]"), "the data must be a JSON object"),
        (("--type", "t", "--source", "s", "--data", "{x"), "the data is not valid JSON"),
        (
            ("--type", "t", "--source", "s", "--data", "{}", "--data-file", "e.json"),
            "give --data or --data-file, not both",
        ),
        (("--type", "t", "--source", "s", "--time", "yesterday"), "is not an ISO 8601 instant"),
        (("--type", "t", "--source", "s", "--time", "2026-01-01T00:00:00"), "needs a UTC offset"),
        (("event.json", "--type", "t"), "give an event file or --type, not both"),
        (("missing.json",), "cannot read event file missing.json"),
        (("bad.json",), "event file bad.json has unknown field(s) datta"),
        (("list.json",), "event file list.json must be a JSON object"),
    ],
)
def test_a_bad_event_is_one_line_before_any_connection(
    cli: Cli, repo: Path, args: tuple[str, ...], message: str
) -> None:
    (repo / "bad.json").write_text('{"type": "t", "source": "s", "datta": {}}')
    (repo / "list.json").write_text("[]")
    run = cli("events", "submit", *args, "--database-url", NOWHERE, "--tenant", "acme")
    assert message in one_line_error(run)


def test_list_and_test_refuse_bad_options_in_one_line(cli: Cli, repo: Path) -> None:
    run = cli("events", "list", "--since", "whenever", "--database-url", NOWHERE, "--tenant", "a")
    assert "--since 'whenever': give a duration (1h, 2d) or an ISO 8601 instant" in (
        one_line_error(run))  # fmt: skip
    run = cli("triggers", "test", "late", "missing.json", "--database-url", NOWHERE,
              "--tenant", "a")  # fmt: skip
    assert "cannot read event file missing.json" in one_line_error(run)
    run = cli("events", "list", "--database-url", NOWHERE)
    assert "tenant" in one_line_error(run)
