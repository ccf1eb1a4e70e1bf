"""`RecordedHttp` (ctx.http): the SSRF guard, recording, redaction and exact replay.

No test sends traffic anywhere but loopback, even with a broken guard: refusal tests inject an
`httpx.MockTransport` and assert it was never called; record-then-replay runs against a tiny
`http.server` on 127.0.0.1 (allow-listed by `HttpPolicy.allow_hosts`) through a real transport
wrapped so that it refuses any other destination.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from jobforge.errors import HttpRefused, NonRetryable, UnrecordedRequest
from jobforge.runtime.http import REDACTED, Exchange, HttpPolicy, RecordedHttp

LOOPBACK = HttpPolicy(allow_hosts=frozenset({"127.0.0.1"}))
PUBLIC_IP = "93.184.215.14"  # only ever handed to a MockTransport: never contacted

# ---------------------------------------------------------------------------------------------
# A tiny loopback server


@dataclass
class Server:
    url: str
    httpd: ThreadingHTTPServer
    thread: threading.Thread
    seen: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join()
        self.httpd.server_close()


def _handler(seen: list[str]) -> type[BaseHTTPRequestHandler]:
    counter = iter(range(1, 1_000_000))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: object, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(value, sort_keys=True).encode()
            self._reply(status, body, {"Content-Type": "application/json", **(headers or {})})

        def do_GET(self) -> None:
            seen.append(f"GET {self.path}")
            parts = urlsplit(self.path)
            path = parts.path
            if path == "/echo":
                self._json(200, {"path": path, "query": parse_qs(parts.query)})
            elif path.startswith("/hop/"):
                left = int(path.rsplit("/", 1)[1])
                if left:
                    self._reply(302, headers={"Location": f"/hop/{left - 1}"})
                else:
                    self._reply(200, b"landed", {"Content-Type": "text/plain"})
            elif path == "/binary":
                self._reply(200, bytes(range(256)), {"Content-Type": "application/octet-stream"})
            elif path == "/gzip":
                body = gzip.compress(b"squeezed " * 20, mtime=0)
                self._reply(200, body, {"Content-Encoding": "gzip", "Content-Type": "text/plain"})
            elif path == "/auth":
                ok = self.headers.get("Authorization") == "Bearer s3cret"
                self._json(
                    200,
                    {"authorized": ok},
                    {"Set-Cookie": "session=abc123; HttpOnly", "X-Session-Token": "t0k"},
                )
            elif path == "/counter":
                with lock:
                    n = next(counter)
                self._reply(200, str(n).encode(), {"Content-Type": "text/plain"})
            elif path == "/to-private":
                self._reply(302, headers={"Location": "http://10.1.2.3/"})
            elif path == "/loop":
                self._reply(302, headers={"Location": "/loop"})
            else:
                self._reply(404, b"no such path")

        def do_POST(self) -> None:
            seen.append(f"POST {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path == "/json":
                received = json.loads(raw)
                self._json(201, {"received": received, "type": self.headers["Content-Type"]})
            elif self.path == "/see-other":
                self._reply(303, headers={"Location": "/echo?from=post"})
            else:
                self._reply(404, b"no such path")

    return Handler


class OffLoopback(AssertionError):
    """A request got past the guard to somewhere other than loopback."""


class LoopbackOnly(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The real transports, refusing (before any connection) every destination but loopback."""

    def __init__(self) -> None:
        self._sync = httpx.HTTPTransport()
        self._async = httpx.AsyncHTTPTransport()

    @staticmethod
    def _check(request: httpx.Request) -> None:
        if request.url.host not in ("127.0.0.1", "::1"):
            raise OffLoopback(f"the guard let {request.url} through")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._check(request)
        return self._sync.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._check(request)
        return await self._async.handle_async_request(request)

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        await self._async.aclose()


def _recorder(policy: HttpPolicy = LOOPBACK) -> RecordedHttp:
    """Record mode against the loopback server."""
    transport = LoopbackOnly()
    return RecordedHttp("record", policy=policy, transport=transport, async_transport=transport)


@pytest.fixture
def server() -> Iterator[Server]:
    seen: list[str] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    srv = Server(f"http://127.0.0.1:{httpd.server_address[1]}", httpd, thread, seen)
    try:
        yield srv
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------
# Helpers


