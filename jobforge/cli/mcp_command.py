"""`jobforge mcp`: serve the queue to AI agents over the Model Context Protocol (`jobforge.mcp`).

Glue: the options say where the queue is, which tenant and actor a connection is bound to (or,
over HTTP, which tokens file binds each bearer token) and where the runners' code is for
replay_run; `jobforge.mcp.server` does the rest. The MCP SDK is an extra: without it the
command says in one line how to install it.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from jobforge import errors
from jobforge.cli.options import DEFAULT_HELP, cli_actor
from jobforge.provision.target import chosen_tenant, ready_database_url

#: What to install when the MCP SDK is missing.
INSTALL_HINT = "jobforge mcp needs the MCP SDK: pip install 'jobforge[mcp]'"


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"


def mcp(
    transport: Transport = typer.Option(
        Transport.stdio,
        "--transport",
        help="stdio (a local agent starts the server) or http "
        "(streamable HTTP at http://HOST:PORT/mcp, for remote agents).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP: the address to listen on."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="HTTP: the port."),
    tokens: Path | None = typer.Option(
        None,
        "--tokens",
        help="HTTP: a JSON file binding bearer tokens (by SHA-256) to a "
        "tenant and an actor each; every request must carry one of them.",
    ),
    tenant: str | None = typer.Option(
        None,
        "--tenant",
        help="The tenant every connection acts for (default: $JOBFORGE_TENANT; not with --tokens).",
    ),
    actor: str | None = typer.Option(
        None,
        "--actor",
        help="Who the audit trail names for everything the agent does "
        "(default: $JOBFORGE_ACTOR, else your OS login name; not with --tokens).",
    ),
    url: str | None = typer.Option(None, "--database-url", help=f"The queue ({DEFAULT_HELP})."),
    project: Path = typer.Option(
        Path("."),
        "--project",
        help="Runner repository, for replay_run (default: the working directory).",
    ),
    provider: str | None = typer.Option(
        None, "--provider", help="replay_run: where its throwaway Postgres comes from."
    ),
) -> None:
    """Serve the queue to AI agents (MCP): enqueue, check, list, claim, heartbeat, complete,
    fail, release, resume_session, health, audit_log, replay_run, for one tenant per
    connection."""
    try:
        from jobforge.mcp import binding, server
        from jobforge.mcp.tools import ServerConfig
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "mcp":
            raise errors.ConfigurationError(INSTALL_HINT) from None
        raise
    if tokens is not None and transport is Transport.stdio:
        raise errors.ConfigurationError("--tokens is for --transport http (stdio serves the "
                                        "one agent that started it)")  # fmt: skip
    if tokens is not None and (tenant is not None or actor is not None):
        raise errors.ConfigurationError("--tokens binds each token to its tenant and actor: "
                                        "leave out --tenant and --actor")  # fmt: skip
    if not project.is_dir():
        raise errors.ConfigurationError(f"--project {project}: no such folder")
    fixed = None
    if tokens is None:
        fixed = binding.binding(chosen_tenant(tenant, required=True), cli_actor(actor),
                                source="jobforge mcp")  # fmt: skip
    loaded = binding.Tokens.load(tokens) if tokens is not None else None
    config = ServerConfig(ready_database_url(url), project.resolve(), provider)
    if transport is Transport.stdio:
        assert fixed is not None
        server.serve_stdio(config, fixed)
    else:
        server.serve_http(config, fixed, server.HttpSettings(host, port, loaded))
