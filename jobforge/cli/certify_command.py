"""`jobforge certify`: contracts, golden cases, determinism and replay of a runner repository."""

from __future__ import annotations

from pathlib import Path

import typer

from jobforge.certify import SUITES, Options, certify
from jobforge.cli.options import REPLAYED_ALLOW_HOST, allowed_hosts
from jobforge.cli.output import console
from jobforge.cli.report_output import ReportFormat, emit
from jobforge.config import find_config
from jobforge.golden.compare import require_deepdiff


def certify_command(
    project: Path = typer.Argument(
        Path("."), help="Runner repository (a folder with [tool.jobforge] in pyproject.toml)."
    ),
    provider: str | None = typer.Option(
        None,
        "--provider",
        help="Where the throwaway Postgres comes from: auto, url, docker, local.",
    ),
    runs: int = typer.Option(2, "--runs", min=1, max=20, help="In-process runs per golden case."),
    fresh: bool = typer.Option(
        True, "--fresh/--no-fresh", help="Also run each case in a fresh interpreter."
    ),
    strict: bool = typer.Option(
        True, "--strict/--no-strict", help="Report uncontrolled calls (time, random, uuid…)."
    ),
    bundles: Path | None = typer.Option(
        None, "--bundles", help="Bundles folder to replay (default: [tool.jobforge] bundles_dir)."
    ),
    allow_hosts: list[str] | None = REPLAYED_ALLOW_HOST,
    fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", help="text|json|junit|github"),
    output: Path | None = typer.Option(None, "--output", help="Write the report to this file."),
) -> None:
    """Certify a runner repository on a throwaway Postgres; exit 1 when any check fails."""
    require_deepdiff("jobforge certify")  # a core install: one line, before a server starts
    say = (lambda line: console.print(line, markup=False)) if fmt is ReportFormat.text else None
    options = Options(project=project, provider=provider, runs=runs, fresh=fresh, strict=strict,
                      bundles=bundles, allow_hosts=allowed_hosts(allow_hosts))  # fmt: skip
    report = certify(options, say)
    if (config := find_config(project.resolve())) is not None:
        # files as a CI sees them from where it ran: `examples/golden/...`, not `golden/...`
        report = report.files_from(config.root, Path.cwd())
    emit(report, fmt, output, suites=SUITES)
    if not report.ok:
        raise typer.Exit(1)
