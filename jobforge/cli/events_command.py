"""`jobforge events submit|list`: a tenant's events, each evaluated by its triggers as it is
stored (in the same transaction: the event and the jobs it fires commit together).

Glue over `jobforge.queue.events`: the envelope is checked before any connection is tried; the
database refuses in one line what it refuses (the `events` feature off for the tenant, a dedupe
key used before with another body, data over the payload limit).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from jobforge import errors
from jobforge.cli.event_input import event_from_file, event_from_options
from jobforge.cli.job_input import Flags, read_input
from jobforge.cli.options import ACTOR, DEFAULT_HELP, cli_actor
from jobforge.cli.output import console, literal, print_json
from jobforge.durations import parse_duration
from jobforge.provision.target import chosen_tenant, ready_database_url
from jobforge.queue import QueueClient, audit
from jobforge.queue.events import DEFAULT_LIST, StoredEvent, Submitted
from jobforge.queue.triggers import Evaluation

app = typer.Typer(
    help="Events: envelopes (type, source, subject, data) a tenant submits; its triggers "
    "evaluate each as it is stored (the `events` feature must be on: jobforge features).",
    no_args_is_help=True,
)

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_TENANT = typer.Option(None, "--tenant", help="Tenant (default: $JOBFORGE_TENANT).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")
_DATA = Flags(text="--data", file="--data-file", noun="data")


def client_for(url: str | None, tenant: str | None, actor: str | None = None) -> QueueClient:
    chosen = chosen_tenant(tenant, required=True)
    who = cli_actor(actor)
    audit.acting(who, None)  # a bad --actor is one line, before connecting
    return QueueClient.connect(ready_database_url(url), tenant=chosen, max_size=1, actor=who)


def iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(UTC).isoformat()


def utc(instant: datetime | None) -> str:
    return "-" if instant is None else f"{instant.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def event_dict(e: StoredEvent) -> dict[str, Any]:
    return {"id": e.id, "type": e.type, "source": e.source, "subject": e.subject,
            "data": e.data, "dedupe_key": e.dedupe_key, "occurred_at": iso(e.occurred_at),
            "submitted_at": iso(e.submitted_at), "login": e.login,
            "actor": e.actor}  # fmt: skip


def evaluation_dict(e: Evaluation) -> dict[str, Any]:
    return {"id": e.id, "trigger": e.trigger, "trigger_id": e.trigger_id,
            "event_id": e.event_id, "evaluated_at": iso(e.evaluated_at), "outcome": e.outcome,
            "reason": e.reason, "job_id": e.job_id, "job": e.job,
            "detail": e.detail}  # fmt: skip


def evaluation_line(e: Evaluation) -> str:
    if e.outcome == "fired":
        return f"fired job {e.job_id}"
    if e.outcome == "dry_run" and e.job is not None:
        return f"dry run: would enqueue {e.job.get('type')} {e.job.get('idempotency_key')}"
    return f"skipped ({e.reason}): {e.detail or ''}"


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise errors.ConfigurationError(
            f"--time {text[:40]!r} is not an ISO 8601 instant (e.g. 2026-03-02T09:00:00Z)"
        ) from None
    if value.tzinfo is None:
        raise errors.ConfigurationError(f"--time {text[:40]!r} needs a UTC offset (Z, +01:00)")
    return value


@app.command("submit")
def submit_command(
    event_file: Path | None = typer.Argument(
        None, metavar="EVENT_FILE", help="A JSON envelope: type, source, subject, data, time, "
        "dedupe_key (instead of the options)."
    ),
    event_type: str | None = typer.Option(None, "--type", metavar="TYPE",
                                          help="The event's type, e.g. order.paid."),
    source: str | None = typer.Option(None, "--source", metavar="SOURCE",
                                      help="Where it comes from, e.g. shop or a URI."),
    subject: str | None = typer.Option(None, "--subject", metavar="SUBJECT",
                                       help="What it is about, e.g. an order's id."),
    data_text: str | None = typer.Option(None, "--data", metavar="JSON",
                                         help="Its data, a JSON object (default {})."),
    data_file: Path | None = typer.Option(None, "--data-file", help="Read the data here."),
    time: str | None = typer.Option(None, "--time", metavar="INSTANT",
                                    help="When it occurred, ISO 8601 (default: now)."),
    dedupe_key: str | None = typer.Option(
        None, "--dedupe-key", metavar="KEY",
        help="Unique per tenant: a resubmit with it returns the first event, evaluated once."),
    dry_run: bool = typer.Option(
        False, "--dry-run",
        help="Evaluate the triggers and show what they would enqueue; keep nothing."),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    actor: str | None = ACTOR,
    as_json: bool = _JSON,
) -> None:  # fmt: skip
    """Submit an event: it is stored and the tenant's triggers for its type evaluated, at once."""
    if event_file is not None:
        given = [n for n, v in (("--type", event_type), ("--source", source),
                                ("--subject", subject), ("--data", data_text),
                                ("--data-file", data_file),
                                ("--time", time)) if v is not None]  # fmt: skip
        if given:
            raise errors.ConfigurationError(
                f"give an event file or {', '.join(given)}, not both (the file is the whole event)"
            )
        new = event_from_file(event_file)
        if dedupe_key is not None:
            new = event_from_options(new.type, new.source, new.subject, new.data, new.time,
                                     dedupe_key)  # fmt: skip
    else:
        data = read_input(data_text, data_file, _DATA)
        new = event_from_options(event_type, source, subject, data, _time(time), dedupe_key)
    with client_for(url, tenant, actor) as client:
        done = client.event_submit(new, dry_run=dry_run)
    _print_submitted(done, as_json)


