"""`jobforge replay`: re-execute recorded runs against the current code, report divergences."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from jobforge import errors
from jobforge.certify import replay_policy
from jobforge.cli import runs_commands
from jobforge.cli.options import DEFAULT_HELP, REPLAYED_ALLOW_HOST, allowed_hosts
from jobforge.cli.output import console, counted
from jobforge.cli.report_output import ReportFormat, emit
from jobforge.config import ProjectConfig, find_config
from jobforge.contracts import RunnerDef, discover
from jobforge.golden.compare import require_deepdiff
from jobforge.replay import batch
from jobforge.replay.bundle import from_record
from jobforge.replay.engine import ReplayResult, Target
from jobforge.report import Report
from jobforge.runtime.http import HttpPolicy

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
    root = project.resolve()
    store = batch.FailedStore(root)
    config = find_config(root)
    runners = discover(config)
    policy = replay_policy(
        config or ProjectConfig(root=root), allowed_hosts(allow_hosts), ALLOW_HINT
    )
    unreadable: list[batch.Unreadable] = []
    if failed:
        targets, unreadable = batch.load_targets(store.paths(), root)
        if not targets and not unreadable:
            console.print("no saved failures to replay", markup=False)
            return
    elif from_db:
        rows = runs_commands.find(url, tenant, job, runner_type, None, since, limit)
        if not rows:
            raise errors.RunNotFound("no recorded run matches")
        targets = [
            Target(
                f"job {r.job_id} attempt {r.attempt} (run {r.id})",
                from_record(r.record, where=f"run {r.id}"),
                run_id=r.id,
            )
            for r in reversed(rows)
        ]
    else:
        targets, unreadable = batch.load_targets(paths or [], Path.cwd())
    started = time.perf_counter()
    results = _run(targets, runners, provider, concurrency, policy,
                   show=fmt is ReportFormat.text)  # fmt: skip
    report = Report(batch.items(results, unreadable, seconds=time.perf_counter() - started))
    if failed:
        dropped = store.drop_passing(targets, results)
        note = (f"{counted(dropped, 'saved failure')} now "
                f"{'passes and was' if dropped == 1 else 'pass and were'} dropped")  # fmt: skip
    else:
        saved = store.save(targets, results)
        note = f"{counted(len(saved), 'failure')} saved under {batch.FAILED_DIR}/" if saved else ""
    emit(report, fmt, output, suites=("replay",))
    if note and fmt is ReportFormat.text:
        console.print(note, markup=False)
    if not report.ok:
        raise typer.Exit(1)


def _run(targets: list[Target], runners: dict[str, RunnerDef], provider: str | None,
         concurrency: int, policy: HttpPolicy, *, show: bool) -> list[ReplayResult]:  # fmt: skip
    if not show or not console.is_terminal:
        return batch.replay_on_throwaway(targets, runners, provider=provider,
                                         concurrency=concurrency, http_policy=policy)  # fmt: skip
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("replay", total=len(targets))
        return batch.replay_on_throwaway(
            targets, runners, provider=provider, concurrency=concurrency, http_policy=policy,
            progress=lambda done, _: bar.update(task, completed=done),
        )  # fmt: skip
