"""`jobforge replay`: re-execute recorded runs against the current code, report divergences."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from jobforge import errors
from jobforge.cli import runs_commands
from jobforge.cli.options import DEFAULT_HELP, REPLAYED_ALLOW_HOST, allowed_hosts
from jobforge.cli.output import console, counted
from jobforge.cli.report_output import ReportFormat, emit
from jobforge.golden.compare import require_deepdiff
from jobforge.replay import batch
from jobforge.replay.run import ReplayOutcome, ReplayRequest, replay_project

#: How replay's refusal of an unrecorded request to a private address says to allow it.
ALLOW_HINT = (
    "pass --http-allow-host {host} to jobforge replay, or list it in [tool.jobforge] "
    "http_allow_hosts"
)


def replay(
    paths: list[Path] | None = typer.Argument(None, help="Bundle files or folders."),
    url: str | None = typer.Option(
        None,
        "--database-url",
        help=f"Replay runs recorded in this database, with --job/--since ({DEFAULT_HELP}).",
    ),
    job: list[int] | None = runs_commands.JOB,
    since: str | None = runs_commands.SINCE,
    runner_type: list[str] | None = runs_commands.TYPE,
    tenant: str | None = runs_commands.TENANT,
    limit: int = runs_commands.LIMIT,
    failed: bool = typer.Option(
        False, "--failed", help="Rerun the failures saved under .jobforge/failed/."
    ),
    project: Path = typer.Option(
        Path("."), "--project", help="Runner repository (default: the working directory)."
    ),
    provider: str | None = typer.Option(
        None,
        "--provider",
        help="Where the throwaway Postgres comes from: auto, url, docker, local.",
    ),
    concurrency: int = typer.Option(16, "--concurrency", min=1, max=64, help="Runs at a time."),
    allow_hosts: list[str] | None = REPLAYED_ALLOW_HOST,
    fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", help="text|json|junit|github"),
    output: Path | None = typer.Option(None, "--output", help="Write the report to this file."),
) -> None:
    """Replay bundles (PATH...), runs from a database, or the saved failures; exit 1 on any
    divergence. Failures are saved under .jobforge/failed/ for `replay --failed`."""
    require_deepdiff("jobforge replay")  # a core install: one line, before a server starts
    from_db = bool(job or since or runner_type)
    sources = sum([bool(paths), from_db, failed])
    if sources != 1:
        raise errors.ConfigurationError(
            "say what to replay: bundle PATHs, or --job/--since/--type (with --database-url), "
            "or --failed — exactly one of them"
        )
    if not project.is_dir():
        raise errors.ConfigurationError(f"--project {project}: no such folder")
    request = ReplayRequest(
        project, paths=tuple(paths or ()), failed=failed, provider=provider,
        concurrency=concurrency, allow_hosts=allowed_hosts(allow_hosts), allow_hint=ALLOW_HINT,
        runs=(lambda: runs_commands.find(url, tenant, job, runner_type, None, since, limit))
        if from_db else None,
    )  # fmt: skip
    outcome = _replay(request, show=fmt is ReportFormat.text)
    if outcome.nothing:
        console.print("no saved failures to replay", markup=False)
        return
    emit(outcome.report, fmt, output, suites=("replay",))
    if (note := _store_note(outcome, failed)) and fmt is ReportFormat.text:
        console.print(note, markup=False)
    if not outcome.report.ok:
        raise typer.Exit(1)


def _store_note(outcome: ReplayOutcome, failed: bool) -> str:
    """What became of the failure store: failures saved, or saved failures that now pass."""
    if failed:
        dropped = outcome.dropped
        return (f"{counted(dropped, 'saved failure')} now "
                f"{'passes and was' if dropped == 1 else 'pass and were'} dropped")  # fmt: skip
    if outcome.saved:
        return f"{counted(len(outcome.saved), 'failure')} saved under {batch.FAILED_DIR}/"
    return ""


def _replay(request: ReplayRequest, *, show: bool) -> ReplayOutcome:
    """`replay_project`, with a progress bar on a terminal."""
    if not show or not console.is_terminal:
        return replay_project(request)
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("replay", total=None)
        return replay_project(
            request, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
