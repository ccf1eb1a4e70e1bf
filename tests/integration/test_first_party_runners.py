"""The first-party runners through the real worker on a real Postgres.

Webhook (`jobforge.webhook.deliver`): a receiver on 127.0.0.1 verifies every delivery with the
Standard Webhooks reference library; a 500 then a 200 ends succeeded on the second attempt, a
410 ends failed after one, each attempt a run record with its `delivery` decision; the secret
(from the tenant's connector configs, or the worker's environment) is in no run record, job
row, event, bundle or log line; another tenant cannot use the connector.

HTTP (`jobforge.http.request`): the SSRF guard's refusals (a private, a link-local, the IPv6
loopback and an IPv4-mapped address, a name that resolves to loopback, a redirect to a private
address) each end the job failed after one attempt with the reason; 429/5xx are retried and
other 4xx are not; the job's allow-list and the response size cap fail it at once. The
receiver on 127.0.0.1 is reached because the test's worker allows that one host, as
`jobforge worker --http-allow-host 127.0.0.1` would.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from standardwebhooks import Webhook

import jobforge.runners.http
import jobforge.runners.webhook
from jobforge.contracts import RUNNERS
from jobforge.golden import Recorder
from jobforge.provision import Database
from jobforge.queue import QueueClient
from jobforge.replay.bundle import from_record, load_bundle, write_bundle
from jobforge.replay.engine import Target, replay
from jobforge.runtime.http import HttpPolicy
from jobforge.worker import Registry, drain
from jobforge.worker.runners import register_runner

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # Standard Webhooks' example key
ENV_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVg=="  # base64 of ABCDEFGHIJKLMNOPQRSTUV
POLICY = HttpPolicy(allow_hosts=frozenset({"127.0.0.1"}))


class _Receiver(BaseHTTPRequestHandler):
    """Answers each path with its scripted statuses in turn (the last one repeats); verifies
    every POST's signature with the secret the path names."""

    script: ClassVar[dict[str, list[int]]] = {}
    seen: ClassVar[list[dict[str, Any]]] = []
    secrets: ClassVar[dict[str, str]] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _answer(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        path = self.path.split("?")[0]
        verified: Any
        try:
            verified = Webhook(self.secrets.get(path, SECRET)).verify(body, dict(self.headers))
        except Exception as exc:
            verified = f"unverified: {exc}"
        self.seen.append({"path": path, "body": body, "verified": verified,
                          "id": self.headers.get("webhook-id")})  # fmt: skip
        statuses = self.script.get(path, [200])
        self._answer(statuses.pop(0) if len(statuses) > 1 else statuses[0])

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.seen.append({"path": path})
        if path.startswith("/redirect-to/"):
            self._answer(302, headers={"Location": "http://" + path.removeprefix("/redirect-to/")})
            return
        if path == "/big":
            self._answer(200, b"x" * 5000)
            return
        statuses = self.script.get(path, [200])
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        self._answer(status, json.dumps({"path": path}).encode(),
                     {"Content-Type": "application/json"})  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.script, _Receiver.seen, _Receiver.secrets = {}, [], {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()


def _drain_all(dsn: str, client: QueueClient, job_ids: list[int], timeout_s: float = 20) -> None:
    """Drain until every job is terminal (retries wait out their backoff between drains)."""
    registry = Registry()
    for runner_id in ("jobforge.webhook.deliver", "jobforge.http.request"):
        register_runner(registry, RUNNERS[runner_id], http_policy=POLICY)
    deadline = time.monotonic() + timeout_s
    while True:
        drain(dsn, registry, middleware=[Recorder()])
        states = {client.get(i).status for i in job_ids}
        if states <= {"succeeded", "failed", "dead", "canceled"}:
            return
        assert time.monotonic() < deadline, states
        time.sleep(0.2)


def test_webhook_deliveries_signed_retried_and_the_secret_never_stored(
    jobforge_db: Database,
    receiver: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(
        "JOBFORGE_CONNECTOR_ENV_HOOKS",
        json.dumps({"secret": ENV_SECRET, "tenants": ["acme"], "allow_hosts": ["127.0.0.1"]}),
    )
    _Receiver.script = {"/flaky": [500, 200], "/gone": [410]}
    _Receiver.secrets = {"/env": ENV_SECRET}
    data = {"order": "A-17", "total": 42}
    with (
        QueueClient.connect(jobforge_db.dsn, tenant="acme") as acme,
        QueueClient.connect(jobforge_db.dsn, tenant="other") as other,
    ):
        acme.connector_set(
            "hooks", {"secret": SECRET, "note": "orders", "allow_hosts": ["127.0.0.1"]}
        )
        acme.connector_set("bare", {"secret": SECRET})  # names no host: signs for none

        def hook(client: QueueClient, path: str, connector: str = "hooks") -> int:
            payload = {"url": receiver + path, "event_type": "order.paid", "data": data,
                       "connector": connector}  # fmt: skip
            return client.enqueue("jobforge.webhook.deliver", payload, max_attempts=3).job_id

        flaky, gone = hook(acme, "/flaky"), hook(acme, "/gone")
        env, stranger = hook(acme, "/env", "env-hooks"), hook(other, "/stranger")
        bare = hook(acme, "/bare", "bare")
        _drain_all(jobforge_db.dsn, acme, [flaky, gone, env, bare])
        _drain_all(jobforge_db.dsn, other, [stranger])

        # 500 then 200: succeeded on the second attempt, both attempts recorded
        job = acme.get(flaky)
        assert (job.status, job.attempts) == ("succeeded", 2)
        runs = sorted(acme.find_runs(job_ids=[flaky]), key=lambda r: r.attempt)
        assert [r.status for r in runs] == ["retry", "succeeded"]
        assert [(r.attempt, r.record["trace"][0]["value"]) for r in runs] == [
            (1, {"status": 500, "outcome": "retried"}),
            (2, {"status": 200, "outcome": "delivered"}),
        ]
        # 410: failed at once, the reason in the job's error
        job = acme.get(gone)
        assert (job.status, job.attempts) == ("failed", 1)
        assert "410 Gone; not retried" in json.dumps(job.error)
        # the secret from the worker's environment signs too
        assert acme.get(env).status == "succeeded"
        # tenant other has no connector 'hooks': acme's is out of its sight
        job = other.get(stranger)
        assert (job.status, job.attempts) == ("failed", 1)
        assert "connector 'hooks' is not configured for tenant 'other'" in json.dumps(job.error)
        assert not [s for s in _Receiver.seen if s["path"] == "/stranger"]
        # a connector that names no host signs nothing: failed at once, nothing sent
        job = acme.get(bare)
        assert (job.status, job.attempts) == ("failed", 1)
        assert "connector bare names no host to sign for" in json.dumps(job.error)
        assert not [s for s in _Receiver.seen if s["path"] == "/bare"]

        # every delivery verified by the reference library, one message id for both attempts
        posts = [s for s in _Receiver.seen if s["path"] in ("/flaky", "/gone", "/env")]
        assert len(posts) == 4
        assert all(isinstance(s["verified"], dict) for s in posts), posts
        assert {s["id"] for s in posts if s["path"] == "/flaky"} == {
            jobforge.runners.webhook.default_message_id("order.paid", data)
        }
        assert json.loads(posts[0]["body"])["data"] == data

        # the secrets are nowhere: run records, job rows and events, a bundle, the log
        stored = acme.find_runs(limit=100) + other.find_runs(limit=100)
        texts = [json.dumps(r.record) for r in stored]
        for client, ids in ((acme, [flaky, gone, env]), (other, [stranger])):
            for i in ids:
                texts.append(client.get(i).model_dump_json())
                texts += [e.model_dump_json() for e in client.events(i)]
        bundle = write_bundle(tmp_path, from_record(runs[1].record))
        texts += [bundle.read_text(), caplog.text]
        keys = [
            SECRET,
            SECRET.removeprefix("whsec_"),
            ENV_SECRET,
            ENV_SECRET.removeprefix("whsec_"),
        ]
        assert [k for k in keys if any(k in t for t in texts)] == []
        recorded = runs[1].record["environment"]
        assert recorded["connectors"] == {
            "hooks": {"secret": "[redacted]", "note": "orders", "allow_hosts": ["127.0.0.1"]}
        }
        assert recorded["http"][0]["request_headers"]["webhook-signature"] == "[redacted]"

    # the bundle of the delivered attempt replays identically, signing with the marker
    (result,) = replay([Target("run", load_bundle(bundle))],
                       {"jobforge.webhook.deliver": RUNNERS["jobforge.webhook.deliver"]},
                       jobforge_db.dsn, http_policy=POLICY)  # fmt: skip
    assert result.verdict == "identical", result.report()


REFUSED = [
    ("http://10.0.0.7/x", "a private address"),
    ("http://169.254.169.254/latest/meta-data", "a link-local address"),
    ("http://[::1]:9/x", "a loopback address"),
    ("http://[::ffff:127.0.0.1]:9/x", "an IPv4-mapped IPv6 address embedding 127.0.0.1"),
    ("http://[::ffff:10.1.2.3]/x", "an IPv4-mapped IPv6 address embedding 10.1.2.3"),
    ("http://localhost:9/x", "a loopback address"),
    ("http://0.0.0.0:9/x", "the unspecified address"),
    ("http://[fd00::1]/x", "a private address"),
]


def test_http_guard_refusals_and_status_classes_end_the_job_as_they_should(
    jobforge_db: Database, receiver: str
) -> None:
    _Receiver.script = {"/flaky": [503, 200], "/limited": [429, 200], "/missing": [404]}
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:

        def get(url: str, **more: Any) -> int:
            return client.enqueue("jobforge.http.request", {"url": url, **more},
                                  max_attempts=3).job_id  # fmt: skip

        refused = [get(url) for url, _ in REFUSED]
        redirected = get(receiver + "/redirect-to/192.168.1.20/admin")
        flaky, limited, missing = (
            get(receiver + "/flaky"),
            get(receiver + "/limited"),
            get(receiver + "/missing"),
        )
        outside = get(receiver + "/ok", allow_hosts=["api.example.com"])
        big = get(receiver + "/big", max_response_bytes=1000)
        fine = get(receiver + "/ok", allow_hosts=["127.0.0.1"])
        away = get(receiver + "/redirect-to/example.com/x", allow_hosts=["127.0.0.1"])
        ids = [*refused, redirected, flaky, limited, missing, outside, big, fine, away]
        _drain_all(jobforge_db.dsn, client, ids)

        for job_id, (url, reason) in zip(refused, REFUSED, strict=True):
            job = client.get(job_id)
            assert (job.status, job.attempts) == ("failed", 1), url
            assert reason in json.dumps(job.error), (url, job.error)
        job = client.get(redirected)
        assert (job.status, job.attempts) == ("failed", 1)
        assert "192.168.1.20, a private address" in json.dumps(job.error)
        assert "redirected from" in json.dumps(job.error)
        assert not [s for s in _Receiver.seen if s["path"] == "/admin"]
        for job_id in (flaky, limited):
            job = client.get(job_id)
            assert (job.status, job.attempts) == ("succeeded", 2)
        job = client.get(missing)
        assert (job.status, job.attempts) == ("failed", 1)
        assert "answered 404" in json.dumps(job.error)
        job = client.get(outside)
        assert (job.status, job.attempts) == ("failed", 1)
        assert "not in the job's allow_hosts" in json.dumps(job.error)
        assert not [s for s in _Receiver.seen if s["path"] == "/ok" and len(s) == 1][1:]
        job = client.get(big)
        assert (job.status, job.attempts) == ("failed", 1)
        assert "over max_response_bytes (1000)" in json.dumps(job.error)
        job = client.get(away)  # the allow-list holds on every redirect hop, before DNS
        assert (job.status, job.attempts) == ("failed", 1)
        assert "refused GET to host 'example.com': not in the job's allow_hosts" in json.dumps(
            job.error
        )
        job = client.get(fine)
        assert job.status == "succeeded"
        (run,) = client.find_runs(job_ids=[fine])
        output = json.loads(run.record["output"]["canonical"])
        assert (output["status"], json.loads(output["body"])) == (200, {"path": "/ok"})


def test_http_connector_headers_are_sent_and_redacted(jobforge_db: Database, receiver: str) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        headers = {"authorization": "Bearer tok-LIVE-1234"}
        client.connector_set("api", {"allow_hosts": ["127.0.0.1"], "headers": headers})
        client.connector_set("leaky", {"headers": {"x-tenant": "acme"}})
        client.connector_set("unbound", {"headers": {"authorization": "Bearer tok-ANY"}})
        ok = client.enqueue("jobforge.http.request",
                            {"url": receiver + "/ok", "connector": "api"}).job_id  # fmt: skip
        leaky = client.enqueue("jobforge.http.request",
                               {"url": receiver + "/ok", "connector": "leaky"}).job_id  # fmt: skip
        unbound = client.enqueue(
            "jobforge.http.request", {"url": receiver + "/ok", "connector": "unbound"}
        ).job_id
        _drain_all(jobforge_db.dsn, client, [ok, leaky, unbound])
        # credentials go to the connector's own hosts only: without a list, nowhere
        assert client.get(unbound).status == "failed"
        assert "has headers but no allow_hosts" in json.dumps(client.get(unbound).error)
        assert client.get(ok).status == "succeeded"
        (run,) = client.find_runs(job_ids=[ok])
        assert "tok-LIVE-1234" not in json.dumps(run.record)
        exchange = run.record["environment"]["http"][0]
        assert exchange["request_headers"]["authorization"] == "[redacted]"
        job = client.get(leaky)
        assert job.status == "failed"
        assert "x-tenant would be recorded in clear" in json.dumps(job.error)
