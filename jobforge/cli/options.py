"""Options, and their help, that more than one command of the CLI declares."""

from __future__ import annotations

import getpass
import os

import typer

from jobforge import errors
from jobforge.queue import projects

#: What every command's --database-url help says of its default.
DEFAULT_HELP = (
    "default: $JOBFORGE_DATABASE_URL, else the development server of this project "
    "(`jobforge db start`)"
)

#: `--http-allow-host` of the commands that replay recorded runs (certify, replay): what the
#: recording worker's own `--http-allow-host` allowed, not a host they may reach themselves.
REPLAYED_ALLOW_HOST = typer.Option(
    None,
    "--http-allow-host",
    help="A host the recording worker was allowed to reach (repeat), as its own "
    "--http-allow-host: recorded exchanges replay without it; it makes a request with no "
    "recording to that host an unrecorded request, not a refused one. Also read from "
    "[tool.jobforge] http_allow_hosts.",
)


def allowed_hosts(values: list[str] | None) -> tuple[str, ...]:
    """The hosts `REPLAYED_ALLOW_HOST` was given, in order (none when it was not)."""
    return tuple(values or ())


#: --actor of the commands that change jobs: who the audit trail names (migrations/0014).
ACTOR = typer.Option(
    None,
    "--actor",
    help="Who acts, for the audit trail (default: $JOBFORGE_ACTOR, else your OS login name).",
)
#: --reason of the commands that change jobs by hand.
REASON = typer.Option(None, "--reason", help="Why, kept in the audit trail with the change.")


#: Where a command's project comes from when --project is not given.
PROJECT_ENV = "JOBFORGE_PROJECT"

#: --project of the commands that read or change a tenant's jobs (migrations/0016).
PROJECT = typer.Option(
    None,
    "--project",
    help="Only this project's jobs, held to it by row-level security (default: "
    "$JOBFORGE_PROJECT; with neither, every project of the tenant).",
)


def chosen_project(given: str | None) -> str | None:
    """--project, else $JOBFORGE_PROJECT, else None (every project). A value that is given but
    not a project name (`--project ""`, a wrapper's unset variable) is one line, never read as
    "every project": that would widen the command to all of them."""
    if given is not None:
        value, source = given, "--project"
    elif PROJECT_ENV in os.environ:
        value, source = os.environ[PROJECT_ENV], PROJECT_ENV
    else:
        return None
    if (why := projects.problem(value)) is not None:
        raise errors.ConfigurationError(f"{source} {why}")
    return value


def cli_actor(given: str | None) -> str:
    """The actor a command names: `--actor`, else $JOBFORGE_ACTOR, else the OS login name (so
    that a change made from a terminal is never anonymous)."""
    if given is not None:
        return given
    if env := os.environ.get("JOBFORGE_ACTOR"):
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's uid without a passwd entry)
        return "jobforge-cli"
