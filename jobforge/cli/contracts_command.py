"""`jobforge contracts show`: the contract a runner declares (lock, check, diff: [6/7])."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from jobforge import errors
from jobforge.cli.output import Format, console
from jobforge.contracts import contract_of, discover, find_config

app = typer.Typer(help="Runner contracts.", no_args_is_help=True)


@app.command("show")
def show(
    runner_id: str = typer.Argument(..., metavar="RUNNER", help="Runner id (its job type)."),
    project: Path | None = typer.Option(
        None, "--project", help="Folder of the runner repo (default: the working directory)."
    ),
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
        raise errors.ConfigurationError(f"no runner {runner_id!r} (found: {known}; {where})")
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
    for side in ("input", "output"):
        props = contract[f"{side}_schema"].get("properties", {})
        required = set(contract[f"{side}_schema"].get("required", []))
        fields = ", ".join(f"{k}{'' if k in required else '?'}" for k in props)
        console.print(f"{side}: {fields or '-'}", markup=False)
