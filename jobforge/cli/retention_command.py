"""`jobforge prune` and `jobforge retention set|list|clear`: deleting finished jobs, and how long
each type's are kept.

Glue over `jobforge.queue.retention`: durations and states are checked before any connection is
tried, and a login that may not prune or manage retention (only a superuser or a member of
jobforge_worker may) gets one line saying so, not a traceback.
"""

from __future__ import annotations

from datetime import timedelta

import typer
from rich.table import Table

from jobforge import db, errors
from jobforge.cli.options import DEFAULT_HELP, chosen_project
from jobforge.cli.output import console, literal, print_json
from jobforge.durations import LONGEST, format_duration, parse_duration
from jobforge.provision.target import chosen_tenant, ready_database_url
from jobforge.queue import QueueClient
from jobforge.queue.calls import DEFAULT_PRUNE_BATCH
from jobforge.queue.models import Pruned
from jobforge.queue.retention import (
    DEFAULT_THROTTLE,
    MAX_BATCH,
    PRUNABLE,
    Retention,
    check_prune,
    clear_retention,
    list_retention,
    pass_state,
    prune,
    set_retention,
)

app = typer.Typer(
    help="How long finished jobs of each type are kept before workers prune them.",
    no_args_is_help=True,
)

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")
_DENIED_PRUNE = "only a superuser or a member of jobforge_worker may prune jobs"
_DENIED = "only a superuser or a member of jobforge_worker may manage retention"


def _duration(flag: str, text: str, *, forever: bool = False) -> timedelta | None:
    """The duration an option was given, or one line naming it; `forever` (when allowed) is
    None."""
    if forever and text.strip().lower() == "forever":
        return None
    value = parse_duration(text)
    if value is None:
        examples = "30d, 12h, 90m, 2w or forever" if forever else "30d, 12h, 90m or 2w"
        raise errors.ConfigurationError(f"{flag} {text[:80]!r}: give a duration like {examples}")
    if value > LONGEST:
        raise errors.ConfigurationError(
            f"{flag} {text[:80]!r} is out of range: give at most {LONGEST.days}d"
        )
    return value


def _counts(pruned: Pruned) -> dict[str, int]:
    return {"jobs": pruned.jobs, "events": pruned.events, "attempts": pruned.attempts,
            "results": pruned.results, "runs": pruned.runs, "blobs": pruned.blobs,
            "blob_bytes": pruned.blob_bytes}  # fmt: skip


