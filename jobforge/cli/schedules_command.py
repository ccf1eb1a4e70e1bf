"""`jobforge schedules add|list|pause|resume|rm|firings`: a tenant's cron jobs.

Glue over `jobforge.queue.schedules`: the cron expression, the time zone and the job (its type
known to the runner repository around the working directory, its input valid for the runner's
model, as `jobforge enqueue` checks) are checked before any connection is tried; the database
refuses in one line what it refuses (the `schedules` feature off for the tenant, a name taken).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from jobforge import errors
from jobforge.cli.job_input import Flags, checked_job, read_input
from jobforge.cli.options import ACTOR, DEFAULT_HELP, cli_actor
from jobforge.cli.output import console, literal, print_json
from jobforge.cron import DEFAULT_GRACE, MAX_CATCH_UP, MAX_GRACE, MISSED_POLICIES, Cron
from jobforge.durations import format_duration, parse_duration
from jobforge.provision.target import chosen_tenant, ready_database_url
from jobforge.queue import QueueClient, audit
from jobforge.queue.schedules import DEFAULT_FIRINGS, NAME, Firing, NewSchedule, Schedule

app = typer.Typer(
    help="Cron schedules: a job enqueued at each slot of a cron expression in a time zone, "
    "fired by the workers once per slot (one tenant at a time; the `schedules` feature must "
    "be on: jobforge features).",
    no_args_is_help=True,
)

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_TENANT = typer.Option(None, "--tenant", help="Tenant (default: $JOBFORGE_TENANT).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")
_NAME = typer.Argument(..., metavar="NAME", help="The schedule's name (unique per tenant).")
_INPUT = Flags(text="--input", file="--input-file", noun="input")


def _client(url: str | None, tenant: str | None, actor: str | None = None) -> QueueClient:
    chosen = chosen_tenant(tenant, required=True)
    who = cli_actor(actor)
    audit.acting(who, None)  # a bad --actor is one line, before connecting
    return QueueClient.connect(ready_database_url(url), tenant=chosen, max_size=1, actor=who)


def _utc(instant: datetime | None) -> str:
    """`instant` in UTC, to the second (`-` for none)."""
    return "-" if instant is None else f"{instant.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def _iso(instant: datetime | None) -> str | None:
    """`instant` in UTC, ISO 8601, for JSON."""
    return None if instant is None else instant.astimezone(UTC).isoformat()


def _state(s: Schedule) -> str:
    if s.broken:
        return "broken (paused)"
    state = "paused" if s.paused else "held (feature off)" if s.held else "active"
    return state + (", dry run" if s.dry_run else "")


def _as_dict(s: Schedule) -> dict[str, Any]:
    upcoming = s.upcoming()
    local = _local(s, upcoming)
    return {
        "name": s.name, "cron": s.cron, "timezone": s.timezone, "type": s.type,
        "input": s.input, "priority": s.priority, "max_attempts": s.max_attempts,
        "missed": s.missed, "catch_up": s.catch_up, "grace": format_duration(s.grace),
        "dry_run": s.dry_run, "paused": s.paused, "held": s.held, "broken": s.broken,
        "next_slot": _iso(upcoming), "next_slot_local": local, "last_slot": _iso(s.last_slot),
        "created_at": _iso(s.created_at), "updated_at": _iso(s.updated_at), "login": s.login,
        "actor": s.actor,
    }  # fmt: skip


def _local(s: Schedule, instant: datetime | None) -> str | None:
    if instant is None:
        return None
    try:
        return Cron.parse(s.cron, s.timezone).local(instant).isoformat()
    except errors.ConfigurationError:
        return None


def _grace(text: str) -> timedelta:
    value = parse_duration(text)
    if value is None or value > MAX_GRACE:
        raise errors.ConfigurationError(
            f"--grace {text[:40]!r}: give a duration from 0s up to {format_duration(MAX_GRACE)} "
            "(e.g. 60s, 5m)"
        )
    return value


@app.command("add")
def add_command(
    name: str = _NAME,
    cron: str = typer.Option(
        ...,
        "--cron",
        metavar="EXPR",
        help="Five fields (minute hour day month weekday), e.g. '*/5 * * * *', "
        "or @hourly, @daily, @weekly, @monthly, @yearly.",
    ),
    tz: str = typer.Option(
        "UTC",
        "--tz",
        metavar="ZONE",
        help="The time zone the expression is read in (IANA name, e.g. Europe/Paris).",
    ),
    job_type: str = typer.Option(..., "--type", help="The job type to enqueue, e.g. ops.scan."),
    input_text: str | None = typer.Option(
        None, "--input", metavar="JSON", help="The job's input, a JSON object (default {})."
    ),
    input_file: Path | None = typer.Option(None, "--input-file", help="Read the input here."),
    missed: str = typer.Option(
        "latest",
        "--missed",
        metavar="latest|all|skip",
        help="Slots missed while no worker ran (later than --grace): latest (fire the most "
        "recent once, skip the rest), all (fire up to --catch-up of them) or skip (none).",
    ),
    catch_up: int = typer.Option(
        10,
        "--catch-up",
        metavar="N",
        min=1,
        max=MAX_CATCH_UP,
        help="With --missed all: the most missed slots fired, the most recent ones.",
    ),
    grace: str = typer.Option(
        format_duration(DEFAULT_GRACE),
        "--grace",
        metavar="DURATION",
        help="A slot fired at most this late is on time, whatever --missed says.",
    ),
    priority: int = typer.Option(
        0, "--priority", metavar="N", min=0, max=32767, help="0 is claimed first."
    ),
    max_attempts: int | None = typer.Option(
        None,
        "--max-attempts",
        metavar="N",
        min=1,
        max=1000,
        help="Attempts of each job (default: its runner's max_attempts, or 3).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Log the job each slot would enqueue; enqueue nothing."
    ),
    paused: bool = typer.Option(False, "--paused", help="Add it paused (resume starts it)."),
    allow_unknown_type: bool = typer.Option(
        False,
        "--allow-unknown-type",
        help="A type no runner of this repository handles (for workers elsewhere).",
    ),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    actor: str | None = ACTOR,
    as_json: bool = _JSON,
) -> None:
    """Add a schedule: the job is enqueued at each slot, once, by whichever worker gets there."""
    if missed not in MISSED_POLICIES:
        raise errors.ConfigurationError(
            f"--missed {missed[:40]!r}: choose {', '.join(MISSED_POLICIES)}"
        )
    body = read_input(input_text, input_file, _INPUT)
    source = f"--input-file {input_file}" if input_file is not None else "the input"
    fields: dict[str, Any] = {"priority": priority}
    if max_attempts is not None:
        fields["max_attempts"] = max_attempts
    job = checked_job(job_type, body, source=source, allow_unknown_type=allow_unknown_type,
                      fields=fields)  # fmt: skip
    if not NAME.fullmatch(name):
        raise errors.ConfigurationError(
            f"schedule name {name[:120]!r} is invalid: use 1-100 of [a-z0-9._-], starting with "
            "a letter or digit"
        )
    new = NewSchedule(
        name=name, cron=cron, timezone=tz, type=job.type, input=job.payload,
        priority=job.priority, max_attempts=job.max_attempts, missed=missed,
        catch_up=catch_up, grace=_grace(grace), dry_run=dry_run, paused=paused,
    )  # fmt: skip
    new.check()
    with _client(url, tenant, actor) as client:
        added = client.schedule_add(new)
    if as_json:
        print_json(_as_dict(added))
        return
    upcoming = added.upcoming()
    when = (
        "paused: resume it to start"
        if upcoming is None
        else f"next slot {_utc(upcoming)} UTC ({_local(added, upcoming)})"
    )
    console.print(
        f"schedule {added.name} added for tenant {added.tenant_id}"
        + (" (dry run: its slots are logged, nothing is enqueued)" if added.dry_run else "")
        + f": {when}",
        markup=False,
    )


@app.command("list")
def list_command(url: str | None = _URL, tenant: str | None = _TENANT,
                 as_json: bool = _JSON) -> None:  # fmt: skip
    """The tenant's schedules, with each one's next slot in UTC and in its own time zone."""
    with _client(url, tenant) as client:
        rows = client.schedule_list()
    if as_json:
        print_json({"schedules": [_as_dict(s) for s in rows]})
        return
    if not rows:
        console.print("no schedules", markup=False)
        return
    table = Table("name", "cron", "tz", "type", "state", "missed", "next (UTC)", "next (local)",
                  "last slot", box=None)  # fmt: skip
    for s in rows:
        upcoming = s.upcoming()
        local = _local(s, upcoming)
        table.add_row(
            *map(literal, (
                s.name, s.cron, s.timezone, s.type, _state(s), s.missed,
                _utc(upcoming),
                "-" if local is None else local[:19].replace("T", " "),
                _utc(s.last_slot),
            ))
        )  # fmt: skip
    console.print(table)
    for s in rows:
        if s.broken:
            console.print(literal(f"{s.name}: paused by a worker: {s.broken}"))


def _toggle(name: str, paused: bool, url: str | None, tenant: str | None, actor: str | None,
            as_json: bool) -> None:  # fmt: skip
    with _client(url, tenant, actor) as client:
        row = client.schedule_pause(name, paused=paused)
    if as_json:
        print_json(_as_dict(row))
        return
    if paused:
        console.print(f"schedule {row.name} paused: it fires nothing until resumed", markup=False)
        return
    upcoming = row.upcoming()
    console.print(
        f"schedule {row.name} resumed: slots count from now (none missed while paused is "
        f"fired); next slot {_utc(upcoming)} UTC",
        markup=False,
    )


@app.command("pause")
def pause_command(name: str = _NAME, url: str | None = _URL, tenant: str | None = _TENANT,
                  actor: str | None = ACTOR, as_json: bool = _JSON) -> None:  # fmt: skip
    """Pause a schedule: no slot fires until it is resumed."""
    _toggle(name, True, url, tenant, actor, as_json)


@app.command("resume")
def resume_command(name: str = _NAME, url: str | None = _URL, tenant: str | None = _TENANT,
                   actor: str | None = ACTOR, as_json: bool = _JSON) -> None:  # fmt: skip
    """Resume a paused schedule: slots count from now; those missed while paused never fire."""
    _toggle(name, False, url, tenant, actor, as_json)


@app.command("rm")
def rm_command(name: str = _NAME, url: str | None = _URL, tenant: str | None = _TENANT,
               actor: str | None = ACTOR) -> None:  # fmt: skip
    """Remove a schedule and its firing log; the jobs it enqueued stay."""
    with _client(url, tenant, actor) as client:
        client.schedule_remove(name)
    console.print(f"schedule {name} removed", markup=False)


def _firing(f: Firing) -> dict[str, Any]:
    return {"slot": _iso(f.slot), "fired_at": _iso(f.fired_at), "outcome": f.outcome,
            "job_id": f.job_id,
            "job": f.job, "detail": f.detail, "worker": f.worker}  # fmt: skip


@app.command("firings")
def firings_command(
    name: str = _NAME,
    limit: int = typer.Option(DEFAULT_FIRINGS, "--limit", min=1, max=1000),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    as_json: bool = _JSON,
) -> None:
    """A schedule's firing log, newest first: each slot's job, dry run, skip or failure."""
    with _client(url, tenant) as client:
        rows = client.schedule_firings(name, limit=limit)
    if as_json:
        print_json({"firings": [_firing(f) for f in rows]})
        return
    if not rows:
        console.print(f"schedule {name} has not fired yet", markup=False)
        return
    table = Table("slot (UTC)", "fired at (UTC)", "outcome", "job / detail", box=None)
    for f in rows:
        what = (
            str(f.job_id) if f.job_id is not None
            else f"would enqueue {f.job.get('type')} {f.job.get('idempotency_key')}"
            if f.job is not None else f.detail or ""
        )  # fmt: skip
        table.add_row(
            *map(literal, (
                _utc(f.slot), _utc(f.fired_at), f.outcome, what,
            ))
        )  # fmt: skip
    console.print(table)
