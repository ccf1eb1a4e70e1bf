"""`HttpPolicy.max_response_bytes`: ctx.http never reads more than the limit of a response body,
whatever the server says or sends (a huge chunked body, a body until close, a Content-Length over
the limit, a small gzip that inflates past it). Against a raw socket server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from jobforge.errors import HttpResponseTooLarge
from jobforge.runtime.http import DEFAULT_MAX_RESPONSE_BYTES, HttpPolicy, RecordedHttp

LIMIT = 64 * 1024
TOTAL = 256 * 1024 * 1024  # what a server would send if nobody stopped reading
CHUNK = 64 * 1024


@dataclass
class Server:
    url: str
    sent: list[int] = field(default_factory=list)  #: body bytes each connection got out


Reply = Callable[[socket.socket, list[int]], None]


def _chunked(conn: socket.socket, sent: list[int]) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    piece = b"x" * CHUNK
    while sent[-1] < TOTAL:
        conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sent[-1] += len(piece)
    conn.sendall(b"0\r\n\r\n")


def _until_close(conn: socket.socket, sent: list[int]) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    piece = b"y" * CHUNK
    while sent[-1] < TOTAL:
        conn.sendall(piece)
        sent[-1] += len(piece)


def _lying_length(conn: socket.socket, sent: list[int]) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 107374182400\r\n\r\nshort")
    sent[-1] += 5


def _gzip_bomb(conn: socket.socket, sent: list[int]) -> None:
    body = gzip.compress(b"\0" * (LIMIT * 16), mtime=0)
    assert len(body) < LIMIT
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
    sent[-1] += len(body)


def _small(conn: socket.socket, sent: list[int]) -> None:
    body = b"z" * LIMIT  # exactly at the limit: allowed
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    sent[-1] += len(body)


def _serve(reply: Reply) -> Iterator[Server]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    server = Server(f"http://127.0.0.1:{listener.getsockname()[1]}/data?api_key=s3cr3t")
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request:
                got = conn.recv(65536)
                if not got:
                    return
                request += got
            server.sent.append(0)
            with contextlib.suppress(OSError):  # the client hung up: what the limit is for
                reply(conn, server.sent)

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join()
        listener.close()


@pytest.fixture(params=["chunked", "until_close"])
def endless(request: pytest.FixtureRequest) -> Iterator[Server]:
    yield from _serve({"chunked": _chunked, "until_close": _until_close}[request.param])


def _http(limit: int | None = LIMIT) -> RecordedHttp:
    allow = frozenset({"127.0.0.1"})
    if limit is None:
        return RecordedHttp("record", policy=HttpPolicy(allow_hosts=allow))
    return RecordedHttp("record", policy=HttpPolicy(allow_hosts=allow, max_response_bytes=limit))


def _one_line_naming_limit_and_url(error: HttpResponseTooLarge, limit: int) -> str:
    message = str(error)
    assert "\n" not in message
    assert f"HttpPolicy.max_response_bytes ({limit} bytes)" in message
    assert "/data?api_key=%5Bredacted%5D" in message
    assert "s3cr3t" not in message
    return message


def test_an_endless_body_is_stopped_once_it_passes_the_limit(endless: Server) -> None:
    with _http() as http, pytest.raises(HttpResponseTooLarge) as caught:
        http.get(endless.url)
    message = _one_line_naming_limit_and_url(caught.value, LIMIT)
    assert "the body passed it" in message
    assert http.exchanges == []  # nothing recorded
    assert endless.sent[0] < TOTAL  # the client hung up long before the end


def test_the_async_client_stops_an_endless_body_too(endless: Server) -> None:
    async def fetch() -> None:
        async with _http() as http:
            await http.aget(endless.url)

    with pytest.raises(HttpResponseTooLarge) as caught:
        asyncio.run(fetch())
    _one_line_naming_limit_and_url(caught.value, LIMIT)
    assert endless.sent[0] < TOTAL


def test_the_default_limit_is_ten_mib_and_applies(endless: Server) -> None:
    assert HttpPolicy().max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES == 10 * 1024 * 1024
    with _http(None) as http, pytest.raises(HttpResponseTooLarge) as caught:
        http.get(endless.url)
    _one_line_naming_limit_and_url(caught.value, DEFAULT_MAX_RESPONSE_BYTES)
    assert endless.sent[0] < TOTAL


def test_a_content_length_over_the_limit_is_refused_before_the_body_is_read() -> None:
    for server in _serve(_lying_length):
        with _http() as http, pytest.raises(HttpResponseTooLarge) as caught:
            http.get(server.url)
        message = _one_line_naming_limit_and_url(caught.value, LIMIT)
        assert "its Content-Length is 107374182400" in message


def test_a_small_gzip_that_inflates_past_the_limit_is_stopped() -> None:
    for server in _serve(_gzip_bomb):
        with _http() as http, pytest.raises(HttpResponseTooLarge, match="the body passed it"):
            http.get(server.url)


def test_a_body_at_the_limit_is_read_and_recorded() -> None:
    for server in _serve(_small):
        with _http() as http:
            assert len(http.get(server.url).content) == LIMIT
        (exchange,) = http.exchanges
        assert len(exchange.body_bytes) == LIMIT


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_the_limit_must_be_a_positive_number_of_bytes(bad: object) -> None:
    with pytest.raises(ValueError, match="max_response_bytes must be a positive number of bytes"):
        HttpPolicy(max_response_bytes=bad)  # type: ignore[arg-type]


def test_jobforge_worker_sets_the_limit_from_its_option(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from jobforge.cli import worker_command
    from jobforge.cli.app import app

    seen: list[HttpPolicy] = []

    def load_handlers(_: object, *, http_policy: HttpPolicy) -> object:
        seen.append(http_policy)
        raise SystemExit(0)  # stop before any worker starts

    monkeypatch.setattr(worker_command, "database_url", lambda _: ("postgresql://x/y", None))
    monkeypatch.setattr(worker_command, "load_handlers", load_handlers)
    runner = CliRunner()
    for args, limit in ((["--http-max-response-bytes", "1024"], 1024),
                        ([], DEFAULT_MAX_RESPONSE_BYTES)):  # fmt: skip
        result = runner.invoke(app, ["worker", "--runners", "m", *args])
        assert result.exit_code == 0, result.output
        assert seen.pop().max_response_bytes == limit
    refused = runner.invoke(app, ["worker", "--runners", "m", "--http-max-response-bytes", "0"])
    assert refused.exit_code == 2
