"""The first-party runners' pure parts: the webhook signature against Standard Webhooks'
published vector and the vector documented in docs/runners.md, the secret's format, the
report's figures against a hand count, host allow-list patterns and the guard's advice kept
out of a refusal's message."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from jobforge import errors
from jobforge.runners.hosts import allowed as _allowed
from jobforge.runners.outcomes import Rejected, Retryable, network_error, refused, retried
from jobforge.runners.report import ReportIn, generate, to_csv
from jobforge.runners.secrets import key_of, secret_problem
from jobforge.runners.webhook import (
    default_message_id,
    payload,
    signed_headers,
)
from jobforge.runtime.context import ClockSpec, Environment, RunContext

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_the_standard_webhooks_published_vector() -> None:
    sent_at = datetime.fromtimestamp(1614265330, UTC)
    headers = signed_headers(
        Webhook(key_of(SECRET)), "msg_p5jXN8AQM9LWM0D4loKWxJek", sent_at, '{"test": 2432232314}'
    )
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-timestamp"] == "1614265330"


def test_the_documented_vector_and_its_independent_computation() -> None:
    sent_at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    data = {"order": "A-17", "total": 4200}
    body = payload("order.paid", data, sent_at)
    assert body == (
        '{"data":{"order":"A-17","total":4200},"timestamp":"2026-11-01T12:00:00Z",'
        '"type":"order.paid"}'
    )
    message_id = default_message_id("order.paid", data)
    assert message_id == "msg_64ae4334761aa86b1584d48cb911b56e"
    headers = signed_headers(Webhook(key_of(SECRET)), message_id, sent_at, body)
    assert headers == {
        "content-type": "application/json",
        "webhook-id": "msg_64ae4334761aa86b1584d48cb911b56e",
        "webhook-timestamp": "1793534400",
        "webhook-signature": "v1,Hjir1wtF3sJ1Papx7geX67XOAHZpjE+cE9lzWOS6G2k=",
    }
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{message_id}.1793534400.{body}".encode(), hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (None, "has no 'secret'"),
        ("", "has no 'secret'"),
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must be written whsec_<base64>"),
        ("whsec_c2hvcnQ=", "at least 16 bytes"),
        (SECRET, None),
    ],
)
def test_the_secret_format(secret: object, problem: str | None) -> None:
    found = secret_problem(secret)
    assert (found is None) if problem is None else (problem in (found or "")), found


def _ctx() -> RunContext:
    clock = ClockSpec(start=datetime(2026, 11, 2, 6, tzinfo=UTC))
    return RunContext(Environment(clock=clock, seed=1, tenant_id="acme"), mode="replay")


def test_the_report_matches_a_hand_count() -> None:
    rows = [  # one outside the window (created at its end): not counted
        ("a", "succeeded", 1, "2026-11-01T08:00:00Z", "2026-11-01T08:00:10Z"),
        ("a", "succeeded", 3, "2026-11-01T08:00:00Z", "2026-11-01T08:00:20Z"),
        ("a", "dead", 3, "2026-11-01T08:00:00Z", "2026-11-01T08:01:00Z"),
        ("a", "queued", 0, "2026-11-01T09:00:00Z", None),
        ("b", "canceled", 0, "2026-11-01T10:00:00Z", "2026-11-01T10:00:01Z"),
        ("b", "succeeded", 1, "2026-11-02T00:00:00Z", "2026-11-02T00:00:01Z"),
    ]
    jobs = [{"id": i, "type": t, "state": s, "attempts": n, "created_at": c, "finished_at": f}
            for i, (t, s, n, c, f) in enumerate(rows)]  # fmt: skip
    inp = ReportIn.model_validate({"window_start": "2026-11-01T00:00:00Z",
                                   "window_end": "2026-11-02T00:00:00Z", "jobs": jobs})  # fmt: skip
    ctx = _ctx()
    report = generate(inp, ctx)
    assert report.generated_at == "2026-11-02T06:00:00Z"
    assert report.jobs == 5
    a, b = report.types
    assert (a.type, a.total, a.states["succeeded"], a.states["dead"], a.states["queued"]) == (
        "a", 4, 2, 1, 1)  # fmt: skip
    assert a.success_rate == round(2 / 3, 6)  # 2 succeeded of 3 finished
    assert (a.retried, a.mean_attempts) == (2, 1.75)  # (1 + 3 + 3 + 0) / 4
    assert (a.p50_finish_s, a.p95_finish_s) == (20.0, 60.0)  # of 10, 20, 60: ranks 2 and 3
    assert (b.total, b.success_rate, b.p50_finish_s) == (1, 0.0, 1.0)
    assert report.total.success_rate == 0.5  # 2 of 4 finished
    assert sorted(ctx.artifacts) == ["report.csv", "report.json", "report.md"]
    assert to_csv(report).splitlines()[1] == "a,4,1,0,2,0,1,0,0.666667,2,1.75,20.0,60.0"


def test_the_report_refuses_naive_times_and_an_empty_window() -> None:
    with pytest.raises(ValueError, match="needs a time zone"):
        ReportIn.model_validate({"window_start": "2026-11-01T00:00:00Z",
                                 "window_end": "2026-11-02T00:00:00Z",
                                 "jobs": [{"id": 1, "type": "a", "state": "queued",
                                           "attempts": 0,
                                           "created_at": "2026-11-01T00:00:00"}]})  # fmt: skip
    with pytest.raises(ValueError, match="window_end must be after window_start"):
        ReportIn.model_validate({"window_start": "2026-11-01T00:00:00Z",
                                 "window_end": "2026-11-01T00:00:00Z", "jobs": []})  # fmt: skip


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("api.example.com", ("api.example.com",), True),
        ("API.Example.com.", ("api.example.com",), True),
        ("evil-api.example.com", ("api.example.com",), False),
        ("a.b.example.com", ("*.example.com",), True),
        ("example.com", ("*.example.com",), False),
        ("example.com.evil.net", ("*.example.com",), False),
        ("badexample.com", ("*.example.com",), False),
    ],
)
def test_allow_list_patterns(host: str, patterns: tuple[str, ...], allowed: bool) -> None:
    assert _allowed(host, patterns) is allowed


def test_status_classes_and_refusals() -> None:
    assert [s for s in (200, 301, 400, 404, 410, 429, 500, 503, 599) if retried(s)] == [
        429, 500, 503, 599]  # fmt: skip
    message = "refused GET http://10.0.0.1/: a private address; if this is intended, pass "
    exc = refused(errors.HttpRefused(message + "--http-allow-host 10.0.0.1 to x"))
    assert str(exc) == "refused GET http://10.0.0.1/: a private address"
    assert exc.details == {"advice": "pass --http-allow-host 10.0.0.1 to x"}
    assert isinstance(network_error(httpx.ConnectError("down"), "GET x"), Retryable)
    assert isinstance(network_error(httpx.TooManyRedirects("loop"), "GET x"), Rejected)


def _recording(configs: dict[str, dict[str, Any]]) -> RunContext:
    clock = ClockSpec(start=datetime(2026, 11, 2, 6, tzinfo=UTC))
    return RunContext(Environment(clock=clock, seed=1, tenant_id="acme"), connectors=configs.get)


def test_a_connector_is_recorded_with_its_secrets_redacted_and_replayed_as_recorded() -> None:
    real = {"secret": "whsec_x", "url": "https://h.example", "headers": {"authorization": "B t"}}
    ctx = _recording({"hooks": real})
    assert ctx.connector("hooks") == real  # the live run gets the real values
    recorded = ctx.recorded_environment()
    kept = {"secret": "[redacted]", "url": "https://h.example",
            "headers": {"authorization": "[redacted]"}}  # fmt: skip
    assert recorded.connectors == {"hooks": kept}
    assert "whsec_x" not in recorded.model_dump_json()
    replaying = RunContext(recorded, mode="replay")
    assert replaying.connector("hooks") == recorded.connectors["hooks"]
    with pytest.raises(errors.ConnectorNotFound, match="'other' was not read by the recorded run"):
        replaying.connector("other")


def test_every_header_and_url_credential_of_a_connector_is_kept_out_of_the_record() -> None:
    """Headers the HTTP policy treats as secret but the record's key-name redactor would not
    (`x-hub-signature`, `tokenid`), and a URL's userinfo and query values."""
    real = {"url": "https://user:pw-S1@h.example/p?api_key=S2&v=1",
            "headers": {"x-hub-signature": "S3", "tokenid": "S4", "accept": "json"}}  # fmt: skip
    ctx = _recording({"api": real})
    assert ctx.connector("api") == real
    stored = ctx.recorded_environment().model_dump_json()
    for secret in ("pw-S1", "S2", "S3", "S4"):
        assert secret not in stored
    assert "h.example/p" in stored  # where it went stays readable