def _scenario(http: RecordedHttp, base: str) -> list[httpx.Response]:
    return [
        http.get(f"{base}/echo", params={"q": "a b", "n": 2}),
        http.post(f"{base}/json", json={"b": [1, 2], "a": "é"}),
        http.get(f"{base}/hop/2"),
        http.get(f"{base}/binary"),
        http.get(f"{base}/gzip"),
        http.get(f"{base}/auth", headers={"Authorization": "Bearer s3cret"}),
        http.request("POST", f"{base}/see-other", content=b"payload"),
        http.get(f"{base}/counter"),
        http.get(f"{base}/counter"),
    ]


async def _ascenario(http: RecordedHttp, base: str) -> list[httpx.Response]:
    return [
        await http.aget(f"{base}/echo", params={"q": "a b", "n": 2}),
        await http.apost(f"{base}/json", json={"b": [1, 2], "a": "é"}),
        await http.aget(f"{base}/hop/2"),
        await http.aget(f"{base}/binary"),
        await http.aget(f"{base}/gzip"),
        await http.aget(f"{base}/auth", headers={"Authorization": "Bearer s3cret"}),
        await http.arequest("POST", f"{base}/see-other", content=b"payload"),
        await http.aget(f"{base}/counter"),
        await http.aget(f"{base}/counter"),
    ]


def _view(response: httpx.Response, *, unredact: bool = False) -> dict[str, Any]:
    headers = {k: v for k, v in response.headers.multi_items()}
    if not unredact:
        headers = {
            k: REDACTED if k in ("set-cookie", "x-session-token") else v for k, v in headers.items()
        }
    return {
        "status": response.status_code,
        "headers": headers,
        "body": response.content,
        "url": str(response.url),
        "history": [(h.status_code, str(h.url)) for h in response.history],
    }


def _round_trip(exchanges: list[Exchange]) -> list[Exchange]:
    text = json.dumps([e.to_json() for e in exchanges])
    return [Exchange.from_json(item) for item in json.loads(text)]


def _check_recording(recorded: list[httpx.Response], exchanges: list[Exchange], base: str) -> None:
    echo, posted, hopped, binary, squeezed, auth, see_other, first, second = recorded
    assert echo.json() == {"path": "/echo", "query": {"q": ["a b"], "n": ["2"]}}
    assert posted.status_code == 201
    assert posted.json() == {"received": {"a": "é", "b": [1, 2]}, "type": "application/json"}
    assert hopped.text == "landed"
    assert str(hopped.url) == f"{base}/hop/0"
    assert [h.status_code for h in hopped.history] == [302, 302]
    assert binary.content == bytes(range(256))
    assert squeezed.text == "squeezed " * 20
    assert auth.json() == {"authorized": True}  # the real Authorization was sent
    assert auth.headers["set-cookie"] == "session=abc123; HttpOnly"  # real value in record mode
    assert see_other.request.method == "GET"
    assert see_other.json()["query"] == {"from": ["post"]}
    assert (first.text, second.text) == ("1", "2")

    by_url = {(e.method, e.url): e for e in exchanges}
    assert len(exchanges) == 12  # every redirect hop is an exchange of its own
    assert f"GET {base}/hop/1" in {f"{e.method} {e.url}" for e in exchanges}
    assert by_url[("GET", f"{base}/echo?q=a+b&n=2")].status == 200
    json_ex = by_url[("POST", f"{base}/json")]
    assert json_ex.request_body_sha256 is not None
    assert json_ex.request_body_sha256.startswith("sha256:")
    assert len(json_ex.request_body_sha256) == len("sha256:") + 64
    assert by_url[("GET", f"{base}/echo?q=a+b&n=2")].request_body_sha256 is None
    bin_ex = by_url[("GET", f"{base}/binary")]
    assert bin_ex.response_body_encoding == "base64"
    gz_ex = by_url[("GET", f"{base}/gzip")]
    assert gz_ex.response_body_encoding == "utf-8"
    assert gz_ex.response_body == "squeezed " * 20
    assert "content-encoding" not in gz_ex.response_headers
    assert gz_ex.response_headers["content-length"] == str(len("squeezed " * 20))
    auth_ex = by_url[("GET", f"{base}/auth")]
    assert auth_ex.request_headers["authorization"] == REDACTED
    assert auth_ex.response_headers["set-cookie"] == REDACTED
    assert auth_ex.response_headers["x-session-token"] == REDACTED
    serialized = json.dumps([e.to_json() for e in exchanges])
    for secret in ("s3cret", "abc123", "t0k"):
        assert secret not in serialized
    for e in exchanges:  # no timestamps in an exchange
        assert "date" not in e.response_headers


