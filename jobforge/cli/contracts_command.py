"""`jobforge contracts show|lock|check|diff`: glue over `jobforge.contracts.gate`.

Exit codes: `check` 0 when every lock matches (or, with `--against`, every change is covered by
its version bump), 1 on drift; `lock` 1 when it refused a runner; `diff` is informational and
exits 0 whatever changed. Any of them: 2 on a usage or configuration error.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jobforge import errors
from jobforge.cli.output import UNBOUNDED_WIDTH, Format, console, counted
from jobforge.cli.report_output import ReportFormat, machine_text, write_report
from jobforge.config import ProjectConfig, did_you_mean, find_config
from jobforge.contracts import RunnerDef, contract_of, discover
from jobforge.contracts.gate import LockResult, check_project, lock_project
from jobforge.replay.samples import recorded_inputs
from jobforge.report import Outcome, Report

app = typer.Typer(help="Runner contracts.", no_args_is_help=True)

_PROJECT_HELP = "Folder of the runner repo (default: the working directory)."


@app.command("show")
def show(
    runner_id: str = typer.Argument(..., metavar="RUNNER", help="Runner id (its job type)."),
    project: Path | None = typer.Option(None, "--project", help=_PROJECT_HELP),
    fmt: Format = typer.Option(Format.json, "--format", help="json or text."),
) -> None:
    """Print the contract RUNNER declares, as `contracts lock` would write it."""
    if project is not None and not project.is_dir():
        raise errors.ConfigurationError(f"--project {project}: no such folder")
    start = (project or Path.cwd()).resolve()
    config = find_config(start)
    runners = discover(config)
    definition = runners.get(runner_id)
    if definition is None:
        known = ", ".join(sorted(runners)) or "none"
        where = (
            f"looked in the [tool.jobforge] runners of {config.root / 'pyproject.toml'} and the "
            "jobforge.runners entry points"
            if config
            else f"no pyproject.toml with [tool.jobforge] in {start} or above it, so only the "
            "jobforge.runners entry points were searched"
        )
        hint = did_you_mean(runner_id, runners)
        raise errors.ConfigurationError(f"no runner {runner_id!r}{hint} (found: {known}; {where})")
    contract = contract_of(definition).model_dump(mode="json")
    if fmt is Format.json:
        console.print(json.dumps(contract, indent=2, sort_keys=True), markup=False)
        return
    g = contract["guarantees"]
    console.print(f"{runner_id} {contract['version']}  ({definition.where})", markup=False)
    console.print(
        "guarantees: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in sorted(g.items())),
        markup=False,
    )
    console.print(f"trace keys: {', '.join(contract['trace_keys']) or '-'}", markup=False)
    console.print(f"artifacts: {', '.join(contract['artifacts']) or '-'}", markup=False)
    limits = definition.limits.describe() if definition.limits else "-"
    console.print(f"queue limits: {limits}", markup=False)
    for side in ("input", "output"):
        props = contract[f"{side}_schema"].get("properties", {})
        required = set(contract[f"{side}_schema"].get("required", []))
        fields = ", ".join(f"{k}{'' if k in required else '?'}" for k in props)
        console.print(f"{side}: {fields or '-'}", markup=False)


@app.command("lock")
def lock(
    runner_ids: list[str] | None = typer.Argument(
        None, metavar="[RUNNER]...", help="Runners to lock (default: all)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Write even when the version bump does not cover the changes."
    ),
    prune: bool = typer.Option(
        False, "--prune", help="Delete the locks of runners no longer declared."
    ),
    project: Path | None = typer.Option(None, "--project", help=_PROJECT_HELP),
) -> None:
    """Write contracts/<runner_id>.json for each runner the version policy allows."""
    config, runners = _project(project)
    result = lock_project(config, runners, only=runner_ids or None, force=force, prune=prune)
    _print_lock(result, config)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@app.command("check")
def check(
    runner_ids: list[str] | None = typer.Argument(
        None, metavar="[RUNNER]...", help="Runners to check (default: all)."
    ),
    against: str | None = typer.Option(
        None, "--against", metavar="REV", help="Compare with the locks at this git revision."
    ),
    fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", help="text|json|junit|github"),
    output: Path | None = typer.Option(None, "--output", help="Write the report to this file."),
    project: Path | None = typer.Option(None, "--project", help=_PROJECT_HELP),
    url: str | None = typer.Option(
        None, "--database-url", help="Also validate the inputs of runs recorded in this database."
    ),
) -> None:
    """Fail (exit 1) when a declared contract drifted from its lock; each change classified."""
    config, runners = _project(project)
    samples = recorded_inputs(url, runner_ids or sorted(runners)) if url else None
    report = check_project(config, runners, against=against, only=runner_ids or None,
                           samples=samples)  # fmt: skip
    _emit(report.files_from(config.root, Path.cwd()), fmt, output, "check")
    if not report.ok:
        raise typer.Exit(1)


@app.command("diff")
def diff(
    runner_ids: list[str] | None = typer.Argument(
        None, metavar="[RUNNER]...", help="Runners to compare (default: all)."
    ),
    against: str | None = typer.Option(
        None, "--against", metavar="REV", help="Compare with the locks at this git revision."
    ),
    fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", help="text|json|junit|github"),
    output: Path | None = typer.Option(None, "--output", help="Write the report to this file."),
    project: Path | None = typer.Option(None, "--project", help=_PROJECT_HELP),
) -> None:
    """Show each classified change between declarations and locks (exit 0 whatever changed)."""
    config, runners = _project(project)
    report = check_project(config, runners, against=against, only=runner_ids or None,
                           mode="diff")  # fmt: skip
    _emit(report.files_from(config.root, Path.cwd()), fmt, output, "diff")


def _project(project: Path | None) -> tuple[ProjectConfig, dict[str, RunnerDef]]:
    if project is not None and not project.is_dir():
        raise errors.ConfigurationError(f"--project {project}: no such folder")
    start = (project or Path.cwd()).resolve()
    config = find_config(start)
    if config is None:
        raise errors.ConfigurationError(
            f"no pyproject.toml with a [tool.jobforge] table in {start} or above it: the gate "
            "needs its runners and contracts_dir"
        )
    # the project's own modules; entry points only when it names none (theirs to lock)
    return config, discover(config, entry_points=not config.runners)


def _emit(report: Report, fmt: ReportFormat, output: Path | None, verb: str) -> None:
    if fmt is ReportFormat.text:
        if output is None:
            _print_report(report, console, verb)
            return
        buffer = io.StringIO()
        _print_report(
            report, Console(file=buffer, width=UNBOUNDED_WIDTH, highlight=False, emoji=False), verb
        )
        body = buffer.getvalue().rstrip("\n")
    else:
        body = machine_text(report, fmt)
    if output is None:
        console.print(body, markup=False, highlight=False, soft_wrap=True)
        return
    write_report(output, body)
    _print_report(report, console, verb)


_SEVERITY_STYLE = {"breaking": "red", "compatible": "yellow"}


def _table() -> Table:
    """The detail keeps room to be read on a narrow (80-column CI) terminal."""
    table = Table(show_edge=False, header_style="bold")
    for column in ("runner", "change", "severity", "path"):
        table.add_column(column, overflow="fold", no_wrap=column == "severity")
    table.add_column("detail", overflow="fold", min_width=24)
    return table


def _print_report(report: Report, out: Console, verb: str) -> None:
    """A table of every change (runner, rule, severity, path, detail), then a line per runner."""
    rows = [(item, finding) for item in report.items for finding in item.findings]
    if rows:
        table = _table()
        for item, finding in rows:
            severity = finding.severity or ""
            style = _SEVERITY_STYLE.get(severity, "")
            table.add_row(
                escape(item.name),
                escape(finding.rule or ""),
                f"[{style}]{escape(severity)}[/]" if style else escape(severity),
                escape(finding.path or ""),
                escape(finding.message),
            )
        out.print(table)
    for item in report.items:
        if verb == "diff":
            mark = "[green]same[/]" if item.outcome is Outcome.passed else "[yellow]differs[/]"
        else:
            mark = "[green]ok[/]" if item.outcome is Outcome.passed else "[red]DRIFT[/]"
        out.print(f"{mark} {escape(item.name)}: {escape(item.summary)}", markup=True)
    total = len(report.items)
    if verb == "diff":
        differing = sum(1 for i in report.items if i.outcome is not Outcome.passed)
        out.print(f"contracts: {differing} of {total} runners differ from their baseline")
        return
    failing = sum(1 for i in report.items if i.outcome not in (Outcome.passed, Outcome.skipped))
    verdict = "[bold green]ok[/]" if report.ok else "[bold red]FAILED[/]"
    match = f"{counted(total, 'runner')} match{'es' if total == 1 else ''}"
    detail = f"{failing} of {total} runners drifted" if failing else match
    out.print(f"contracts: {verdict} ({detail})", markup=True)


_ACTION_STYLE = {"written": "green", "unchanged": "dim", "refused": "red", "kept": "yellow",
                 "pruned": "yellow"}  # fmt: skip


def _print_lock(result: LockResult, config: ProjectConfig) -> None:
    rows = [(o.runner_id, c) for o in result.outcomes if o.action in ("written", "refused")
            for c in o.drift.all_changes if c.rule != "runner.version_changed"]  # fmt: skip
    if rows:
        table = _table()
        for runner_id, change in rows:
            style = _SEVERITY_STYLE[change.severity]
            table.add_row(escape(runner_id), escape(change.rule),
                          f"[{style}]{change.severity}[/]", escape(change.path),
                          escape(change.message))  # fmt: skip
        console.print(table)
    for outcome in result.outcomes:
        style = _ACTION_STYLE[outcome.action]
        console.print(
            f"[{style}]{outcome.action}[/] {escape(outcome.runner_id)}: {escape(outcome.reason)}",
            markup=True,
        )
    written = sum(1 for o in result.outcomes if o.action == "written")
    where = config.contracts_dir
    if result.refused:
        console.print(
            f"contracts lock: [bold red]{len(result.refused)} refused[/], {written} written to "
            f"{escape(where)}/",
            markup=True,
        )
    else:
        console.print(f"contracts lock: {written} written to {escape(where)}/", markup=True)
