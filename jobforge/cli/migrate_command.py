"""`jobforge migrate`: bring a database's schema up to date."""

from __future__ import annotations

import typer

from jobforge import db
from jobforge import migrate as migrator
from jobforge.cli.options import DEFAULT_HELP
from jobforge.cli.output import console
from jobforge.provision.target import database_url, naming_source


def migrate(
    url: str | None = typer.Option(
        None, "--database-url", help=f"Target database ({DEFAULT_HELP})."
    ),
) -> None:
    """Apply pending migrations, in order, each in a transaction, under an advisory lock."""
    dsn, source = database_url(url)
    with naming_source(source):
        applied = migrator.migrate(dsn)
    where = f"{db.describe(dsn)} ({source})"
    if not applied:
        console.print(f"{where}: already up to date", markup=False)
    for migration in applied:
        console.print(f"{where}: applied {migration.name}", markup=False)
