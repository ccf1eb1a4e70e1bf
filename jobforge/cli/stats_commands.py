"""`jobforge jobs stats` and `jobforge health`: the queue's counts, and a check of them.

Both read one query (`QueueClient.stats`, migrations/0013). With a tenant (--tenant or
$JOBFORGE_TENANT) they count that tenant's jobs, held to it by row-level security; without one,
every tenant's, which only an operator's login may read (a superuser or a member of
jobforge_worker). `health` exits 1 when a threshold is breached, with one line per breach, so a
cron job, a Kubernetes probe or a Nagios check can run it as it is.
"""

from __future__ import annotations

import typer
from rich.table import Table

from jobforge.cli.durations import parse_duration
from jobforge.cli.options import DEFAULT_HELP, PROJECT, chosen_project
from jobforge.cli.output import Format, console, literal, print_json
from jobforge.provision.target import chosen_tenant, ready_database_url
from jobforge.queue import QueueClient
from jobforge.queue.health import Thresholds, breaches, span
from jobforge.queue.stats import DEFAULT_EXPIRING_S, STATES, QueueStats

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_TENANT = typer.Option(
    None,
    "--tenant",
    help="Only this tenant's jobs (default: $JOBFORGE_TENANT; with neither, every tenant's, for"
    " a login allowed to read across tenants: a superuser or a member of jobforge_worker).",
)
_FORMAT = typer.Option(Format.text, "--format", help="text or json.")
_EXPIRING = typer.Option(
    f"{DEFAULT_EXPIRING_S:g}s",
    "--expiring-within",
    help="A lease this close to its end counts as expiring (a worker renews at a third of its"
    " lease, so a healthy 30 s lease keeps some 20 s).",
)


def _stats(url: str | None, tenant: str | None, succeeded: bool, expiring: str,
           project: str | None) -> QueueStats:  # fmt: skip
    expiring_s = parse_duration(expiring, "--expiring-within", maximum_s=86_400)
    chosen = chosen_tenant(tenant, required=False)  # usage errors before any connection
    scope = chosen_project(project)
    dsn = ready_database_url(url)
    with QueueClient.connect(dsn, tenant=chosen, max_size=1, project=scope) as client:
        return client.stats(succeeded=succeeded, expiring_s=expiring_s)


def _as_json(stats: QueueStats) -> dict[str, object]:
    return {
        **stats.figures(),
        "succeeded_counted": stats.succeeded_counted,
        "totals": stats.totals,
        "by_type": stats.by_type(),
        "rows": [
            {
                "tenant": r.tenant_id,
                "type": r.type,
                "state": r.state,
                "jobs": r.jobs,
                "earliest_run_at": None
                if r.earliest_run_at is None
                else r.earliest_run_at.isoformat(),
                "expiring": r.expiring,
                "expired": r.expired,
                "recent": r.recent,
            }
            for r in stats.rows
        ],
    }


def _summary(stats: QueueStats) -> str:
    oldest = f", the oldest waiting {span(stats.oldest_due_s)}" if stats.totals["due"] else ""
    return (
        f"{stats.totals['due']} due{oldest}; {stats.totals['running']} running, "
        f"{stats.leases_expiring} leases expiring within {span(stats.expiring_s)} "
        f"({stats.leases_expired} expired); {stats.dead_24h} dead in the last 24 h"
    )


def stats(
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    project: str | None = PROJECT,
    by_tenant: bool = typer.Option(False, "--by-tenant", help="One row per tenant and type."),
    skip_succeeded: bool = typer.Option(
        False,
        "--skip-succeeded",
        help="Leave out the count of succeeded jobs: the one count that reads the whole table"
        " (every other is read from indexes of live or failed jobs).",
    ),
    expiring: str = _EXPIRING,
    output: Format = _FORMAT,
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """Jobs by type and state, the oldest due job, leases about to expire, dead in the last 24 h.

    States: due (queued, its time has come), scheduled (queued for later), retry_scheduled
    (waiting out a retry's backoff), running, succeeded, failed, dead, canceled."""
    found = _stats(url, tenant, not skip_succeeded, expiring, project)
    if as_json or output is Format.json:
        print_json(_as_json(found))
        return
    states = [s for s in STATES if found.succeeded_counted or s != "succeeded"]
    keyed: dict[tuple[str, ...], dict[str, int]] = {}
    for row in found.rows:
        key: tuple[str, ...] = (row.tenant_id, row.type) if by_tenant else (row.type,)
        counts = keyed.setdefault(key, {})
        counts[row.state] = counts.get(row.state, 0) + row.jobs
    heads = (["tenant"] if by_tenant else []) + ["type"]
    table = Table(*heads, *[s.replace("_", " ") for s in states], box=None)
    for key in sorted(keyed):
        table.add_row(*map(literal, key), *(str(keyed[key].get(s, 0)) for s in states))
    table.add_row(*(["", "total"] if by_tenant else ["total"]),
                  *(str(found.totals[s]) for s in states), style="bold")  # fmt: skip
    scope = f"tenant {found.tenant}" if found.tenant else "every tenant"
    console.print(literal(f"jobs of {scope} at {found.at.isoformat(timespec='seconds')}"))
    console.print(table)
    console.print(literal(_summary(found)))


def health(
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    project: str | None = PROJECT,
    max_oldest_due: str = typer.Option(
        "5m", "--max-oldest-due", help="Unhealthy when a due job has waited longer (e.g. 5m)."
    ),
    max_due: int | None = typer.Option(
        None, "--max-due", min=0, help="Unhealthy when more jobs than this are due."
    ),
    max_dead_24h: int | None = typer.Option(
        None, "--max-dead-24h", min=0, help="Unhealthy when more jobs died in the last 24 h."
    ),
    max_expiring: int | None = typer.Option(
        None,
        "--max-expiring",
        min=0,
        help="Unhealthy when more leases than this are expiring (see --expiring-within).",
    ),
    expiring: str = _EXPIRING,
    output: Format = _FORMAT,
) -> None:
    """Check the queue against thresholds: exit 0 when healthy, 1 with one line per breach."""
    limits = Thresholds(
        max_oldest_due_s=parse_duration(max_oldest_due, "--max-oldest-due"),
        max_due=max_due,
        max_dead_24h=max_dead_24h,
        max_expiring=max_expiring,
    )
    found = _stats(url, tenant, False, expiring, project)
    problems = breaches(found, limits)
    if output is Format.json:
        print_json({
            "healthy": not problems,
            "breaches": problems,
            "figures": found.figures(),
            "thresholds": {
                "max_oldest_due_s": limits.max_oldest_due_s, "max_due": limits.max_due,
                "max_dead_24h": limits.max_dead_24h, "max_expiring": limits.max_expiring,
            },
        })  # fmt: skip
    else:
        for line in problems:
            console.print(literal(f"unhealthy: {line}"))
        if not problems:
            console.print(literal(f"healthy: {_summary(found)}"))
    if problems:
        raise typer.Exit(1)
