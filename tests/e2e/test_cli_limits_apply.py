"""`jobforge limits apply` as a subprocess in a throwaway runner repo against a migrated
throwaway database: the declared limits written (a dry run first, which writes nothing), a
hand-set row reported and then replaced, JSON for scripts, one-line errors before any
connection (an unknown runner, a bad declaration, no runners, a missing --project) and a login
that may not manage limits."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge.provision import Database
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

#: No server answers here: what is checked before connecting never reaches it.
NOWHERE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"

PYPROJECT = """\
[project]
name = "runner-repo"
version = "0.0.0"

[tool.jobforge]
runners = ["myrunners"]
"""

RUNNERS_MODULE = """\
from pydantic import BaseModel

from jobforge.contracts import Limits, runner


class In(BaseModel):
    i: int


class Out(BaseModel):
    ok: bool


@runner("ops.crawl", version="1.0.0", input=In, output=Out,
        limits=Limits(max_running=2, rate_per_s=5, burst=10))
def crawl(inp, ctx):
    return Out(ok=True)


@runner("ops.mail", version="1.0.0", input=In, output=Out, limits=Limits(max_running=1))
def mail(inp, ctx):
    return Out(ok=True)


@runner("ops.free", version="1.0.0", input=In, output=Out)
def free(inp, ctx):
    return Out(ok=True)
