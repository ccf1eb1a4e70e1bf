"""`jobforge enqueue` and `jobforge jobs …` against a migrated development server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, Run

pytestmark = pytest.mark.slow


@pytest.fixture
def jf(cli: Cli) -> Callable[..., Run]:
    assert cli("db", "start").code == 0
    assert cli("migrate").code == 0

    def run(*args: str, tenant: str = "acme") -> Run:
        return cli(*args, env={"JOBFORGE_TENANT": tenant} if tenant else None)

    return run


def test_enqueue_list_show_cancel_retry(jf: Callable[..., Run]) -> None:
    first = jf("enqueue", "ops.scan", '{"target": "x"}', "--key", "k1", "--json")
    assert first.code == 0, first.err
    job_id = json.loads(first.out)["job_id"]
    again = json.loads(jf("enqueue", "ops.scan", '{"target": "x"}', "--key", "k1", "--json").out)
    assert again == {"job_id": job_id, "created": False}

    listed = json.loads(jf("jobs", "list", "--json").out)
    assert [j["id"] for j in listed["jobs"]] == [job_id]
    assert "ops.scan" in jf("jobs", "list").out

    shown = json.loads(jf("jobs", "show", str(job_id), "--json").out)
    assert shown["job"]["status"] == "queued"
    assert [e["kind"] for e in shown["events"]] == ["created"]

    assert json.loads(jf("jobs", "cancel", str(job_id), "--json").out)["status"] == "canceled"
    assert json.loads(jf("jobs", "retry", str(job_id), "--json").out)["status"] == "queued"
    events = [
        e["kind"] for e in json.loads(jf("jobs", "show", str(job_id), "--json").out)["events"]
    ]
    assert events == ["created", "canceled", "rescheduled"]
    assert "rescheduled" in jf("jobs", "show", str(job_id)).out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("enqueue", "ops.scan", "[1]"), 2, "must be a JSON object, not list"),
        (("enqueue", "ops.scan", "{nope"), 2, "not valid JSON"),
        (("enqueue", "ops.scan", "--priority", "-1"), 2, "priority: Input should be greater"),
        (("enqueue", "Bad Type"), 2, "type 'Bad Type' is invalid"),
        (
            ("enqueue", "ops.scan", "--payload-file", "/nonexistent.json"),
            2,
            "cannot read payload file",
        ),
        (("jobs", "cancel", "999"), 1, "job 999 not found"),
        (("jobs", "retry", "999"), 1, "job 999 not found"),
        (("jobs", "list", "--status", "bogus"), 2, "unknown status 'bogus'"),
    ],
)
def test_errors_are_one_line_and_write_nothing(
    jf: Callable[..., Run], args: tuple[str, ...], code: int, message: str
) -> None:
    result = jf(*args)
    assert result.code == code, result.err
    assert result.err.startswith("error:")
    assert message in result.err
    assert json.loads(jf("jobs", "list", "--json").out)["jobs"] == []


def test_an_idempotency_conflict_names_key_and_job(jf: Callable[..., Run]) -> None:
    job_id = json.loads(jf("enqueue", "ops.scan", '{"a": 1}', "--key", "k", "--json").out)["job_id"]
    result = jf("enqueue", "ops.scan", '{"a": 2}', "--key", "k")
    assert result.code == 1
    assert f"'k' is already used by job {job_id}" in result.err


def test_no_tenant_is_a_usage_error(jf: Callable[..., Run]) -> None:
    result = jf("jobs", "list", tenant="")
    assert result.code == 2
    assert "no tenant" in result.err


def test_another_tenant_sees_nothing(jf: Callable[..., Run], project: Path) -> None:
    job_id = json.loads(jf("enqueue", "ops.scan", "--json").out)["job_id"]
    assert json.loads(jf("jobs", "list", "--json", tenant="other").out)["jobs"] == []
    assert jf("jobs", "cancel", str(job_id), tenant="other").code == 1


def test_retrying_or_canceling_in_the_wrong_state_says_so_in_plain_english(
    jf: Callable[..., Run],
) -> None:
    job_id = json.loads(jf("enqueue", "ops.scan", "--json").out)["job_id"]
    result = jf("jobs", "retry", str(job_id))
    assert result.code == 1
    assert result.err.strip() == (
        f"error: job {job_id} is queued: only failed, dead or canceled jobs can be retried"
    )
    assert jf("jobs", "cancel", str(job_id)).out.strip() == f"job {job_id} canceled"
    # again: it is canceled, so the answer is the same
    assert jf("jobs", "cancel", str(job_id)).out.strip() == f"job {job_id} canceled"
