"""`jobforge doctor`: which provisioning path would be used and why, and does it work; in a
runner repository, also the queued jobs that no runner or handler of it handles."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import typer
from rich.markup import escape

from jobforge import errors
from jobforge.cli.known_types import known_types
from jobforge.cli.output import Format, console, print_json
from jobforge.cli.target import database_url
from jobforge.provision.diagnose import diagnose
from jobforge.queue.inspect import queued_types

_MARKS = {"ok": "[green]ok[/]  ", "warn": "[yellow]warn[/]", "skip": "[dim]skip[/]"}


@dataclass(frozen=True)
class QueuedTypes:
    """Queued jobs of types this repository does not handle: a warning, not a failure (a worker
    of another repository may serve them), since such jobs otherwise wait without a word."""

    mark: str  #: ok, warn, or skip (not looked at)
    detail: str
    unknown: dict[str, int] | None = None  #: queued jobs per unhandled type; None: not looked


def queued_type_check(url: str | None) -> QueuedTypes | None:
    """None outside a runner repository; else what the queue of the target database (the
    commands' own: --database-url, JOBFORGE_DATABASE_URL or the dev server) holds."""
    try:
        known = known_types()
    except errors.JobforgeError as exc:
        return QueuedTypes("skip", f"cannot load this repository's runners: {exc}")
    if known is None:
        return None
    try:
        dsn, _ = database_url(url)
        counts = queued_types(dsn)
    except errors.JobforgeError as exc:
        return QueuedTypes("skip", str(exc))
    if counts is None:
        return QueuedTypes("skip", "this login may not read every tenant's jobs (a superuser or "
                           "a member of jobforge_worker may)")  # fmt: skip
    unknown = {t: n for t, n in counts.items() if t not in known.types}
    if not unknown:
        total = sum(counts.values())
        return QueuedTypes("ok", f"{total} queued job{'' if total == 1 else 's'}, of types this "
                           "repository handles", {})  # fmt: skip
    parts = []
    for job_type, jobs in sorted(unknown.items()):
        close = known.closest(job_type)
        parts.append(f"{job_type} ({jobs} queued{f'; did you mean {close}?' if close else ''})")
    return QueuedTypes("warn", f"no runner or handler of this repository handles "
                       f"{', '.join(parts)}", unknown)  # fmt: skip


def doctor(
    url: str | None = typer.Option(None, "--database-url", help="Check this server instead."),
    provider: str | None = typer.Option(None, help="auto, url, docker or local (default: auto)."),
    start: bool = typer.Option(
        True, "--start/--no-start", help="Start a throwaway server and clone a database."
    ),
    fmt: Format = typer.Option(Format.text, "--format", help="text or json."),
) -> None:
    """Report the provisioning path, Postgres version and migrations; exit 1 when a check fails."""
    report = diagnose(database_url=url, provider=provider, start=start)
    queued = queued_type_check(url)
    if fmt is Format.json:
        print_json({
            "ok": report.ok,
            "provider": report.provider,
            "checks": [vars(c) for c in report.checks],
            "figures": report.figures,
            "queued_types": asdict(queued) if queued is not None else None,
        })  # fmt: skip
    else:
        for check in report.checks:
            mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
            mark = mark if check.used else "[dim]skip[/]"
            console.print(f"{mark} {escape(check.name)}: {escape(check.detail)}", markup=True)
        if queued is not None:
            console.print(f"{_MARKS[queued.mark]} queued job types: {escape(queued.detail)}",
                          markup=True)  # fmt: skip
        summary = f"provider: {report.provider or 'none'}"
        if report.figures:
            summary += "; " + ", ".join(f"{k}={v}" for k, v in report.figures.items())
        console.print(summary, markup=False)
        console.print(
            "[bold green]all good[/]" if report.ok else "[bold red]problems found[/]", markup=True
        )
    if not report.ok:
        raise typer.Exit(1 if report.provider else 2)
