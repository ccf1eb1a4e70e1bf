"""`RecordedHttp`, the client behind ``ctx.http``: its sync and async request API and one hop of
a request in each mode (record: resolve, guard, send pinned, read within the size limit and
record; replay: serve the recorded exchange), with its connection pools per host name. The
rules are in the package docstring (`jobforge.runtime.http`).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

import httpx

from jobforge.errors import HttpResponseTooLarge, UnrecordedRequest
from jobforge.runtime.http.exchange import Exchange
from jobforge.runtime.http.guard import (
    _addresses,
    _check_addresses,
    _hop_note,
    _host_and_port,
    _literal_address,
    _Target,
    _unresolved,
    _wire_requests,
)
from jobforge.runtime.http.matching import _Replay
from jobforge.runtime.http.messages import (
    _body_sha256,
    _body_text,
    _build_response,
    _merged,
    _response_headers,
)
from jobforge.runtime.http.policy import HttpPolicy, _shown
from jobforge.runtime.http.redaction import _redacted
from jobforge.runtime.http.redirects import _redirect
from jobforge.runtime.redact import Redactor, redact_body

if TYPE_CHECKING:
    from httpx._types import HeaderTypes, QueryParamTypes, RequestContent, RequestData

Mode = Literal["record", "replay"]

#: Called with each hop's request before it goes out (`RecordedHttp.request`'s `before_hop`).
HopCheck = Callable[[httpx.Request], None]

#: Headers jobforge sends unless the caller sets them: fixed values, so recordings are stable.
_DEFAULT_REQUEST_HEADERS = (
    ("user-agent", "jobforge"),
    ("accept", "*/*"),
    ("accept-encoding", "gzip, deflate"),
)


class RecordedHttp:
    """The recorded HTTP client behind ``ctx.http``; see `jobforge.runtime.http` for the rules."""

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
        follow_redirects: bool = True,
        before_hop: HopCheck | None = None,
    ) -> httpx.Response:
        """Send (record) or answer (replay) one request, following redirects unless
        `follow_redirects` is False (a redirect is then the response). `before_hop` is called
        with each hop's request before it is sent (or served), the first one too: what it
        raises ends the request there, e.g. a runner's own allow-list of hosts."""
        request = self._build(method, url, params, headers, json, content, data)
        history: list[httpx.Response] = []
        while True:
            if before_hop is not None:
                before_hop(request)
            response = self._send_hop(request, history)
            following = (
                _redirect(request, response, len(history), self.policy)
                if follow_redirects
                else None
            )
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
        follow_redirects: bool = True,
        before_hop: HopCheck | None = None,
    ) -> httpx.Response:
        """The async twin of `request`, same semantics."""
        request = self._build(method, url, params, headers, json, content, data)
        history: list[httpx.Response] = []
        while True:
            if before_hop is not None:
                before_hop(request)
            response = await self._asend_hop(request, history)
            following = (
                _redirect(request, response, len(history), self.policy)
                if follow_redirects
                else None
            )
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
