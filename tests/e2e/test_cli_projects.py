"""`--project` on the commands, as subprocesses (migrations/0016): `enqueue --project` puts the
job there, `jobs list|show|cancel|retry`, `runs list` and `stats` with `--project` see and touch
that project only, a bad name is one line before anything is sent, and a login bound to a
project is refused any other in one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge.provision import Database
from tests.e2e.conftest import Cli, Run

PYPROJECT = """\
[tool.jobforge]
runners = ["tally"]
"""

RUNNER = """\
from pydantic import BaseModel

from jobforge import RunContext, runner


class TallyIn(BaseModel):
    n: int


class TallyOut(BaseModel):
    total: int


@runner("e2e.tally", version="1.0.0", input=TallyIn, output=TallyOut, trace_keys=["n"])
def tally(inp: TallyIn, ctx: RunContext) -> TallyOut:
    ctx.decide("n", inp.n, source="input")
    return TallyOut(total=inp.n * 2)
"""


def _enqueue(cli: Cli, url: str, n: int, *args: str, env: dict[str, str] | None = None) -> Run:
    return cli("enqueue", "e2e.tally", json.dumps({"n": n}), "--json", "--database-url", url,
               "--tenant", "acme", *args, env=env)  # fmt: skip


@pytest.fixture
def queued(cli: Cli, project: Path, jobforge_db: Database) -> dict[str, Any]:
    """A runner repository and three jobs of tenant acme: in projects a, b and default."""
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "tally.py").write_text(RUNNER)
    url = jobforge_db.dsn
    ids: dict[str, int] = {}
    for name, args in (("a", ("--project", "a")), ("b", ("--project", "b")), ("default", ())):
        run = _enqueue(cli, url, len(ids) + 1, *args)
        assert run.code == 0, run.err
        ids[name] = json.loads(run.out)["job_id"]
    return {"url": url, "ids": ids}


def _listed(cli: Cli, url: str, *args: str, env: dict[str, str] | None = None) -> list[Any]:
    run = cli("jobs", "list", "--database-url", url, "--tenant", "acme", "--json", *args, env=env)
    assert run.code == 0, run.err
    return [(job["id"], job["project"]) for job in json.loads(run.out)["jobs"]]


def test_enqueue_and_list_by_project(cli: Cli, queued: dict[str, Any]) -> None:
    url, ids = queued["url"], queued["ids"]
    assert _listed(cli, url, "--project", "a") == [(ids["a"], "a")]
    assert _listed(cli, url, env={"JOBFORGE_PROJECT": "b"}) == [(ids["b"], "b")]
    assert sorted(_listed(cli, url)) == sorted((i, p) for p, i in ids.items())
    table = cli("jobs", "list", "--database-url", url, "--tenant", "acme", "--project", "a")
    assert table.code == 0, table.err
    assert "project" in table.out.splitlines()[1]
    assert f"{ids['a']} " in table.out
    assert f"{ids['b']} " not in table.out


def test_show_prints_the_project_and_stays_in_the_scope(cli: Cli, queued: dict[str, Any]) -> None:
    url, ids = queued["url"], queued["ids"]
    shown = cli("jobs", "show", str(ids["a"]), "--database-url", url, "--tenant", "acme")
    assert shown.code == 0, shown.err
    assert "project: a" in shown.out.splitlines()
    other = cli("jobs", "show", str(ids["b"]), "--database-url", url, "--tenant", "acme",
                "--project", "a")  # fmt: skip
    assert other.code != 0
    assert other.err.strip() == f"error: job {ids['b']} not found"


def test_the_same_key_in_two_projects_makes_two_jobs(cli: Cli, queued: dict[str, Any]) -> None:
    url = queued["url"]
    first = _enqueue(cli, url, 9, "--key", "k", "--project", "a")
    again = _enqueue(cli, url, 9, "--key", "k", "--project", "a")
    other = _enqueue(cli, url, 9, "--key", "k", "--project", "b")
    assert json.loads(again.out) == {"job_id": json.loads(first.out)["job_id"], "created": False}
    assert json.loads(other.out)["created"] is True


def test_bulk_cancel_and_stats_in_a_project(cli: Cli, queued: dict[str, Any]) -> None:
    url, ids = queued["url"], queued["ids"]
    done = cli("jobs", "cancel", "--status", "queued", "--project", "b", "--database-url", url,
               "--tenant", "acme")  # fmt: skip
    assert done.code == 0, done.err
    assert "canceled 1 job of tenant acme project b" in done.out
    states = cli("jobs", "list", "--database-url", url, "--tenant", "acme", "--json")
    status = {job["id"]: job["status"] for job in json.loads(states.out)["jobs"]}
    assert status == {ids["a"]: "queued", ids["b"]: "canceled", ids["default"]: "queued"}
    stats = cli("jobs", "stats", "--database-url", url, "--tenant", "acme", "--project", "b",
                "--json")  # fmt: skip
    assert stats.code == 0, stats.err
    assert json.loads(stats.out)["by_type"] == {"e2e.tally": {"canceled": 1}}  # b's only
    for project, expected in (("a", []), ("b", [ids["b"]])):
        audit = cli("audit", "list", "--kind", "canceled", "--project", project, "--json",
                    "--database-url", url, "--tenant", "acme")  # fmt: skip
        assert audit.code == 0, audit.err
        assert [e["job_id"] for e in json.loads(audit.out)] == expected


def test_runs_list_by_project(cli: Cli, queued: dict[str, Any]) -> None:
    url, ids = queued["url"], queued["ids"]
    worker = cli("worker", "--exit-when-idle", "--database-url", url)
    assert worker.code == 0, worker.err
    run = cli("runs", "list", "--database-url", url, "--tenant", "acme", "--project", "a",
              "--json")  # fmt: skip
    assert run.code == 0, run.err
    assert [(r["job_id"], r["project"]) for r in json.loads(run.out)] == [(ids["a"], "a")]
    pruned = cli("prune", "--older-than", "0s", "--project", "a", "--throttle", "0", "--json",
                 "--database-url", url)  # fmt: skip
    assert pruned.code == 0, pruned.err
    assert (json.loads(pruned.out)["jobs"], json.loads(pruned.out)["runs"]) == (1, 1)
    left = cli("jobs", "list", "--database-url", url, "--tenant", "acme", "--json")
    assert sorted(j["project"] for j in json.loads(left.out)["jobs"]) == ["b", "default"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--project", ""), None, "error: --project '' is not a project name"),
        (("--project", "a b"), None, "error: --project 'a b' is not a project name"),
        (("--project", "x" * 129), None, "error: --project is 129 characters, over the limit"),
        ((), {"JOBFORGE_PROJECT": ""}, "error: JOBFORGE_PROJECT '' is not a project name"),
    ],
    ids=["empty", "space", "too-long", "empty-env"],
)
def test_a_bad_project_is_one_line(
    cli: Cli, jobforge_db: Database, args: tuple[str, ...], env: dict[str, str] | None,
    message: str,
) -> None:  # fmt: skip
    for command in (("enqueue", "e2e.tally", "{}", "--allow-unknown-type"), ("jobs", "list"),
                    ("runs", "list"), ("jobs", "stats"), ("health",), ("audit", "list"),
                    ("prune", "--dry-run")):  # fmt: skip
        run = cli(*command, "--database-url", jobforge_db.dsn, "--tenant", "acme", *args, env=env)
        assert run.code == 2, (command, run.err)
        assert len(run.err.strip().splitlines()) == 1, run.err
        assert run.err.startswith(message), (command, run.err)


@pytest.fixture
def bound_login(jobforge_db: Database) -> Iterator[str]:
    """The URL of a fresh app login bound to tenant acme and project a."""
    name = "jf_cli_proj_" + jobforge_db.name[-8:]
    with jobforge_db.connect() as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_app").format(sql.Identifier(name))
        )
        admin.execute(
            "INSERT INTO jobforge.tenant_logins (login, tenants, projects) "
            "VALUES (%s, '{acme}', '{a}')",
            (name,),
        )
    yield make_conninfo(jobforge_db.dsn, user=name)
    with jobforge_db.connect() as admin:
        admin.execute("DELETE FROM jobforge.tenant_logins WHERE login = %s", (name,))
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_a_login_bound_to_a_project_is_refused_any_other(
    cli: Cli, queued: dict[str, Any], bound_login: str
) -> None:
    for args in (("--project", "b"), ()):
        run = _enqueue(cli, bound_login, 1, *args)
        assert run.code == 2, run.err
        assert len(run.err.strip().splitlines()) == 1, run.err
        assert "may not act for project 'b'" in run.err if args else "name one" in run.err
        assert _listed(cli, bound_login, *args) == []
    own = _enqueue(cli, bound_login, 1, "--project", "a")
    assert own.code == 0, own.err
    listed = _listed(cli, bound_login, "--project", "a")
    assert {p for _, p in listed} == {"a"}
    assert len(listed) == 2
