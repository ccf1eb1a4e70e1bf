"""Options, and their help, that more than one command of the CLI declares."""

from __future__ import annotations

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
