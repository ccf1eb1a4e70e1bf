"""`jobforge runners sync|list|enable|disable` and `jobforge enqueue` through the catalogue, as
subprocesses: a producer without the runner's code enqueues a catalogued runner's job checked
against the synced schema; a disabled runner is refused; a tenant's app login cannot change the
catalogue; each mistake is one line."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

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


class FeeIn(BaseModel):
    invoice: str
    days_late: int = Field(ge=0)


class FeeOut(BaseModel):
    fee: int


@runner("billing.late_fees", version="VERSION", input=FeeIn, output=FeeOut)
def late_fees(inp: FeeIn, ctx: RunContext) -> FeeOut:
    return FeeOut(fee=2 * inp.days_late)


@runner("billing.refund", version="1.0.0", input=FeeIn, output=FeeOut)
def refund(inp: FeeIn, ctx: RunContext) -> FeeOut:
    return FeeOut(fee=0)
"""


def _write(repo: Path, version: str = "1.0.0", extra: str = "") -> None:
    (repo / "pyproject.toml").write_text(PYPROJECT)
    (repo / "billing.py").write_text(RUNNERS.replace("VERSION", version) + extra)


@pytest.fixture
def repo(project: Path) -> Path:
    _write(project)
    return project


@pytest.fixture
def elsewhere() -> Iterator[Path]:
    """A folder outside any runner repository (a producer's)."""
    path = Path(tempfile.mkdtemp(prefix="jf-e2e-producer-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _runners(cli: Cli, db: Database | str, *args: str, cwd: Path | None = None) -> Run:
    url = db if isinstance(db, str) else db.dsn
    return cli("runners", *args, "--database-url", url, cwd=cwd)


def _enqueue(cli: Cli, db: Database, *args: str, cwd: Path) -> Run:
    return cli("enqueue", *args, "--database-url", db.dsn, "--tenant", "acme", cwd=cwd)


def test_sync_list_enable_disable(cli: Cli, repo: Path, jobforge_db: Database) -> None:
    first = _runners(cli, jobforge_db, "sync", "--actor", "deployer")
    assert first.code == 0, first.err
    assert first.out.splitlines() == [
        "added billing.late_fees 1.0.0", "added billing.refund 1.0.0",
        "runners sync: 2 added, 0 changed, 0 unchanged",
    ]  # fmt: skip
    again = _runners(cli, jobforge_db, "sync")
    assert again.out.splitlines()[-1] == "runners sync: 0 added, 0 changed, 2 unchanged"

    _write(repo, "1.1.0", extra="\n# a new version\n")
    bumped = _runners(cli, jobforge_db, "sync", "billing.late_fees", "--json")
    assert json.loads(bumped.out) == {"runners": [
        {"runner": "billing.late_fees", "version": "1.1.0", "action": "changed"}]}  # fmt: skip

    listed = _runners(cli, jobforge_db, "list", "--json")
    rows = {r["runner"]: r for r in json.loads(listed.out)}
    assert rows["billing.late_fees"]["version"] == "1.1.0"
    assert rows["billing.refund"]["synced_actor"] == "deployer"
    assert all(r["enabled"] for r in rows.values())

    off = _runners(cli, jobforge_db, "disable", "billing.refund")
    assert (off.code, off.out.strip()) == (0, "disabled billing.refund")
    twice = _runners(cli, jobforge_db, "disable", "billing.refund")
    assert twice.out.strip() == "billing.refund was already disabled"
    table = _runners(cli, jobforge_db, "list")
    assert any(line.split()[:3] == ["billing.refund", "1.0.0", "NO"]
               for line in table.out.splitlines()), table.out  # fmt: skip
    on = _runners(cli, jobforge_db, "enable", "billing.refund")
    assert on.out.strip() == "enabled billing.refund"


def test_a_downgrade_or_a_changed_contract_under_one_version_is_refused(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    _write(repo, "2.0.0")
    assert _runners(cli, jobforge_db, "sync").code == 0
    _write(repo, "1.0.0")
    down = _runners(cli, jobforge_db, "sync")
    assert down.code == 1
    assert down.err.strip() == (
        "error: runner billing.late_fees: version 1.0.0 is older than the synced 2.0.0: a "
        "downgrade needs --force"
    )
    _write(repo, "2.0.0")  # back to what was synced; then a new optional input field
    changed = (
        (repo / "billing.py")
        .read_text()
        .replace("days_late: int = Field(ge=0)", "days_late: int = Field(ge=0)\n    note: str = ''")
    )
    (repo / "billing.py").write_text(changed)
    same = _runners(cli, jobforge_db, "sync")
    assert same.code == 1
    assert "the contract changed but the version is still 2.0.0" in same.err
    assert len(same.err.strip().splitlines()) == 1
    forced = _runners(cli, jobforge_db, "sync", "--force")
    assert forced.code == 0, forced.err
    assert "changed billing.late_fees 2.0.0" in forced.out


def test_mistakes_are_one_line(cli: Cli, repo: Path, jobforge_db: Database,
                               elsewhere: Path) -> None:  # fmt: skip
    unknown = _runners(cli, jobforge_db, "enable", "billing.nope")
    assert unknown.code == 2
    assert unknown.err.strip() == (
        "error: runner 'billing.nope' is not in the runner catalogue (jobforge runners sync "
        "adds it)"
    )
    undeclared = _runners(cli, jobforge_db, "sync", "billing.nope")
    assert undeclared.code == 2
    assert "no runner 'billing.nope' is declared" in undeclared.err
    nothing = _runners(cli, jobforge_db, "sync", cwd=elsewhere)
    assert nothing.code == 2
    assert nothing.err.strip().endswith("nothing to sync")


def test_a_tenant_app_login_cannot_change_the_catalogue(
    cli: Cli, repo: Path, jobforge_db: Database, app_login: str
) -> None:
    assert _runners(cli, jobforge_db, "sync").code == 0
    for args in (("sync", "--force"), ("disable", "billing.refund"),
                 ("enable", "billing.refund")):  # fmt: skip
        refused = _runners(cli, app_login, *args)
        assert refused.code == 2, refused.out
        assert refused.err.startswith(
            "error: only a superuser or a member of jobforge_worker may change the runner "
            "catalogue (permission denied for function catalogue_"
        ), refused.err
        assert len(refused.err.strip().splitlines()) == 1
    listed = _runners(cli, app_login, "list", "--json")
    assert listed.code == 0
    assert all(r["enabled"] for r in json.loads(listed.out))


def test_enqueue_by_catalogue_without_the_runners_code(
    cli: Cli, repo: Path, jobforge_db: Database, elsewhere: Path
) -> None:
    assert _runners(cli, jobforge_db, "sync").code == 0
    bad = _enqueue(cli, jobforge_db, "billing.late_fees", '{"invoice": "A-1", "days_late": -1}',
                   cwd=elsewhere)  # fmt: skip
    assert bad.code == 2
    assert bad.err.strip() == (
        "error: the input of billing.late_fees 1.0.0 is invalid: days_late: -1 is less than the "
        "minimum of 0 (the payload checked against the runner catalogue's input schema)"
    )
    ok = _enqueue(cli, jobforge_db, "billing.late_fees", '{"invoice": "A-1", "days_late": 2}',
                  cwd=elsewhere)  # fmt: skip
    assert ok.code == 0, ok.err
    # the runner's declared max_attempts, as the catalogue holds it, unless the job names its own
    with jobforge_db.connect() as conn:
        conn.execute("UPDATE jobforge.runner_catalogue SET max_attempts = 7")
        conn.commit()
    assert cli("keys", "generate", "k1", cwd=elsewhere).code == 0
    for extra in ((), ("--max-attempts", "2"), ("--sign", "k1")):
        made = _enqueue(cli, jobforge_db, "billing.late_fees", '{"invoice": "A-2", "days_late": 1}',
                        *extra, cwd=elsewhere)  # fmt: skip
        assert made.code == 0, made.err
    with jobforge_db.connect() as conn:
        conn.execute("SELECT set_config('jobforge.scope', 'worker', false)")
        attempts = conn.execute(
            "SELECT max_attempts, coalesce(envelope ? 'signatures', false) FROM jobforge.jobs"
            " ORDER BY id"
        ).fetchall()
    # 3: what the runner declared when synced; a signed job signs the runner's number
    assert [tuple(a) for a in attempts] == [(3, False), (7, False), (2, False), (7, True)]
    assert _runners(cli, jobforge_db, "disable", "billing.late_fees").code == 0
    off = _enqueue(cli, jobforge_db, "billing.late_fees", '{"invoice": "A-1", "days_late": 2}',
                   cwd=elsewhere)  # fmt: skip
    assert off.code == 1
    assert off.err.strip() == (
        "error: runner billing.late_fees is disabled (an operator enables it: jobforge runners "
        "enable billing.late_fees)"
    )
    # in the runner's own repo the local contract decides, and the database still refuses
    local = _enqueue(cli, jobforge_db, "billing.late_fees", '{"invoice": "A-1", "days_late": 2}',
                     cwd=repo)  # fmt: skip
    assert local.code == 1
    assert "job #1: runner billing.late_fees is disabled" in local.err
    # a type neither catalogued nor known stays as it was: enqueued as given outside a repo
    plain = _enqueue(cli, jobforge_db, "other.thing", "{}", cwd=elsewhere)
    assert plain.code == 0, plain.err


FOLLOWING = """

@runner("billing.invoice", version="1.0.0", input=FeeIn, output=FeeOut)
def invoice(inp: FeeIn, ctx: RunContext) -> FeeOut:
    ctx.enqueue("billing.late_fees", {"invoice": inp.invoice, "days_late": inp.days_late + 1})
    return FeeOut(fee=0)
"""


def test_a_worker_enqueues_follow_ups_and_jobs_show_names_the_parent(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    _write(repo, extra=FOLLOWING)
    made = cli("enqueue", "billing.invoice", '{"invoice": "A-1", "days_late": 1}', "--json",
               "--database-url", jobforge_db.dsn, "--tenant", "acme")  # fmt: skip
    assert made.code == 0, made.err
    parent = json.loads(made.out)["job_id"]
    worker = cli("worker", "--exit-when-idle", "--database-url", jobforge_db.dsn)
    assert worker.code == 0, worker.err
    listed = cli("jobs", "list", "--type", "billing.late_fees", "--json", "--database-url",
                 jobforge_db.dsn, "--tenant", "acme")  # fmt: skip
    (child,) = json.loads(listed.out)["jobs"]
    assert child["parent_id"] == parent
    assert child["payload"] == {"invoice": "A-1", "days_late": 2}
    assert child["status"] == "succeeded"  # the same worker ran it: its runner is here too
    shown = cli("jobs", "show", str(child["id"]), "--database-url", jobforge_db.dsn,
                "--tenant", "acme")  # fmt: skip
    assert f"follow-up of job {parent}" in shown.out.splitlines()
