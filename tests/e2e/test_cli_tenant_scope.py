"""`--tenant` on the commands that read runs, as subprocesses (issue [3/10]): two tenants with
runs recorded by `jobforge worker`; `runs list|show|export` and `replay --tenant` each see only
their tenant on a superuser login, as `jobs list|show` do; without a tenant, every tenant's runs
for a login allowed that, and a one-line refusal for any other. And `runs export` of two runs
that share an attempt number (a job retried with its attempts reset) writes two files, says what
it did with each, and never replaces a different file without `--overwrite`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobforge.provision import Database, Server
from tests.e2e.conftest import Cli

PYPROJECT = """\
[tool.jobforge]
runners = ["tally"]
"""

RUNNER = """\
from pydantic import BaseModel

from jobforge import RunContext, runner
from jobforge.errors import NonRetryable


class TallyIn(BaseModel):
    n: int
    fail: bool = False


class TallyOut(BaseModel):
    total: int


@runner("e2e.tally", version="1.0.0", input=TallyIn, output=TallyOut, trace_keys=["n"])
def tally(inp: TallyIn, ctx: RunContext) -> TallyOut:
    ctx.decide("n", inp.n, source="input")
    if inp.fail:
        raise NonRetryable("told to fail")
    return TallyOut(total=inp.n * 2)
