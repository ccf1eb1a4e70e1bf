"""`jobforge db start|stop|status|url`: the embedded development server; `jobforge db schema`:
the schema its migrations make."""

from __future__ import annotations

from pathlib import Path

import typer

from jobforge import db, errors
from jobforge import migrate as migrator
from jobforge.cli.output import console, counted
from jobforge.provision import devserver, schema_dump

app = typer.Typer(
    help="The embedded development Postgres of this project: data under .jobforge/ of the "
    "nearest folder up that has [tool.jobforge] in its pyproject.toml or a running one, else "
    "of this folder. `schema` prints the schema jobforge's migrations make.",
    no_args_is_help=True,
)


def _project() -> Path:
    """The project whose dev server these commands act on (`devserver.find_project`)."""
    return devserver.find_project(Path.cwd())


@app.command()
def start(
    port: int | None = typer.Option(
        None,
        min=1,
        max=65535,
        help="TCP port on 127.0.0.1, refused when taken (default: $JOBFORGE_DEV_PORT, else "
        f"{devserver.DEFAULT_PORT}; a free one when that is taken).",
    ),
) -> None:
    """Start the development server (or report the one already running) and migrate it."""
    state, started = devserver.start(_project(), port=port)
    verb = "started" if started else "already running:"
    console.print(
        f"{verb} PostgreSQL {state.version} (pid {state.pid}), data in {state.data_dir}",
        markup=False,
    )
    applied = migrator.migrate(state.url)
    shipped = migrator.discover()
    latest = shipped[-1].name if shipped else "(none)"
    done = f"migrated, applied {counted(len(applied), 'migration')}" if applied else "up to date"
    console.print(f"schema: {done} (latest {latest})", markup=False)
    console.print(
        f"url: {db.redact(state.url)} (with its password: `jobforge db url`)", markup=False
    )


@app.command()
def stop() -> None:
    """Stop the development server; its data stays in .jobforge/."""
    state = devserver.stop(_project())
    console.print(
        "no development server is running" if state is None else f"stopped (pid {state.pid})",
        markup=False,
    )


@app.command()
def status() -> None:
    """Say whether the development server runs, and where. Exit 1 when it does not."""
    state = devserver.status(_project())
    if state is None:
        console.print("not running (start it with `jobforge db start`)", markup=False)
        raise typer.Exit(1)
    console.print(
        f"running: PostgreSQL {state.version}, pid {state.pid}, port {state.port}", markup=False
    )
    console.print(f"data: {state.data_dir}", markup=False)
    console.print(
        f"url: {db.redact(state.url)} (with its password: `jobforge db url`)", markup=False
    )


@app.command()
def url() -> None:
    """Print the development server's connection URL (for `export JOBFORGE_DATABASE_URL=...`)."""
    state = devserver.status(_project())
    if state is None:
        raise errors.ConfigurationError(
            "the development server is not running: `jobforge db start`"
        )
    print(state.url)


@app.command()
def schema(
    output: Path | None = typer.Option(
        None, "--output", help="Write it to this file instead of printing it."
    ),
    provider: str | None = typer.Option(
        None,
        "--provider",
        help="Where the throwaway Postgres comes from: auto, url, docker, local.",
    ),
) -> None:
    """Print jobforge's current schema (the repository's schema.sql): pg_dump of a database
    freshly migrated on a throwaway server, never the development server."""
    text = schema_dump.generate(provider=provider)
    if output is None:
        print(text, end="")
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {output}", markup=False)
