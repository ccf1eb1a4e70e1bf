"""The dashboard over HTTP (Starlette's TestClient, the real app on a real database): pages read
through the session's tenant only, every POST needs the session's CSRF token, actions write the
audit trail with the session's actor, user data is text, and sign-in is by token or header."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from jobforge import errors
from jobforge.dashboard.app import create_app
from jobforge.dashboard.auth import Identity, load_tokens, token_digest
from jobforge.provision import Database, Server
from jobforge.queue import QueueClient
from tests.dashboard_support import HOSTILE, Seeded, config, seed


@pytest.fixture
def seeded(jobforge_db: Database) -> Seeded:
    return seed(jobforge_db.dsn)


@pytest.fixture
def acme(jobforge_db: Database, seeded: Seeded) -> Iterator[TestClient]:
    with TestClient(create_app(config(jobforge_db.dsn))) as client:
        yield client


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def test_overview_counts_oldest_due_and_chart(acme: TestClient, seeded: Seeded) -> None:
    page = acme.get("/")
    assert page.status_code == 200
    text = page.text
    assert 'data-testid="tenant">acme<' in text
    assert f"job {seeded.due}</a>" in text  # the oldest due job
    assert "dash.ledger" in text
    assert "dash.quote" in text
    assert "dash.later" in text
    assert "<svg" in text
    assert 'class="ok"' in text
    assert "Z-9" not in text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_jobs_filter_by_state_type_and_time_with_keyset_pages(
    acme: TestClient, seeded: Seeded
) -> None:
    dead = acme.get("/jobs", params={"state": "dead"}).text
    assert all(f'data-job="{i}"' in dead for i in seeded.dead)
    assert f'data-job="{seeded.job_id}"' not in dead
    typed = acme.get("/jobs", params={"type": "dash.quote"}).text
    assert f'data-job="{seeded.job_id}"' in typed
    assert f'data-job="{seeded.dead[0]}"' not in typed
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert 'data-testid="empty"' in acme.get("/jobs", params={"since": future}).text
    # keyset: one page of the ids below the newest dead one
    older = acme.get("/jobs", params={"state": "dead", "before": str(seeded.dead[2])}).text
    assert f'data-job="{seeded.dead[2]}"' not in older
    assert f'data-job="{seeded.dead[0]}"' in older


def test_next_page_link_follows_the_keyset(jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        ids = [client.enqueue("dash.many", {"i": i}).job_id for i in range(53)]
    with TestClient(create_app(config(jobforge_db.dsn))) as web:
        first = web.get("/jobs").text
        link = re.search(r'href="([^"]+)" data-testid="next-page"', first)
        assert link is not None
        second = web.get(link.group(1).replace("&amp;", "&")).text
    assert f'data-job="{ids[-1]}"' in first
    assert f'data-job="{ids[2]}"' not in first
    assert f'data-job="{ids[2]}"' in second
    assert f'data-job="{ids[-1]}"' not in second
    assert 'data-testid="next-page"' not in second


@pytest.mark.parametrize(
    ("params", "why"),
    [({"state": "zombie"}, "is not a job state"), ({"since": "yesterday"}, "is not a time"),
     ({"before": "1; DROP"}, "is not a job id")],
)  # fmt: skip
def test_a_bad_filter_is_one_line_400(acme: TestClient, params: dict[str, str], why: str) -> None:
    page = acme.get("/jobs", params=params)
    assert page.status_code == 400
    assert why in page.text
    assert "Traceback" not in page.text


def test_job_page_shows_attempts_events_runs_and_escapes_input(
    acme: TestClient, seeded: Seeded
) -> None:
    page = acme.get(f"/jobs/{seeded.dead[1]}")
    assert page.status_code == 200
    assert HOSTILE not in page.text  # never markup
    assert "&lt;script&gt;" in page.text
    assert "the upstream ledger refused the entry" in page.text
    quote = acme.get(f"/jobs/{seeded.job_id}").text
    assert f'href="/runs/{seeded.run_id}"' in quote


def test_run_page_trace_why_artifacts_fingerprints(acme: TestClient, seeded: Seeded) -> None:
    page = acme.get(f"/runs/{seeded.run_id}").text
    assert 'data-testid="trace"' in page
    assert "discount" in page
    assert "bulk &gt;= 10" in page
    assert 'data-testid="fingerprints"' in page
    assert "sha256:" in page
    download = acme.get(f"/runs/{seeded.run_id}/artifacts/quote.txt")
    assert download.status_code == 200
    assert download.content == b"A-1 x12\n"
    assert download.headers["content-disposition"] == 'attachment; filename="quote.txt"'
    assert download.headers["content-type"] == "application/octet-stream"
    assert acme.get(f"/runs/{seeded.run_id}/artifacts/other.txt").status_code == 404


def test_another_tenants_job_run_and_artifact_are_404(acme: TestClient, seeded: Seeded) -> None:
    for url in (f"/jobs/{seeded.other_job}", f"/runs/{seeded.other_run}",
                f"/runs/{seeded.other_run}/artifacts/quote.txt", "/jobs/999999999"):  # fmt: skip
        page = acme.get(url)
        assert page.status_code == 404, url
        assert "Z-9" not in page.text
    # and no query parameter chooses the tenant
    assert "Z-9" not in acme.get("/jobs", params={"tenant": "other", "type": "dash.quote"}).text


def test_tenant_b_session_cannot_reach_tenant_a_job(jobforge_db: Database, seeded: Seeded) -> None:
    other = config(jobforge_db.dsn, tenant=Identity("other", "bob"))
    with TestClient(create_app(other)) as web:
        assert web.get(f"/jobs/{seeded.other_job}").status_code == 200
        assert web.get(f"/jobs/{seeded.job_id}").status_code == 404
        assert web.get(f"/runs/{seeded.run_id}").status_code == 404


def test_post_without_or_with_a_wrong_csrf_token_is_refused(
    acme: TestClient, seeded: Seeded, jobforge_db: Database
) -> None:
    acme.get("/dead")  # a session exists
    form = {"action": "retry", "reason": "forged", "job": [str(seeded.dead[0])]}
    assert acme.post("/jobs/action", data=form).status_code == 403
    assert acme.post("/jobs/action", data={**form, "csrf": "x" * 43}).status_code == 403
    # a token of another session is no better
    with TestClient(create_app(config(jobforge_db.dsn))) as stranger:
        theirs = _csrf(stranger.get("/dead").text)
    assert acme.post("/jobs/action", data={**form, "csrf": theirs}).status_code == 403
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        assert client.get(seeded.dead[0]).status.value == "dead"


def test_retry_selected_writes_the_audit_trail_with_the_sessions_actor(
    acme: TestClient, seeded: Seeded, jobforge_db: Database
) -> None:
    token = _csrf(acme.get("/dead").text)
    chosen = [*seeded.dead[:2], seeded.other_job]  # a forged id of another tenant: not touched
    answer = acme.post("/jobs/action", data={
        "csrf": token, "action": "retry", "reason": "ledger is back", "back": "/dead",
        "job": [str(i) for i in chosen],
    }, follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dead"
    shown = acme.get("/dead").text
    assert "retried 2 of 3 selected jobs" in shown
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        assert [client.get(i).status.value for i in seeded.dead] == ["queued", "queued", "dead"]
        trail = client.audit_list(since=datetime.now(UTC) - timedelta(minutes=5))
    assert {(e.job_id, e.actor, e.reason) for e in trail} == {
        (seeded.dead[0], "alice", "ledger is back"),
        (seeded.dead[1], "alice", "ledger is back"),
    }
    with QueueClient.connect(jobforge_db.dsn, tenant="other") as client:
        assert client.get(seeded.other_job).status.value == "succeeded"


def test_cancel_needs_a_reason_and_a_selection_and_goes_back_home_only(
    acme: TestClient, seeded: Seeded, jobforge_db: Database
) -> None:
    token = _csrf(acme.get("/jobs").text)
    base = {"csrf": token, "action": "cancel", "job": [str(seeded.due)]}
    assert "say why" in acme.post("/jobs/action", data={**base, "reason": " "}).text
    assert acme.post("/jobs/action", data={**base, "reason": "x", "job": []}).status_code == 400
    assert acme.post("/jobs/action", data={**base, "reason": "x", "action": "drop"}
                     ).status_code == 400  # fmt: skip
    hostile_back = {**base, "reason": "not needed", "back": "//evil.example/x"}
    done = acme.post("/jobs/action", data=hostile_back, follow_redirects=False)
    assert done.headers["location"] == "/jobs"
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        assert client.get(seeded.due).status.value == "canceled"


def test_token_login(jobforge_db: Database, seeded: Seeded, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [
        {"sha256": token_digest("s3cret-acme"), "tenant": "acme", "actor": "carol"},
        {"sha256": token_digest("s3cret-other"), "tenant": "other", "actor": "dan"},
    ]}))  # fmt: skip
    app = create_app(config(jobforge_db.dsn, tenant=None, tokens=load_tokens(tokens)))
    with TestClient(app) as web:
        assert web.get("/", follow_redirects=False).headers["location"] == "/login"
        token = _csrf(web.get("/login").text)
        assert web.post("/login", data={"csrf": token, "token": "guess"}).status_code == 401
        assert web.post("/login", data={"token": "s3cret-other"}).status_code == 403  # no CSRF
        signed = web.post("/login", data={"csrf": token, "token": "s3cret-other"},
                          follow_redirects=False)  # fmt: skip
        assert signed.status_code == 303
        assert 'data-testid="tenant">other<' in web.get("/").text
        assert web.get(f"/jobs/{seeded.job_id}").status_code == 404
        assert web.get(f"/jobs/{seeded.other_job}").status_code == 200
        token = _csrf(web.get("/").text)
        web.post("/logout", data={"csrf": token})
        assert web.get("/", follow_redirects=False).headers["location"] == "/login"


@pytest.mark.parametrize(
    ("content", "why"),
    [("{", "not a JSON file"), ('{"tokens": []}', 'expected {"tokens"'),
     ('{"tokens": [{"sha256": "abc", "tenant": "a", "actor": "b"}]}', "sha256 must be"),
     ('{"tokens": [{"sha256": "sha256:' + "0" * 64 + '", "tenant": "a b", "actor": "b"}]}',
      "is not a tenant id"),
     ('{"tokens": [{"sha256": "sha256:' + "0" * 64 + '", "tenant": "a", "actor": "b", '
      '"admin": true}]}', "unknown key 'admin'")],
)  # fmt: skip
def test_a_bad_tokens_file_is_one_line(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(errors.ConfigurationError, match=re.escape(why)):
        load_tokens(path)


def test_actor_from_a_proxy_header(jobforge_db: Database, seeded: Seeded) -> None:
    app = create_app(config(jobforge_db.dsn, actor_header="X-Forwarded-User"))
    with TestClient(app) as web:
        assert web.get("/").status_code == 401
        page = web.get("/dead", headers={"X-Forwarded-User": "erin"})
        assert "erin" in page.text
        web.post("/jobs/action", headers={"X-Forwarded-User": "erin"}, data={
            "csrf": _csrf(page.text), "action": "retry", "reason": "proxy",
            "job": [str(seeded.dead[2])],
        })  # fmt: skip
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        trail = client.audit_list(since=datetime.now(UTC) - timedelta(minutes=5))
    assert [(e.job_id, e.actor) for e in trail] == [(seeded.dead[2], "erin")]


def test_only_the_allowed_hosts_are_served(jobforge_db: Database, seeded: Seeded) -> None:
    """A page of 127.0.0.1 that answered any Host could be read by another site through DNS
    rebinding, CSRF token included."""
    app = create_app(config(jobforge_db.dsn, allowed_hosts=("127.0.0.1", "localhost")))
    with TestClient(app, base_url="http://127.0.0.1:8484") as web:
        assert web.get("/").status_code == 200
        assert web.get("/", headers={"host": "rebound.example"}).status_code == 400


def test_replay_needs_the_csrf_token(acme: TestClient, seeded: Seeded) -> None:
    acme.get(f"/runs/{seeded.run_id}")
    assert acme.post(f"/runs/{seeded.run_id}/replay").status_code == 403


def test_replay_of_a_runner_no_longer_declared_says_so(
    jobforge_db: Database, jobforge_server: Server, seeded: Seeded
) -> None:
    app = create_app(config(jobforge_db.dsn, jobforge_server.dsn, runners=dict))
    with TestClient(app) as web:
        token = _csrf(web.get(f"/runs/{seeded.run_id}").text)
        page = web.post(f"/runs/{seeded.run_id}/replay", data={"csrf": token})
        assert web.post(f"/runs/{seeded.other_run}/replay", data={"csrf": token}
                        ).status_code == 404  # fmt: skip
    assert page.status_code == 200
    assert 'data-testid="verdict">runner missing<' in page.text
    assert "dash.quote" in page.text


def test_replay_without_the_test_stack_is_one_line(
    acme: TestClient, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "deepdiff", None)  # as on a core install
    token = _csrf(acme.get(f"/runs/{seeded.run_id}").text)
    page = acme.post(f"/runs/{seeded.run_id}/replay", data={"csrf": token})
    assert page.status_code == 400
    assert "pip install &#39;jobforge[testing]&#39;" in page.text
