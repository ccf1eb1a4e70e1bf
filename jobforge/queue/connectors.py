"""Connector configs: a tenant's named settings for outside systems (a webhook's signing secret,
an API's base URL, allowed hosts and credentials), one JSON object per name in the
`connector_configs` table (migrations/0002), walled per tenant by row-level security.

Runners read them through `RunContext.connector(name)`; the worker looks them up in the job's
tenant only (`lookup`). What is secret in a config is decided by the redaction rules of
`jobforge.runtime.redact` (keys such as ``secret``, ``token``, ``password``, ``authorization``
and ``*_secret``...): what prints a config masks those values, so a listing
never shows one (the CLI masks them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from jobforge import errors
from jobforge.connector_names import CONNECTOR_NAME, connector_env_var
from jobforge.queue.calls import Call

#: The largest config the table accepts (migrations/0008: octet_length of its JSON text).
MAX_CONFIG_BYTES = 65536


@dataclass(frozen=True, slots=True)
class Connector:
    """One connector config as stored."""

    name: str
    config: dict[str, Any]
    updated_at: datetime


def check_name(name: str) -> str:
    """`name` when it is a connector name the table accepts; one line otherwise."""
    if not isinstance(name, str) or CONNECTOR_NAME.fullmatch(name) is None:
        raise errors.ConfigurationError(
            f"connector name {str(name)[:60]!r} is invalid: use 1-128 of [a-z0-9._-]"
        )
    return name


def check_config(config: Any) -> dict[str, Any]:
    """`config` when it is a JSON object within the size limit; one line otherwise."""
    if not isinstance(config, dict):
        raise errors.ConfigurationError(
            f"a connector config must be a JSON object, not {type(config).__name__}"
        )
    size = len(json.dumps(config, ensure_ascii=False).encode())
    if size > MAX_CONFIG_BYTES:
        raise errors.ConfigurationError(
            f"the connector config is {size} bytes, over the limit of {MAX_CONFIG_BYTES}"
        )
    return config


def connector(rows: list[dict[str, Any]], name: str) -> Connector:
    if not rows:
        raise errors.JobNotFound(f"connector {name!r} not found")
    return from_row(rows[0])


def from_row(row: dict[str, Any]) -> Connector:
    return Connector(str(row["name"]), dict(row["config"]), row["updated_at"])


def set_call(name: str, config: dict[str, Any]) -> Call:
    return "connector_set", {"name": check_name(name), "config": Jsonb(check_config(config))}


def get_call(name: str) -> Call:
    return "connector_get", {"name": check_name(name)}


def list_call() -> Call:
    return "connector_list", {}


def remove_call(name: str) -> Call:
    return "connector_remove", {"name": check_name(name)}


def from_env(name: str, environ: dict[str, str], tenant: str) -> dict[str, Any] | None:
    """The config `name` in the environment variable `connector_env_var(name)` (a JSON object)
    for `tenant`, None when it is unset or does not serve that tenant. One worker runs every
    tenant's jobs, so the object names the tenants it serves (``"tenants": ["acme"]``, or
    ``"*"`` for all, an operator's deliberate choice): without that, any tenant's job could use
    another's credentials by naming its connector. The key is not part of the config the runner
    sees. A value that is not such an object is one line naming the variable (never its value,
    which may hold a secret)."""
    var = connector_env_var(name)
    text = environ.get(var)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise errors.ConnectorNotFound(
            f"connector {name!r}: the environment variable {var} must hold a JSON object"
        )
    served = value.pop("tenants", None)
    if served != "*" and not (
        isinstance(served, list) and served and all(isinstance(t, str) for t in served)
    ):
        raise errors.ConnectorNotFound(
            f"connector {name!r}: the environment variable {var} must name the tenants it "
            'serves ("tenants": ["acme", ...], or "*" for every tenant): a worker runs every '
            "tenant's jobs"
        )
    return value if served == "*" or tenant in served else None
