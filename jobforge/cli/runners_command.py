"""`jobforge runners sync|list|enable|disable`: the runner catalogue of a deployment.

Glue over `jobforge.declared_runners` and `jobforge.queue.catalogue`: the runners named are
checked before any connection is tried, and a login that may not change the catalogue (only a
superuser or a member of jobforge_worker may) gets one line saying so, not a traceback.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from jobforge import db
from jobforge.cli.limits_command import runners_of
from jobforge.cli.options import ACTOR, DEFAULT_HELP, cli_actor
from jobforge.cli.output import console, literal, print_json
from jobforge.declared_runners import sync_declared
from jobforge.provision.target import ready_database_url
from jobforge.queue import audit
from jobforge.queue.catalogue import CatalogueEntry, Synced, list_runners, set_enabled

app = typer.Typer(
    help="The runner catalogue: the runners this deployment knows, synced from their contracts.",
    no_args_is_help=True,
)

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_ID = typer.Argument(..., metavar="RUNNER", help="A runner id, e.g. ops.scan.")
_JSON = typer.Option(False, "--json", help="Print JSON instead of lines.")
_DENIED = "only a superuser or a member of jobforge_worker may change the runner catalogue"


def _acting(actor: str | None) -> db.Acting:
    """Who the catalogue records as having synced or switched a runner (checked up front)."""
    return audit.acting(cli_actor(actor), None)


@app.command("sync")
def sync_command(
    runner_ids: list[str] | None = typer.Argument(
        None, metavar="[RUNNER]...", help="Runners to sync (default: every declared runner)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Also sync a lower version, or a changed contract, same version."
    ),
    project: Path | None = typer.Option(
        None, "--project", help="Folder of the runner repo (default: the working directory)."
    ),
    url: str | None = _URL,
    actor: str | None = ACTOR,
    as_json: bool = _JSON,
) -> None:
    """Write the declared runners' contracts (id, version, input and output schemas) to the
    runner catalogue, all or none.

    A runner synced before at a higher version, or with another contract under the same
    version, is refused (exit 1) unless --force. A sync never enables a runner an operator
    disabled."""
    runners = runners_of(project, runner_ids or [], "nothing to sync")
    acting = _acting(actor)
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        done = sync_declared(conn, runners, force=force, acting=acting)
    if as_json:
        print_json({"runners": [{"runner": s.runner_id, "version": s.version,
                                 "action": s.action} for s in done]})  # fmt: skip
        return
    for s in done:
        console.print(f"{s.action} {s.runner_id} {s.version}", markup=False)
    console.print(_summary(done), markup=False)


def _summary(done: list[Synced]) -> str:
    counts = {a: sum(1 for s in done if s.action == a) for a in ("added", "changed", "unchanged")}
    return "runners sync: " + ", ".join(f"{n} {a}" for a, n in counts.items())


@app.command("list")
def list_command(
    schemas: bool = typer.Option(False, "--schemas", help="With --json: the schemas too."),
    url: str | None = _URL,
    as_json: bool = _JSON,
) -> None:
    """Every catalogued runner: version, enabled, when and by whom it was synced."""
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or("the login may not read the runner catalogue"):
        entries = list_runners(conn)
    if as_json:
        print_json([e.as_dict(schemas=schemas) for e in entries])
        return
    if not entries:
        console.print("the runner catalogue is empty (jobforge runners sync fills it)",
                      markup=False)  # fmt: skip
        return
    table = Table("runner", "version", "enabled", "synced", "by", box=None)
    for e in entries:
        table.add_row(literal(e.runner_id), literal(e.version), "yes" if e.enabled else "NO",
                      e.synced_at.isoformat(timespec="seconds"), literal(_who(e)))  # fmt: skip
    console.print(table)


def _who(entry: CatalogueEntry) -> str:
    return entry.synced_by + (f" ({entry.synced_actor})" if entry.synced_actor else "")


def _switch(runner_id: str, enabled: bool, url: str | None, actor: str | None) -> None:
    acting = _acting(actor)
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        changed = set_enabled(conn, runner_id, enabled, acting=acting)
    state = "enabled" if enabled else "disabled"
    said = f"{state} {runner_id}" if changed else f"{runner_id} was already {state}"
    console.print(said, markup=False)


@app.command("enable")
def enable_command(runner_id: str = _ID, url: str | None = _URL, actor: str | None = ACTOR) -> None:
    """Let producers request the runner's jobs again."""
    _switch(runner_id, True, url, actor)


@app.command("disable")
def disable_command(
    runner_id: str = _ID, url: str | None = _URL, actor: str | None = ACTOR
) -> None:
    """Refuse new jobs of the runner, in every producer and in the database (queued jobs stay
    queued and still run)."""
    _switch(runner_id, False, url, actor)
