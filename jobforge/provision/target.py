"""Which database a command acts on (--database-url, JOBFORGE_DATABASE_URL, or the dev server),
and for which tenant (--tenant, JOBFORGE_TENANT).

Free of the CLI framework: the CLI's commands choose here, with their options' values, and so
can the pytest plugin and `jobforge certify`; the options themselves are the CLI's."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobforge import errors, migrate
from jobforge.provision import devserver

NO_DATABASE = "pass --database-url, set JOBFORGE_DATABASE_URL, or run `jobforge db start`"


def database_url(option: str | None) -> tuple[str, str]:
    """The URL and where it came from; a usage error when there is none."""
    if (named := named_database(option)) is not None:
        return named
    raise errors.ConfigurationError(f"no database: {NO_DATABASE}")


def named_database(option: str | None) -> tuple[str, str] | None:
    """--database-url, else $JOBFORGE_DATABASE_URL, else the running development server of the
    project around the working directory (`devserver.find_project`), with where it came from;
    None when there is none."""
    if option:
        return option, "--database-url"
    if env := os.environ.get("JOBFORGE_DATABASE_URL"):
        return env, "JOBFORGE_DATABASE_URL"
    here = Path.cwd()
    project = devserver.find_project(here)
    if (state := devserver.status(project)) is not None:
        where = ".jobforge/" if project == here.resolve() else f"{project}/.jobforge/"
        return state.url, f"the development server ({where})"
    return None


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


#: A tenant id, as the jobs table's CHECK has it (migrations/0002): checked before connecting,
#: so a value no row can have is a usage error rather than an empty answer or a database error.
TENANT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
TENANT_ENV = "JOBFORGE_TENANT"


def chosen_tenant(option: str | None, *, required: bool) -> str | None:
    """--tenant, else $JOBFORGE_TENANT, else None (or a usage error when `required`).

    A value that is given but empty (`--tenant ""`, `JOBFORGE_TENANT=`, a wrapper's unset
    variable) is refused, never read as "no tenant": on a login that may read every tenant,
    that would widen the command to all of them."""
    if option is not None:
        value, source = option, "--tenant"
    elif TENANT_ENV in os.environ:
        value, source = os.environ[TENANT_ENV], TENANT_ENV
    elif required:
        raise errors.ConfigurationError(f"no tenant: pass --tenant or set {TENANT_ENV}")
    else:
        return None
    if not TENANT_ID.fullmatch(value):
        what = "is empty" if not value.strip() else f"{value[:80]!r} is not a tenant id"
        raise errors.ConfigurationError(
            f"{source} {what}: a tenant id is 1 to 128 of A-Z a-z 0-9 . _ : -"
            + (
                ""
                if required
                else f" (leave out --tenant and unset {TENANT_ENV} to read every tenant)"
            )
        )
    return value
