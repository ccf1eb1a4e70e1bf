"""ctx.http inside a run: exchanges recorded into the environment, then served on replay."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jobforge import errors
from jobforge.runtime.context import ClockSpec, Environment, RunContext
from jobforge.runtime.http import HttpPolicy

ALLOW_LOCAL = HttpPolicy(allow_hosts=frozenset({"127.0.0.1"}))


class _Prices(BaseHTTPRequestHandler):
    calls = 0

    def do_GET(self) -> None:
        type(self).calls += 1
        body = json.dumps({"sku": self.path.rsplit("/", 1)[-1], "price": 10 * type(self).calls})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Prices)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _env() -> Environment:
    return Environment(
        clock=ClockSpec(start=datetime(2026, 1, 1, tzinfo=UTC)), seed=3, tenant_id="acme"
    )


def test_a_recorded_run_replays_its_http_without_the_network(base_url: str) -> None:
    live = RunContext(_env(), mode="record", http_policy=ALLOW_LOCAL)
    first = live.http.get(f"{base_url}/prices/a1").json()
    second = live.http.get(f"{base_url}/prices/a1").json()
    assert first != second  # the server's answer changes from call to call
    recorded = live.recorded_environment()
    assert len(recorded.http) == 2

    stored = Environment.model_validate(json.loads(recorded.model_dump_json()))
    replay = RunContext(stored, mode="replay", http_policy=ALLOW_LOCAL)
    assert replay.http.get(f"{base_url}/prices/a1").json() == first
    assert replay.http.get(f"{base_url}/prices/a1").json() == second
    with pytest.raises(errors.UnrecordedRequest, match="/prices/zz"):
        replay.http.get(f"{base_url}/prices/zz")


def test_the_guard_refuses_loopback_unless_allowed(base_url: str) -> None:
    ctx = RunContext(_env(), mode="record")
    with pytest.raises(errors.HttpRefused, match=r"127\.0\.0\.1"):
        ctx.http.get(f"{base_url}/prices/a1")
