"""`jobforge triggers add|list|pause|resume|rm|test|evaluations`: what a tenant's events enqueue.

Glue over `jobforge.queue.triggers`: the predicates, the template's "$." references and (when
this repository knows the runner) the template against the runner's input model are checked
before any connection is tried; the database refuses in one line what it refuses (the
`triggers` feature off for the tenant, a name taken). `test` evaluates one trigger on an event
file by the database's own code, stores nothing, and checks the input it would produce.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from jobforge import errors
from jobforge.cli.event_input import check_rendered, check_template, event_from_file
from jobforge.cli.events_command import client_for, evaluation_dict, evaluation_line, iso, utc
from jobforge.cli.job_input import Flags, read_input
from jobforge.cli.options import ACTOR, DEFAULT_HELP
from jobforge.cli.output import console, literal, print_json
from jobforge.durations import format_duration, parse_duration
from jobforge.queue.triggers import (
    DEFAULT_EVALUATIONS,
    MAX_COOLDOWN,
    MAX_PER_HOUR,
    NAME,
    OPS,
    NewTrigger,
    Predicate,
    Trigger,
)

app = typer.Typer(
    help="Triggers: a job enqueued for each event of a type whose data matches, with its input "
    "mapped from the event (the `triggers` feature must be on: jobforge features).",
    no_args_is_help=True,
)

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_TENANT = typer.Option(None, "--tenant", help="Tenant (default: $JOBFORGE_TENANT).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")
_NAME = typer.Argument(..., metavar="NAME", help="The trigger's name (unique per tenant).")
_INPUT = Flags(text="--input", file="--input-file", noun="input template")


def _predicates(t: Trigger) -> str:
    return " and ".join(f"{p.path} {p.op} {json.dumps(p.value)}" for p in t.predicates) or "-"


def _as_dict(t: Trigger) -> dict[str, Any]:
    return {
        "name": t.name, "on": t.event_type, "where": [p.as_json() for p in t.predicates],
        "type": t.job_type, "input": t.input, "dedupe": t.dedupe,
        "cooldown": format_duration(t.cooldown), "max_per_hour": t.max_per_hour,
        "priority": t.priority, "max_attempts": t.max_attempts,
        "dry_run": t.dry_run, "paused": t.paused, "last_fired_at": iso(t.last_fired_at),
        "created_at": iso(t.created_at), "updated_at": iso(t.updated_at), "login": t.login,
        "actor": t.actor,
    }  # fmt: skip


def _cooldown(text: str) -> Any:
    value = parse_duration(text)
    if value is None or value > MAX_COOLDOWN:
        raise errors.ConfigurationError(
            f"--cooldown {text[:40]!r}: give a duration from 0s up to 1d (e.g. 60s, 5m)"
        )
    return value


def _predicate(text: str) -> Predicate:
    parts = text.split(None, 2)
    if len(parts) != 3:
        raise errors.ConfigurationError(
            f"--where {text[:80]!r}: give 'PATH OP VALUE' as one argument, e.g. "
            "'order.total gt 100' or 'region in [\"eu\",\"us\"]'"
        )
    return Predicate.parse(*parts)


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise errors.ConfigurationError(
            f"trigger name {name[:120]!r} is invalid: use 1-100 of [a-z0-9._-], starting with "
            "a letter or digit"
        )


@app.command("add")
def add_command(
    name: str = _NAME,
    on: str = typer.Option(..., "--on", metavar="EVENT_TYPE", help="The event type it matches."),
    where: list[str] | None = typer.Option(
        None, "--where", metavar="'PATH OP VALUE'",
        help=f"A predicate on the event's data, one quoted argument (repeat: all must hold), e.g. "
        f"--where 'order.total gt 100'. PATH: dotted keys "
        f"(order.total); OP: {', '.join(OPS)}; VALUE: JSON (100, true, '[\"eu\",\"us\"]') or a "
        "plain string."),
    job_type: str = typer.Option(..., "--type", metavar="JOB_TYPE",
                                 help="The job type to enqueue."),
    input_text: str | None = typer.Option(
        None, "--input", metavar="TEMPLATE",
        help='The job\'s input, a JSON object whose strings "$.data.<keys>", "$.subject", '
        '"$.id", "$.type", "$.source", "$.time" take the event\'s values ("$$..." is a literal '
        '"$...").'),
    input_file: Path | None = typer.Option(None, "--input-file", help="Read the template here."),
    dedupe: str | None = typer.Option(
        None, "--dedupe", metavar="$.FIELD",
        help="Derive the job's idempotency key from this event field (default: the event's id): "
        "trigger:<name>:<value>."),
    cooldown: str = typer.Option("0s", "--cooldown", metavar="DURATION",
                                 help="Fire at most once per this long (e.g. 60s, 5m)."),
    max_per_hour: int | None = typer.Option(None, "--max-per-hour", metavar="N", min=1,
                                            max=MAX_PER_HOUR,
                                            help="Fire at most N times in any 60 minutes."),
    priority: int = typer.Option(0, "--priority", metavar="N", min=0, max=32767,
                                 help="The jobs' priority: 0 is claimed first."),
    max_attempts: int | None = typer.Option(
        None, "--max-attempts", metavar="N", min=1, max=1000,
        help="Attempts of each job (default: its runner's max_attempts, or 3)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Log the job each match would enqueue; enqueue nothing."),
    paused: bool = typer.Option(False, "--paused", help="Add it paused (resume starts it)."),
    allow_unknown_type: bool = typer.Option(
        False, "--allow-unknown-type",
        help="A job type no runner of this repository handles (for workers elsewhere)."),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    actor: str | None = ACTOR,
    as_json: bool = _JSON,
) -> None:  # fmt: skip
    """Add a trigger: each matching event enqueues a job with the mapped input."""
    _check_name(name)
    predicates = [_predicate(w) for w in where or ()]
    template = read_input(input_text, input_file, _INPUT)
    attempts = check_template(job_type, template, allow_unknown_type=allow_unknown_type)
    new = NewTrigger(name=name, event_type=on, predicates=predicates, job_type=job_type,
                     input=template, dedupe=dedupe, cooldown=_cooldown(cooldown),
                     max_per_hour=max_per_hour, priority=priority,
                     max_attempts=max_attempts if max_attempts is not None else attempts,
                     dry_run=dry_run, paused=paused)  # fmt: skip
    new.check()
    with client_for(url, tenant, actor) as client:
        added = client.trigger_add(new)
    if as_json:
        print_json(_as_dict(added))
        return
    console.print(
        literal(
            f"trigger {added.name} added for tenant {added.tenant_id}: on {added.event_type} "
            f"where {_predicates(added)} enqueue {added.job_type}"
            + (" (dry run: matches are logged, nothing is enqueued)" if added.dry_run else "")
            + (" (paused)" if added.paused else "")
        )
    )


@app.command("list")
def list_command(url: str | None = _URL, tenant: str | None = _TENANT,
                 as_json: bool = _JSON) -> None:  # fmt: skip
    """The tenant's triggers."""
    with client_for(url, tenant) as client:
        rows = client.trigger_list()
    if as_json:
        print_json({"triggers": [_as_dict(t) for t in rows]})
        return
    if not rows:
        console.print("no triggers", markup=False)
        return
    table = Table("name", "on", "where", "type", "state", "cooldown", "max/h", "last fired (UTC)",
                  box=None)  # fmt: skip
    for t in rows:
        state = ("paused" if t.paused else "active") + (", dry run" if t.dry_run else "")
        table.add_row(*map(literal, (
            t.name, t.event_type, _predicates(t), t.job_type, state, format_duration(t.cooldown),
            t.max_per_hour or "-", utc(t.last_fired_at),
        )))  # fmt: skip
    console.print(table)


