"""`jobforge doctor`: which path to a server for scratch databases would be used and why, and
does it work; read only, the database commands act on (it answers, its migrations); in a runner
repository, also the queued jobs that no runner or handler of it handles.

`--database-url` means here what it means on every command: the database commands act on (as
$JOBFORGE_DATABASE_URL), never a server for scratch databases: doctor creates nothing there. A
server for scratch databases is named with `--scratch-database-url` (or
$JOBFORGE_SCRATCH_DATABASE_URL), where doctor builds the template tests would use."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import typer
from rich.markup import escape

from jobforge import errors
from jobforge.cli.known_types import known_types
from jobforge.cli.options import DEFAULT_HELP
from jobforge.cli.output import Format, console, print_json
from jobforge.provision.diagnose import Check, Report, diagnose, inspect_database, shipped
from jobforge.provision.target import NO_DATABASE, named_database
from jobforge.queue.inspect import queued_types

_MARKS = {"ok": "[green]ok[/]  ", "warn": "[yellow]warn[/]", "skip": "[dim]skip[/]",
          "fail": "[red]FAIL[/]"}  # fmt: skip


@dataclass(frozen=True)
class QueuedTypes:
    """Queued jobs of types this repository does not handle: a warning, not a failure (a worker
    of another repository may serve them), since such jobs otherwise wait without a word."""

    mark: str  #: ok, warn, fail (the repository's runners do not load), or skip (not looked at)
    detail: str
    unknown: dict[str, int] | None = None  #: queued jobs per unhandled type; None: not looked


def queued_type_check(target: str | None, unavailable: str) -> QueuedTypes | None:
    """None outside a runner repository; else what the queue of `target` (the database commands
    act on, None when it cannot be read: `unavailable` says why) holds. A [tool.jobforge] or a
    runner module of this repository that does not load fails the check."""
    try:
        known = known_types()
    except errors.JobforgeError as exc:
        return QueuedTypes("fail", f"cannot load this repository's runners: {exc}")
    if known is None:
        return None
    if target is None:
        return QueuedTypes("skip", unavailable)
    try:
        counts = queued_types(target)
    except errors.JobforgeError as exc:
        return QueuedTypes("fail", str(exc))
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


def check_database(report: Report, option: str | None) -> tuple[str | None, str]:
    """The read-only checks of the database commands act on (--database-url,
    $JOBFORGE_DATABASE_URL or this project's running dev server), added to `report`: a named one
    that does not answer, or whose migrations are pending, fails. Returns its URL when its queue
    can be read, else None and why not."""
    try:
        named = named_database(option)
    except errors.JobforgeError as exc:  # a dev server state file refused, a bad pyproject.toml
        report.checks.append(Check("database", False, str(exc)))
        return None, "no database to read (above)"
    if named is None:
        report.checks.append(
            Check("database", True, f"none named ({NO_DATABASE}); migrations: {shipped()}",
                  used=False)
        )  # fmt: skip
        return None, f"no database named: {NO_DATABASE}"
    dsn, source = named
    if not inspect_database(report, dsn, source):
        return None, "the database is not ready (above)"
    return dsn, ""


def doctor(
    url: str | None = typer.Option(
        None,
        "--database-url",
        help="The database commands act on, checked read only: that it answers, its migrations "
        f"(pending ones fail), its queued job types ({DEFAULT_HELP}).",
    ),
    scratch_url: str | None = typer.Option(
        None,
        "--scratch-database-url",
        help="Check this server for scratch databases, as $JOBFORGE_SCRATCH_DATABASE_URL would "
        "name it (default: that variable, else Docker, else local binaries); without --no-start "
        "doctor builds the migrated template there (jobforge_tpl_...), as tests would.",
    ),
    provider: str | None = typer.Option(None, help="auto, url, docker or local (default: auto)."),
    start: bool = typer.Option(
        True,
        "--start/--no-start",
        help="Start a throwaway server for scratch databases, build its template and clone a "
        "database (--no-start: only say which path would be taken).",
    ),
    fmt: Format = typer.Option(Format.text, "--format", help="text or json."),
) -> None:
    """Report the provisioning path of scratch databases, Postgres versions, and the database
    commands act on (read only); exit 1 when a check fails."""
    report = diagnose(scratch_url=scratch_url, provider=provider, start=start)
    target, unavailable = check_database(report, url)
    queued = queued_type_check(target, unavailable)
    ok = report.ok and (queued is None or queued.mark != "fail")
    if fmt is Format.json:
        print_json({
            "ok": ok,
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
        console.print("[bold green]all good[/]" if ok else "[bold red]problems found[/]",
                      markup=True)  # fmt: skip
    if not ok:
        raise typer.Exit(1 if report.provider else 2)
