"""`jobforge doctor`: which provisioning path would be used and why, and does it work."""

from __future__ import annotations

import typer
from rich.markup import escape

from jobforge.cli.output import Format, console, print_json
from jobforge.provision.diagnose import diagnose


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
    if fmt is Format.json:
        print_json({
            "ok": report.ok,
            "provider": report.provider,
            "checks": [vars(c) for c in report.checks],
            "figures": report.figures,
        })  # fmt: skip
    else:
        for check in report.checks:
            mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
            mark = mark if check.used else "[dim]skip[/]"
            console.print(f"{mark} {escape(check.name)}: {escape(check.detail)}", markup=True)
        summary = f"provider: {report.provider or 'none'}"
        if report.figures:
            summary += "; " + ", ".join(f"{k}={v}" for k, v in report.figures.items())
        console.print(summary, markup=False)
        console.print(
            "[bold green]all good[/]" if report.ok else "[bold red]problems found[/]", markup=True
        )
    if not report.ok:
        raise typer.Exit(1 if report.provider else 2)
