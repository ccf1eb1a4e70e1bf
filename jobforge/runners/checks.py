"""What `jobforge connectors test` checks of a connector config, with the rules the first-party
runners apply when they read one (so a config that passes here is one they accept): the
``secret`` a webhook signs with, the ``allow_hosts`` and ``headers`` an HTTP request takes, and
the ``url`` (any http or https URL)."""

from __future__ import annotations

from typing import Any

import httpx

from jobforge import errors
from jobforge.runners.hosts import odd_entry, signing_scope
from jobforge.runners.secrets import secret_problem
from jobforge.runtime.http.policy import HttpPolicy


def problems(config: dict[str, Any], policy: HttpPolicy | None = None) -> list[str]:
    """What is wrong with the known keys of `config` (empty: nothing); never a secret's value."""
    found: list[str] = []
    if "secret" in config:
        found += [p for p in (secret_problem(config["secret"]),) if p]
    hosts = config.get("allow_hosts")
    if hosts is not None and (
        not isinstance(hosts, list) or not all(isinstance(h, str) and h.strip() for h in hosts)
    ):
        found.append("allow_hosts must be a list of host names")
    elif hosts is not None and hosts != ["*"] and (odd := odd_entry(hosts)) is not None:
        found.append(f"allow_hosts: {odd}")
    elif hosts == ["*"] and "headers" in config:
        found.append(
            'allow_hosts ["*"] names no host for the headers: the http runner sends a '
            "connector's headers (credentials) to the hosts it names only"
        )
    headers = config.get("headers")
    if headers is not None:
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            found.append("headers must map header names to strings")
        else:
            rules = policy or HttpPolicy()
            clear = sorted(k for k in headers if not rules.redacts(k))
            if clear:
                found.append(
                    f"header(s) {', '.join(clear)} would be recorded in clear: a connector's "
                    "headers are credentials (authorization, x-api-key, *token*, *secret*)"
                )
    url = config.get("url")
    if url is not None and url_problem(url):
        found.append(f"url: {url_problem(url)}")
    if "secret" in config and not found:  # a webhook's: where the runner will sign, or why not
        try:
            signing_scope(config)
        except errors.InvalidInput as exc:
            found.append(str(exc))
    return found


def url_problem(url: Any) -> str | None:
    """Why `url` is not an absolute http(s) URL, or None."""
    if not isinstance(url, str):
        return "must be a string"
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"invalid URL ({exc})"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "must be an absolute http:// or https:// URL"
    return None
