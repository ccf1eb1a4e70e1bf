"""`jobforge connectors set|list|test|rm`: a tenant's connector configs (the settings and secrets
the first-party runners read through ``ctx.connector``: a webhook's signing secret, an API's
allowed hosts and credential headers).

Glue over `jobforge.queue.connectors`: a config is a JSON object, stored per tenant under
row-level security. Secret values (keys the redaction rules deem secret: ``secret``, ``token``,
``password``, ``authorization``, ``*_key``...) are never printed: `list` and `set` show them as
``[redacted]``. So that a secret need not sit in a shell's history, ``--secret-env KEY=VAR``
reads a value from an environment variable. `test` checks a config the way the runners will
(a well-formed secret, allow-list and headers) and, when it names a ``url`` (or ``--url`` is
given), that the URL answers, through the same SSRF guard a worker uses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.table import Table

from jobforge import errors
from jobforge.cli.job_input import Flags, read_input
from jobforge.cli.options import DEFAULT_HELP
from jobforge.cli.output import console, literal, print_json
from jobforge.provision.target import chosen_tenant, ready_database_url
from jobforge.queue import QueueClient
from jobforge.queue.connectors import Connector, check_config, check_name
from jobforge.runners.checks import problems, url_problem
from jobforge.runtime.http import HttpPolicy, RecordedHttp
from jobforge.runtime.redact import Redactor

app = typer.Typer(
    help="Connector configs: a tenant's settings and secrets for outside systems, read by "
    "runners through ctx.connector(name) (secrets never printed or recorded).",
    no_args_is_help=True,
)

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_TENANT = typer.Option(None, "--tenant", help="Tenant (default: $JOBFORGE_TENANT).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")
_NAME = typer.Argument(..., metavar="NAME", help="The connector's name ([a-z0-9._-], per tenant).")
_CONFIG = Flags(text="--config", file="--config-file", noun="config")


def _client(url: str | None, tenant: str | None) -> QueueClient:
    chosen = chosen_tenant(tenant, required=True)
    return QueueClient.connect(ready_database_url(url), tenant=chosen, max_size=1)


def shown(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with its secret values (at any depth) as ``[redacted]``."""
    masked = Redactor(key=None)(config)
    assert isinstance(masked, dict)
    return masked


def _pairs(values: list[str] | None, option: str) -> list[tuple[str, str]]:
    out = []
    for value in values or ():
        key, eq, rest = value.partition("=")
        if not eq or not key:
            raise errors.ConfigurationError(f"{option} {value[:40]!r}: write KEY=VALUE")
        out.append((key, rest))
    return out


def _as_dict(c: Connector) -> dict[str, Any]:
    return {"name": c.name, "config": shown(c.config), "updated_at": c.updated_at.isoformat()}


@app.command("set")
def set_command(
    name: str = _NAME,
    config_text: str | None = typer.Option(
        None, "--config", metavar="JSON", help="The whole config, a JSON object."
    ),
    config_file: Path | None = typer.Option(None, "--config-file", help="Read the config here."),
    sets: list[str] | None = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Set one key to a string (repeat)."
    ),
    secret_env: list[str] | None = typer.Option(
        None,
        "--secret-env",
        metavar="KEY=VAR",
        help="Set KEY to the value of the environment variable VAR, kept out of shell history "
        "(repeat).",
    ),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    as_json: bool = _JSON,
) -> None:
    """Create or replace a connector config (the keys given replace the whole config)."""
    check_name(name)
    config = read_input(config_text, config_file, _CONFIG)
    for key, value in _pairs(sets, "--set"):
        config[key] = value
    for key, var in _pairs(secret_env, "--secret-env"):
        if var not in os.environ:
            raise errors.ConfigurationError(f"--secret-env {key}={var}: {var} is not set")
        config[key] = os.environ[var]
    if not config:
        raise errors.ConfigurationError(
            "give the config: --config JSON, --config-file FILE, --set KEY=VALUE or "
            "--secret-env KEY=VAR"
        )
    check_config(config)
    found = problems(config)
    if found:
        raise errors.ConfigurationError(f"connector {name}: {'; '.join(found)}")
    with _client(url, tenant) as client:
        row = client.connector_set(name, config)
    if as_json:
        print_json(_as_dict(row))
        return
    console.print(
        literal(f"connector {row.name} set: {json.dumps(shown(row.config), sort_keys=True)}")
    )