"""


@pytest.fixture
def recorded(
    cli: Cli, project: Path, jobforge_db: Database, jobforge_server: Server
) -> dict[str, Any]:
    """Runs of two tenants recorded by `jobforge worker`: acme two jobs, globex one."""
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "tally.py").write_text(RUNNER)
    url = jobforge_db.dsn
    jobs: dict[str, list[int]] = {"acme": [], "globex": []}
    for tenant, n in (("acme", 1), ("globex", 2), ("acme", 3)):
        run = cli("enqueue", "e2e.tally", json.dumps({"n": n}), "--json", "--database-url", url,
                  "--tenant", tenant)  # fmt: skip
        assert run.code == 0, run.err
        jobs[tenant].append(json.loads(run.out)["job_id"])
    worker = cli("worker", "--exit-when-idle", "--database-url", url)
    assert worker.code == 0, worker.err
    server = {"JOBFORGE_SCRATCH_DATABASE_URL": jobforge_server.dsn}
    return {"url": url, "jobs": jobs, "server": server}


def _listed(cli: Cli, url: str, *args: str, env: dict[str, str] | None = None) -> list[Any]:
    run = cli("runs", "list", "--database-url", url, "--json", *args, env=env)
    assert run.code == 0, run.err
    rows: list[Any] = json.loads(run.out)
    return rows


def test_runs_list_sees_only_the_tenant_asked_for(cli: Cli, recorded: dict[str, Any]) -> None:
    url, jobs = recorded["url"], recorded["jobs"]
    globex = _listed(cli, url, "--tenant", "globex")
    assert [(r["tenant_id"], r["job_id"]) for r in globex] == [("globex", jobs["globex"][0])]
    acme = _listed(cli, url, env={"JOBFORGE_TENANT": "acme"})
    assert sorted(r["job_id"] for r in acme) == sorted(jobs["acme"])
    assert {r["tenant_id"] for r in acme} == {"acme"}
    assert _listed(cli, url, "--tenant", "initech") == []
    table = cli("runs", "list", "--database-url", url, "--tenant", "globex")
    assert "acme" not in table.out
    assert "1 run\n" in table.out
    queued = cli("jobs", "list", "--json", "--database-url", url, "--tenant", "globex")
    assert [j["id"] for j in json.loads(queued.out)["jobs"]] == jobs["globex"]
    # no tenant at all: every tenant's runs, for this login (a superuser may read across them)
    assert sorted(r["tenant_id"] for r in _listed(cli, url)) == ["acme", "acme", "globex"]


def test_runs_show_and_export_refuse_another_tenant_s_job(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    url, acme_job = recorded["url"], recorded["jobs"]["acme"][0]
    hidden = cli("runs", "show", str(acme_job), "--database-url", url, "--tenant", "globex")
    assert hidden.code == 1, hidden.out  # not found, as `jobs show` says of a job
    assert f"no recorded run for job {acme_job}" in hidden.err
    shown = cli("runs", "show", str(acme_job), "--database-url", url, "--tenant", "acme")
    assert shown.code == 0, shown.err
    assert json.loads(shown.out)["environment"]["tenant_id"] == "acme"

    leaked = cli("runs", "export", "--job", str(acme_job), "--database-url", url,
                 "--tenant", "globex")  # fmt: skip
    assert leaked.code == 1, leaked.out
    assert "no recorded run matches" in leaked.err
    assert not (project / "bundles").exists()
    exported = cli("runs", "export", "--type", "e2e.tally", "--database-url", url,
                   env={"JOBFORGE_TENANT": "globex"})  # fmt: skip
    assert exported.code == 0, exported.err
    assert "1 bundle written" in exported.out
    bundles = [json.loads(p.read_text()) for p in (project / "bundles").glob("*.json")]
    assert [b["environment"]["tenant_id"] for b in bundles] == ["globex"]
    assert [b["provenance"]["job_id"] for b in bundles] == recorded["jobs"]["globex"]


def test_replay_from_the_database_replays_only_the_tenant_asked_for(
    cli: Cli, recorded: dict[str, Any]
) -> None:
    url, jobs = recorded["url"], recorded["jobs"]
    run = cli("replay", "--database-url", url, "--since", "1h", "--tenant", "acme",
              "--format", "json", env=recorded["server"])  # fmt: skip
    assert run.code == 0, run.out + run.err
    report = json.loads(run.out)
    assert report["counts"]["replay"]["passed"] == len(jobs["acme"])
    text = json.dumps(report)
    assert all(f"job {job} attempt 1" in text for job in jobs["acme"])
    assert f"job {jobs['globex'][0]} attempt" not in text
    nothing = cli("replay", "--database-url", url, "--since", "1h", "--tenant", "initech",
                  env=recorded["server"])  # fmt: skip
    assert nothing.code == 1
    assert "no recorded run matches" in nothing.err


def test_without_a_tenant_a_login_that_may_not_read_across_tenants_is_refused(
    cli: Cli, recorded: dict[str, Any], app_login: str
) -> None:
    refused = cli("runs", "list", "--database-url", app_login)
    assert refused.code == 2, refused.out + refused.err
    assert refused.err.startswith("error: ")
    assert "may not read every tenant's runs: name a tenant" in refused.err
    assert len(refused.err.strip().splitlines()) == 1
    own = _listed(cli, app_login, "--tenant", "globex")
    assert [r["tenant_id"] for r in own] == ["globex"]
    help_text = cli("runs", "list", "--help").out
    assert "every tenant's runs" in " ".join(help_text.split())


def test_export_writes_one_file_per_run_when_attempts_repeat(
    cli: Cli, project: Path, jobforge_db: Database, jobforge_server: Server
) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "tally.py").write_text(RUNNER)
    url = jobforge_db.dsn
    env = {"JOBFORGE_TENANT": "acme"}
    enqueued = cli("enqueue", "e2e.tally", '{"n": 7, "fail": true}', "--json",
                   "--database-url", url, env=env)  # fmt: skip
    job = json.loads(enqueued.out)["job_id"]
    for _ in range(2):  # fails once, retried with its attempts reset, fails again: attempt 1 twice
        assert cli("worker", "--exit-when-idle", "--database-url", url).code == 0
        retried = cli("jobs", "retry", str(job), "--reset-attempts", "--database-url", url, env=env)
        assert retried.code == 0, retried.err
    runs = _listed(cli, url, "--job", str(job), env=env)
    assert [r["attempt"] for r in runs] == [1, 1]

    exported = cli("runs", "export", "--job", str(job), "--database-url", url, env=env)
    assert exported.code == 0, exported.err
    names = sorted(p.name for p in (project / "bundles").glob("*.json"))
    assert names == sorted(f"e2e.tally-job{job}-a1-run{r['id']}.json" for r in runs)
    assert exported.out.count("wrote ") == 2
    assert "2 bundles written" in exported.out
    bundles = {name: (project / "bundles" / name).read_text() for name in names}
    assert len({json.loads(text)["provenance"]["recorded_at"] for text in bundles.values()}) == 2

    again = cli("runs", "export", "--job", str(job), "--database-url", url, env=env)
    assert again.code == 0, again.err
    assert "0 bundles written, 2 unchanged" in again.out

    edited = project / "bundles" / names[0]
    edited.write_text(bundles[names[0]].replace('"n": 7', '"n": 8'))
    kept = cli("runs", "export", "--job", str(job), "--database-url", url, env=env)
    assert kept.code == 1, kept.out + kept.err
    assert f"kept {edited}: a different file is there (--overwrite replaces it)" in kept.out
    assert "0 bundles written, 1 unchanged, 1 kept" in kept.out
    assert '"n": 8' in edited.read_text()
    forced = cli("runs", "export", "--job", str(job), "--database-url", url, "--overwrite",
                 env=env)  # fmt: skip
    assert forced.code == 0, forced.err
    assert "2 bundles written" in forced.out
    assert edited.read_text() == bundles[names[0]]

    golden = cli("runs", "export", "--job", str(job), "--to", "golden", "--database-url", url,
                 env=env)  # fmt: skip
    assert golden.code == 0, golden.err
    assert "2 golden cases written" in golden.out
    cases = sorted(p.name for p in (project / "golden" / "e2e.tally").glob("*.json"))
    assert cases == sorted(f"job{job}-a1-run{r['id']}.json" for r in runs)

    # replayed from the database after a change, both runs fail: each is saved, in its own file
    (project / "tally.py").write_text(RUNNER.replace('"told to fail"', '"told otherwise"'))
    server = {"JOBFORGE_SCRATCH_DATABASE_URL": jobforge_server.dsn}
    diverged = cli("replay", "--database-url", url, "--job", str(job), "--tenant", "acme",
                   env=server)  # fmt: skip
    assert diverged.code == 1, diverged.out + diverged.err
    assert all(f"job {job} attempt 1 (run {r['id']})" in diverged.out for r in runs)
    failed = sorted(p.name for p in (project / ".jobforge" / "failed").glob("*.json"))
    assert failed == sorted(f"e2e.tally-job{job}-a1-run{r['id']}.json" for r in runs)
    (project / "tally.py").write_text(RUNNER)
    rerun = cli("replay", "--failed", env=server)
    assert rerun.code == 0, rerun.out + rerun.err
    assert "2 saved failures now pass and were dropped" in rerun.out
    assert not (project / ".jobforge" / "failed").exists()


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        pytest.param(["--tenant", ""], {}, "--tenant is empty", id="empty-option"),
        pytest.param([], {"JOBFORGE_TENANT": ""}, "JOBFORGE_TENANT is empty", id="empty-env"),
        pytest.param(["--tenant", " "], {}, "--tenant is empty", id="blank"),
        pytest.param(["--tenant", "x y"], {}, "--tenant 'x y' is not a tenant id", id="space"),
        pytest.param(["--tenant", "\u00e9"], {}, "is not a tenant id", id="unicode"),
        pytest.param(["--tenant", "a" * 129], {}, "is not a tenant id", id="too-long"),
    ],
)
def test_a_tenant_given_but_empty_or_malformed_never_widens_to_every_tenant(
    cli: Cli, recorded: dict[str, Any], args: list[str], env: dict[str, str], said: str
) -> None:
    """`--tenant "$TENANT"` with TENANT unset must not read every tenant's runs on a login that
    may: each command refuses in one line before connecting (exit 2), as `jobs` commands do."""
    url = recorded["url"]
    job = str(recorded["jobs"]["globex"][0])
    commands = (
        ["runs", "list"],
        ["runs", "show", job],
        ["runs", "export", "--job", job],
        ["replay", "--job", job],
        ["jobs", "list"],
        ["enqueue", "e2e.tally", '{"n": 1}'],
    )
    for command in commands:
        result = cli(*command, "--database-url", url, *args, env=env)
        assert result.code == 2, (command, result.out, result.err)
        assert said in result.err, (command, result.err)
        assert len(result.err.strip().splitlines()) == 1, result.err
        assert "globex" not in result.out


def test_runs_show_picks_a_run_when_an_attempt_ran_twice(
    cli: Cli, project: Path, jobforge_db: Database
) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "tally.py").write_text(RUNNER)
    url, env = jobforge_db.dsn, {"JOBFORGE_TENANT": "acme"}
    enqueued = cli("enqueue", "e2e.tally", '{"n": 7, "fail": true}', "--json",
                   "--database-url", url, env=env)  # fmt: skip
    job = json.loads(enqueued.out)["job_id"]
    for _ in range(2):
        assert cli("worker", "--exit-when-idle", "--database-url", url).code == 0
        assert cli("jobs", "retry", str(job), "--reset-attempts", "--database-url", url,
                   env=env).code == 0  # fmt: skip
    older, newer = sorted(r["id"] for r in _listed(cli, url, "--job", str(job), env=env))
    shown = cli("runs", "show", str(job), "--attempt", "1", "--database-url", url, env=env)
    assert shown.code == 0, shown.err
    assert f"this is run {newer}, the newest (--run {older} for the others)" in shown.err
    json.loads(shown.out)  # stdout stays the record alone
    picked = cli("runs", "show", str(job), "--run", str(older), "--database-url", url, env=env)
    assert picked.code == 0, picked.err
    assert picked.err == ""
    assert json.loads(picked.out) != json.loads(shown.out)
    missing = cli("runs", "show", str(job), "--run", "999999", "--database-url", url, env=env)
    assert missing.code == 1
    assert f"no recorded run for run 999999 of job {job}" in missing.err
