"""`jobforge dashboard`: serve the web UI (`jobforge.dashboard`) with uvicorn.

Glue only: the options become a `DashboardConfig`, checked in one line each before the server
binds (a missing extra, a bad tokens file, a tenant and tokens both or neither, an unreachable
database), then uvicorn serves the app until interrupted.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from jobforge import errors
from jobforge.cli.options import DEFAULT_HELP, chosen_project, cli_actor
from jobforge.cli.output import console
from jobforge.provision.target import TENANT_ENV, chosen_tenant, ready_database_url

#: What the dashboard imports beyond a core install (the `dashboard` extra).
EXTRA = ("starlette", "jinja2", "uvicorn", "python_multipart")
INSTALL = "pip install 'jobforge[dashboard]'"


def require_extra() -> None:
    """One line naming the missing package and the extra, when the web stack is not there."""
    for name in EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            shown = name.replace("_", "-")
            raise errors.ConfigurationError(
                f"jobforge dashboard needs the web stack ({shown} is not installed): {INSTALL}"
            ) from None


def dashboard(
    url: str | None = typer.Option(
        None, "--database-url", help=f"The queue's database ({DEFAULT_HELP})."
    ),
    tenant: str | None = typer.Option(
        None, "--tenant", help=f"Serve this tenant to every session (or ${TENANT_ENV})."
    ),
    actor: str | None = typer.Option(
        None, "--actor", help="With --tenant: who the audit trail names (default: "
        "$JOBFORGE_ACTOR, else your login name)."
    ),
    actor_header: str | None = typer.Option(
        None, "--actor-header", metavar="HEADER", help="With --tenant, behind an authenticating "
        "proxy: the actor is this request header (e.g. X-Forwarded-User); a request without it "
        "is refused."
    ),
    tokens: Path | None = typer.Option(
        None, "--tokens", metavar="FILE", help="Sign in with a token: a JSON file mapping "
        "each token's sha256 to a tenant and actor (instead of --tenant)."
    ),
    project_scope: str | None = typer.Option(
        None, "--project-scope", help="With --tenant: only this project's jobs."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8484, "--port", min=0, max=65535, help="Port to listen on."),
    project: Path = typer.Option(
        Path("."), "--project", help="Runner repository replay imports (default: here)."
    ),
    provider: str | None = typer.Option(
        None, "--provider", help="Where replay's throwaway Postgres comes from: auto, url, "
        "docker, local."
    ),
    secure_cookies: bool = typer.Option(
        False, "--secure-cookies", help="Mark the session cookie Secure (served over HTTPS)."
    ),
    allowed_host: list[str] | None = typer.Option(
        None, "--allowed-host", metavar="NAME", help="Serve requests for this Host too "
        "(repeatable; e.g. the name a proxy forwards). Default: the listening address and "
        "localhost only."
    ),
) -> None:  # fmt: skip
    """Serve the web dashboard for one tenant per session: overview, jobs, dead letters, run
    records and replay (docs/dashboard.md)."""
    require_extra()
    from jobforge.dashboard.auth import checked_identity, load_tokens

    if tokens is not None and (tenant is not None or actor is not None or actor_header
                               or project_scope is not None):  # fmt: skip
        raise errors.ConfigurationError(
            "--tokens names each session's tenant, actor and project: leave out --tenant, "
            "--actor, --actor-header and --project-scope"
        )
    if not project.is_dir():
        raise errors.ConfigurationError(f"--project {project}: no such folder")
    if tokens is not None:
        known, identity = load_tokens(tokens), None
    else:
        chosen = chosen_tenant(tenant, required=False)
        if chosen is None:
            raise errors.ConfigurationError(
                f"say whose dashboard this is: --tenant (or ${TENANT_ENV}), or --tokens FILE"
            )
        identity = checked_identity(chosen, cli_actor(actor), chosen_project(project_scope),
                                    where="--tenant/--actor")  # fmt: skip
        known = None
    if actor_header is not None and not actor_header.replace("-", "").isalnum():
        raise errors.ConfigurationError(f"--actor-header {actor_header!r} is not a header name")
    dsn = ready_database_url(url)

    from jobforge.dashboard.app import DashboardConfig, serve

    hosts = (host, "localhost", "127.0.0.1", "::1", "[::1]", *(allowed_host or ()))
    config = DashboardConfig(
        database_url=dsn, tenant=identity, tokens=known, actor_header=actor_header,
        project_root=project.resolve(), replay_provider=provider, secure_cookies=secure_cookies,
        allowed_hosts=("*",) if "*" in hosts else tuple(dict.fromkeys(hosts)),
    )  # fmt: skip
    who = (f"tenant {identity.tenant} as {identity.actor}" if identity
           else f"{len(known or {})} token(s) from {tokens}")  # fmt: skip
    console.print(f"jobforge dashboard on http://{host}:{port}/ ({who}); Ctrl-C stops it",
                  markup=False, soft_wrap=True)  # fmt: skip
    if host not in ("127.0.0.1", "localhost", "::1") and identity is not None and not actor_header:
        console.print("warning: listening beyond this machine without --tokens or "
                      "--actor-header: anyone who can reach it acts as "
                      f"{identity.actor}", markup=False)  # fmt: skip
    serve(config, host, port)