@app.command("list")
def list_command(url: str | None = _URL, tenant: str | None = _TENANT,
                 as_json: bool = _JSON) -> None:  # fmt: skip
    """The tenant's connector configs, secret values shown as [redacted]."""
    with _client(url, tenant) as client:
        rows = client.connector_list()
    if as_json:
        print_json({"connectors": [_as_dict(c) for c in rows]})
        return
    if not rows:
        console.print("no connectors", markup=False)
        return
    table = Table("name", "config", "updated (UTC)", box=None)
    for c in rows:
        table.add_row(literal(c.name), literal(json.dumps(shown(c.config), sort_keys=True)),
                      literal(f"{c.updated_at:%Y-%m-%d %H:%M:%S}"))  # fmt: skip
    console.print(table)


@app.command("rm")
def remove_command(name: str = _NAME, url: str | None = _URL,
                   tenant: str | None = _TENANT) -> None:  # fmt: skip
    """Remove a connector config."""
    check_name(name)
    with _client(url, tenant) as client:
        if not client.connector_remove(name):
            raise errors.JobNotFound(f"connector {name!r} not found")
    console.print(literal(f"connector {name} removed"))


@app.command("test")
def check_command(
    name: str = _NAME,
    target: str | None = typer.Option(
        None, "--url", help="Check that this URL answers (default: the config's url, if any)."
    ),
    allow_hosts: list[str] | None = typer.Option(
        None,
        "--http-allow-host",
        help="Let the check reach this private host (repeat), as the worker's own option.",
    ),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    as_json: bool = _JSON,
) -> None:
    """Check a connector config as the runners will read it, and that its URL answers; exit 1
    when a check fails."""
    check_name(name)
    if target is not None and (problem := url_problem(target)):
        raise errors.ConfigurationError(f"--url {target[:80]!r}: {problem}")
    with _client(url, tenant) as client:
        row = client.connector_get(name)
    policy = HttpPolicy(
        allow_hosts=frozenset(allow_hosts or ()),
        timeout_s=10,
        allow_hint="pass --http-allow-host {host} to jobforge connectors test",
    )
    checks: list[dict[str, Any]] = [
        {"check": "config", "ok": not (found := problems(row.config, policy)),
         "detail": "; ".join(found) or f"keys: {', '.join(sorted(row.config)) or 'none'}"},
    ]  # fmt: skip
    reach = target or row.config.get("url")
    if isinstance(reach, str) and not url_problem(reach):
        checks.append(_reachable(reach, policy))
    ok = all(c["ok"] for c in checks)
    if as_json:
        print_json({"name": name, "ok": ok, "checks": checks})
    else:
        for c in checks:
            console.print(literal(f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}"))
    if not ok:
        raise typer.Exit(1)


def _reachable(url: str, policy: HttpPolicy) -> dict[str, Any]:
    """Whether `url` answers a HEAD (any status: it is reachable), through the SSRF guard."""
    shown_url = policy.redacted_url(url)
    try:
        with RecordedHttp("record", policy=policy) as http:
            response = http.request("HEAD", url, follow_redirects=False)
    except errors.JobforgeError as exc:
        return {"check": "reachable", "ok": False, "detail": str(exc)}
    except httpx.HTTPError as exc:
        return {"check": "reachable", "ok": False,
                "detail": f"HEAD {shown_url}: no answer ({type(exc).__name__}: {exc})"}  # fmt: skip
    return {"check": "reachable", "ok": True,
            "detail": f"HEAD {shown_url} answered {response.status_code}"}  # fmt: skip