def test_a_missing_or_misnamed_connector_fails_without_retry() -> None:
    ctx = _recording({})
    with pytest.raises(errors.ConnectorNotFound, match="JOBFORGE_CONNECTOR_HOOKS_ACME"):
        ctx.connector("hooks.acme")
    with pytest.raises(errors.ConnectorNotFound, match="is invalid"):
        ctx.connector("Hooks!")
    assert issubclass(errors.ConnectorNotFound, errors.NonRetryable)
    # a run that read none stores its environment as it always did
    assert "connectors" not in ctx.recorded_environment().model_dump(mode="json")


def test_a_connector_from_the_environment_must_be_a_json_object() -> None:
    from jobforge.queue.connectors import from_env

    env = {"JOBFORGE_CONNECTOR_HOOKS": '{"secret": "s", "tenants": ["acme"]}'}
    assert from_env("hooks", env, "acme") == {"secret": "s"}
    assert from_env("hooks", env, "globex") is None  # another tenant's: not found
    everyone = {"JOBFORGE_CONNECTOR_HOOKS": '{"secret": "s", "tenants": "*"}'}
    assert from_env("hooks", everyone, "globex") == {"secret": "s"}
    assert from_env("hooks", {}, "acme") is None
    with pytest.raises(errors.ConnectorNotFound, match="must hold a JSON object") as caught:
        from_env("hooks", {"JOBFORGE_CONNECTOR_HOOKS": "whsec_plain"}, "acme")
    assert "whsec_plain" not in str(caught.value)
    for served in ("", '"acme"', "[]", "[1]"):  # no tenants named: any tenant could use it
        bad = {
            "JOBFORGE_CONNECTOR_HOOKS": '{"secret": "s"'
            + (f', "tenants": {served}' if served else "")
            + "}"
        }
        with pytest.raises(errors.ConnectorNotFound, match="must name the tenants it serves"):
            from_env("hooks", bad, "acme")