def prune_command(
    older_than: str | None = typer.Option(
        None,
        "--older-than",
        metavar="DURATION",
        help="Jobs that finished more than this long ago (30d, 12h, 90m, 2w); default: each "
        "type's retention (jobforge retention list).",
    ),
    status: list[str] | None = typer.Option(
        None, "--status", help=f"Only jobs in this state (repeat): {', '.join(PRUNABLE)}."
    ),
    job_type: list[str] | None = typer.Option(None, "--type", help="Only this job type (repeat)."),
    tenant: str | None = typer.Option(
        None,
        "--tenant",
        help="Only this tenant's jobs (default: $JOBFORGE_TENANT; with neither, every tenant's).",
    ),
    project: str | None = typer.Option(
        None,
        "--project",
        help="Only this project's jobs (default: $JOBFORGE_PROJECT; with neither, every "
        "project's).",
    ),
    runs_only: bool = typer.Option(
        False, "--runs-only", help="Delete the jobs' run records (and their artifacts) only."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; delete nothing."),
    batch: int = typer.Option(
        DEFAULT_PRUNE_BATCH,
        "--batch",
        help=f"Jobs per transaction (1-{MAX_BATCH}): each batch commits on its own.",
    ),
    throttle: float = typer.Option(
        DEFAULT_THROTTLE,
        "--throttle",
        metavar="FACTOR",
        help="After each batch, wait FACTOR times as long as it took, leaving the database to "
        "the workers (0: full speed).",
    ),
    url: str | None = _URL,
    as_json: bool = _JSON,
) -> None:
    """Delete finished jobs with their events, attempts, results and run records.

    Queued and running jobs (a retry waiting out its backoff too) are never touched. A pruned
    job's idempotency key is free again: enqueueing it creates a new job."""
    keep = None if older_than is None else _duration("--older-than", older_than)
    check_prune(keep, status, batch, throttle)  # told before any connection is tried
    chosen = chosen_tenant(tenant, required=False)
    scope = chosen_project(project)
    dsn = ready_database_url(url)
    with (
        QueueClient.connect(dsn, max_size=1) as client,
        db.readable_or(_DENIED_PRUNE),
    ):
        pruned = prune(client, older_than=keep, statuses=status, tenant=chosen, types=job_type,
                       runs_only=runs_only, dry_run=dry_run, batch=batch,
                       throttle=throttle, project=scope)  # fmt: skip
    if as_json:
        print_json({"dry_run": dry_run, "runs_only": runs_only,
                    "older_than": None if keep is None else format_duration(keep),
                    **_counts(pruned)})  # fmt: skip
        return
    verb = "would prune" if dry_run else "pruned"
    which = (
        "past their type's retention"
        if keep is None
        else f"finished more than {format_duration(keep)} ago"
    )
    if runs_only:
        said = f"{verb} {pruned.runs} run records of jobs {which} (the jobs stay)"
    else:
        said = (
            f"{verb} {pruned.jobs} jobs {which}: {pruned.events} stored events, {pruned.attempts} "
            f"attempts, {pruned.results} results, {pruned.runs} run records"
        )
    if pruned.blobs:
        said += (f"; {pruned.blobs} artifact blobs ({pruned.blob_bytes} bytes) no run "
                 "references")  # fmt: skip
    console.print(said + (" (dry run: nothing deleted)" if dry_run else ""), markup=False)


def _as_dict(row: Retention) -> dict[str, object]:
    return {"type": row.type, "keep": row.shown,
            "keep_s": None if row.keep is None else row.keep.total_seconds()}  # fmt: skip


@app.command("set")
def set_command(
    first: str | None = typer.Argument(
        None, metavar="TYPE", help="The job type (e.g. ops.scan); with --default, leave it out."
    ),
    second: str | None = typer.Argument(
        None, metavar="KEEP", help="How long its finished jobs are kept: 30d, 12h, 2w, forever."
    ),
    default: bool = typer.Option(
        False, "--default", help="Set the default, for every type without its own: give KEEP only."
    ),
    url: str | None = _URL,
    as_json: bool = _JSON,
) -> None:
    """Keep finished jobs of a type (or, with --default, of every type) this long."""
    if default and (first is None or second is not None):
        raise errors.ConfigurationError(
            "with --default give KEEP only: retention set --default 30d"
        )
    if first is None or (not default and second is None):
        raise errors.ConfigurationError(
            "give a job type and how long to keep its jobs (retention set ops.scan 7d), "
            "or --default and how long (retention set --default 30d)"
        )
    job_type, text = (None, first) if second is None else (first, second)
    keep = _duration("KEEP", text, forever=True)
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        row = set_retention(conn, job_type, keep)
    if as_json:
        print_json(_as_dict(row))
        return
    who = "every type without its own" if row.type is None else row.type
    console.print(f"finished jobs of {who} are kept {row.shown}", markup=False)


@app.command("list")
def list_command(url: str | None = _URL, as_json: bool = _JSON) -> None:
    """The default and each type's own retention, and the workers' last prune pass."""
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        rows = list_retention(conn)
        state = pass_state(conn)
    if as_json:
        print_json({"retention": [_as_dict(r) for r in rows],
                    "pass": {"holder": state.holder, "started_at": state.started_at,
                             "finished_at": state.finished_at, "under_way": state.under_way,
                             **_counts(state.pruned)}})  # fmt: skip
        return
    table = Table("type", "keep", box=None)
    for row in rows:
        table.add_row("(default)" if row.type is None else literal(row.type), row.shown)
    console.print(table)
    if state.started_at is None:
        console.print("no worker has pruned yet", markup=False)
        return
    when = "under way since" if state.under_way else "last pass started"
    console.print(
        f"{when} {state.started_at:%Y-%m-%d %H:%M:%S %Z}"
        + (f" by {state.holder}" if state.holder else "")
        + f": {state.pruned.jobs} jobs pruned",
        markup=False,
    )


@app.command("clear")
def clear_command(
    job_type: str = typer.Argument(..., metavar="TYPE", help="The job type (e.g. ops.scan)."),
    url: str | None = _URL,
) -> None:
    """Remove a type's own retention: its jobs follow the default again."""
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        cleared = clear_retention(conn, job_type)
    said = (
        f"{job_type} follows the default retention again"
        if cleared
        else f"{job_type} had no retention of its own"
    )
    console.print(said, markup=False)
