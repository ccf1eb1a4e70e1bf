"""Secrets a runner gets over HTTP never reach a run record, a bundle or a golden file, and the
recording still replays and passes its golden check: a runner logs in (a form body with its
client secret), gets an `access_token` back in JSON, and sends it on in a header and in a JSON
body. Recorded through the real worker against a server on 127.0.0.1, then replayed and
checked on throwaway databases."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest
from pydantic import BaseModel

from jobforge.contracts import RUNNERS, RunnerDef, runner
from jobforge.golden import Recorder
from jobforge.golden.case import load_case
from jobforge.golden.check import check_case
from jobforge.golden.lane import Lane
from jobforge.provision import ClonePool, Database, Template
from jobforge.queue import QueueClient
from jobforge.replay.bundle import from_record, load_bundle, promote, write_bundle
from jobforge.replay.engine import Target, replay
from jobforge.runtime.context import RunContext
from jobforge.runtime.http import HttpPolicy
from jobforge.runtime.redact import KEY_ENV, marker
from jobforge.worker import Registry, drain
from jobforge.worker.runners import register_runner
from tests.integration.clones import Clones

ACCESS_TOKEN = "at-LIVE-7f3a9c1e5b"
CLIENT_SECRET = "cs-LIVE-0d4b8e2a6f"
SECRETS = (ACCESS_TOKEN, CLIENT_SECRET)
POLICY = HttpPolicy(allow_hosts=frozenset({"127.0.0.1"}))


class OAuthIn(BaseModel):
    base: str
    client_id: str
    client_secret: str


class OAuthOut(BaseModel):
    items: list[str]
    audited: bool


@runner("hs.oauth", version="1.0.0", input=OAuthIn, output=OAuthOut)
def oauth(inp: OAuthIn, ctx: RunContext) -> OAuthOut:
    login = ctx.http.post(
        f"{inp.base}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": inp.client_id,
              "client_secret": inp.client_secret},
    )  # fmt: skip
    token = login.json()["access_token"]
    ctx.decide("access_token", token)  # a secret-named decision: masked in the trace
    items = ctx.http.get(f"{inp.base}/v1/items", headers={"Authorization": f"Bearer {token}"})
    audit = ctx.http.post(f"{inp.base}/v1/audit", json={"token": token, "seen": 2})
    return OAuthOut(items=items.json()["items"], audited=audit.json()["ok"])


class _Api(BaseHTTPRequestHandler):
    calls: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, value: object) -> None:
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.calls.append(f"GET {self.path}")
        ok = self.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}"
        self._json({"items": ["a", "b"] if ok else []})

    def do_POST(self) -> None:
        self.calls.append(f"POST {self.path}")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if self.path == "/oauth/token":
            form = parse_qs(raw)
            assert form["client_secret"] == [CLIENT_SECRET]
            self._json({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600})
        else:
            self._json({"ok": json.loads(raw)["token"] == ACCESS_TOKEN})


@pytest.fixture
def api() -> Iterator[str]:
    _Api.calls = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()


@pytest.fixture
def fresh_dsn(jobforge_template: Template) -> Iterator[str]:
    pool = ClonePool(jobforge_template, ahead=1, threads=1)
    database = pool.acquire()
    try:
        yield database.dsn
    finally:
        pool.release(database)
        pool.close()


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_a_token_from_a_response_is_in_no_record_bundle_or_golden_file_and_still_replays(
    jobforge_db: Database,
    api: str,
    fresh_dsn: str,
    clones: Clones,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, "k" * 32)  # keyed markers: the redacted values are compared
    definition: RunnerDef = RUNNERS["hs.oauth"]
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        client.enqueue(
            "hs.oauth", {"base": api, "client_id": "app-1", "client_secret": CLIENT_SECRET}
        )
        registry = Registry()
        register_runner(registry, definition, http_policy=POLICY)
        report = drain(jobforge_db.dsn, registry, middleware=[Recorder()])
        assert report.counts["succeeded"] == 1
        (row,) = client.find_runs(runner_ids=["hs.oauth"])
    live_calls = list(_Api.calls)
    assert live_calls == ["POST /oauth/token", "GET /v1/items", "POST /v1/audit"]

    # the run record in the database
    record: dict[str, Any] = row.record
    assert _leaks(json.dumps(record)) == []
    exchanges = record["environment"]["http"]
    token_response = json.loads(exchanges[0]["response_body"])
    assert marker(token_response["access_token"]) is not None
    assert token_response["token_type"] == "Bearer"  # no secret: kept
    assert exchanges[0]["response_headers"]["content-length"] == str(
        len(exchanges[0]["response_body"])
    )
    assert exchanges[1]["request_headers"]["authorization"] == "[redacted]"
    assert json.loads(record["output"]["canonical"]) == {"items": ["a", "b"], "audited": True}

    # the bundle and the golden case made from it
    bundle = from_record(record)
    bundle_path = write_bundle(tmp_path / "bundles", bundle)
    case_path = promote(tmp_path / "golden", bundle)
    for path in (bundle_path, case_path):
        assert _leaks(path.read_text()) == [], path

    # replay of the bundle: identical, every value compared (keyed markers), no network
    (result,) = replay([Target("run", load_bundle(bundle_path))], {"hs.oauth": definition},
                       fresh_dsn, http_policy=POLICY)  # fmt: skip
    assert result.verdict == "identical", result.report()
    assert result.not_compared == []
    assert result.record is not None
    assert _leaks(json.dumps(result.record)) == []

    # the golden check of the case: passes, and again no secret in the refreshed file
    case = load_case(case_path)
    lane = Lane(clones)
    try:
        checked = check_case("hs.oauth/run", case_path, case, definition, lane, runs=2,
                             http_policy=POLICY)  # fmt: skip
    finally:
        lane.close()
    assert checked.verdict == "passed", checked.report()
    assert checked.not_compared == []
    assert _Api.calls == live_calls  # replay and golden runs never touched the server
