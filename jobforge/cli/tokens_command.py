"""`jobforge tokens issue|secret`: policy tokens for action runners (docs/trust.md).

The secrets come from JOBFORGE_TOKEN_KEYS (`kid:base64url-secret,...`; the first issues), the
audience from JOBFORGE_TOKEN_AUDIENCE (default `jobforge`), as the worker reads them. The token
is printed alone on stdout, so a script can capture it.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import typer

from jobforge import canonical, errors, trust
from jobforge.cli.durations import parse_duration
from jobforge.cli.job_input import Flags, read_input
from jobforge.cli.output import console
from jobforge.provision.target import chosen_tenant
from jobforge.trust.keys import b64url

app = typer.Typer(help="Policy tokens that let jobs of action runners run (docs/trust.md).",
                  no_args_is_help=True)  # fmt: skip


@app.command("issue")
def issue(
    action: str = typer.Option(..., "--action", help="The job type (runner id) it authorizes."),
    scopes: list[str] = typer.Option(..., "--scope", help="A scope it grants (repeat it)."),
    tenant: str | None = typer.Option(None, "--tenant", help="Default: $JOBFORGE_TENANT."),
    project: str | None = typer.Option(None, "--project", help="Bind it to one project."),
    ttl: str = typer.Option("5m", "--ttl", help="How long it is valid (30s, 5m, 1h)."),
    audience: str | None = typer.Option(
        None, "--audience", help="Default: $JOBFORGE_TOKEN_AUDIENCE, else jobforge."
    ),
    input_json: str | None = typer.Option(
        None, "--input", help="Bind it to this one input (JSON object): res."
    ),
    input_file: Path | None = typer.Option(None, "--input-file", help="The same, from a file."),
    jti: str | None = typer.Option(None, "--jti", help="Its unique id (default: random)."),
) -> None:
    """Issue a token (HS256, signed with the first secret of JOBFORGE_TOKEN_KEYS)."""
    keys = trust.TokenKeys.from_env()
    if keys is None:
        raise errors.ConfigurationError(
            "no token keys: set JOBFORGE_TOKEN_KEYS to kid:base64url-secret "
            "(jobforge tokens secret makes one)"
        )
    seconds = parse_duration(ttl, "--ttl", maximum_s=31 * 86_400)
    if seconds < 1:
        raise errors.ConfigurationError(f"--ttl {ttl!r} is too short: give at least 1s")
    resource = None
    if input_json is not None or input_file is not None:
        flags = Flags(text="--input", file="--input-file", noun="input")
        resource = canonical.hash_of(read_input(input_json, input_file, flags))
    chosen = chosen_tenant(tenant, required=True)
    assert chosen is not None
    token = trust.issue_token(
        keys, tenant=chosen, action=action, scopes=scopes, ttl_s=seconds, project=project,
        resource=resource, audience=audience, jti=jti,
    )  # fmt: skip
    print(token)


@app.command("secret")
def secret(kid: str = typer.Option("k1", "--kid", help="The secret's id.")) -> None:
    """Print a new random secret as JOBFORGE_TOKEN_KEYS takes it: kid:base64url(32 bytes)."""
    if not kid or any(c in kid for c in ",: ") or not kid.isprintable():
        raise errors.ConfigurationError(f"--kid {kid!r}: use letters, digits, '-' or '_'")
    console.print(f"{kid}:{b64url(secrets.token_bytes(32))}", markup=False)
