"""Host allow-lists of the first-party runners: a job's `allow_hosts`, a connector's. Apart from
the runners, whose import declares them (`jobforge.runners.secrets` says why that matters)."""

from __future__ import annotations

from typing import Any

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
