"""`jobforge limits set|list|clear|apply`: caps on running jobs and rate limits the claim
enforces.

Glue over `jobforge.queue.limits` and `jobforge.declared_limits`: the values (and the runners
named) are checked before any connection is tried, and a login that may not manage limits (only a
superuser or a member of jobforge_worker may) gets one line saying so, not a traceback.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from jobforge import db, errors
from jobforge.cli.options import DEFAULT_HELP
from jobforge.cli.output import console, literal, print_json
from jobforge.config import find_config
from jobforge.contracts import RunnerDef, discover, find_runner
from jobforge.declared_limits import LimitSync, apply_limits
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


@app.command("apply")
def apply_command(
    runner_ids: list[str] | None = typer.Argument(
        None, metavar="[RUNNER]...", help="Runners whose limits to apply (default: all)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change; write nothing."),
    project: Path | None = typer.Option(
        None, "--project", help="Folder of the runner repo (default: the working directory)."
    ),
    url: str | None = _URL,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of lines."),
) -> None:
    """Write the queue limits runners declare (@runner(limits=...)) to the database.

    Each runner's job type gets its declared limits; a row that differs (set by hand, or an
    older declaration) is replaced and said so. Limits of types whose runner declares none are
    left alone and listed."""
    runners = runners_of(project, runner_ids or [], "nothing to apply")  # before connecting
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        found = apply_limits(conn, runners, dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "runners": [x.as_dict() for x in found]})
        return
    for sync in found:
        console.print(f"{sync.action} {sync.runner_id}: {sync.describe(dry_run=dry_run)}",
                      markup=False)  # fmt: skip
    console.print(_summary(found, dry_run, len(runners)), markup=False)


def runners_of(project: Path | None, only: list[str], nothing: str) -> dict[str, RunnerDef]:
    """The runners a worker started here would serve (the project's, and the jobforge.runners
    entry points), narrowed to `only`; `nothing` says what follows when there are none."""
    if project is not None and not project.is_dir():
        raise errors.ConfigurationError(f"--project {project}: no such folder")
    config = find_config((project or Path.cwd()).resolve())
    runners = discover(config)
    if not runners:
        where = f"[tool.jobforge] runners of {config.root}" if config else "no [tool.jobforge]"
        raise errors.ConfigurationError(
            f"no runner is declared ({where}, no jobforge.runners entry point): {nothing}"
        )
    return {rid: find_runner(rid, runners) for rid in only} if only else runners


def _summary(found: list[LimitSync], dry_run: bool, served: int) -> str:
    if not found:
        return f"limits apply: none of {served} runners declares queue limits; nothing to do"
    counts = {a: sum(1 for x in found if x.action == a)
              for a in ("added", "changed", "unchanged", "undeclared")}  # fmt: skip
    said = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
    written = counts["added"] + counts["changed"]
    tail = f"dry run, {written} would be written" if dry_run else f"{written} written"
    return f"limits apply: {said} ({tail})"
