"""`jobforge runs artifacts` and `jobforge runs show --format markdown` as subprocesses, on runs
recorded by `jobforge worker`: artifacts (one of 5.2 MB) written out with the sha256 of the
runner's bytes, the run's log lines among them, existing files kept unless --force, hostile names
(from the command line and from the database) and symlinks refused, --out errors, another
tenant, runs recorded before artifacts were stored, prune, and the manifest with user data that
would break a Markdown table."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from jobforge.provision import Database
from tests.e2e.conftest import Cli

PYPROJECT = """\
[tool.jobforge]
runners = ["reporting"]
"""

RUNNER = """\
import logging

from pydantic import BaseModel

from jobforge import RunContext, runner

log = logging.getLogger("reporting")


class ReportIn(BaseModel):
    title: str
    password: str = ""


class ReportOut(BaseModel):
    pages: int


@runner("e2e.report", version="2.1.0", input=ReportIn, output=ReportOut,
        trace_keys=["layout"], artifacts=["report.md", "data/blob.bin"])
def report(inp: ReportIn, ctx: RunContext) -> ReportOut:
    ctx.decide("layout", "a|b\\nc", why="pipes | and\\nnewlines")
    ctx.artifact("report.md", f"# {inp.title}\\n")
    ctx.artifact("data/blob.bin", bytes(range(256)) * 20500)  # 5.2 MB: six chunks
    log.warning("rendering with password=%s", inp.password)
    return ReportOut(pages=2)
