"""`HttpPolicy`: what the recorded client may reach (the SSRF guard's allow-list, timeouts,
redirect and size limits) and what it keeps out of recordings (header names, URL query and
fragment parameters), with the defaults; and how a URL is shown in an error message.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import httpx

#: Headers redacted by default: exact names plus `fnmatch` patterns over lowercased names.
DEFAULT_REDACT: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "*token*",
        "*secret*",
        # a keyed signature (Standard Webhooks' webhook-signature, x-hub-signature-256...) lets
        # whoever holds it test guesses of the key offline
        "*signature*",
    }
)

#: Query parameters whose values are redacted by default (`fnmatch`, over lowercased names).
DEFAULT_REDACT_PARAMS: frozenset[str] = frozenset(
    {
        "*token*",
        "*secret*",
        "*password*",
        "*passwd*",
        "*api_key*",
        "*apikey*",
        "*api-key*",
        "key",
        "*access_key*",
        "*signature*",
        "sig",
        "auth",
        "x-amz-credential",
    }
)
_REDACTED_PARAM = b"%5Bredacted%5D"

#: The largest response body `RecordedHttp` reads (decoded), unless the policy says otherwise.
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class HttpPolicy:
    """What `RecordedHttp` may reach and what it keeps out of recordings."""

    #: Host names or literal addresses (exact, case-insensitive) the SSRF guard lets through.
    allow_hosts: frozenset[str] = frozenset()
    #: Header names or `fnmatch` patterns (case-insensitive) stored as ``"[redacted]"``.
    redact_headers: frozenset[str] = field(default=DEFAULT_REDACT)
    #: URL query parameter names or `fnmatch` patterns (case-insensitive) whose values are
    #: stored as ``"[redacted]"``.
    redact_params: frozenset[str] = field(default=DEFAULT_REDACT_PARAMS)
    #: Timeout of each hop (connect, read, write and pool wait), in seconds.
    timeout_s: float = 30
    #: Redirects followed per request before `httpx.TooManyRedirects`.
    max_redirects: int = 5
    #: The largest response body read, decoded, in bytes: a larger Content-Length is refused
    #: before the body is read, and a body without one is stopped once it passes the limit
    #: (`HttpResponseTooLarge`).
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    #: What the guard's refusal tells a user to do to allow a host (``{host}`` stands for it):
    #: each front end names its own setting, e.g. "pass --http-allow-host {host} to jobforge
    #: worker".
    allow_hint: str = "add '{host}' to HttpPolicy.allow_hosts"

    def __post_init__(self) -> None:
        if any(isinstance(x, str) for x in (self.allow_hosts, self.redact_headers,
                                            self.redact_params)):  # fmt: skip
            raise TypeError(
                "HttpPolicy.allow_hosts, redact_headers and redact_params are sets of strings"
            )
        object.__setattr__(self, "allow_hosts", _lower_set(self.allow_hosts))
        object.__setattr__(self, "redact_headers", _lower_set(self.redact_headers))
        object.__setattr__(self, "redact_params", _lower_set(self.redact_params))
        if not self.timeout_s > 0:
            raise ValueError(f"HttpPolicy.timeout_s must be positive, got {self.timeout_s!r}")
        if self.max_redirects < 0:
            raise ValueError(f"HttpPolicy.max_redirects must be >= 0, got {self.max_redirects}")
        if (
            not isinstance(self.max_response_bytes, int)
            or isinstance(self.max_response_bytes, bool)
            or self.max_response_bytes <= 0
        ):
            raise ValueError(
                "HttpPolicy.max_response_bytes must be a positive number of bytes, got "
                f"{self.max_response_bytes!r}"
            )

    def redacts(self, header_name: str) -> bool:
        """Whether `header_name` is stored as ``"[redacted]"``."""
        name = header_name.lower()
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.redact_headers)

    def redacted_url(self, url: httpx.URL | str) -> str:
        """`url` with the values of redacted query parameters replaced, all else byte for byte;
        so are ``name=value`` pairs of the fragment (``#access_token=…``, as an OAuth redirect's
        Location carries it)."""
        url = httpx.URL(url) if isinstance(url, str) else url
        if not self.redact_params or not (url.query or "=" in url.fragment):
            return str(url)
        changes: dict[str, Any] = {}
        query = self._redacted_pairs(url.query.decode("latin-1"))
        if query is not None:
            changes["query"] = query.encode("latin-1")
        fragment = self._redacted_pairs(url.fragment)
        if fragment is not None:
            changes["fragment"] = fragment
        return str(url.copy_with(**changes)) if changes else str(url)

    def _redacted_pairs(self, text: str) -> str | None:
        """``a=1&token=2`` with the values of redacted names replaced; None when none is."""
        parts = []
        changed = False
        for part in text.split("&"):
            name, eq, _ = part.partition("=")
            key = unquote_plus(name).lower()
            if eq and any(fnmatch.fnmatchcase(key, p) for p in self.redact_params):
                parts.append(name + "=" + _REDACTED_PARAM.decode("ascii"))
                changed = True
            else:
                parts.append(part)
        return "&".join(parts) if changed else None

    def allows(self, host: str) -> bool:
        """Whether `host` skips the SSRF guard."""
        return host.lower() in self.allow_hosts

    def allow_advice(self, host: str) -> str:
        """`allow_hint` for `host`: how to allow it where this policy comes from."""
        return self.allow_hint.replace("{host}", host)


def _lower_set(items: Iterable[str]) -> frozenset[str]:
    return frozenset(item.strip().lower() for item in items)


def _shown(url: httpx.URL | str, policy: HttpPolicy) -> str:
    """A URL as an error message may show it: secret query values redacted (the message
    reaches the job's error, its events and its run record)."""
    try:
        return policy.redacted_url(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<an invalid URL>"
