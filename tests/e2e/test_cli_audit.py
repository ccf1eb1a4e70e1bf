"""`jobforge audit list|summary` and the actor and reason of `jobforge jobs cancel|retry`, as a
user runs them (subprocesses against a migrated database)."""

from __future__ import annotations

import json

from jobforge.provision import Database
from tests.e2e.conftest import Cli, Run


def _jf(cli: Cli, db: Database, *args: str, actor: str | None = "ops-bot") -> Run:
    env = {"JOBFORGE_TENANT": "acme", "JOBFORGE_DATABASE_URL": db.dsn}
    if actor is not None:
        env["JOBFORGE_ACTOR"] = actor
    return cli(*args, env=env)


def _one_line(result: Run) -> str:
    assert result.code == 2, (result.code, result.err)
    assert result.err.startswith("error: "), result.err
    assert result.err.count("\n") == 1, result.err
    return result.err


def test_who_did_what_and_why(cli: Cli, jobforge_db: Database) -> None:
    made = _jf(cli, jobforge_db, "enqueue", "ops.scan", "{}", "--json", "--allow-unknown-type")
    assert made.code == 0, made.err
    job_id = str(json.loads(made.out)["job_id"])
    canceled = _jf(cli, jobforge_db, "jobs", "cancel", job_id, "--reason", "sent twice")
    assert canceled.code == 0, canceled.err
    retried = _jf(cli, jobforge_db, "jobs", "retry", job_id, "--actor", "alice",
                  "--reason", "it was not")  # fmt: skip
    assert retried.code == 0, retried.err

    listed = _jf(cli, jobforge_db, "audit", "list", "--json")
    assert listed.code == 0, listed.err
    trail = [(e["kind"], e["actor"], e["reason"]) for e in json.loads(listed.out)]
    assert trail == [
        ("rescheduled", "alice", "it was not"),
        ("canceled", "ops-bot", "sent twice"),
        ("created", "ops-bot", None),
    ]
    shown = _jf(cli, jobforge_db, "jobs", "show", job_id)
    assert 'canceled (actor "ops-bot"): "sent twice"' in shown.out, shown.out
    table = _jf(cli, jobforge_db, "audit", "list", "--kind", "canceled")
    assert "sent twice" in table.out
    assert "rescheduled" not in table.out
    summary = json.loads(_jf(cli, jobforge_db, "audit", "summary", "--json").out)
    assert {(c["kind"], c["actor"], c["count"]) for c in summary} == {
        ("created", "ops-bot", 1), ("canceled", "ops-bot", 1), ("rescheduled", "alice", 1),
    }  # fmt: skip
    other = cli(
        "audit",
        "list",
        "--json",
        env={"JOBFORGE_TENANT": "globex", "JOBFORGE_DATABASE_URL": jobforge_db.dsn},
    )
    assert json.loads(other.out) == []  # another tenant's trail is empty


def test_without_an_actor_the_os_login_is_named(cli: Cli, jobforge_db: Database) -> None:
    made = _jf(cli, jobforge_db, "enqueue", "ops.scan", "{}", "--allow-unknown-type",
               actor=None)  # fmt: skip
    assert made.code == 0, made.err
    (event,) = json.loads(_jf(cli, jobforge_db, "audit", "list", "--json").out)
    assert event["actor"]
    assert event["login"]


def test_bad_input_is_one_line_before_connecting(cli: Cli, jobforge_db: Database) -> None:
    assert "--since 'banana'" in _one_line(_jf(cli, jobforge_db, "audit", "list", "--since",
                                                "banana"))  # fmt: skip
    assert "unknown event kind 'cancelled'" in _one_line(
        _jf(cli, jobforge_db, "audit", "summary", "--kind", "cancelled")
    )
    bad_actor = _jf(cli, jobforge_db, "jobs", "cancel", "1", "--actor", "eve\nroot")
    assert "is not 1-200 printable characters" in _one_line(bad_actor)
    long_reason = _jf(cli, jobforge_db, "jobs", "retry", "1", "--reason", "x" * 1001)
    assert "is not 1-1000 characters" in _one_line(long_reason)
