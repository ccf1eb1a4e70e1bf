"""`jobforge jobs retry|cancel` without a job id: every job of a tenant that matches a filter.

The filter is checked before any connection is tried (a bad --status, --since or --batch is one
line, exit 2); the database then works through the matching jobs in batches
(`QueueClient.bulk`, `jobforge.queue.bulk`), and the command says how many it changed, or with
--dry-run how many it would.
"""

from __future__ import annotations

from jobforge import errors
from jobforge.cli.durations import parse_since
from jobforge.cli.options import chosen_project, cli_actor
from jobforge.cli.output import console, counted, notes, print_json
from jobforge.provision.target import chosen_tenant, ready_database_url
from jobforge.queue import QueueClient, audit, bulk

_DONE = {"retry": "retried", "cancel": "canceled"}
_SINCE = {"retry": "finished", "cancel": "enqueued"}


def bulk_action(
    action: bulk.Action,
    job_id: int | None,
    statuses: list[str] | None,
    types: list[str] | None,
    since: str | None,
    *,
    dry_run: bool,
    batch: int,
    reset_attempts: bool,
    url: str | None,
    tenant: str | None,
    as_json: bool,
    actor: str | None = None,
    reason: str | None = None,
    project: str | None = None,
) -> None:
    """Run (or count) the bulk action and print what it did; every event it writes names the
    actor and the reason (migrations/0014)."""
    if job_id is not None:  # an id with a filter: which one was meant?
        raise errors.ConfigurationError(
            f"give a job ID or a filter (--status, --type, --since, --dry-run) to {action}, "
            "not both"
        )
    if not (statuses or types or since is not None):
        raise errors.ConfigurationError(
            f"give a job ID, or a filter (--status, --type, --since) to {action} jobs in bulk"
        )
    flt = bulk.check_filter(action, statuses, types, parse_since(since), batch)
    chosen = chosen_tenant(tenant, required=True)
    scope = chosen_project(project)
    who = cli_actor(actor)
    audit.acting(who, reason)  # a bad --actor or --reason is one line, before connecting
    dsn = ready_database_url(url)
    with QueueClient.connect(
        dsn, tenant=chosen, max_size=1, actor=who, reason=reason, project=scope
    ) as client:
        done = client.bulk(action, flt, reset_attempts=reset_attempts, batch=batch,
                           dry_run=dry_run)  # fmt: skip
    if as_json:
        print_json({
            "action": action, "tenant": chosen, "project": scope, "dry_run": dry_run,
            "matched": done.matched,
            "changed": done.changed, "skipped": done.skipped, "busy": done.busy,
            "batches": done.batches,
            "filter": {"statuses": list(flt.statuses), "types": list(flt.types or ()),
                       "since": None if flt.since is None else flt.since.isoformat()},
        })  # fmt: skip
        return
    what = ", ".join(flt.statuses) + (f", type {', '.join(flt.types)}" if flt.types else "")
    of = f"tenant {chosen}" + (f" project {scope}" if scope else "")
    if flt.since is not None:
        what += f", {_SINCE[action]} since {flt.since.isoformat(timespec='seconds')}"
    if dry_run:
        would = done.matched - done.skipped
        console.print(f"would {action} {counted(would, 'job')} of {of} ({what})",
                      markup=False)  # fmt: skip
    else:
        console.print(f"{_DONE[action]} {counted(done.changed, 'job')} of {of} "
                      f"({what}) in {counted(done.batches, 'batch', 'batches')}",
                      markup=False)  # fmt: skip
    if done.skipped:
        notes.print(
            f"note: {'would skip' if dry_run else 'skipped'} {counted(done.skipped, 'job')} "
            "that used all their attempts: add --reset-attempts to retry them too",
            markup=False,
        )
    if done.busy:
        raise errors.QueueError(
            f"{counted(done.busy, 'matching job')} stayed locked by other transactions for "
            f"{bulk.DEFAULT_PATIENCE_S:g} s and {'was' if done.busy == 1 else 'were'} left as "
            f"{'it was' if done.busy == 1 else 'they were'}: run the command again"
        )
