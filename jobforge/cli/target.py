"""Which database a command acts on: --database-url, JOBFORGE_DATABASE_URL, or the dev server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobforge import errors, migrate
from jobforge.provision import devserver


def database_url(option: str | None) -> tuple[str, str]:
    """The URL and where it came from; a usage error when there is none."""
    if option:
        return option, "--database-url"
    if env := os.environ.get("JOBFORGE_DATABASE_URL"):
        return env, "JOBFORGE_DATABASE_URL"
    if (state := devserver.status(Path.cwd())) is not None:
        return state.url, "the development server (.jobforge/)"
    raise errors.ConfigurationError(
        "no database: pass --database-url, set JOBFORGE_DATABASE_URL, or run `jobforge db start`"
    )


def ready_database_url(option: str | None) -> str:
    """`database_url`, once its server answers and its jobforge schema is up to date."""
    dsn, source = database_url(option)
    require_ready(dsn, source)
    return dsn


def require_ready(dsn: str, source: str) -> None:
    """One line naming the server, where its URL came from and what to do (exit 2) when it does
    not answer (within seconds, not a pool's 30 s) or its schema is missing or not up to date."""
    with naming_source(source):
        migrate.require_up_to_date(dsn, source=source)


@contextmanager
def naming_source(source: str) -> Iterator[None]:
    """A server that does not answer is named with where its URL came from."""
    try:
        yield
    except errors.DatabaseUnreachable as exc:
        raise errors.DatabaseUnreachable(f"{exc} (URL from {source})") from None
