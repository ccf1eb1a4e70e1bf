"""The recorded exchange: one request and its response as a run record, bundle or golden file
stores them (no timestamps, no durations), and the strict reading of that JSON shape back.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

Encoding = Literal["utf-8", "base64"]
_EXCHANGE_FIELDS = (
    "method",
    "url",
    "request_headers",
    "request_body_sha256",
    "status",
    "response_headers",
    "response_body",
    "response_body_encoding",
)
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Exchange:
    """One recorded request and its response: no timestamps, no durations."""

    method: str
    url: str
    request_headers: dict[str, str]
    #: ``"sha256:<hex>"`` of the raw request body bytes; None when the body is empty.
    request_body_sha256: str | None
    status: int
    response_headers: dict[str, str]
    response_body: str
    response_body_encoding: Encoding

    @property
    def body_bytes(self) -> bytes:
        """The response body as bytes."""
        if self.response_body_encoding == "base64":
            return base64.b64decode(self.response_body, validate=True)
        return self.response_body.encode("utf-8")

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict (the shape `from_json` reads)."""
        return {
            "method": self.method,
            "url": self.url,
            "request_headers": dict(self.request_headers),
            "request_body_sha256": self.request_body_sha256,
            "status": self.status,
            "response_headers": dict(self.response_headers),
            "response_body": self.response_body,
            "response_body_encoding": self.response_body_encoding,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Exchange:
        """Read what `to_json` wrote; a malformed exchange raises ValueError naming the field."""
        if not isinstance(data, dict):
            raise ValueError(f"an HTTP exchange must be a JSON object, got {type(data).__name__}")
        missing = [k for k in _EXCHANGE_FIELDS if k not in data]
        unknown = sorted(set(data) - set(_EXCHANGE_FIELDS))
        if missing or unknown:
            raise ValueError(
                f"HTTP exchange: missing fields {missing}, unknown fields {unknown}"
                if missing and unknown
                else f"HTTP exchange: missing fields {missing}"
                if missing
                else f"HTTP exchange: unknown fields {unknown}"
            )

        def text(name: str) -> str:
            value = data[name]
            if not isinstance(value, str):
                raise ValueError(f"HTTP exchange: {name} must be a string, got {value!r}")
            return value

        def headers(name: str) -> dict[str, str]:
            value = data[name]
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise ValueError(f"HTTP exchange: {name} must map strings to strings")
            return dict(value)

        sha = data["request_body_sha256"]
        if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha) is not None):
            raise ValueError(
                f"HTTP exchange: request_body_sha256 must be null or 'sha256:<64 hex>', got {sha!r}"
            )
        status = data["status"]
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
            raise ValueError(f"HTTP exchange: status must be an HTTP status code, got {status!r}")
        encoding = data["response_body_encoding"]
        if encoding not in get_args(Encoding):
            raise ValueError(
                f"HTTP exchange: response_body_encoding must be 'utf-8' or 'base64', "
                f"got {encoding!r}"
            )
        exchange = cls(
            method=text("method"),
            url=text("url"),
            request_headers=headers("request_headers"),
            request_body_sha256=sha,
            status=status,
            response_headers=headers("response_headers"),
            response_body=text("response_body"),
            response_body_encoding=encoding,
        )
        if encoding == "base64":
            try:
                exchange.body_bytes  # noqa: B018 - validates the base64 text
            except binascii.Error as exc:
                raise ValueError(f"HTTP exchange: response_body is not base64: {exc}") from None
        return exchange
