"""`jobforge init`: start a runner repository (glue over `jobforge.scaffold`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from jobforge.cli.output import console
from jobforge.scaffold import DEFAULT_PACKAGE, RUNNER_ID, init_project

_STYLE = {"wrote": "green", "added": "yellow", "kept": "dim"}


def init(
    folder: Path = typer.Argument(Path("."), help="Folder of the new runner repository."),
    package: str = typer.Option(
        DEFAULT_PACKAGE, "--package", help="Name of the runner package to create."
    ),
) -> None:
    """Start a runner repository: [tool.jobforge], an example runner with its golden case and
    contract lock, a test, a GitHub Actions workflow and a .gitignore entry. Never overwrites."""
    for step in init_project(folder, package):
        note = f"  ({escape(step.note)})" if step.note else ""
        console.print(f"[{_STYLE[step.action]}]{step.action}[/] {escape(step.path)}{note}")
    where = "" if folder.resolve() == Path.cwd().resolve() else f"cd {folder} && "
    console.print(
        f"next: {where}python -m pytest, then jobforge certify (each starts a throwaway "
        f"Postgres); the example runner is {RUNNER_ID}",
        markup=False,
    )
