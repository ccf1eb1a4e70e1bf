"""`ctx.http`: the recorded HTTP client a runner uses for outside I/O (DESIGN §3).

In ``record`` mode every request really goes out (through httpx) behind an SSRF guard, and each
request/response pair is kept as an `Exchange`; in ``replay`` mode the same calls are answered
from those exchanges and the network (DNS included) is never touched. Both modes share one code
path for building requests and following redirects, so a run hands out the same responses when
it is replayed.

Decisions worth knowing:

- **Guard.** The host is resolved with `socket.getaddrinfo` (numeric hosts too) and refused when
  *any* address is loopback, private, link-local, reserved, multicast, unspecified, not globally
  routable, or an IPv4-mapped / 6to4 / NAT64 IPv6 address whose embedded IPv4 is any of those;
  hosts in `HttpPolicy.allow_hosts` (exact, case-insensitive) skip the guard. The connection is
  pinned to the checked address (the URL is rewritten to the IP, the Host header keeps the name,
  and for https the ``sni_hostname`` extension keeps certificate checks on the name), so a second
  DNS answer cannot redirect it (DNS rebinding). Connection pools are kept per host name, so a
  TLS connection verified for one name is never reused for another name on the same address.
  Environment proxies are ignored (they would bypass the pinning).
- **Redirects** are followed here, not by httpx, with the guard re-run on every hop, up to
  `HttpPolicy.max_redirects` (then `httpx.TooManyRedirects`). *Every hop is recorded* as its own
  exchange; replay follows the recorded hops with the same rules, so the final response, its
  ``url`` and its ``history`` come out the same. A hop refused by the guard is not an exchange
  (nothing was sent).
- **Replay and the guard.** Replay serves a request it finds a recorded exchange for whatever the
  guard would say of its host: no socket is opened, and the worker that recorded it had the host
  allowed (``jobforge worker --http-allow-host``), so the guard, which exists to stop live calls,
  has nothing to protect (and a replay needs no copy of the worker's flags). A request with no
  recorded exchange is re-checked offline when its host is a literal IP, so a refusal the
  recording run saw is raised again (`HttpRefused`); a refused host *name* (which replay cannot
  resolve) surfaces as `UnrecordedRequest`. The refusal says how to allow the host in the front
  end that runs it (`HttpPolicy.allow_hint`).
- **What is recorded.** Header names are lowercased and repeated headers joined with ``", "``.
  Request headers are those sent (jobforge sends a fixed ``user-agent: jobforge``, ``accept`` and
  ``accept-encoding``, so recordings do not depend on the installed httpx). The response body is
  stored decoded (``content-encoding`` is dropped, ``content-length`` fixed up, and
  ``transfer-encoding`` dropped since the body is stored whole), as UTF-8 text when it decodes
  strictly, else base64. The ``date`` response header is dropped: no timestamp or duration
  enters an `Exchange` (and ``Response.elapsed`` is unavailable). Credentials in the URL
  (``user:pass@``) are moved to an ``Authorization: Basic`` header, so they are redacted.
- **Redaction.** Headers matching `HttpPolicy.redact_headers` (case-insensitive `fnmatch`
  patterns, e.g. ``*token*``) are stored as ``"[redacted]"``, in requests and responses. So are
  the values of URL query parameters matching `HttpPolicy.redact_params` (``?api_key=…``,
  presigned-URL signatures), and of ``name=value`` pairs in a fragment: the stored URL has
  ``%5Bredacted%5D`` there, every other byte of it as sent (the ``location``,
  ``content-location`` and ``referer`` headers are stored redacted the same way), and replay
  matches a request by its URL redacted the same way (recorded URLs too, so recordings made
  before a pattern was added still match). The real value is still sent, and in record mode
  the handler sees the real value of a redacted response header (a session cookie stays
  usable); replay hands out ``"[redacted]"`` for it. Everything else a handler sees is rebuilt
  from the exchange, identically in both modes.
- **Bodies.** A request body is never stored, only its SHA-256, taken over the body with the
  values of its secret fields blanked (JSON keys at any depth and form fields whose names
  `jobforge.runtime.redact` deems secret, all replaced by ``"[redacted]"``), so the hash gives no
  password away to a dictionary. Response bodies are kept whole in memory (and in the in-memory
  copy a run is compared on); `redact_exchange` masks their secret fields on the way to a run
  record, bundle or golden file. Replay therefore serves the redaction *marker* in place of such
  a value (``{"access_token": "[redacted:…]"}``): a runner that sends it back (in a header, a
  URL query value or a body field the rules above cover) still matches the recording, since
  both sides are compared redacted, and a marker is never masked again, so an output that
  carries it compares equal with the recording.
- **Size.** A response body is read as it streams, decoded, up to `HttpPolicy.max_response_bytes`
  (10 MiB by default): a larger Content-Length is refused before anything is read, and a body
  without one is stopped once it passes the limit (`HttpResponseTooLarge`, nothing recorded).
  Replay serves recorded bodies without checking the limit.
- **Replay matching** is by (method, URL with params applied, SHA-256 of the request body with
  its secrets blanked; for recordings made before, the hash of the body as sent);
  identical requests are served in recorded order; request headers are not matched.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import difflib
import fnmatch
import ipaddress
import re
import socket
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import unquote_plus

import httpx

from jobforge import canonical
from jobforge.errors import HttpRefused, HttpResponseTooLarge, UnrecordedRequest
from jobforge.runtime.redact import Redactor, redact_body

if TYPE_CHECKING:
    from httpx._types import HeaderTypes, QueryParamTypes, RequestContent, RequestData

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_REDACT",
    "DEFAULT_REDACT_PARAMS",
    "REDACTED",
    "Exchange",
    "HttpPolicy",
    "RecordedHttp",
    "redact_exchange",
]

#: What a redacted header value is replaced with in an `Exchange`.
REDACTED = "[redacted]"

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

Encoding = Literal["utf-8", "base64"]
Mode = Literal["record", "replay"]

#: Headers jobforge sends unless the caller sets them: fixed values, so recordings are stable.
_DEFAULT_REQUEST_HEADERS = (
    ("user-agent", "jobforge"),
    ("accept", "*/*"),
    ("accept-encoding", "gzip, deflate"),
)
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
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
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")


# ---------------------------------------------------------------------------------------------
# The recorded exchange and the policy


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


def _lower_set(items: Iterable[str]) -> frozenset[str]:
    return frozenset(item.strip().lower() for item in items)


# ---------------------------------------------------------------------------------------------
# The SSRF guard


def _why_forbidden(address: str) -> str | None:
    """Why `address` may not be reached without an allow-list entry, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        for kind, embedded in (
            ("an IPv4-mapped IPv6", ip.ipv4_mapped),
            ("a 6to4 IPv6", ip.sixtofour),
            ("a NAT64 IPv6", _nat64_embedded(ip)),
        ):
            if embedded is not None:
                inner = _why_forbidden(str(embedded))
                return None if inner is None else f"{kind} address embedding {embedded} ({inner})"
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a private (shared) address"),
        (not ip.is_global, "a reserved (non-global) address"),
    )
    return next((why for hit, why in checks if hit), None)


