"""`jobforge audit list|summary`: the tenant's audit trail across jobs, who did what and why.

Glue over `jobforge.queue.audit` (migrations/0014): every event written by a client that names
an actor (the CLI always does: `--actor`, `$JOBFORGE_ACTOR`, or the OS login) carries it, its
reason and the database login that wrote it. Named `audit`, not `events`: `jobforge events` is
kept for the event envelopes that triggers will match ([7/10]).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from jobforge.cli.durations import parse_since
from jobforge.cli.options import DEFAULT_HELP, PROJECT, chosen_project
from jobforge.cli.output import MAX_ID, console, literal, print_json
from jobforge.provision.target import chosen_tenant, ready_database_url
from jobforge.queue import QueueClient, audit

app = typer.Typer(
    help="The audit trail: who enqueued, canceled or retried what, when and why (one tenant).",
    no_args_is_help=True,
)

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_TENANT = typer.Option(None, "--tenant", help="Tenant (default: $JOBFORGE_TENANT).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
_SINCE = typer.Option("24h", "--since", help="A duration back from now (30m, 1h, 2d) or a date.")
_KIND = typer.Option(None, "--kind", help="Only events of this kind (repeat).")
_ACTOR = typer.Option(None, "--actor", help="Only events of this actor.")


def _window(since: str) -> datetime:
    moment = parse_since(since)
    assert moment is not None  # a default is always given
    return moment


def _client(url: str | None, tenant: str | None, project: str | None) -> QueueClient:
    chosen = chosen_tenant(tenant, required=True)
    scope = chosen_project(project)
    return QueueClient.connect(ready_database_url(url), tenant=chosen, max_size=1, project=scope)


@app.command("list")
def list_events(
    since: str = _SINCE,
    kind: list[str] | None = _KIND,
    actor: str | None = _ACTOR,
    job: int | None = typer.Option(None, "--job", min=1, max=MAX_ID, help="Only this job."),
    limit: int = typer.Option(100, "--limit", min=1, max=audit.MAX_LIST, help="Most events."),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    project: str | None = PROJECT,
    as_json: bool = _JSON,
) -> None:
    """The tenant's attributed events, newest first."""
    moment = _window(since)
    audit.list_call(moment, kind, actor, job, limit)  # bad values: one line, before connecting
    with _client(url, tenant, project) as client:
        found = client.audit_list(since=moment, kind=kind, actor=actor, job_id=job, limit=limit)
    if as_json:
        print_json([_event(e) for e in found])
        return
    if not found:
        console.print(f"no attributed events since {moment.isoformat(timespec='seconds')}")
        return
    table = Table("at", "job", "kind", "actor", "login", "reason")
    for e in found:
        table.add_row(*(literal(x) for x in (
            e.at.isoformat(timespec="seconds"), str(e.job_id), e.kind, e.actor or "-",
            e.login or "", json.dumps(e.reason) if e.reason else "",
        )))  # fmt: skip
    console.print(table)


@app.command()
def summary(
    since: str = _SINCE,
    kind: list[str] | None = _KIND,
    actor: str | None = _ACTOR,
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    project: str | None = PROJECT,
    as_json: bool = _JSON,
) -> None:
    """How many events of each kind each actor caused in the window."""
    moment = _window(since)
    audit.summary_call(moment, kind, actor)
    with _client(url, tenant, project) as client:
        counts = client.audit_summary(since=moment, kind=kind, actor=actor)
    if as_json:
        print_json([_count(c) for c in counts])
        return
    if not counts:
        console.print(f"no attributed events since {moment.isoformat(timespec='seconds')}")
        return
    table = Table("kind", "actor", "count", "first", "last")
    for c in counts:
        table.add_row(*(literal(x) for x in (
            c.kind, c.actor or "-", str(c.count), c.first.isoformat(timespec="seconds"),
            c.last.isoformat(timespec="seconds"),
        )))  # fmt: skip
    console.print(table)


def _event(e: audit.AuditEvent) -> dict[str, Any]:
    return {"id": e.id, "job_id": e.job_id, "kind": e.kind, "at": e.at.isoformat(),
            "actor": e.actor, "login": e.login, "reason": e.reason, "data": e.data}  # fmt: skip


def _count(c: audit.AuditCount) -> dict[str, Any]:
    return {"kind": c.kind, "actor": c.actor, "count": c.count,
            "first": c.first.isoformat(), "last": c.last.isoformat()}  # fmt: skip