def _print_submitted(done: Submitted, as_json: bool) -> None:
    if as_json:
        print_json({"event": event_dict(done.event), "created": done.created,
                    "dry_run": done.dry_run,
                    "evaluations": [evaluation_dict(e) for e in done.evaluations]})  # fmt: skip
        return
    e = done.event
    if done.dry_run:
        head = f"dry run: event {e.type} would be stored (nothing was kept)"
    elif done.created:
        head = f"event {e.id} ({e.type}) stored"
    else:
        head = (f"event {e.id} ({e.type}) was submitted before under dedupe key "
                f"{e.dedupe_key}: returned as it was, not evaluated again")  # fmt: skip
    console.print(literal(head))
    if done.created and not done.evaluations:
        console.print("no trigger of this tenant matches its type", markup=False)
    names = {ev.trigger_id: ev.trigger for ev in done.evaluations}
    for ev in done.evaluations:
        name = names.get(ev.trigger_id) or f"#{ev.trigger_id}"
        console.print(literal(f"  trigger {name}: {evaluation_line(ev)}"))


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    duration = parse_duration(text)
    if duration is not None:
        try:
            return datetime.now(UTC) - duration
        except OverflowError:
            raise errors.ConfigurationError(f"--since {text[:40]!r} is too far back") from None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise errors.ConfigurationError(
            f"--since {text[:40]!r}: give a duration (1h, 2d) or an ISO 8601 instant"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@app.command("list")
def list_command(
    event_type: str | None = typer.Option(None, "--type", metavar="TYPE", help="Only this type."),
    since: str | None = typer.Option(
        None, "--since", metavar="WHEN",
        help="Submitted since: a duration ago (1h, 2d) or an ISO 8601 instant (UTC if no offset)."),
    limit: int = typer.Option(DEFAULT_LIST, "--limit", min=1, max=1000, metavar="N"),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    as_json: bool = _JSON,
) -> None:  # fmt: skip
    """The tenant's events, newest first."""
    after = _since(since)
    with client_for(url, tenant) as client:
        rows = client.event_list(type=event_type, since=after, limit=limit)
    if as_json:
        print_json({"events": [event_dict(e) for e in rows]})
        return
    if not rows:
        console.print("no events", markup=False)
        return
    table = Table("id", "type", "source", "subject", "submitted (UTC)", "dedupe key", box=None)
    for e in rows:
        table.add_row(*map(literal, (e.id, e.type, e.source, e.subject or "-",
                                     utc(e.submitted_at), e.dedupe_key or "-")))  # fmt: skip
    console.print(table)