def test_report_rows_from_queue_jobs_are_valid_report_input() -> None:
    from types import SimpleNamespace

    from jobforge.runners.report import rows_of
    from jobforge.states import JobState

    made = datetime(2026, 11, 1, 8, tzinfo=UTC)
    jobs = [SimpleNamespace(id=i, type="a", status=JobState.SUCCEEDED, attempts=1,
                            created_at=made, finished_at=made) for i in (2, 1)]  # fmt: skip
    rows = rows_of(jobs)
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0] == {"id": 1, "type": "a", "state": "succeeded", "attempts": 1,
                       "created_at": "2026-11-01T08:00:00Z",
                       "finished_at": "2026-11-01T08:00:00Z"}  # fmt: skip
    ReportIn.model_validate({"window_start": "2026-11-01T00:00:00Z",
                             "window_end": "2026-11-02T00:00:00Z", "jobs": rows})  # fmt: skip


def test_a_report_type_that_a_spreadsheet_would_run_is_quoted() -> None:
    from jobforge.runners.report import _not_a_formula

    for hostile in ('=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx"):
        assert _not_a_formula(hostile) == "'" + hostile
    assert _not_a_formula("billing.invoice") == "billing.invoice"
    assert _not_a_formula("*") == "*"


def test_a_webhook_connector_that_names_its_hosts_signs_for_them_only() -> None:
    from jobforge.runners.webhook import _check_destination

    pinned = {"secret": "whsec_x", "url": "https://hooks.example.com/in"}
    _check_destination(pinned, "hooks", "https://hooks.example.com/other")  # same origin: fine
    _check_destination(pinned, "hooks", "https://HOOKS.example.com.:443/x")
    others = ("https://evil.example.net/in", "http://hooks.example.com/in",
              "https://hooks.example.com:8443/in", "https://evil.example.net@x.test/")  # fmt: skip
    for elsewhere in others:  # another host, plain http, another port, userinfo
        with pytest.raises(Rejected, match=r"connector hooks signs for https://hooks\.example\.com "
                           r"only"):  # fmt: skip
            _check_destination(pinned, "hooks", elsewhere)
    listed = {"secret": "whsec_x", "allow_hosts": ["*.example.com"]}
    _check_destination(listed, "hooks", "https://a.example.com/in")
    for elsewhere in ("https://example.org/in", "https://example.com/in", "https://aexample.com/"):
        with pytest.raises(Rejected, match=r"signs for \*\.example\.com only"):
            _check_destination(listed, "hooks", elsewhere)
    anywhere = {"secret": "whsec_x", "allow_hosts": ["*"]}  # any host, said so
    _check_destination(anywhere, "hooks", "https://anywhere.test/in")


@pytest.mark.parametrize(
    "config",
    [{"secret": "whsec_x"}, {"secret": "whsec_x", "allow_hosts": []},
     {"secret": "whsec_x", "url": "not a url"}, {"secret": "whsec_x", "url": None},
     {"secret": "whsec_x", "url": "ftp://hooks.example.com/"},
     {"secret": "whsec_x", "url": "https://hooks.example.com/", "allow_hosts": []}],
    ids=["neither", "empty-list", "url-without-host", "url-null", "url-not-http",
         "empty-list-beats-url"],
)  # fmt: skip
def test_a_webhook_connector_that_names_no_host_signs_for_none(config: dict[str, Any]) -> None:
    """Fail closed: a connector naming no host would have any data signed and sent anywhere."""
    from jobforge.runners.webhook import _check_destination

    for url in ("https://anywhere.test/in", "http://127.0.0.1:9/in", "https://hooks.example.com/"):
        with pytest.raises(Rejected, match=r"connector hooks names no host to sign for: give it "
                           r"allow_hosts \(or an http\(s\) url\); \[\"\*\"\] signs for any "
                           r"host"):  # fmt: skip
            _check_destination(config, "hooks", url)


@pytest.mark.parametrize("hosts", [["*."], ["."], ["a.example.com", "*"], [" * "], ["*x.com"],
                                   ["*.*.example.com"], ["*.", "a.example.com"]])  # fmt: skip
def test_a_wildcard_other_than_a_lone_star_or_subdomains_signs_for_none(hosts: list[str]) -> None:
    """`["*"]` alone is any host; any other star (or an empty name) is a mistake, refused."""
    from jobforge.runners.webhook import _check_destination

    with pytest.raises(Rejected, match=r"connector hooks's allow_hosts: '.*' is not a host name"):
        _check_destination({"secret": "whsec_x", "allow_hosts": hosts}, "hooks", "https://e.test/")


def test_connectors_test_refuses_a_secret_that_names_no_host() -> None:
    """`jobforge connectors set` and `test` say so before any delivery fails for it: the same
    reading of the config as the runner's."""
    from jobforge.runners.checks import problems

    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    no_host = "it names no host to sign for"
    for config in ({"secret": secret}, {"secret": secret, "allow_hosts": []},
                   {"secret": secret, "url": "https://a.example/", "allow_hosts": []}):  # fmt: skip
        assert any(no_host in p for p in problems(config)), config
    assert problems({"secret": secret, "url": "ftp://x"}) == [
        "url: must be an absolute http:// or https:// URL"
    ]
    for hosts in (["*."], ["."], ["a.example", "*"]):
        assert any("is not a host name" in p for p in problems({"secret": secret,
                                                                "allow_hosts": hosts}))  # fmt: skip
    assert problems({"secret": secret, "url": "https://hooks.example.com/in"}) == []
    assert problems({"secret": secret, "allow_hosts": ["*"]}) == []
    assert problems({"secret": secret, "allow_hosts": ["*.example.com"]}) == []
    assert problems({"headers": {"authorization": "Bearer t"}, "allow_hosts": ["a.example"]}) == []
    # host lists are read alike with or without a secret; the entry is quoted as given
    assert problems({"allow_hosts": ["*", "a.example"]}) == [
        'allow_hosts: \'*\' is not a host name or *.domain ("*" alone, as ["*"], is any host)'
    ]
    assert problems({"secret": secret, "allow_hosts": ["A.example", "*."]}) == [
        'allow_hosts: \'*.\' is not a host name or *.domain ("*" alone, as ["*"], is any host)'
    ]
    assert problems({"headers": {"authorization": "Bearer t"}, "allow_hosts": ["*"]}) == [
        'allow_hosts ["*"] names no host for the headers: the http runner sends a connector\'s '
        "headers (credentials) to the hosts it names only"
    ]
