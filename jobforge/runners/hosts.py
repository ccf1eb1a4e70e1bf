"""Host allow-lists of the first-party runners: a job's `allow_hosts`, a connector's. Apart from
the runners, whose import declares them (`jobforge.runners.secrets` says why that matters)."""

from __future__ import annotations

from typing import Any

import httpx

from jobforge import errors


def patterns(value: Any, label: str) -> tuple[str, tuple[str, ...]]:
    """(where the list came from, its host patterns lowercased)."""
    if not isinstance(value, list) or not all(isinstance(h, str) and h.strip() for h in value):
        raise errors.InvalidInput(f"{label} must be a list of host names")
    return label, tuple(h.strip().lower().rstrip(".") for h in value)


def allowed(host: str, hosts: tuple[str, ...]) -> bool:
    """Whether `host` is one of `hosts`: exact names, ``*.example.com`` for its subdomains."""
    host = host.lower().rstrip(".")
    return any(host.endswith(p[1:]) if p.startswith("*.") else host == p for p in hosts)


#: Where a webhook connector signs: any host (`"allow_hosts": ["*"]`, said in so many words), the
#: hosts of its list, or the one origin (scheme, host, port) of its `url`.
ANY_HOST = "any"


def signing_scope(
    config: dict[str, Any], name: str | None = None
) -> str | tuple[str, ...] | httpx.URL:
    """Where connector `name` may sign for: ANY_HOST, host patterns, or the origin of its url.
    A connector that names none, or names one wrongly, is `errors.InvalidInput` naming the
    problem (the connector by `name`, else "it"): it signs for no host (fail closed)."""
    who, whose = (f"connector {name}", f"connector {name}'s") if name else ("it", "its")
    if "allow_hosts" in config:
        raw = config["allow_hosts"]
        if raw == ["*"]:
            return ANY_HOST
        hosts = patterns(raw, f"{whose} allow_hosts")[1]
        odd = odd_entry(raw)
        if odd is not None:
            raise errors.InvalidInput(f"{whose} allow_hosts: {odd}")
        if not hosts:
            raise errors.InvalidInput(_NO_HOST.format(who=who))
        return hosts
    url = config.get("url")
    if isinstance(url, str):
        try:
            origin = httpx.URL(url)
        except httpx.InvalidURL:
            origin = None
        if origin is not None and origin.scheme in ("http", "https") and origin.host:
            return origin
    raise errors.InvalidInput(_NO_HOST.format(who=who))


_NO_HOST = (
    "{who} names no host to sign for: give it allow_hosts (or an http(s) url); "
    '["*"] signs for any host'
)


def odd_entry(raw: list[str]) -> str | None:
    """Why an entry of a host list (as given) is neither a name nor `*.domain`, or None. A
    lone `["*"]` is left to the caller: any host to a webhook, a mistake elsewhere."""
    for entry in raw:
        name = entry.strip().lower().rstrip(".")
        if not name or ("*" in name and not _subdomains(name)):
            return f'{entry!r} is not a host name or *.domain ("*" alone, as ["*"], is any host)'
    return None


def _subdomains(pattern: str) -> bool:
    """`*.example.com`: a wildcard that stands for subdomains of a name, and nowhere else."""
    return pattern.startswith("*.") and len(pattern) > 2 and "*" not in pattern[2:]


def same_origin(target: httpx.URL, origin: httpx.URL) -> bool:
    """Whether `target` goes to `origin`'s scheme, host and port (a signed body sent over plain
    http, or to another port of the host, could be read on the way or by another service)."""
    return (target.scheme, target.host.lower().rstrip("."), _port(target)) == (
        origin.scheme, origin.host.lower().rstrip("."), _port(origin))  # fmt: skip


def _port(url: httpx.URL) -> int | None:
    return url.port or {"http": 80, "https": 443}.get(url.scheme)