def _toggle(name: str, paused: bool, url: str | None, tenant: str | None,
            actor: str | None) -> None:  # fmt: skip
    with client_for(url, tenant, actor) as client:
        client.trigger_pause(name, paused=paused)
    console.print(
        f"trigger {name} " + ("paused: its matches are logged as skipped" if paused
                              else "resumed"),
        markup=False,
    )  # fmt: skip


@app.command("pause")
def pause_command(name: str = _NAME, url: str | None = _URL, tenant: str | None = _TENANT,
                  actor: str | None = ACTOR) -> None:  # fmt: skip
    """Pause a trigger: it enqueues nothing until resumed."""
    _toggle(name, True, url, tenant, actor)


@app.command("resume")
def resume_command(name: str = _NAME, url: str | None = _URL, tenant: str | None = _TENANT,
                   actor: str | None = ACTOR) -> None:  # fmt: skip
    """Resume a paused trigger."""
    _toggle(name, False, url, tenant, actor)


@app.command("rm")
def rm_command(name: str = _NAME, url: str | None = _URL, tenant: str | None = _TENANT,
               actor: str | None = ACTOR) -> None:  # fmt: skip
    """Remove a trigger and its evaluation log; the jobs it enqueued stay."""
    with client_for(url, tenant, actor) as client:
        client.trigger_remove(name)
    console.print(f"trigger {name} removed", markup=False)


