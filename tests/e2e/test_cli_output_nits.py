"""What the CLI prints where a CI reads it (subprocesses, stdout a pipe): certify's findings with
their paths, replay's GitHub annotations with a file, tables never cut short, and `--help` showing
flags as flags."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer

from jobforge.cli.app import app
from jobforge.provision import Database, Server
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

#: A runner id longer than an 80-column table leaves room for.
LONG_ID = "billing.late_fee_reminder_for_overdue_invoices"

RUNNERS = f"""\
from pydantic import BaseModel

from jobforge import RunContext, runner


class In(BaseModel):
    customer: str = "c-1"


class Out(BaseModel):
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0


@runner({LONG_ID!r}, version="1.0.0", input=In, output=Out, trace_keys=["fee"])
def remind(inp: In, ctx: RunContext) -> Out:
    ctx.decide("fee", FEE, reason="the schedule of late fees for overdue invoices, as agreed")
    return Out(a=FEE)
"""


def write_runner(project: Path, fee: int = 5, retyped: bool = False) -> None:
    body = RUNNERS.replace("FEE", str(fee))
    if retyped:  # four output fields change type the same way: four findings alike but the path
        body = re.sub(r"    ([abcd]): int = 0", r'    \1: str = ""', body).replace(
            "Out(a=FEE)", "Out()"
        )
    (project / "myrunners.py").write_text(body)
    for cached in project.rglob("__pycache__"):
        for file in cached.iterdir():
            file.unlink()


@pytest.fixture
def repo(cli: Cli, project: Path) -> Path:
    (project / "pyproject.toml").write_text('[tool.jobforge]\nrunners = ["myrunners"]\n')
    write_runner(project)
    assert cli("contracts", "lock").code == 0
    return project


# --- certify's text names the path of each finding ---------------------------------------------


def test_certify_text_tells_alike_findings_apart_by_their_path(cli: Cli, repo: Path) -> None:
    write_runner(repo, retyped=True)
    result = cli("certify", "--no-fresh")
    assert result.code == 1, result.out + result.err
    findings = [line.strip() for line in result.out.splitlines() if "[output.type_changed]" in line]
    assert len(findings) == 4, result.out
    assert len(set(findings)) == 4, findings  # no two lines the same
    for field in "abcd":
        assert any(f"at output.properties.{field}: type integer → string" in f for f in findings)


# --- tables in a CI log: never folded or cut -----------------------------------------------------


def test_tables_are_never_cut_when_stdout_is_not_a_terminal(cli: Cli, repo: Path) -> None:
    write_runner(repo, retyped=True)
    result = cli("contracts", "check", env={"COLUMNS": "80"})  # what a CI's log would be
    assert result.code == 1
    assert "…" not in result.out
    rows = [line for line in result.out.splitlines() if "output.type_changed" in line]
    assert len(rows) == 4, result.out
    for row in rows:  # each row whole on one line: the id, the path, the whole detail
        assert LONG_ID in row
        assert re.search(r"output\.properties\.[abcd]", row)
        assert "type integer → string (version not bumped major: 1.0.0 → 1.0.0)" in row


def test_the_jobs_table_shows_a_long_type_whole(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    env = {"JOBFORGE_TENANT": "acme", "COLUMNS": "80"}
    url = jobforge_db.dsn
    assert cli("enqueue", LONG_ID, "{}", "--database-url", url, env=env).code == 0
    listing = cli("jobs", "list", "--database-url", url, env=env)
    assert listing.code == 0, listing.err
    assert "…" not in listing.out
    assert any(LONG_ID in line and "queued" in line for line in listing.out.splitlines()), (
        listing.out
    )


# --- replay's GitHub annotations point at a file -------------------------------------------------


@pytest.fixture
def recorded(
    cli: Cli, repo: Path, jobforge_db: Database, jobforge_server: Server
) -> dict[str, Any]:
    """One run recorded by `jobforge worker` and exported into repo/bundles."""
    url = jobforge_db.dsn
    env = {"JOBFORGE_TENANT": "acme"}
    assert cli("enqueue", LONG_ID, '{"customer": "c-9"}', "--database-url", url, env=env).code == 0
    worker = cli("worker", "--exit-when-idle", "--database-url", url)
    assert worker.code == 0, worker.err
    exported = cli("runs", "export", "--type", LONG_ID, "--database-url", url)
    assert exported.code == 0, exported.err
    return {"url": url, "server": {"JOBFORGE_SCRATCH_DATABASE_URL": jobforge_server.dsn}}


def _annotations(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("::error ")]


def test_github_annotations_of_a_diverged_bundle_name_its_file(
    cli: Cli, repo: Path, recorded: dict[str, Any]
) -> None:
    (bundle,) = sorted((repo / "bundles").glob("*.json"))
    write_runner(repo, fee=7)  # the logic changed: the replay diverges
    result = cli("replay", "bundles", "--format", "github", env=recorded["server"])
    assert result.code == 1, result.out + result.err
    annotations = _annotations(result.out)
    assert annotations, result.out
    shown = str(bundle.relative_to(repo))  # relative to the working directory, as a CI wants
    for annotation in annotations:
        props = annotation.split("::")[1]
        assert f"file={shown.replace(':', '%3A').replace(',', '%2C')}" in props, annotation


def test_github_annotations_of_a_run_from_the_database_name_the_runner_source(
    cli: Cli, repo: Path, recorded: dict[str, Any]
) -> None:
    write_runner(repo, fee=7)
    result = cli("replay", "--database-url", recorded["url"], "--since", "1h", "--format",
                 "github", env=recorded["server"])  # fmt: skip
    assert result.code == 1, result.out + result.err
    annotations = _annotations(result.out)
    assert annotations, result.out
    line = next(n for n, text in enumerate(RUNNERS.splitlines(), 1) if text.startswith("@runner"))
    assert all(" file=myrunners.py,line=" in a for a in annotations), annotations
    assert any(f"line={line}," in a for a in annotations), annotations


def test_github_annotation_of_an_unreadable_bundle_names_its_file(cli: Cli, repo: Path) -> None:
    (repo / "bundles").mkdir()
    (repo / "bundles" / "broken.json").write_text('{"format": ')
    result = cli("replay", "bundles", "--format", "github")
    assert result.code == 1, result.out + result.err
    (annotation,) = _annotations(result.out)
    assert annotation.startswith("::error file=bundles/broken.json,"), annotation


# --- --help shows flags as flags -----------------------------------------------------------------


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the CLI, as its words."""
    found: list[tuple[str, ...]] = []

    def walk(command: Any, words: tuple[str, ...]) -> None:
        found.append(words)
        if not hasattr(command, "list_commands"):
            return
        ctx = command.make_context("jobforge", [], resilient_parsing=True)
        for name in sorted(command.list_commands(ctx)):
            walk(command.get_command(ctx, name), (*words, name))

    walk(typer.main.get_command(app), ())
    return found


