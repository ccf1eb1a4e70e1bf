"""Secrets in HTTP bodies (`jobforge.runtime.redact.redact_body`, `http.redact_exchange`, the
request-body hash): masked on the way to a record, while replay still matches and serves."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

import httpx
import pytest

from jobforge import canonical
from jobforge.errors import UnrecordedRequest
from jobforge.runtime import redact
from jobforge.runtime.http import Exchange, HttpPolicy, RecordedHttp, redact_exchange
from jobforge.runtime.redact import REDACTED, Redactor, marker, redact_body

KEY = b"k" * 32
MARK = re.compile(r"\[redacted:[0-9a-f]{8}:[0-9a-f]{32}\]")
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _json(body: bytes | None) -> object:
    assert body is not None
    return json.loads(body)


def test_secret_keys_are_masked_at_any_depth_and_in_arrays() -> None:
    body = json.dumps({
        "access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
        "user": {"name": "ann", "credentials": {"password": "pw"}, "refresh_token": None},
        "keys": [{"api_key": "k1", "id": 1}, [{"client_secret": "cs"}], "plain"],
    }).encode()  # fmt: skip
    out = redact_body(body, JSON, Redactor(key=KEY))
    data = _json(out)
    assert isinstance(data, dict)
    assert MARK.fullmatch(data["access_token"])
    assert data["token_type"] == "Bearer"  # not a secret name: kept
    assert data["expires_in"] == 3600
    assert MARK.fullmatch(data["user"]["credentials"])  # a secret object is masked whole
    assert data["user"]["name"] == "ann"
    assert data["user"]["refresh_token"] is None  # null is never redacted
    assert MARK.fullmatch(data["keys"][0]["api_key"])
    assert data["keys"][0]["id"] == 1
    assert MARK.fullmatch(data["keys"][1][0]["client_secret"])
    assert data["keys"][2] == "plain"
    assert out is not None
    for secret in (b"at-1", b"pw", b"k1", b"cs"):
        assert secret not in out


def test_equal_secrets_give_equal_markers_and_no_key_gives_the_plain_one() -> None:
    keyed = Redactor(key=KEY)
    one = _json(redact_body(b'{"token": "same"}', JSON, keyed))
    two = _json(redact_body(b'[{"token": "same"}]', JSON, keyed))
    assert isinstance(one, dict)
    assert isinstance(two, list)
    assert one["token"] == two[0]["token"] == keyed.mask("same")
    assert _json(redact_body(b'{"token": "same"}', JSON, Redactor(key=None))) == {"token": REDACTED}


def test_the_content_type_does_not_matter_for_json() -> None:
    out = redact_body(b' {"password": "pw"}', "text/plain", Redactor(key=None))
    assert _json(out) == {"password": REDACTED}


def test_a_runners_own_secret_and_public_keys_apply() -> None:
    redactor = Redactor(key=None).for_runner(["pin"], ["next_page_token"])
    out = redact_body(b'{"pin": "1234", "next_page_token": "p2"}', JSON, redactor)
    assert _json(out) == {"pin": REDACTED, "next_page_token": "p2"}


def test_form_fields_are_masked_one_by_one_every_other_byte_kept() -> None:
    body = b"grant_type=client_credentials&client_secret=s%26Q9+t&scope=a+b&password=&flag"
    out = redact_body(body, f"{FORM}; charset=utf-8", Redactor(key=KEY))
    assert out is not None
    fields = out.decode().split("&")
    assert fields[0] == "grant_type=client_credentials"
    assert fields[2] == "scope=a+b"
    assert fields[4] == "flag"
    parsed = parse_qs(out.decode(), keep_blank_values=True)
    assert parsed["client_secret"] == [Redactor(key=KEY).mask("s&Q9 t")]
    assert MARK.fullmatch(parsed["password"][0])  # an empty secret is still a secret
    assert b"Q9" not in out


def test_a_form_body_is_only_read_as_a_form_when_it_says_so() -> None:
    body = b"client_secret=s3&x=1"
    assert redact_body(body, "text/plain", Redactor(key=None)) is None


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"access_token": "at", ', JSON),  # truncated: not JSON
        (b"access_token: at", "text/plain"),
        (b'"access_token"', JSON),  # JSON, but no key
        (b'{"id": 1, "items": [{"name": "x"}]}', JSON),  # no secret: byte for byte
        (bytes(range(256)), "application/octet-stream"),  # binary
        (b"\xff{" + b'"token": "t"}', JSON),  # not UTF-8
        (b"", JSON),
    ],
)
def test_what_is_not_json_or_form_or_has_no_secret_is_kept_as_is(
    body: bytes, content_type: str
) -> None:
    assert redact_body(body, content_type, Redactor(key=KEY)) is None


def test_a_body_nested_past_the_parser_is_kept_and_one_past_the_walk_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert redact_body(deep, JSON, Redactor(key=None)) is None  # json refuses it: not JSON

    def too_deep(*_: object) -> object:
        raise RecursionError

    monkeypatch.setattr(redact, "_masked", too_deep)  # parsed, yet too deep to walk
    assert redact_body(b'[{"token": "t"}]', JSON, Redactor(key=None)) == b'"[redacted]"'


def test_a_marker_is_never_masked_again() -> None:
    keyed = Redactor(key=KEY)
    first = redact_body(b'{"token": "t", "n": 1}', JSON, keyed)
    assert first is not None
    assert redact_body(first, JSON, keyed) is None  # nothing left to mask: kept
    assert redact_body(first, JSON, Redactor(key=b"o" * 32)) is None  # another key: kept too
    stored = _json(first)
    assert isinstance(stored, dict)
    assert keyed.mask(stored["token"]) == stored["token"]
    assert Redactor(key=None).mask(REDACTED) == REDACTED


def test_the_blanked_form_depends_on_neither_key_nor_secret() -> None:
    blank = Redactor(key=KEY).blanked()
    bodies = [b'{"password": "a"}', b'{"password": "b"}', b'{"password": "[redacted]"}',
              json.dumps({"password": Redactor(key=KEY).mask("a")}).encode(),
              b'{ "password" : "c" }']  # fmt: skip
    assert {redact_body(b, JSON, blank) for b in bodies} == {b'{"password":"[redacted]"}'}
    forms = [b"user=u&password=a", b"user=u&password=%5Bredacted%5D"]
    assert {redact_body(b, FORM, blank) for b in forms} == {b"user=u&password=%5Bredacted%5D"}


def test_redact_exchange_masks_the_response_body_and_fixes_its_length() -> None:
    body = '{"access_token": "at-secret", "token_type": "Bearer"}'
    exchange = Exchange(
        "POST", "https://auth.example/token", {}, None, 200,
        {"content-length": str(len(body)), "content-type": JSON}, body, "utf-8",
    ).to_json()  # fmt: skip
    stored = redact_exchange(exchange, Redactor(key=KEY))
    assert "at-secret" not in json.dumps(stored)
    assert stored["response_headers"]["content-length"] == str(len(stored["response_body"]))
    assert exchange["response_body"] == body  # the in-memory copy is left alone
    Exchange.from_json(stored)  # still a valid exchange
    # binary and secret-free bodies are stored as they were
    binary = {**exchange, "response_body": "AAEC", "response_body_encoding": "base64"}
    assert redact_exchange(binary, Redactor(key=KEY)) == binary
    plain = {**exchange, "response_body": '{"ok": true}'}
    assert redact_exchange(plain, Redactor(key=KEY)) == plain


# ---------------------------------------------------------------------------------------------
# The request body's hash: no secret in it, and replay matches redacted to redacted

_TOKEN_BODY = {"access_token": "at-live-1", "token_type": "Bearer"}


def _api(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/token":
        return httpx.Response(200, json=_TOKEN_BODY)
    if request.url.path == "/refresh":
        return httpx.Response(
            200, json={"refreshed": "refresh_token" in json.loads(request.content)}
        )
    return httpx.Response(200, json={"authorized": request.headers["authorization"] != ""})


def _recorded() -> tuple[list[Exchange], list[dict[str, object]]]:
    """A run that logs in with a password, then uses the token in a header and a body."""
    policy = HttpPolicy(allow_hosts=frozenset({"api.example"}))
    with RecordedHttp("record", policy=policy, transport=httpx.MockTransport(_api)) as http:
        seen = _session(http)
    return http.exchanges, seen


def _session(http: RecordedHttp) -> list[dict[str, object]]:
    login = http.post("https://api.example/token", json={"user": "ann", "password": "hunter2"})
    token = login.json()["access_token"]
    me = http.get("https://api.example/me", headers={"Authorization": f"Bearer {token}"})
    again = http.post("https://api.example/refresh", json={"refresh_token": token})
    return [login.json(), me.json(), again.json()]


def test_a_request_body_is_hashed_with_its_secrets_blanked() -> None:
    exchanges, seen = _recorded()
    assert seen[0] == _TOKEN_BODY  # record mode hands the runner the real body
    login = exchanges[0]
    blanked = json.dumps({"user": "ann", "password": REDACTED}, separators=(",", ":"))
    assert login.request_body_sha256 == canonical.sha256_of(blanked.encode())
    raw = json.dumps({"user": "ann", "password": "hunter2"}, separators=(",", ":"))
    assert login.request_body_sha256 != canonical.sha256_of(raw.encode())


def test_replay_of_a_redacted_recording_serves_the_marker_and_still_matches() -> None:
    exchanges, _ = _recorded()
    redactor = Redactor(key=KEY)
    stored = [Exchange.from_json(redact_exchange(e.to_json(), redactor)) for e in exchanges]
    assert "at-live-1" not in json.dumps([e.to_json() for e in stored])
    policy = HttpPolicy(allow_hosts=frozenset({"api.example"}))
    with RecordedHttp("replay", stored, policy) as replay:
        seen = _session(replay)  # the token is the marker; the refresh body matches anyway
    assert seen[0]["access_token"] == redactor.mask("at-live-1")
    assert marker(seen[0]["access_token"]) is not None
    # the password differs too (the replaying side may not have it): still matched
    with RecordedHttp("replay", stored, policy) as replay:
        replay.post("https://api.example/token", json={"user": "ann", "password": "other"})
        with pytest.raises(UnrecordedRequest):  # another non-secret field is another request
            replay.post("https://api.example/token", json={"user": "bob", "password": "x"})


def test_a_recording_hashed_over_the_raw_body_still_replays() -> None:
    raw = b'{"password":"hunter2"}'
    old = Exchange("POST", "https://api.example/login", {}, canonical.sha256_of(raw), 200, {},
                   "ok", "utf-8")  # fmt: skip
    with RecordedHttp("replay", [old]) as replay:
        assert replay.post("https://api.example/login", content=raw).text == "ok"


# ---------------------------------------------------------------------------------------------
# URLs in headers: a redirect's Location carries the token of an OAuth flow


def _oauth_redirect(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/authorize":
        return httpx.Response(
            302,
            headers={
                "Location": "/cb?code=c0de&access_token=qt-live#access_token=ft-live&state=s",
                "Content-Location": "/authorize?client_secret=cs-live",
            },
        )
    return httpx.Response(200, json={"landed": request.url.path})


def test_secret_values_in_url_headers_are_redacted_and_the_redirect_still_replays() -> None:
    policy = HttpPolicy(allow_hosts=frozenset({"api.example"}))
    with RecordedHttp("record", policy=policy, transport=httpx.MockTransport(_oauth_redirect)) as h:
        live = h.get(
            "https://api.example/authorize", headers={"Referer": "https://a.example/?token=rt-live"}
        )
    assert (
        live.history[0]
        .headers["location"]
        .endswith("access_token=qt-live#access_token=ft-live&state=s")
    )
    stored = json.dumps([e.to_json() for e in h.exchanges])
    for secret in ("qt-live", "ft-live", "cs-live", "rt-live"):
        assert secret not in stored, secret
    hop = h.exchanges[0]
    assert hop.response_headers["location"] == (
        "/cb?code=c0de&access_token=%5Bredacted%5D#access_token=%5Bredacted%5D&state=s"
    )
    assert hop.request_headers["referer"] == "https://a.example/?token=%5Bredacted%5D"
    with RecordedHttp("replay", h.exchanges, policy) as replay:
        again = replay.get("https://api.example/authorize")
    assert again.json() == live.json() == {"landed": "/cb"}
    assert len(again.history) == 1


def test_a_url_header_without_a_secret_is_stored_as_it_came() -> None:
    def moved(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "/new path?q=a b"})
        return httpx.Response(200, text="here")

    policy = HttpPolicy(allow_hosts=frozenset({"api.example"}))
    with RecordedHttp("record", policy=policy, transport=httpx.MockTransport(moved)) as http:
        http.get("https://api.example/old")
    assert http.exchanges[0].response_headers["location"] == "/new path?q=a b"