@app.command("test")
def try_command(
    name: str = _NAME,
    event_file: Path = typer.Argument(..., metavar="EVENT_FILE",
                                      help="A JSON envelope: type, source, subject, data, time."),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    as_json: bool = _JSON,
) -> None:  # fmt: skip
    """Evaluate a trigger on an event file, storing nothing: whether it matches, and the input it
    would enqueue, checked against the runner's model (its cooldown and cap aside). Exits 1 when
    it does not match or the input is not valid."""
    event = event_from_file(event_file)
    with client_for(url, tenant) as client:
        found = client.trigger_test(name, event)
    invalid = check_rendered(found.job_type, found.input) if found.input is not None else None
    ok = found.matched and found.reason is None and invalid is None
    if as_json:
        print_json({"matched": found.matched, "reason": found.reason, "detail": found.detail,
                    "type": found.job_type, "input": found.input,
                    "idempotency_key": found.idempotency_key, "invalid": invalid,
                    "dry_run": found.dry_run, "paused": found.paused})  # fmt: skip
    elif not found.matched:
        console.print(literal(f"not matched: {found.detail}"))
    elif found.reason is not None:
        console.print(literal(f"matched, but the mapping fails: {found.detail}"))
    else:
        console.print(literal(f"matched: would enqueue {found.job_type} with input"))
        print_json(found.input)
        key = found.idempotency_key or f"trigger:{name}:<the event's id>"
        console.print(literal(f"idempotency key {key}"))
        if invalid is not None:
            console.print(literal(f"but the input is not valid: {invalid}"))
        notes = [w for w, on in (("the trigger is paused", found.paused),
                                 ("it is a dry run", found.dry_run)) if on]  # fmt: skip
        if notes:
            console.print(literal("note: " + " and ".join(notes)))
    if not ok:
        raise typer.Exit(1)


@app.command("evaluations")
def evaluations_command(
    name: str | None = typer.Argument(None, metavar="[NAME]",
                                      help="One trigger's (default: all the tenant's)."),
    limit: int = typer.Option(DEFAULT_EVALUATIONS, "--limit", min=1, max=1000, metavar="N"),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    as_json: bool = _JSON,
) -> None:  # fmt: skip
    """The evaluation log, newest first: each event a trigger fired on, ran dry or skipped (why)."""
    with client_for(url, tenant) as client:
        rows = client.trigger_evaluations(name, limit=limit)
    if as_json:
        print_json({"evaluations": [evaluation_dict(e) for e in rows]})
        return
    if not rows:
        console.print("no evaluations yet", markup=False)
        return
    table = Table("at (UTC)", "trigger", "event", "outcome", "job / why", box=None)
    for e in rows:
        table.add_row(*map(literal, (utc(e.evaluated_at), e.trigger or "-", e.event_id,
                                     e.outcome, evaluation_line(e))))  # fmt: skip
    console.print(table)
