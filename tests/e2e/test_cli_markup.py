"""What a tenant wrote, or a database holds, is printed as written (security review, [3/10]): a
payload, an error message or a run record's runner version holding rich markup (`[/]`, `[bold
red]…[/]`, `[conceal]…[/conceal]`), an emoji code or a terminal escape is shown literally by
`jobs show`, `jobs list`, `runs list` and `runs show` — never a `MarkupError` traceback, never
hidden or restyled text, never an escape sequence the terminal obeys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobforge.provision import Database
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

MARKUP = "[/] [bold red]x[/] [conceal]secret[/conceal] :warning:"

PYPROJECT = """\
[tool.jobforge]
runners = ["hostile"]
"""

RUNNER = """\
from pydantic import BaseModel

from jobforge import RunContext, runner
from jobforge.errors import NonRetryable


class In(BaseModel):
    x: str


class Out(BaseModel):
    y: str


@runner("rls.job", version="1.0.0", input=In, output=Out)
def job(inp: In, ctx: RunContext) -> Out:
    raise NonRetryable(inp.x)
"""


def test_payloads_errors_and_run_records_are_printed_as_written(
    cli: Cli, project: Path, jobforge_db: Database
) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "hostile.py").write_text(RUNNER)
    url = ["--database-url", jobforge_db.dsn]
    tenant = ["--tenant", "acme"]
    enqueued = cli("enqueue", "rls.job", json.dumps({"x": MARKUP}), *url, *tenant, "--json")
    assert enqueued.code == 0, enqueued.err
    job_id = str(json.loads(enqueued.out)["job_id"])
    worker = cli("worker", "--exit-when-idle", *url)
    assert worker.code == 0, worker.err
    with jobforge_db.connect() as conn:  # a run record as a hostile writer could leave it
        conn.execute("UPDATE jobforge.job_runs SET runner_version = %s", (MARKUP + "\x1b[2J",))

    shown = cli("jobs", "show", job_id, *url, *tenant)
    assert shown.code == 0, shown.err
    assert f"payload: {json.dumps({'x': MARKUP})}" in shown.out
    assert "error: " in shown.out
    assert json.dumps(MARKUP)[1:-1] in shown.out.split("error: ")[1]

    listed = cli("jobs", "list", *url, *tenant)
    assert listed.code == 0, listed.err
    assert "rls.job" in listed.out

    runs = cli("runs", "list", *url)
    assert runs.code == 0, runs.err
    assert MARKUP + "\\x1b[2J" in runs.out
    assert "\x1b" not in runs.out  # the escape is shown, not obeyed

    record = cli("runs", "show", job_id, *url)
    assert record.code == 0, record.err
    assert json.dumps(MARKUP) in record.out  # the error message, in the record as stored