# ---------------------------------------------------------------------------------------------
# Record, then replay with the server stopped


def test_record_then_replay_reproduces_every_response(server: Server) -> None:
    with _recorder() as http:
        recorded = _scenario(http, server.url)
        exchanges = http.exchanges
    _check_recording(recorded, exchanges, server.url)
    server.stop()

    replay = RecordedHttp("replay", _round_trip(exchanges), LOOPBACK)
    replayed = _scenario(replay, server.url)
    assert [_view(r) for r in replayed] == [_view(r) for r in recorded]
    auth = replayed[5]
    assert auth.headers["set-cookie"] == REDACTED
    assert auth.request.url == recorded[5].request.url
    assert replay.exchanges == exchanges


def test_async_record_then_replay_reproduces_every_response(server: Server) -> None:
    async def record() -> tuple[list[httpx.Response], list[Exchange]]:
        async with _recorder() as http:
            return await _ascenario(http, server.url), http.exchanges

    recorded, exchanges = asyncio.run(record())
    _check_recording(recorded, exchanges, server.url)
    server.stop()

    async def replay() -> list[httpx.Response]:
        async with RecordedHttp("replay", _round_trip(exchanges), LOOPBACK) as http:
            return await _ascenario(http, server.url)

    replayed = asyncio.run(replay())
    assert [_view(r) for r in replayed] == [_view(r) for r in recorded]


def test_sync_recording_replays_through_the_async_api(server: Server) -> None:
    with _recorder() as http:
        recorded = _scenario(http, server.url)
    server.stop()

    async def replay() -> list[httpx.Response]:
        return await _ascenario(RecordedHttp("replay", http.exchanges, LOOPBACK), server.url)

    assert [_view(r) for r in asyncio.run(replay())] == [_view(r) for r in recorded]


def test_replay_serves_identical_requests_in_recorded_order_then_refuses(server: Server) -> None:
    with _recorder() as http:
        assert [http.get(f"{server.url}/counter").text for _ in range(3)] == ["1", "2", "3"]
    server.stop()
    replay = RecordedHttp("replay", http.exchanges, LOOPBACK)
    assert [replay.get(f"{server.url}/counter").text for _ in range(3)] == ["1", "2", "3"]
    with pytest.raises(UnrecordedRequest, match="already served"):
        replay.get(f"{server.url}/counter")


