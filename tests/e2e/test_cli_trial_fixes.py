"""What a new user's trial of the CLI found, fixed: a bad number is one line naming its option
(never an OverflowError or a database's "bigint out of range"), usage errors click finds are one
line too, `enqueue` takes one payload and stores it as given, `jobs show` prints a result and a
readable error, `jobs retry` names its flag, "not found" is exit 1 everywhere, run statuses are
checked, and a count of 1 is in the singular."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobforge.provision import Database, Server
from tests.e2e.conftest import Cli, Run

PYPROJECT = """\
[tool.jobforge]
runners = ["trial"]
"""

RUNNERS = """\
from pydantic import BaseModel

from jobforge import RunContext, runner


class In(BaseModel):
    title: str
    tier: str = "free"
    urgent: bool = False


class Out(BaseModel):
    title: str


@runner("trial.ok", version="1.0.0", input=In, output=Out, max_attempts=4)
def ok(inp: In, ctx: RunContext) -> Out:
    return Out(title=inp.title + SUFFIX)


@runner("trial.boom", version="1.0.0", input=In, output=Out, max_attempts=1)
def boom(inp: In, ctx: RunContext) -> Out:
    raise ValueError(f"boom {inp.title}")
"""

#: A server that never answers: whatever is checked before connecting is told, not this.
NOWHERE = {"JOBFORGE_DATABASE_URL": "postgresql://u@127.0.0.1:1/x", "JOBFORGE_TENANT": "acme"}
BIG = "99999999999999999999"  # beyond a bigint


def _write_runners(project: Path, suffix: str = "") -> None:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "trial.py").write_text(RUNNERS.replace("SUFFIX", repr(suffix)))
    for cached in project.rglob("__pycache__"):
        for file in cached.iterdir():
            file.unlink()


def _one_error_line(result: Run) -> str:
    assert result.err.startswith("error: "), result.err
    assert result.err.count("\n") == 1, f"not one line: {result.err!r}"
    return result.err


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("worker", "--exit-when-idle", "--metrics-port", "99999"), "'--metrics-port'"),
        (("worker", "--metrics-port", "0"), "'--metrics-port'"),
        (("worker", "--concurrency", "0"), "'--concurrency'"),
        (("worker", "--concurrency", "10001"), "'--concurrency'"),
        (("worker", "--prefetch", "-1"), "'--prefetch'"),
        (("worker", "--claim-batch", "0"), "'--claim-batch'"),
        (("worker", "--lease", "-1"), "--lease takes a number of seconds above 0, at most 86400"),
        (("worker", "--lease", "0"), "--lease takes"),
        (("worker", "--lease", "nan"), "--lease takes"),
        (("worker", "--lease", "86401"), "--lease takes"),
        (("worker", "--grace", "-1"), "--grace takes a number of seconds 0 or more, not -1"),
        (("worker", "--cancel-grace", "-0.5"), "--cancel-grace takes"),
        (("worker", "--timeout", "0"), "--timeout takes a number of seconds above 0, not 0"),
        (("worker", "--timeout", "inf"), "--timeout takes"),
        (("certify", "--runs", "0"), "'--runs'"),
        (("enqueue", "trial.ok", "--run-at", "tomorrow"), "'--run-at'"),
        (("enqueue", "trial.ok", "--priority", "abc"), "'--priority'"),
        (("jobs", "show", BIG), "9223372036854775807"),
        (("jobs", "cancel", BIG), "9223372036854775807"),
        (("jobs", "list", "--before", BIG), "'--before'"),
        (("runs", "show", BIG), "9223372036854775807"),
        (("runs", "list", "--job", BIG), "'--job'"),
        (
            ("runs", "list", "--status", "bogus"),
            "unknown run status 'bogus': choose one of succeeded, failed, retry, invalid_input",
        ),
        (("runs", "export", "--status", "dead"), "unknown run status 'dead'"),
        (("nonsense",), "No such command 'nonsense'"),
    ],
)
def test_a_bad_value_is_one_line_naming_it_before_anything_connects(
    cli: Cli, args: tuple[str, ...], names: str
) -> None:
    result = cli(*args, env=NOWHERE)
    assert result.code == 2, result
    assert result.out == ""
    assert names in _one_error_line(result)


def test_click_s_usage_errors_say_where_more_help_is(cli: Cli) -> None:
    result = cli("certify", "--runs", "0")
    assert "(see jobforge certify --help)" in _one_error_line(result)
    # what is not an error keeps its exit code: help without a command, a status that says "no"
    bare = cli("jobs")
    assert bare.code == 2
    assert "Usage: jobforge jobs" in bare.err
    assert cli("db", "status").code == 1
    assert cli("jobs", "list", "--help").code == 0


def test_one_runner_is_counted_in_the_singular(cli: Cli, project: Path) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "trial.py").write_text(
        RUNNERS.split('@runner("trial.boom"')[0].replace("SUFFIX", "''")
    )
    assert cli("contracts", "lock").code == 0
    check = cli("contracts", "check")
    assert check.code == 0, check.err
    assert "contracts: ok (1 runner matches)" in check.out


@pytest.fixture
def repo(cli: Cli, project: Path, jobforge_db: Database) -> dict[str, Any]:
    """A runner repository and its database, with a succeeded job and a dead one."""
    _write_runners(project)
    env = {"JOBFORGE_DATABASE_URL": jobforge_db.dsn, "JOBFORGE_TENANT": "acme"}
    ids = []
    for job_type in ("trial.ok", "trial.boom"):
        made = cli("enqueue", job_type, '{"title": "naive"}', "--json", env=env)
        assert made.code == 0, made.err
        ids.append(json.loads(made.out)["job_id"])
    worker = cli("worker", "--exit-when-idle", env=env)
    assert worker.code == 0, worker.err
    return {"env": env, "ok": str(ids[0]), "boom": str(ids[1])}


@pytest.mark.slow
def test_enqueue_stores_the_payload_as_given_and_takes_one_payload(
    cli: Cli, project: Path, repo: dict[str, Any]
) -> None:
    env = repo["env"]
    shown = json.loads(cli("jobs", "show", repo["ok"], "--json", env=env).out)
    # validated against the input model, stored without its defaults filled in
    assert shown["job"]["payload"] == {"title": "naive"}
    assert shown["job"]["max_attempts"] == 4  # the runner's, still
    invalid = cli("enqueue", "trial.ok", '{"tier": "free"}', env=env)
    assert "title: Field required" in _one_error_line(invalid)

    (project / "p.json").write_text('{"title": "from the file"}')
    both = cli("enqueue", "trial.ok", '{"title": "both"}', "--payload-file", "p.json", env=env)
    assert both.code == 2
    assert "give PAYLOAD_JSON or --payload-file, not both" in _one_error_line(both)
    listed = json.loads(cli("jobs", "list", "--json", env=env).out)["jobs"]
    assert len(listed) == 2  # nothing more was stored


@pytest.mark.slow
def test_jobs_show_prints_the_result_and_a_readable_error(cli: Cli, repo: dict[str, Any]) -> None:
    env = repo["env"]
    ok = cli("jobs", "show", repo["ok"], env=env)
    assert ok.code == 0, ok.err
    assert 'result: {"title": "naive"}' in ok.out.splitlines()
    assert json.loads(cli("jobs", "show", repo["ok"], "--json", env=env).out)["result"] == {
        "title": "naive"
    }

    boom = cli("jobs", "show", repo["boom"], env=env)
    assert boom.code == 0, boom.err
    lines = boom.out.splitlines()
    assert "error: exception (ValueError): boom naive" in lines
    assert "  Traceback (most recent call last):" in lines
    assert "  ValueError: boom naive" in lines
    assert "\\n" not in boom.out
    as_json = json.loads(cli("jobs", "show", repo["boom"], "--json", env=env).out)
    assert as_json["result"] is None
    error = as_json["job"]["error"]
    assert (error["kind"], error["message"]) == ("exception", "boom naive")
    assert error["traceback"].startswith("Traceback (most recent call last):\n")


@pytest.mark.slow
def test_retrying_an_exhausted_job_names_the_flag(cli: Cli, repo: dict[str, Any]) -> None:
    env = repo["env"]
    refused = cli("jobs", "retry", repo["boom"], env=env)
    assert refused.code == 1
    err = _one_error_line(refused)
    assert f"job {repo['boom']} has used its 1 attempt: retry it with --reset-attempts" in err
    assert "reset_attempts" not in err
    assert cli("jobs", "retry", repo["boom"], "--reset-attempts", env=env).code == 0


@pytest.mark.slow
def test_nothing_found_is_exit_1_everywhere(cli: Cli, repo: dict[str, Any]) -> None:
    env = repo["env"]
    for args, message in (
        (("jobs", "show", "999"), "job 999 not found"),
        (("runs", "show", "999"), "no recorded run for job 999"),
        (("runs", "show", repo["ok"], "--attempt", "7"), "no recorded run for attempt 7 of job"),
        (("runs", "export", "--job", "999"), "no recorded run matches"),
        (("replay", "--job", "999"), "no recorded run matches"),
    ):
        result = cli(*args, env=env)
        assert result.code == 1, (args, result)
        assert message in _one_error_line(result)


@pytest.mark.slow
def test_counts_of_one_are_in_the_singular(
    cli: Cli, project: Path, repo: dict[str, Any], jobforge_server: Server
) -> None:
    env = repo["env"]
    listed = cli("runs", "list", "--type", "trial.ok", env=env)
    assert listed.out.splitlines()[-1] == "1 run"
    exported = cli("runs", "export", "--type", "trial.ok", env=env)
    assert exported.out.splitlines()[-1] == "1 bundle written"
    golden = cli("runs", "export", "--type", "trial.ok", "--to", "golden", env=env)
    assert golden.out.splitlines()[-1] == "1 golden case written"

    scratch = {"JOBFORGE_SCRATCH_DATABASE_URL": jobforge_server.dsn}
    _write_runners(project, suffix="!")  # the output changes: the bundle diverges
    diverged = cli("replay", "bundles", env=scratch)
    assert diverged.code == 1, diverged.out + diverged.err
    assert "1 failure saved under .jobforge/failed/" in diverged.out
    _write_runners(project)
    again = cli("replay", "--failed", env=scratch)
    assert again.code == 0, again.out + again.err
    assert "1 saved failure now passes and was dropped" in again.out
