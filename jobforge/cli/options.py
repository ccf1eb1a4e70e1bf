"""Options, and their help, that more than one command of the CLI declares."""

from __future__ import annotations

import getpass
import os

import typer

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
