"""Replay and the SSRF guard: a recorded exchange to a private literal address (the worker ran
with `--http-allow-host 127.0.0.1`) replays without any allow-list, since replay opens no socket;
a request with no recording is still refused offline as the recording run would have refused it,
and the refusal names the setting of the front end that runs it (`HttpPolicy.allow_hint`).

No socket is opened: every test either replays or records through a `MockTransport` that fails
the test if it is called."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from jobforge.errors import HttpRefused, UnrecordedRequest
from jobforge.runtime.http import Exchange, HttpPolicy, RecordedHttp


def _exchange(url: str, body: str = '{"ok": true}', status: int = 200,
              headers: dict[str, str] | None = None) -> Exchange:  # fmt: skip
    return Exchange(
        method="GET", url=url, request_headers={}, request_body_sha256=None, status=status,
        response_headers={"content-type": "application/json", **(headers or {})},
        response_body=body, response_body_encoding="utf-8",
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError("the test touched the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1/items",
        "http://10.1.2.3/internal",
        "http://[::1]:9000/x",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_a_recorded_exchange_to_a_private_literal_address_replays_without_an_allow_list(
    url: str,
) -> None:
    with RecordedHttp("replay", [_exchange(url)]) as http:  # the default policy: nothing allowed
        response = http.get(url)
    assert response.json() == {"ok": True}


def test_async_replay_of_a_recorded_private_address_needs_no_allow_list() -> None:
    import asyncio

    async def go() -> httpx.Response:
        async with RecordedHttp("replay", [_exchange("http://127.0.0.1:8080/a")]) as http:
            return await http.aget("http://127.0.0.1:8080/a")

    assert asyncio.run(go()).status_code == 200


def test_a_recorded_redirect_between_private_hosts_replays_hop_by_hop() -> None:
    hops = [
        _exchange("http://127.0.0.1:8080/start", "", 302, {"location": "http://10.0.0.7/end"}),
        _exchange("http://10.0.0.7/end", '{"at": "end"}'),
    ]
    with RecordedHttp("replay", hops) as http:
        response = http.get("http://127.0.0.1:8080/start")
    assert response.json() == {"at": "end"}
    assert [str(r.url) for r in response.history] == ["http://127.0.0.1:8080/start"]


def test_an_unrecorded_request_to_a_private_literal_address_is_still_refused_offline() -> None:
    recorded = _exchange("http://127.0.0.1:8080/a")
    with RecordedHttp("replay", [recorded]) as http:
        http.get("http://127.0.0.1:8080/a")
        with pytest.raises(HttpRefused, match=r"loopback") as caught:
            http.get("http://127.0.0.1:8080/a")  # served once already: none left
    assert "add '127.0.0.1' to HttpPolicy.allow_hosts" in str(caught.value)  # the library's hint


def test_with_the_host_allowed_an_unrecorded_request_is_unrecorded_not_refused() -> None:
    policy = HttpPolicy(allow_hosts=frozenset({"127.0.0.1"}))
    with (
        RecordedHttp("replay", [_exchange("http://127.0.0.1:8080/a")], policy) as http,
        pytest.raises(UnrecordedRequest, match=r"GET http://127\.0\.0\.1:8080/b"),
    ):
        http.get("http://127.0.0.1:8080/b")


def test_the_refusal_names_the_front_ends_own_setting() -> None:
    policy = HttpPolicy(allow_hint="pass --http-allow-host {host} to jobforge replay")
    with (
        RecordedHttp("replay", [], policy) as http,
        pytest.raises(HttpRefused) as caught,
    ):
        http.get("http://10.9.8.7/x")
    message = str(caught.value)
    assert message.endswith(
        "if this is intended, pass --http-allow-host 10.9.8.7 to jobforge replay"
    )
    assert "HttpPolicy" not in message


def test_record_mode_refusal_names_the_worker_flag_and_sends_nothing() -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"sent {request.url}")

    policy = HttpPolicy(allow_hint="pass --http-allow-host {host} to jobforge worker")
    with (
        RecordedHttp("record", policy=policy, transport=httpx.MockTransport(never)) as http,
        pytest.raises(HttpRefused, match=r"pass --http-allow-host 127\.0\.0\.1 to jobforge worker"),
    ):
        http.get("http://127.0.0.1:8080/a")
    assert http.exchanges == []


def test_a_url_that_is_not_http_is_refused_in_replay_even_when_recorded() -> None:
    with (
        RecordedHttp("replay", [_exchange("ftp://127.0.0.1/file")]) as http,
        pytest.raises(HttpRefused, match="only absolute http"),
    ):
        http.get("ftp://127.0.0.1/file")
