"""httpx messages to exchange fields and back: the hash a request body is matched by, headers
merged as recorded (lowercased names, repeats joined), the response's headers and body as
stored (decoded, no ``date``), and the `httpx.Response` a handler is given.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

import httpx

from jobforge import canonical
from jobforge.runtime.http.exchange import Encoding


def _body_sha256(body: bytes) -> str | None:
    return canonical.sha256_of(body) if body else None


def _merged(headers: httpx.Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _response_headers(response: httpx.Response, body: bytes) -> dict[str, str]:
    headers = _merged(response.headers)
    headers.pop("date", None)
    headers.pop("transfer-encoding", None)
    if headers.pop("content-encoding", None) is not None and "content-length" in headers:
        headers["content-length"] = str(len(body))
    return headers


def _body_text(body: bytes) -> tuple[str, Encoding]:
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


def _build_response(
    status: int, headers: Mapping[str, str], body: bytes, request: httpx.Request
) -> httpx.Response:
    return httpx.Response(status, headers=list(headers.items()), content=body, request=request)
