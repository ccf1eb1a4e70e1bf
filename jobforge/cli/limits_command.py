"""`jobforge limits set|list|clear`: caps on running jobs and rate limits the claim enforces.

Glue over `jobforge.queue.limits`: the values are checked before any connection is tried, and a
login that may not manage limits (only a superuser or a member of jobforge_worker may) gets one
line saying so, not a traceback.
"""

from __future__ import annotations

import typer
from rich.table import Table

from jobforge import db
from jobforge.cli.options import DEFAULT_HELP
from jobforge.cli.output import console, literal, print_json
from jobforge.provision.target import ready_database_url
from jobforge.queue.limits import Limit, check_limit, clear_limit, list_limits, set_limit

app = typer.Typer(
    help="Limits the claim enforces: running jobs per type or tenant, claims per second per type.",
    no_args_is_help=True,
)

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_SCOPE = typer.Argument(..., metavar="SCOPE", help="What the limit applies to: type or tenant.")
_KEY = typer.Argument(..., metavar="KEY", help="The job type (e.g. ops.scan) or the tenant id.")
_DENIED = "only a superuser or a member of jobforge_worker may manage queue limits"


def _as_dict(limit: Limit) -> dict[str, object]:
    return {"scope": limit.scope, "key": limit.key, "max_running": limit.max_running,
            "rate_per_s": limit.rate_per_s, "burst": limit.burst}  # fmt: skip


def _print(limits: list[Limit], as_json: bool) -> None:
    if as_json:
        print_json([_as_dict(x) for x in limits])
        return
    if not limits:
        console.print("no limits: every claim takes the fast path")
        return
    table = Table("scope", "key", "max running", "rate /s", "burst", box=None)
    for x in limits:
        table.add_row(x.scope, literal(x.key),
                      "-" if x.max_running is None else str(x.max_running),
                      "-" if x.rate_per_s is None else f"{x.rate_per_s:g}",
                      "-" if x.burst is None else f"{x.burst:g}")  # fmt: skip
    console.print(table)


@app.command("set")
def set_command(
    scope: str = _SCOPE,
    key: str = _KEY,
    max_running: int | None = typer.Option(
        None, "--max-running", help="At most this many jobs of it running at once (1-1000000)."
    ),
    rate: float | None = typer.Option(
        None, "--rate", help="Per job type: at most this many claims a second, on average."
    ),
    burst: float | None = typer.Option(
        None,
        "--burst",
        help="With --rate: claims that may go at once after a quiet spell"
        " (default: the rate, at least 1).",
    ),
    url: str | None = _URL,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Set (replace) the limits of one job type or tenant."""
    check_limit(scope, max_running, rate, burst)  # told before any connection is tried
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        limit = set_limit(conn, scope, key, max_running=max_running, rate_per_s=rate, burst=burst)
    _print([limit], as_json)


@app.command("list")
def list_command(
    url: str | None = _URL,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every limit, by scope and key."""
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        limits = list_limits(conn)
    _print(limits, as_json)


@app.command("clear")
def clear_command(scope: str = _SCOPE, key: str = _KEY, url: str | None = _URL) -> None:
    """Remove the limits of one job type or tenant."""
    check_limit(scope, 1, None, None)  # the scope, before any connection is tried
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        cleared = clear_limit(conn, scope, key)
    said = f"cleared the limits of {scope} {key}" if cleared else f"{scope} {key} had no limits"
    console.print(said, markup=False)