def _nat64_embedded(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class _Target:
    """Where a checked request goes: the host's checked addresses, or None when allow-listed."""

    host: str
    port: int
    addresses: tuple[str, ...] | None


def _host_and_port(method: str, url: httpx.URL, policy: HttpPolicy) -> tuple[str, int]:
    if url.scheme not in ("http", "https") or not url.host:
        raise HttpRefused(
            f"refused {method} {_shown(url, policy)}: only absolute http:// and https:// URLs "
            "are allowed"
        )
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.raw_host.decode("ascii"), port


def _shown(url: httpx.URL | str, policy: HttpPolicy) -> str:
    """A URL as an error message may show it: secret query values redacted (the message
    reaches the job's error, its events and its run record)."""
    try:
        return policy.redacted_url(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<an invalid URL>"


def _check_addresses(
    method: str, url: httpx.URL, addresses: Sequence[str], why: str, policy: HttpPolicy
) -> tuple[str, ...]:
    """`addresses` without repeats, in order; HttpRefused if any of them is forbidden."""
    addresses = list(dict.fromkeys(addresses))
    for address in addresses:
        reason = _why_forbidden(address)
        if reason is not None:
            raise HttpRefused(
                f"refused {method} {_shown(url, policy)}{why}: host {url.host!r} resolves to "
                f"{address}, "
                f"{reason}; if this is intended, {policy.allow_advice(url.host)}"
            )
    return tuple(addresses)


def _literal_address(host: str) -> str | None:
    """The address a literal-IP host names (also the legacy IPv4 forms such as ``2130706433``
    or ``127.1``), parsed without any lookup so no resolver can answer for it; None for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host or not all(c in "0123456789abcdefxABCDEFX." for c in host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# Building requests, following redirects, rebuilding responses


def _body_sha256(body: bytes) -> str | None:
    return canonical.sha256_of(body) if body else None


def _merged(headers: httpx.Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


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


def _key(method: str, url: str, sha: str | None) -> tuple[str, str, str | None]:
    return method.upper(), url, sha


def _describe(method: str, url: str, sha: str | None) -> str:
    return f"{method} {url} (body {sha or 'empty'})"


def _redirect(
    request: httpx.Request, response: httpx.Response, hops: int, policy: HttpPolicy
) -> httpx.Request | None:
    """The next hop's request, None when `response` is final; TooManyRedirects past the limit."""
    location = response.headers.get("location")
    if response.status_code not in _REDIRECT_STATUSES or location is None:
        return None
    if hops >= policy.max_redirects:
        raise httpx.TooManyRedirects(
            f"{request.method} {_shown(request.url, policy)} answered {response.status_code} "
            f"(Location: {_shown(location, policy)}) after {hops} redirect(s); "
            "HttpPolicy.max_redirects is "
            f"{policy.max_redirects}",
            request=request,
        )
    try:
        url = request.url.join(location)
    except httpx.InvalidURL as exc:
        raise HttpRefused(
            f"refused redirect from {_shown(request.url, policy)} to "
            f"{_shown(location, policy)!r}: {exc}"
        ) from None
    if url.fragment == "" and request.url.fragment:
        url = url.copy_with(fragment=request.url.fragment)
    method = request.method
    if (response.status_code == 303 and method != "HEAD") or (
        response.status_code in (301, 302) and method == "POST"
    ):
        method = "GET"
    headers = httpx.Headers(request.headers)
    headers.pop("host", None)
    headers.pop("cookie", None)
    same_origin = (url.scheme, url.host, url.port) == (
        request.url.scheme,
        request.url.host,
        request.url.port,
    )
    if not same_origin:  # nothing secret goes to another origin: every redacted header drops
        for name in [n for n in headers if n.lower() == "authorization" or policy.redacts(n)]:
            headers.pop(name, None)
    content: bytes | None = request.content
    if method != request.method:
        content = None
        for name in ("content-length", "content-type", "transfer-encoding"):
            headers.pop(name, None)
    return httpx.Request(method, url, headers=headers, content=content)


class _Replay:
    """The recorded exchanges, served by key in recorded order (thread-safe)."""

    def __init__(self, exchanges: Sequence[Exchange], policy: HttpPolicy) -> None:
        self.exchanges = list(exchanges)
        self._queues: dict[tuple[str, str, str | None], deque[int]] = {}
        self._used: set[int] = set()
        self._lock = threading.Lock()
        for i, ex in enumerate(self.exchanges):
            key = _key(ex.method, policy.redacted_url(ex.url), ex.request_body_sha256)
            self._queues.setdefault(key, deque()).append(i)

    def take(self, method: str, url: str, sha: str | None, raw_sha: str | None = None) -> Exchange:
        """The next exchange recorded for the request; `raw_sha` (the hash of the body as sent)
        is tried after `sha` (its secrets blanked): a recording made before request bodies
        were hashed that way still replays."""
        key = _key(method, url, sha)
        with self._lock:
            queue = self._queues.get(key)
            if not queue and raw_sha != sha and self._queues.get(_key(method, url, raw_sha)):
                queue = self._queues[_key(method, url, raw_sha)]
            if queue:
                index = queue.popleft()
                self._used.add(index)
                return self.exchanges[index]
            unused = [ex for i, ex in enumerate(self.exchanges) if i not in self._used]
        asked = _describe(method.upper(), url, sha)
        if queue is not None:
            raise UnrecordedRequest(
                f"no recorded HTTP exchange left for {asked}: every recorded exchange for it "
                f"was already served (this run makes the request more often than the recorded "
                f"run did)"
            )
        if not unused:
            hint = "every recorded exchange has already been served"
        else:
            nearest = sorted(unused, key=lambda ex: _similarity(key, ex), reverse=True)[:3]
            hint = "nearest unused recorded exchanges:\n" + "\n".join(
                f"  - {_describe(ex.method, ex.url, ex.request_body_sha256)}" for ex in nearest
            )
        raise UnrecordedRequest(f"no recorded HTTP exchange matches {asked}; {hint}")


def _similarity(key: tuple[str, str, str | None], ex: Exchange) -> tuple[int, int, float]:
    method, url, sha = key
    same_path = httpx.URL(url).copy_with(query=None) == httpx.URL(ex.url).copy_with(query=None)
    return (
        int(method == ex.method.upper()) + int(sha == ex.request_body_sha256),
        int(same_path),
        difflib.SequenceMatcher(None, url, ex.url).ratio(),
    )


# ---------------------------------------------------------------------------------------------
# The client


class RecordedHttp:
    """The recorded HTTP client behind ``ctx.http``; see the module docstring for the rules."""

    def __init__(
        self,
        mode: Mode,
        exchanges: Sequence[Exchange] = (),
        policy: HttpPolicy = HttpPolicy(),
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        secrets: Redactor | None = None,
    ) -> None:
        """`secrets` names the secret fields of request bodies (the default names when None),
        which the body's hash leaves out (`_request_sha256`)."""
        if mode not in get_args(Mode):
            raise ValueError(f"RecordedHttp mode must be 'record' or 'replay', got {mode!r}")
        if mode == "record" and exchanges:
            raise ValueError(
                "RecordedHttp in record mode starts with no exchanges; pass recorded "
                "exchanges only in replay mode"
            )
        self.mode: Mode = mode
        self.policy = policy
        self._transport = transport
        self._async_transport = async_transport
        self._match_secrets = (secrets or Redactor(key=None)).blanked()
        self._replay = _Replay(exchanges, policy) if mode == "replay" else None
        self._recorded: list[Exchange] = []
        self._lock = threading.Lock()
        self._clients: dict[str, httpx.Client] = {}
        self._async_clients: dict[str, httpx.AsyncClient] = {}
        self._closed = False

    @property
    def exchanges(self) -> list[Exchange]:
        """The exchanges recorded so far (record mode), or all of them (replay mode)."""
        if self._replay is not None:
            return list(self._replay.exchanges)
        with self._lock:
            return list(self._recorded)

    # -- public request API -------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        json: Any = None,
        content: RequestContent | None = None,
        data: RequestData | None = None,
    ) -> httpx.Response:
        """Send (record) or answer (replay) one request, following redirects."""
        request = self._build(method, url, params, headers, json, content, data)
        history: list[httpx.Response] = []
        while True:
            response = self._send_hop(request, history)
            following = _redirect(request, response, len(history), self.policy)
            if following is None:
                response.history = history
                return response
            history.append(response)
            request = following

    def get(
        self,
        url: str | httpx.URL,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
    ) -> httpx.Response:
        """``request("GET", ...)``."""
        return self.request("GET", url, params=params, headers=headers)

    def post(
        self,
        url: str | httpx.URL,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        json: Any = None,
        content: RequestContent | None = None,
        data: RequestData | None = None,
    ) -> httpx.Response:
        """``request("POST", ...)``."""
        return self.request(
            "POST", url, params=params, headers=headers, json=json, content=content, data=data
        )

    async def arequest(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        json: Any = None,
        content: RequestContent | None = None,
        data: RequestData | None = None,
    ) -> httpx.Response:
        """The async twin of `request`, same semantics."""
        request = self._build(method, url, params, headers, json, content, data)
        history: list[httpx.Response] = []
        while True:
            response = await self._asend_hop(request, history)
            following = _redirect(request, response, len(history), self.policy)
            if following is None:
                response.history = history
                return response
            history.append(response)
            request = following

    async def aget(
        self,
        url: str | httpx.URL,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
    ) -> httpx.Response:
        """``await arequest("GET", ...)``."""
        return await self.arequest("GET", url, params=params, headers=headers)

    async def apost(
        self,
        url: str | httpx.URL,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        json: Any = None,
        content: RequestContent | None = None,
        data: RequestData | None = None,
    ) -> httpx.Response:
        """``await arequest("POST", ...)``."""
        return await self.arequest(
            "POST", url, params=params, headers=headers, json=json, content=content, data=data
        )

    def close(self) -> None:
        """Close the sync connection pools (use `aclose` when async requests were made)."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()

    async def aclose(self) -> None:
        """Close every connection pool, sync and async."""
        with self._lock:
            clients = list(self._async_clients.values())
            self._async_clients.clear()
        for client in clients:
            await client.aclose()
        self.close()

    def __enter__(self) -> RecordedHttp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> RecordedHttp:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- one hop ------------------------------------------------------------------------------

    def _build(
        self,
        method: str,
        url: str | httpx.URL,
        params: QueryParamTypes | None,
        headers: HeaderTypes | None,
        json: Any,
        content: RequestContent | None,
        data: RequestData | None,
    ) -> httpx.Request:
        target = httpx.URL(url)
        merged = httpx.Headers(headers)
        if target.userinfo:
            if "authorization" not in merged:
                token = f"{target.username}:{target.password}".encode()
                merged["authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
            target = target.copy_with(userinfo=b"")
        for name, value in _DEFAULT_REQUEST_HEADERS:
            merged.setdefault(name, value)
        request = httpx.Request(
            method.upper(),
            target,
            params=params,
            headers=merged,
            json=json,
            content=content,
            data=data,
        )
        request.read()
        return request

    def _allowed(self, url: httpx.URL, host: str) -> bool:
        return self.policy.allows(url.host) or self.policy.allows(host)

    def _checked(
        self, request: httpx.Request, history: list[httpx.Response], addresses: list[str] | None
    ) -> _Target:
        host, port = _host_and_port(request.method, request.url, self.policy)
        if addresses is None:
            return _Target(host, port, None)
        if not addresses:
            raise httpx.ConnectError(
                f"{request.url.host!r} resolved to no address", request=request
            )
        return _Target(
            host,
            port,
            _check_addresses(
                request.method, request.url, addresses, _hop_note(history, self.policy), self.policy
            ),
        )

    def _lookup_args(self, request: httpx.Request) -> tuple[str, int] | None:
        """(host, port) to resolve for the guard; None when the host is allow-listed."""
        host, port = _host_and_port(request.method, request.url, self.policy)
        return None if self._allowed(request.url, host) else (host, port)

    def _send_hop(self, request: httpx.Request, history: list[httpx.Response]) -> httpx.Response:
        if self._replay is not None:
            return self._replay_hop(request, history)
        lookup = self._lookup_args(request)
        addresses = None
        if lookup is not None:
            literal = _literal_address(lookup[0])
            try:
                addresses = (
                    [literal]
                    if literal
                    else _addresses(socket.getaddrinfo(*lookup, type=socket.SOCK_STREAM))
                )
            except (OSError, UnicodeError) as exc:
                raise _unresolved(request, exc) from exc
        target = self._checked(request, history, addresses)
        client = self._client(request.url)
        last_error: httpx.ConnectError | None = None
        for wire in _wire_requests(request, target):
            try:
                raw = client.send(wire, stream=True)
            except httpx.ConnectError as exc:
                last_error = exc
                continue
            try:
                limit = self._limit(request, raw)
                chunks, size = [], 0
                for chunk in raw.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise self._too_large(request, f"the body passed it ({size} bytes read)")
                    chunks.append(chunk)
                return self._record(request, raw, b"".join(chunks))
            finally:
                raw.close()
        assert last_error is not None
        raise last_error

    async def _asend_hop(
        self, request: httpx.Request, history: list[httpx.Response]
    ) -> httpx.Response:
        if self._replay is not None:
            return self._replay_hop(request, history)
        lookup = self._lookup_args(request)
        addresses = None
        if lookup is not None:
            literal = _literal_address(lookup[0])
            loop = asyncio.get_running_loop()
            try:
                addresses = (
                    [literal]
                    if literal
                    else _addresses(await loop.getaddrinfo(*lookup, type=socket.SOCK_STREAM))
                )
            except (OSError, UnicodeError) as exc:
                raise _unresolved(request, exc) from exc
        target = self._checked(request, history, addresses)
        client = self._async_client(request.url)
        last_error: httpx.ConnectError | None = None
        for wire in _wire_requests(request, target):
            try:
                raw = await client.send(wire, stream=True)
            except httpx.ConnectError as exc:
                last_error = exc
                continue
            try:
                limit = self._limit(request, raw)
                chunks, size = [], 0
                async for chunk in raw.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise self._too_large(request, f"the body passed it ({size} bytes read)")
                    chunks.append(chunk)
                return self._record(request, raw, b"".join(chunks))
            finally:
                await raw.aclose()
        assert last_error is not None
        raise last_error

    def _limit(self, request: httpx.Request, raw: httpx.Response) -> int:
        """The policy's response size limit; HttpResponseTooLarge at once when the response's
        Content-Length is over it (nothing of the body is read)."""
        limit = self.policy.max_response_bytes
        declared = raw.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(request, f"its Content-Length is {int(declared)}")
        return limit

    def _too_large(self, request: httpx.Request, why: str) -> HttpResponseTooLarge:
        limit = self.policy.max_response_bytes
        return HttpResponseTooLarge(
            f"the response to {request.method} {_shown(request.url, self.policy)} is over "
            f"HttpPolicy.max_response_bytes ({limit} bytes): {why}; nothing of it was recorded"
        )

    def _request_sha256(self, request: httpx.Request) -> str | None:
        """What a request body is recorded and matched by: the SHA-256 of the body with its
        secret fields (JSON keys, form fields) blanked, so the hash gives no secret away and a
        replay that sends a redacted value matches the recording of the real one."""
        blanked = redact_body(
            request.content, request.headers.get("content-type"), self._match_secrets
        )
        return _body_sha256(request.content if blanked is None else blanked)

    def _record(self, request: httpx.Request, raw: httpx.Response, body: bytes) -> httpx.Response:
        real_headers = _response_headers(raw, body)
        text, encoding = _body_text(body)
        exchange = Exchange(
            method=request.method,
            url=self.policy.redacted_url(request.url),
            request_headers=_redacted(_merged(request.headers), self.policy),
            request_body_sha256=self._request_sha256(request),
            status=raw.status_code,
            response_headers=_redacted(real_headers, self.policy),
            response_body=text,
            response_body_encoding=encoding,
        )
        with self._lock:
            self._recorded.append(exchange)
        handed_out = {k: real_headers[k] for k in exchange.response_headers}
        return _build_response(exchange.status, handed_out, exchange.body_bytes, request)

    def _replay_hop(self, request: httpx.Request, history: list[httpx.Response]) -> httpx.Response:
        assert self._replay is not None
        lookup = self._lookup_args(request)  # http(s) only, as in record mode
        try:  # a recorded exchange is served: nothing goes out, the recording run was allowed
            exchange = self._replay.take(
                request.method,
                self.policy.redacted_url(request.url),
                self._request_sha256(request),
                _body_sha256(request.content),
            )
        except UnrecordedRequest:
            literal = _literal_address(lookup[0]) if lookup is not None else None
            if literal is not None:  # refused offline, as record mode refused it: nothing sent
                _check_addresses(request.method, request.url, [literal],
                                 _hop_note(history, self.policy), self.policy)  # fmt: skip
            raise
        return _build_response(
            exchange.status, exchange.response_headers, exchange.body_bytes, request
        )

    # -- connection pools ---------------------------------------------------------------------

    def _pool_key(self, url: httpx.URL) -> str:
        return f"{url.scheme}://{url.raw_host.decode('ascii')}"

    def _client(self, url: httpx.URL) -> httpx.Client:
        key = "" if self._transport is not None else self._pool_key(url)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = httpx.Client(
                    transport=self._transport or httpx.HTTPTransport(),
                    follow_redirects=False,
                    trust_env=False,
                    timeout=self.policy.timeout_s,
                )
                self._clients[key] = client
            return client

    def _async_client(self, url: httpx.URL) -> httpx.AsyncClient:
        key = "" if self._async_transport is not None else self._pool_key(url)
        with self._lock:
            client = self._async_clients.get(key)
            if client is None:
                client = httpx.AsyncClient(
                    transport=self._async_transport or httpx.AsyncHTTPTransport(),
                    follow_redirects=False,
                    trust_env=False,
                    timeout=self.policy.timeout_s,
                )
                self._async_clients[key] = client
            return client


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[str]:
    """The addresses in getaddrinfo results."""
    return [str(info[4][0]) for info in infos]


def _unresolved(request: httpx.Request, exc: BaseException) -> httpx.ConnectError:
    return httpx.ConnectError(f"could not resolve {request.url.host!r}: {exc}", request=request)


def _hop_note(history: list[httpx.Response], policy: HttpPolicy) -> str:
    return f" (redirected from {_shown(history[-1].request.url, policy)})" if history else ""


def _wire_requests(request: httpx.Request, target: _Target) -> list[httpx.Request]:
    """What goes on the wire: the request itself when allow-listed, else one per checked
    address, pinned to it (Host header keeps the name; TLS checks the name through SNI)."""
    if target.addresses is None:
        return [request]
    wires = []
    for address in target.addresses:
        wire = httpx.Request(
            request.method,
            request.url.copy_with(host=address.split("%", 1)[0]),
            headers=request.headers,
            content=request.content,
            extensions=dict(request.extensions),
        )
        if request.url.scheme == "https":
            wire.extensions["sni_hostname"] = target.host
        wires.append(wire)
    return wires