def test_replay_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    exchange = Exchange(
        method="GET",
        url="https://api.example.com/v1/items?page=2",
        request_headers={},
        request_body_sha256=None,
        status=200,
        response_headers={"content-type": "application/json"},
        response_body='{"items": []}',
        response_body_encoding="utf-8",
    )

    def no_network(*args: object, **kwargs: object) -> Any:
        raise AssertionError("replay touched the network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    http = RecordedHttp("replay", [exchange])
    response = http.get("https://api.example.com/v1/items", params={"page": 2})
    assert response.json() == {"items": []}
    assert response.request.method == "GET"
    response.raise_for_status()


def test_unrecorded_request_names_itself_and_the_nearest_recorded_ones(server: Server) -> None:
    with _recorder() as http:
        http.get(f"{server.url}/echo", params={"q": "1"})
        http.post(f"{server.url}/json", json={"a": 1})
    server.stop()
    replay = RecordedHttp("replay", http.exchanges, LOOPBACK)

    with pytest.raises(UnrecordedRequest) as caught:
        replay.get(f"{server.url}/echo", params={"q": "2"})
    message = str(caught.value)
    assert f"GET {server.url}/echo?q=2" in message
    assert f"GET {server.url}/echo?q=1" in message.split("nearest", 1)[1]
    assert isinstance(caught.value, NonRetryable)

    with pytest.raises(UnrecordedRequest, match="sha256:"):  # same URL, another body
        replay.post(f"{server.url}/json", json={"a": 2})


def test_redirect_to_a_private_address_is_refused_before_any_connection(server: Server) -> None:
    with (
        _recorder() as http,
        pytest.raises(HttpRefused) as caught,
    ):
        http.get(f"{server.url}/to-private")
    message = str(caught.value)
    assert "10.1.2.3" in message
    assert "private" in message
    assert "HttpPolicy.allow_hosts" in message
    assert f"redirected from {server.url}/to-private" in message
    assert server.seen == ["GET /to-private"]
    assert [e.status for e in http.exchanges] == [302]  # the hop that was really made
    server.stop()

    replay = RecordedHttp("replay", http.exchanges, LOOPBACK)
    with pytest.raises(HttpRefused, match=r"10\.1\.2\.3"):  # reproduced offline
        replay.get(f"{server.url}/to-private")


def test_async_redirect_to_a_private_address_is_refused(server: Server) -> None:
    async def go() -> None:
        async with _recorder() as http:
            await http.aget(f"{server.url}/to-private")

    with pytest.raises(HttpRefused, match=r"10\.1\.2\.3"):
        asyncio.run(go())


def test_too_many_redirects_is_a_clear_error_in_both_modes(server: Server) -> None:
    policy = HttpPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_redirects=3)
    with (
        _recorder(policy) as http,
        pytest.raises(httpx.TooManyRedirects, match="max_redirects is 3"),
    ):
        http.get(f"{server.url}/loop")
    assert len(server.seen) == 4
    server.stop()
    with pytest.raises(httpx.TooManyRedirects, match="max_redirects is 3"):
        RecordedHttp("replay", http.exchanges, policy).get(f"{server.url}/loop")


# ---------------------------------------------------------------------------------------------
# The SSRF guard, with a transport that must never be called