def test_help_shows_flags_as_flags_and_values_by_name_on_every_command() -> None:
    paths = _command_paths()
    assert ("jobs", "retry") in paths
    assert ("certify",) in paths

    def show(words: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
        result = subprocess.run(
            [sys.executable, "-m", "jobforge.cli.app", *words, "--help"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return words, result.stdout

    with ThreadPoolExecutor(max_workers=2) as pool:
        helps = dict(pool.map(show, paths))
    shown = {words: text for words, text in helps.items() if "<bool>" in text}
    assert not shown, f"<bool> in the help of: {sorted(' '.join(w) for w in shown)}"
    # the flag, then its help: nothing between them
    assert re.search(r"--json\s+Print JSON", helps[("jobs", "list")]), helps[("jobs", "list")]
    assert re.search(r"--reset-attempts\s+Start counting", helps[("jobs", "retry")])
    assert all(re.search(r"--help\s+Show this message", text) for text in helps.values())
    # a value by its name, not its Python type; help text printed as written, not as markup
    option = r"^\s+--[\w-]+(?: / --[\w-]+)? <(str|int|float|list\[str\])"  # options (not arguments)
    typed = {w: t for w, t in helps.items() if re.search(option, t, re.MULTILINE)}
    assert not typed, f"a Python type as a metavar in: {sorted(' '.join(w) for w in typed)}"
    assert "--http-allow-host HOST" in helps[("worker",)]
    assert "--database-url URL" in helps[("jobs", "list")]
    assert "--format <text|json|junit|github>" in helps[("certify",)]
    assert "a folder with [tool.jobforge] in" in " ".join(helps[("certify",)].split())
