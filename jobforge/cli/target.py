"""Which database a command acts on: --database-url, JOBFORGE_DATABASE_URL, or the dev server."""

from __future__ import annotations

import os
from pathlib import Path

from jobforge import errors
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