class Recorder:
    """A MockTransport handler that remembers every request it was given."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.respond = respond or (lambda request: httpx.Response(200, text="ok"))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)


REFUSED = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.8.9.10:8080/admin", "loopback"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.254/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
    ("http://[::ffff:10.0.0.1]/", "IPv4-mapped"),
    ("http://[64:ff9b::a00:1]/", "NAT64"),
    ("http://[2002:a9fe:a9fe::]/", "6to4"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://100.64.0.1/", "shared"),
    ("http://2130706433/", "loopback"),  # 127.0.0.1 written as one number
    ("http://localhost/", "loopback"),  # a name that resolves to loopback
    ("https://LocalHost:8443/x", "loopback"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_guard_refuses_non_public_addresses(url: str, why: str) -> None:
    recorder = Recorder()
    with (
        RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http,
        pytest.raises(HttpRefused, match=why) as caught,
    ):
        http.get(url)
    assert recorder.requests == []
    assert http.exchanges == []
    assert "HttpPolicy.allow_hosts" in str(caught.value)
    assert str(httpx.URL(url).host) in str(caught.value)


@pytest.mark.parametrize(("url", "why"), REFUSED[::4])
def test_async_guard_refuses_non_public_addresses(url: str, why: str) -> None:
    recorder = Recorder()
    mock = httpx.MockTransport(recorder)

    async def go() -> None:
        async with RecordedHttp("record", transport=mock, async_transport=mock) as http:
            await http.apost(url, json={"x": 1})

    with pytest.raises(HttpRefused, match=why):
        asyncio.run(go())
    assert recorder.requests == []


def _resolve_to(monkeypatch: pytest.MonkeyPatch, *answers: list[str]) -> list[tuple[str, int]]:
    """Make getaddrinfo answer each call with the next list of addresses; returns the calls."""
    calls: list[tuple[str, int]] = []
    queue = list(answers)

    def fake(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[Any, ...]]:
        calls.append((host, port))
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return calls


def test_guard_refuses_when_any_resolved_address_is_private(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolve_to(monkeypatch, [PUBLIC_IP, "192.168.7.7"])
    recorder = Recorder()
    with (
        RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http,
        pytest.raises(HttpRefused, match=r"'internal\.example' resolves to 192\.168\.7\.7"),
    ):
        http.get("http://internal.example/")
    assert recorder.requests == []


def test_connection_is_pinned_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    # A rebinding resolver: a public answer for the check, loopback for anyone asking again.
    calls = _resolve_to(monkeypatch, [PUBLIC_IP], ["127.0.0.1"])
    recorder = Recorder()
    with RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http:
        response = http.get("https://api.example.com/v1?x=1", headers={"X-Trace": "t"})
    assert calls == [("api.example.com", 443)]
    (wire,) = recorder.requests
    assert wire.url == httpx.URL(f"https://{PUBLIC_IP}/v1?x=1")
    assert wire.headers["host"] == "api.example.com"
    assert wire.extensions["sni_hostname"] == "api.example.com"
    assert str(response.url) == "https://api.example.com/v1?x=1"
    assert http.exchanges[0].url == "https://api.example.com/v1?x=1"


def test_plain_http_is_pinned_without_sni(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolve_to(monkeypatch, ["2606:4700::1111"])
    recorder = Recorder()
    with RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http:
        http.get("http://api.example.com:8080/")
    (wire,) = recorder.requests
    assert wire.url == httpx.URL("http://[2606:4700::1111]:8080/")
    assert wire.headers["host"] == "api.example.com:8080"
    assert "sni_hostname" not in wire.extensions


def test_a_failed_connection_falls_back_to_the_next_checked_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolve_to(monkeypatch, ["2606:4700::1111", PUBLIC_IP])

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.host != PUBLIC_IP:
            raise httpx.ConnectError("unreachable", request=request)
        return httpx.Response(200, text="ok")

    recorder = Recorder(respond)
    with RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http:
        assert http.get("http://api.example.com/").text == "ok"
    assert [r.url.host for r in recorder.requests] == ["2606:4700::1111", PUBLIC_IP]
    assert len(http.exchanges) == 1


def test_redirect_hops_are_guarded_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolve_to(monkeypatch, [PUBLIC_IP])
    recorder = Recorder(
        lambda request: httpx.Response(
            302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
        )
    )
    with (
        RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http,
        pytest.raises(HttpRefused, match="link-local"),
    ):
        http.get("http://api.example.com/start")
    assert [str(r.url) for r in recorder.requests] == [f"http://{PUBLIC_IP}/start"]


def test_unresolvable_host_is_a_connect_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    recorder = Recorder()
    with (
        RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http,
        pytest.raises(httpx.ConnectError, match=r"could not resolve 'nowhere\.invalid'"),
    ):
        http.get("http://nowhere.invalid/")
    assert recorder.requests == []


def test_allow_hosts_is_exact_and_case_insensitive() -> None:
    recorder = Recorder()
    policy = HttpPolicy(allow_hosts=frozenset({"LocalHost"}))
    with RecordedHttp("record", policy=policy, transport=httpx.MockTransport(recorder)) as http:
        assert http.get("http://localhost:9/ping").text == "ok"
        with pytest.raises(HttpRefused):
            http.get("http://127.0.0.1:9/ping")
    (wire,) = recorder.requests
    assert wire.url == httpx.URL("http://localhost:9/ping")  # allow-listed: not pinned


@pytest.mark.parametrize("url", ["ftp://example.com/file", "file:///etc/passwd", "/relative"])
def test_only_absolute_http_urls_are_allowed(url: str) -> None:
    recorder = Recorder()
    with (
        RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http,
        pytest.raises(HttpRefused, match="only absolute http"),
    ):
        http.get(url)
    assert recorder.requests == []


# ---------------------------------------------------------------------------------------------
# Recording details


def test_url_credentials_become_a_redacted_authorization_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolve_to(monkeypatch, [PUBLIC_IP])
    recorder = Recorder()
    with RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http:
        http.get("http://user:pa55@api.example.com/private")
    (wire,) = recorder.requests
    assert wire.headers["authorization"] == "Basic dXNlcjpwYTU1"
    (exchange,) = http.exchanges
    assert exchange.url == "http://api.example.com/private"
    assert exchange.request_headers["authorization"] == REDACTED
    assert "pa55" not in json.dumps(exchange.to_json())


def test_redaction_patterns_and_custom_policy() -> None:
    default = HttpPolicy()
    for name in ("Authorization", "COOKIE", "x-api-key", "X-Auth-Token", "x-client-secret"):
        assert default.redacts(name), name
    assert not default.redacts("content-type")
    custom = HttpPolicy(redact_headers=frozenset({"X-Signature"}))
    assert custom.redacts("x-signature")
    assert not custom.redacts("authorization")


def test_secret_query_parameters_are_redacted_and_replay_still_matches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolve_to(monkeypatch, [PUBLIC_IP])
    recorder = Recorder()
    url = "https://api.example.com/v1/items?q=a+b&api_key=k3y&X-Amz-Signature=5ig&page=2"
    with RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http:
        recorded = http.get(url)
    (wire,) = recorder.requests
    assert parse_qs(urlsplit(str(wire.url)).query)["api_key"] == ["k3y"]  # the real value is sent
    (exchange,) = http.exchanges
    assert exchange.url == (
        "https://api.example.com/v1/items?q=a+b&api_key=%5Bredacted%5D"
        "&X-Amz-Signature=%5Bredacted%5D&page=2"
    )
    assert "k3y" not in json.dumps(exchange.to_json())
    assert "5ig" not in json.dumps(exchange.to_json())
    # replay: the same request (with whatever secret the replaying side has) finds it
    with RecordedHttp("replay", [exchange]) as replay:
        replayed = replay.get(url.replace("k3y", "another-key"))
    assert replayed.status_code == recorded.status_code
    assert replayed.content == recorded.content


def test_a_recording_made_before_redaction_still_replays() -> None:
    exchange = Exchange(
        "GET", "https://api.example.com/x?token=old-secret", {}, None, 200, {}, "ok", "utf-8"
    )
    with RecordedHttp("replay", [exchange]) as http:
        assert http.get("https://api.example.com/x?token=old-secret").text == "ok"


def test_an_unrecorded_request_names_its_url_redacted() -> None:
    with (
        RecordedHttp("replay", []) as http,
        pytest.raises(UnrecordedRequest, match=r"\?secret=%5Bredacted%5D") as caught,
    ):
        http.get("https://api.example.com/x?secret=s3cr3t")
    assert "s3cr3t" not in str(caught.value)


def test_query_parameter_patterns_and_custom_policy() -> None:
    default = HttpPolicy()
    assert default.redacted_url("https://a.example/?Access_Token=t&id=1") == (
        "https://a.example/?Access_Token=%5Bredacted%5D&id=1"
    )
    assert default.redacted_url("https://a.example/p?id=1&flag") == "https://a.example/p?id=1&flag"
    custom = HttpPolicy(redact_params=frozenset({"Session"}))
    assert custom.redacted_url("https://a.example/?session=s&token=t") == (
        "https://a.example/?session=%5Bredacted%5D&token=t"
    )
    assert HttpPolicy(redact_params=frozenset()).redacted_url("https://a.example/?token=t") == (
        "https://a.example/?token=t"
    )
    with pytest.raises(TypeError, match="redact_params are sets of strings"):
        HttpPolicy(redact_params="token")  # type: ignore[arg-type]


def test_record_mode_sends_fixed_default_headers_and_the_callers_own() -> None:
    recorder = Recorder()
    policy = HttpPolicy(allow_hosts=frozenset({"api.example.com"}))
    with RecordedHttp("record", policy=policy, transport=httpx.MockTransport(recorder)) as http:
        http.get("http://api.example.com/", headers={"User-Agent": "mine/1", "X-Secret-Id": "s"})
    (exchange,) = http.exchanges
    assert exchange.request_headers == {
        "accept": "*/*",
        "accept-encoding": "gzip, deflate",
        "host": "api.example.com",
        "user-agent": "mine/1",
        "x-secret-id": REDACTED,
    }
    assert recorder.requests[0].headers["x-secret-id"] == "s"


def test_exchange_json_round_trip_and_validation() -> None:
    exchange = Exchange(
        method="POST",
        url="https://api.example.com/x",
        request_headers={"content-type": "application/json"},
        request_body_sha256="sha256:" + "ab" * 32,
        status=201,
        response_headers={},
        response_body="AAEC",
        response_body_encoding="base64",
    )
    data = exchange.to_json()
    assert json.loads(json.dumps(data)) == data
    assert Exchange.from_json(data) == exchange
    assert exchange.body_bytes == b"\x00\x01\x02"

    for broken, complaint in [
        ({k: v for k, v in data.items() if k != "status"}, "missing fields"),
        ({**data, "extra": 1}, "unknown fields"),
        ({**data, "status": "201"}, "status"),
        ({**data, "response_body_encoding": "latin-1"}, "response_body_encoding"),
        ({**data, "request_body_sha256": "md5:00"}, "request_body_sha256"),
        ({**data, "request_headers": {"a": 1}}, "request_headers"),
        ({**data, "response_body": "not base64!"}, "not base64"),
    ]:
        with pytest.raises(ValueError, match=complaint):
            Exchange.from_json(broken)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="'record' or 'replay'"):
        RecordedHttp("live")  # type: ignore[arg-type]
    exchange = Exchange("GET", "http://a.example/", {}, None, 200, {}, "", "utf-8")
    with pytest.raises(ValueError, match="record mode starts with no exchanges"):
        RecordedHttp("record", [exchange])
    with pytest.raises(ValueError, match="timeout_s"):
        HttpPolicy(timeout_s=0)
    with pytest.raises(ValueError, match="max_redirects"):
        HttpPolicy(max_redirects=-1)


# ---------------------------------------------------------------------------------------------
# Secrets on every way out (issue [2/10], point 6)


def test_a_refused_request_names_its_url_with_secrets_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolve_to(monkeypatch, ["10.0.0.7"])
    recorder = Recorder()
    with (
        RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http,
        pytest.raises(HttpRefused) as caught,
    ):
        http.get("http://internal.example.com/x?api_key=sk-live-123&page=2")
    assert "sk-live-123" not in str(caught.value)
    assert "api_key=%5Bredacted%5D&page=2" in str(caught.value)


def test_a_refused_redirect_and_too_many_redirects_hide_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolve_to(monkeypatch, [PUBLIC_IP])
    to_private = Recorder(lambda request: httpx.Response(
        302, headers={"Location": "http://169.254.169.254/?token=tok-abc"}))  # fmt: skip
    with (
        RecordedHttp("record", transport=httpx.MockTransport(to_private)) as http,
        pytest.raises(HttpRefused) as refused,
    ):
        http.get("http://api.example.com/start?api_key=sk-1")
    assert "tok-abc" not in str(refused.value)
    assert "sk-1" not in str(refused.value)
    looping = Recorder(lambda request: httpx.Response(
        302, headers={"Location": "http://api.example.com/again?token=tok-xyz"}))  # fmt: skip
    policy = HttpPolicy(max_redirects=1)
    with (
        RecordedHttp("record", policy=policy, transport=httpx.MockTransport(looping)) as http,
        pytest.raises(httpx.TooManyRedirects) as many,
    ):
        http.get("http://api.example.com/start?api_key=sk-2")
    assert "tok-xyz" not in str(many.value)
    assert "sk-2" not in str(many.value)


def test_a_cross_origin_redirect_drops_every_secret_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolve_to(monkeypatch, [PUBLIC_IP])

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/start":
            return httpx.Response(302, headers={"Location": "http://other.example.net/land"})
        return httpx.Response(200, text="ok")

    recorder = Recorder(respond)
    secret = {"X-Api-Key": "k", "X-Auth-Token": "t", "Authorization": "Bearer b",
              "X-Client-Secret": "s", "Accept": "text/plain"}  # fmt: skip
    with RecordedHttp("record", transport=httpx.MockTransport(recorder)) as http:
        assert http.get("http://api.example.com/start", headers=secret).text == "ok"
    first, second = recorder.requests
    assert first.headers["x-api-key"] == "k"
    assert {"x-api-key", "x-auth-token", "authorization", "x-client-secret"}.isdisjoint(
        second.headers
    )
    assert second.headers["accept"] == "text/plain"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://u:p@ss'w@rd@host:5432/db", "ss'w"),
        ("postgresql://u:p@ss@host/db", "ss"),
        ("host=x password='it\\'s @secret' user=u", "secret"),
        ("host=x password=plain user=u", "plain"),
    ],
)
def test_a_password_never_shows_in_part(text: str, secret: str) -> None:
    from jobforge.db import redact

    shown = redact(text)
    assert secret not in shown
    assert "***" in shown