"""


@pytest.fixture
def repo(project: Path) -> Path:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "myrunners.py").write_text(RUNNERS_MODULE)
    return project


def listed(cli: Cli, dsn: str) -> list[dict[str, object]]:
    run = cli("limits", "list", "--json", "--database-url", dsn)
    assert run.code == 0, run.err
    found: list[dict[str, object]] = json.loads(run.out)
    return found


def test_apply_writes_the_declared_limits_after_a_dry_run(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    url = ("--database-url", jobforge_db.dsn)
    dry = cli("limits", "apply", "--dry-run", *url)
    assert (dry.code, dry.err) == (0, "")
    assert dry.out.splitlines() == [
        "added ops.crawl: would set max_running 2, rate_per_s 5/s, burst 10",
        "added ops.mail: would set max_running 1",
        "limits apply: 2 added (dry run, 2 would be written)",
    ]
    assert listed(cli, jobforge_db.dsn) == []

    done = cli("limits", "apply", *url)
    assert (done.code, done.err) == (0, "")
    assert done.out.splitlines() == [
        "added ops.crawl: set max_running 2, rate_per_s 5/s, burst 10",
        "added ops.mail: set max_running 1",
        "limits apply: 2 added (2 written)",
    ]
    assert listed(cli, jobforge_db.dsn) == [
        {"scope": "type", "key": "ops.crawl", "max_running": 2, "rate_per_s": 5.0, "burst": 10.0},
        {"scope": "type", "key": "ops.mail", "max_running": 1, "rate_per_s": None, "burst": None},
    ]
    again = cli("limits", "apply", *url)
    assert again.out.splitlines()[-1] == "limits apply: 2 unchanged (0 written)"


def test_a_hand_set_limit_is_reported_then_replaced(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    url = ("--database-url", jobforge_db.dsn)
    assert cli("limits", "apply", *url).code == 0
    assert cli("limits", "set", "type", "ops.mail", "--max-running", "9", *url).code == 0
    assert cli("limits", "set", "type", "ops.free", "--max-running", "3", *url).code == 0
    dry = cli("limits", "apply", "--dry-run", *url)
    assert dry.out.splitlines() == [
        "unchanged ops.crawl: max_running 2, rate_per_s 5/s, burst 10 already in the database",
        "undeclared ops.free: max_running 3 in the database, no limits declared: left as it is "
        "(`jobforge limits clear type ops.free` removes it)",
        "changed ops.mail: would replace max_running 9 (in the database) with max_running 1",
        "limits apply: 1 changed, 1 unchanged, 1 undeclared (dry run, 1 would be written)",
    ]
    assert {x["key"]: x["max_running"] for x in listed(cli, jobforge_db.dsn)} == {
        "ops.crawl": 2, "ops.free": 3, "ops.mail": 9,
    }  # fmt: skip
    only_mail = cli("limits", "apply", "ops.mail", "--json", *url)
    assert only_mail.code == 0, only_mail.err
    assert json.loads(only_mail.out) == {
        "dry_run": False,
        "runners": [{
            "runner": "ops.mail", "action": "changed",
            "declared": {"max_running": 1, "rate_per_s": None, "burst": None},
            "database": {"max_running": 9, "rate_per_s": None, "burst": None},
        }],
    }  # fmt: skip
    assert {x["key"]: x["max_running"] for x in listed(cli, jobforge_db.dsn)} == {
        "ops.crawl": 2, "ops.free": 3, "ops.mail": 1,
    }  # fmt: skip


def test_the_project_may_be_given(cli: Cli, repo: Path, jobforge_db: Database,
                                  tmp_path: Path) -> None:  # fmt: skip
    run = cli("limits", "apply", "--dry-run", "--project", str(repo),
              "--database-url", jobforge_db.dsn, cwd=tmp_path)  # fmt: skip
    assert run.code == 0, run.err
    assert run.out.splitlines()[-1] == "limits apply: 2 added (dry run, 2 would be written)"


def test_no_runner_declaring_limits_is_said(cli: Cli, project: Path, jobforge_db: Database) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "myrunners.py").write_text(
        RUNNERS_MODULE.replace(", limits=Limits(max_running=1)", "").replace(
            ",\n        limits=Limits(max_running=2, rate_per_s=5, burst=10)", ""
        )
    )
    run = cli("limits", "apply", "--database-url", jobforge_db.dsn)
    assert (run.code, run.err) == (0, "")
    assert run.out.strip() == "limits apply: none of 3 runners declares queue limits; nothing to do"


def _bad_declaration(project: Path) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "myrunners.py").write_text(
        RUNNERS_MODULE.replace("limits=Limits(max_running=1)", "limits=Limits(max_running=0)")
    )


def _no_runners(project: Path) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT.replace('["myrunners"]', "[]"))


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ("ops.crawll",),
         "error: no runner 'ops.crawll' is declared (did you mean 'ops.crawl'?) "
         "(declared: ops.crawl, ops.free, ops.mail)"),
        (None, ("--project", "no/such/folder"), "error: --project no/such/folder: no such folder"),
        (_bad_declaration, (),
         "error: runner 'ops.mail' (myrunners.mail): limits max_running 0 is out of range: "
         "give 1-1000000"),
        (_no_runners, (),
         "error: no runner is declared ([tool.jobforge] runners of {root}, no jobforge.runners "
         "entry point): nothing to apply"),
    ],
    ids=["unknown-runner", "no-project", "bad-declaration", "no-runners"],
)  # fmt: skip
def test_a_bad_input_is_one_line_before_any_connection(
    cli: Cli, repo: Path, setup: object, args: tuple[str, ...], message: str
) -> None:
    if callable(setup):
        setup(repo)
    run = cli("limits", "apply", *args, "--database-url", NOWHERE)
    assert run.code == 2, run.out + run.err
    assert run.err.strip() == message.format(root=repo.resolve())
    assert len(run.err.strip().splitlines()) == 1


@pytest.fixture
def app_login(jobforge_db: Database) -> Iterator[str]:
    """The URL of a fresh login that is a member of jobforge_app only (roles are cluster-wide)."""
    name = f"jf_apply_app_{secrets.token_hex(4)}"
    with jobforge_db.connect() as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_app").format(sql.Identifier(name))
        )
    yield make_conninfo(jobforge_db.dsn, user=name)
    with jobforge_db.connect() as admin:
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_an_app_login_may_not_apply_limits(
    cli: Cli, repo: Path, app_login: str, jobforge_db: Database
) -> None:
    for dry in ((), ("--dry-run",)):
        run = cli("limits", "apply", *dry, "--database-url", app_login)
        assert run.code == 2, run.out + run.err
        assert run.err.startswith(
            "error: only a superuser or a member of jobforge_worker may manage queue limits ("
        ), run.err
        assert len(run.err.strip().splitlines()) == 1
    assert listed(cli, jobforge_db.dsn) == []


def test_json_gives_the_declared_and_the_database_values_as_numbers(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    run = cli("limits", "apply", "ops.crawl", "--dry-run", "--json",
              "--database-url", jobforge_db.dsn)  # fmt: skip
    assert run.code == 0, run.err
    assert json.loads(run.out) == {
        "dry_run": True,
        "runners": [{
            "runner": "ops.crawl", "action": "added",
            "declared": {"max_running": 2, "rate_per_s": 5.0, "burst": 10.0},
            "database": None,
        }],
    }  # fmt: skip
    assert '"rate_per_s": 5.0' in run.out  # a float, as `limits list --json` gives it