"""

BLOB = bytes(range(256)) * 20500


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def recorded(cli: Cli, project: Path, jobforge_db: Database) -> dict[str, Any]:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "reporting.py").write_text(RUNNER)
    url = jobforge_db.dsn
    env = {"JOBFORGE_TENANT": "acme"}
    done = cli("enqueue", "e2e.report", '{"title": "Q3 | <b>", "password": "hunter2-secret"}',
               "--database-url", url, env=env)  # fmt: skip
    assert done.code == 0, done.err
    worker = cli("worker", "--exit-when-idle", "--database-url", url)
    assert worker.code == 0, worker.err
    with jobforge_db.connect() as conn:
        (job_id,) = conn.execute("SELECT max(id) FROM jobforge.jobs").fetchone() or (None,)
    return {"url": url, "job": str(job_id), "env": env}


def test_artifacts_are_written_with_their_hashes_and_not_overwritten(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    args = ("runs", "artifacts", recorded["job"], "--database-url", recorded["url"])
    out = project / "out"
    run = cli(*args, "--out", str(out), env=recorded["env"])
    assert run.code == 0, run.err
    assert (out / "data" / "blob.bin").read_bytes() == BLOB
    assert (out / "report.md").read_text() == "# Q3 | <b>\n"
    assert f"{len(BLOB)} bytes  {sha(BLOB)}" in run.out
    assert run.out.strip().endswith("3 artifacts written, each sha256 verified")
    logs = (out / "@logs.jsonl").read_text()
    assert "rendering with password" in logs
    assert "hunter2-secret" not in logs
    # again: the files are there
    again = cli(*args, "--out", str(out), env=recorded["env"])
    assert again.code == 1
    assert again.err.strip().count("\n") == 0
    assert "exists: give --force to overwrite it" in again.err
    (out / "report.md").write_text("changed")
    forced = cli(*args, "--out", str(out), "--force", "--name", "report.md", env=recorded["env"])
    assert forced.code == 0, forced.err
    assert (out / "report.md").read_text() == "# Q3 | <b>\n"
    assert "1 artifact written" in forced.out


def test_one_artifact_by_name_and_a_missing_one(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    args = ("runs", "artifacts", recorded["job"], "--database-url", recorded["url"])
    one = cli(*args, "--out", str(project / "one"), "--name", "data/blob.bin",
              env=recorded["env"])  # fmt: skip
    assert one.code == 0, one.err
    assert [p.name for p in (project / "one").rglob("*") if p.is_file()] == ["blob.bin"]
    listed = cli(*args, "--out", str(project / "json"), "--name", "report.md", "--json",
                 env=recorded["env"])  # fmt: skip
    assert listed.code == 0, listed.err
    assert json.loads(listed.out) == [{
        "name": "report.md", "path": str(project / "json" / "report.md"),
        "size": len(b"# Q3 | <b>\n"), "sha256": sha(b"# Q3 | <b>\n"),
    }]  # fmt: skip
    missing = cli(*args, "--out", str(project / "two"), "--name", "nope.txt", env=recorded["env"])
    assert missing.code == 1
    assert "no artifact nope.txt in attempt 1 of job" in missing.err
    assert "(it has @logs.jsonl, data/blob.bin, report.md)" in missing.err
    attempt = cli(*args, "--out", str(project / "two"), "--attempt", "2", env=recorded["env"])
    assert attempt.code == 1
    assert f"no recorded run for attempt 2 of job {recorded['job']}" in attempt.err


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../b", "a//b", "./a"])
def test_hostile_names_on_the_command_line_are_usage_errors(
    cli: Cli, project: Path, recorded: dict[str, Any], name: str
) -> None:
    run = cli("runs", "artifacts", recorded["job"], "--database-url", recorded["url"],
              "--out", str(project / "out"), "--name", name, env=recorded["env"])  # fmt: skip
    assert run.code == 2
    assert run.err.startswith("error: --name: refusing artifact name") or "--name" in run.err
    assert run.err.strip().count("\n") == 0
    assert not (project / "out").exists()


@pytest.mark.parametrize("name", ["../escape.txt", "/tmp/abs.txt", "a/../../b.txt"])
def test_hostile_names_from_the_database_are_refused(
    cli: Cli, project: Path, recorded: dict[str, Any], jobforge_db: Database, name: str
) -> None:
    with jobforge_db.connect() as owner:  # a database is not trusted to hold only our rows
        owner.execute("ALTER TABLE jobforge.artifact_refs DROP CONSTRAINT artifact_refs_name_check")
        owner.execute(
            "UPDATE jobforge.artifact_refs SET name = %s WHERE name = 'report.md'", (name,)
        )
    out = project / "deep" / "out"
    run = cli("runs", "artifacts", recorded["job"], "--database-url", recorded["url"],
              "--out", str(out), env=recorded["env"])  # fmt: skip
    assert run.code == 1
    assert "refusing artifact name" in run.err
    assert run.err.strip().count("\n") == 0
    assert [p for p in project.rglob("*") if p.is_file() and "escape" in p.name] == []
    assert not list(out.rglob("*.bin"))  # nothing written: every name is checked first


def test_a_symlink_in_out_is_not_followed(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    out, elsewhere = project / "out", project / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "data").symlink_to(elsewhere)
    (out / "report.md").symlink_to(elsewhere / "report.md")
    run = cli("runs", "artifacts", recorded["job"], "--database-url", recorded["url"],
              "--out", str(out), "--force", env=recorded["env"])  # fmt: skip
    assert run.code == 1
    assert "is a symlink" in run.err
    assert list(elsewhere.iterdir()) == []


def test_out_errors_are_one_line(cli: Cli, project: Path, recorded: dict[str, Any]) -> None:
    args = ("runs", "artifacts", recorded["job"], "--database-url", recorded["url"])
    (project / "file").write_text("x")
    run = cli(*args, "--out", str(project / "file"), env=recorded["env"])
    assert (run.code, run.err.strip()) == (2, f"error: --out {project / 'file'} is not a folder")
    (project / "link").symlink_to(project / "file")
    run = cli(*args, "--out", str(project / "link"), env=recorded["env"])
    assert run.code == 2
    assert "is a symlink" in run.err
    run = cli(*args, "--out", str(project / "file" / "below"), env=recorded["env"])
    assert run.code == 2
    assert "cannot make --out" in run.err
    missing = cli(*args[:3], "--database-url", recorded["url"], env=recorded["env"])
    assert missing.code == 2
    assert "--out" in missing.err


def test_another_tenant_gets_nothing(cli: Cli, project: Path, recorded: dict[str, Any]) -> None:
    run = cli("runs", "artifacts", recorded["job"], "--database-url", recorded["url"],
              "--out", str(project / "out"), env={"JOBFORGE_TENANT": "globex"})  # fmt: skip
    assert run.code == 1
    assert f"no recorded run for job {recorded['job']}" in run.err
    assert not (project / "out").exists()


def test_runs_show_markdown_is_a_manifest_that_user_data_cannot_break(
    cli: Cli, recorded: dict[str, Any]
) -> None:
    run = cli("runs", "show", recorded["job"], "--format", "markdown", "--database-url",
              recorded["url"], env=recorded["env"])  # fmt: skip
    assert run.code == 0, run.err
    text = run.out
    assert text.startswith("# Run of e2e.report 2.1.0\n")
    for heading in ("## Input", "## Decisions", "## Output", "## Artifacts", "## Fingerprints",
                    "## Error"):  # fmt: skip
        assert f"\n{heading}\n" in text
    assert "| status | succeeded |" in text
    assert "| attempt | 1 |" in text
    # the decision's value and reason hold a pipe and a newline: JSON, escaped, one row (the
    # JSON keeps its escaped \n, whose backslash is escaped to render as one)
    (row,) = [line for line in text.splitlines() if line.startswith("| 1 | layout |")]
    assert row == '| 1 | layout | "a\\|b\\\\nc" | {"why": "pipes \\| and\\\\nnewlines"} |'
    assert row.count(" | ") == 3  # four cells, whatever the data
    assert f"| data/blob.bin | bytes | {len(BLOB)} (5.0 MiB) | {sha(BLOB)} |" in text
    assert "| @logs.jsonl | log lines |" in text
    assert "hunter2-secret" not in text
    assert "| python |" in text
    assert "| code | sha256:" in text


def test_runs_show_refuses_an_unknown_format(cli: Cli, recorded: dict[str, Any]) -> None:
    run = cli("runs", "show", recorded["job"], "--format", "html", "--database-url",
              recorded["url"], env=recorded["env"])  # fmt: skip
    assert run.code == 2
    assert run.err.strip() == "error: --format 'html': choose one of json, markdown"


def test_an_operator_without_a_tenant_reads_the_job_s_tenant(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    out = project / "out"
    run = cli("runs", "artifacts", recorded["job"], "--database-url", recorded["url"],
              "--out", str(out), "--name", "report.md")  # fmt: skip
    assert run.code == 0, run.err
    assert (out / "report.md").read_text() == "# Q3 | <b>\n"


def test_a_run_recorded_before_artifacts_were_stored_gives_what_it_kept_inline(
    cli: Cli, project: Path, recorded: dict[str, Any], jobforge_db: Database
) -> None:
    with jobforge_db.connect() as owner:  # as a run recorded before migrations/0017
        owner.execute("DELETE FROM jobforge.artifact_refs")
    args = ("runs", "artifacts", recorded["job"], "--database-url", recorded["url"])
    run = cli(*args, "--out", str(project / "out"), env=recorded["env"])
    assert run.code == 0, run.err
    assert (project / "out" / "report.md").read_text() == "# Q3 | <b>\n"
    assert not (project / "out" / "data").exists()  # 5.2 MB: the record kept its hash only
    assert "data/blob.bin kept by hash only, not written" in run.err
    with jobforge_db.connect() as owner:  # an inline content that is not what its hash says
        owner.execute(
            "UPDATE jobforge.job_runs SET record = jsonb_set(record, '{artifacts,1,content}', "
            "'\"# tampered\\n\"')"
        )
    tampered = cli(*args, "--out", str(project / "again"), env=recorded["env"])
    assert tampered.code == 1
    assert "the stored bytes hash to sha256:" in tampered.err
    assert not (project / "again" / "report.md").exists()
    with jobforge_db.connect() as owner:
        owner.execute(
            "UPDATE jobforge.job_runs SET record = jsonb_set(record, '{artifacts}', '[]')"
        )
    none = cli(*args, "--out", str(project / "none"), env=recorded["env"])
    assert none.code == 1
    assert none.err.strip() == f"error: attempt 1 of job {recorded['job']} has no stored artifacts"


def test_prune_deletes_the_blobs_of_the_runs_it_pruned(
    cli: Cli, recorded: dict[str, Any], jobforge_db: Database
) -> None:
    with jobforge_db.connect() as owner:
        owner.execute("UPDATE jobforge.jobs SET finished_at = now() - interval '40 days'")
        owner.execute("UPDATE jobforge.artifact_blobs SET touched_at = now() - interval '2 hours'")
        total = owner.execute("SELECT sum(size) FROM jobforge.artifact_blobs").fetchone()
    run = cli("prune", "--older-than", "30d", "--throttle", "0", "--database-url", recorded["url"])
    assert run.code == 0, run.err
    assert run.out.strip().endswith(
        f"; 3 artifact blobs ({total[0] if total else 0} bytes) no run references"
    )
    with jobforge_db.connect() as owner:
        assert owner.execute("SELECT count(*) FROM jobforge.artifact_chunks").fetchone() == (0,)
