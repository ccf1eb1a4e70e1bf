"""What of an exchange is kept out of storage: redacted header values (URL-valued headers with
their secret query values masked) when an exchange is recorded, and the secrets of a response
body (`redact_exchange`) on its way to a run record, bundle or golden file. The rules for
bodies themselves live in `jobforge.runtime.redact`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from jobforge.runtime.http.policy import HttpPolicy
from jobforge.runtime.redact import Redactor, redact_body

#: What a redacted header value is replaced with in an `Exchange`.
REDACTED = "[redacted]"

#: Headers whose value is a URL: stored with its secret query (and fragment) values redacted.
_URL_HEADERS = frozenset({"location", "content-location", "referer"})


def _redacted(headers: Mapping[str, str], policy: HttpPolicy) -> dict[str, str]:
    return {
        k: REDACTED if policy.redacts(k) else _url_header(v, policy) if k in _URL_HEADERS else v
        for k, v in sorted(headers.items())
    }


def _url_header(value: str, policy: HttpPolicy) -> str:
    """A URL-valued header as stored: as it came unless a secret value in it was redacted."""
    try:
        url = httpx.URL(value)
        redacted = policy.redacted_url(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return value
    return value if redacted == str(url) else redacted


def redact_exchange(exchange: Mapping[str, Any], redactor: Redactor) -> dict[str, Any]:
    """A recorded exchange (`Exchange.to_json`) as it may be stored: its response body with the
    secrets `redactor` names masked (`jobforge.runtime.redact.redact_body`: JSON keys at any
    depth, form fields), ``content-length`` fixed up to match. A body that is not UTF-8, not
    JSON or form, or holds no secret is kept byte for byte. (URLs and headers are redacted when
    the exchange is recorded; the request body is only ever stored as a hash of its blanked
    form.)"""
    out = dict(exchange)
    if out.get("response_body_encoding") != "utf-8" or not isinstance(
        out.get("response_body"), str
    ):
        return out
    headers = out.get("response_headers")
    headers = dict(headers) if isinstance(headers, Mapping) else {}
    body = redact_body(out["response_body"].encode("utf-8"), headers.get("content-type"), redactor)
    if body is None:
        return out
    out["response_body"] = body.decode("utf-8")
    if "content-length" in headers:
        headers["content-length"] = str(len(body))
        out["response_headers"] = headers
    return out
