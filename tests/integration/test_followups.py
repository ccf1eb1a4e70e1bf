"""Follow-up jobs (`ctx.enqueue`) through the real worker and Postgres: enqueued in the same
transaction as the parent's completion, fenced on its lease, exactly once however often the
parent is retried or its finish repeated; nothing for a failed attempt, a lost lease or a
worker killed between the run and the finish."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from jobforge import errors
from jobforge.contracts import RUNNERS, runner
from jobforge.provision import Database
from jobforge.queue import FollowUp, Outcome, QueueClient
from jobforge.queue.catalogue import Declared, sync_runners
from jobforge.runtime.context import RunContext
from jobforge.worker import Recorder, Registry, WorkerConfig, drain
from jobforge.worker.runners import followup_key, register_runner
from tests.integration.conftest import new_app_login

ROOT = Path(__file__).resolve().parents[2]


class ParentIn(BaseModel):
    n: int
    fail_first: bool = False


class ChildIn(BaseModel):
    value: int


class Out(BaseModel):
    ok: bool


ATTEMPTS: dict[int, int] = {}


@runner("fu.parent", version="1.0.0", input=ParentIn, output=Out)
def parent(inp: ParentIn, ctx: RunContext) -> Out:
    ctx.enqueue("fu.child", {"value": inp.n})
    ctx.enqueue("fu.child", ChildIn(value=inp.n + 1), key=f"explicit-{inp.n}", priority=5)
    ATTEMPTS[inp.n] = ATTEMPTS.get(inp.n, 0) + 1
    if inp.fail_first and ctx.attempt == 1:
        raise RuntimeError("first attempt fails after asking for follow-ups")
    return Out(ok=True)


@runner("fu.child", version="1.0.0", input=ChildIn, output=Out, max_attempts=7)
def child(inp: ChildIn, ctx: RunContext) -> Out:
    return Out(ok=True)


@runner("fu.bad-child", version="1.0.0", input=ParentIn, output=Out)
def bad_child(inp: ParentIn, ctx: RunContext) -> Out:
    ctx.enqueue("fu.child", {"value": "not a number"})
    return Out(ok=True)


@runner("fu.other", version="1.0.0", input=ParentIn, output=Out)
def other(inp: ParentIn, ctx: RunContext) -> Out:
    ctx.enqueue("fu.elsewhere", {"anything": inp.n})  # a runner this process does not declare
    return Out(ok=True)


def _registry(*ids: str) -> Registry:
    registry = Registry()
    for runner_id in ids:
        register_runner(registry, RUNNERS[runner_id])
    return registry


def _children(database: Database, parent_id: int) -> list[tuple[Any, ...]]:
    with database.connect() as conn:
        rows = conn.execute(
            "SELECT type, payload, tenant_id, project, idempotency_key, priority, max_attempts, "
            "trace_id FROM jobforge.jobs WHERE parent_id = %s ORDER BY id",
            (parent_id,),
        ).fetchall()
    return [tuple(r) for r in rows]


def test_a_succeeded_parent_enqueues_its_follow_ups_once_with_its_tenant(
    jobforge_db: Database,
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        job = queue.enqueue("fu.parent", {"n": 1}, trace_id="trace-1").job_id
        drain(jobforge_db.dsn, _registry("fu.parent"), middleware=[Recorder()])
        assert queue.get(job).status == "succeeded"
        kids = _children(jobforge_db, job)
        assert kids == [
            ("fu.child", {"value": 1}, "acme", "default", followup_key(job, 0), 0, 7, "trace-1"),
            ("fu.child", {"value": 2}, "acme", "default", "explicit-1", 5, 7, "trace-1"),
        ]
        child_id = queue.list_jobs(type=["fu.child"]).jobs[-1].id
        assert queue.get(child_id).parent_id == job
        created = queue.events(child_id)[0]
        assert (created.kind, created.data) == ("created", {"parent_id": job})
        (record,) = queue.runs(job)
        assert [(e["runner_id"], e["input"], e["key"]) for e in record["effects"]] == [
            ("fu.child", {"value": 1}, None), ("fu.child", {"value": 2}, "explicit-1")]  # fmt: skip
        # the children run like any job
        drain(jobforge_db.dsn, _registry("fu.child"))
        assert {j.status for j in queue.list_jobs(type=["fu.child"]).jobs} == {"succeeded"}


def test_a_failed_attempt_enqueues_nothing_and_its_retry_enqueues_once(
    jobforge_db: Database,
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        job = queue.enqueue("fu.parent", {"n": 10, "fail_first": True}).job_id
        drain(jobforge_db.dsn, _registry("fu.parent"), WorkerConfig(max_jobs=1))
        assert queue.get(job).status == "queued"  # retry scheduled
        assert _children(jobforge_db, job) == []  # the failed attempt asked, nothing came
        _due_now(jobforge_db, job)
        drain(jobforge_db.dsn, _registry("fu.parent"))
        assert (queue.get(job).status, queue.get(job).attempts) == ("succeeded", 2)
        assert [k[4] for k in _children(jobforge_db, job)] == [followup_key(job, 0), "explicit-10"]


def _due_now(database: Database, job: int) -> None:
    """A retried job due at once (instead of after its backoff)."""
    with database.connect() as admin:
        admin.execute("SELECT set_config('jobforge.scope', 'worker', false)")
        admin.execute("UPDATE jobforge.jobs SET run_at = now() WHERE id = %s", (job,))


def _claimed(database: Database, tenant: str, payload: dict[str, Any]) -> tuple[int, Any]:
    with QueueClient.connect(database.dsn, tenant=tenant) as queue:
        job = queue.enqueue("fu.parent", payload).job_id
    with QueueClient.connect(database.dsn) as worker:
        (claimed,) = worker.claim("w1", 1, types=["fu.parent"])
    assert claimed.id == job
    assert claimed.lease_token is not None
    return job, claimed.lease_token


def _done(job: int, token: Any, *keys: str) -> Outcome:
    follow = tuple(FollowUp(type="fu.child", payload={"value": i}, idempotency_key=k)
                   for i, k in enumerate(keys))  # fmt: skip
    return Outcome(job_id=job, lease_token=token, outcome="succeeded", result={"ok": True},
                   followups=follow)  # fmt: skip


def test_a_finish_repeated_after_its_commit_enqueues_nothing_twice(jobforge_db: Database) -> None:
    job, token = _claimed(jobforge_db, "acme", {"n": 20})
    with QueueClient.connect(jobforge_db.dsn) as worker:
        assert worker.finish("w1", [_done(job, token, "k1", "k2")]) == {job: "succeeded"}
        assert worker.finish("w1", [_done(job, token, "k1", "k2")]) == {job: "lost"}
        # the same outcome listed twice in one batch: the first counts
        assert worker.finish_each("w1", [_done(job, token, "k1")] * 2) == ["lost", "lost"]
    assert [k[4] for k in _children(jobforge_db, job)] == ["k1", "k2"]


def test_whole_numbers_written_as_decimals_are_taken(jobforge_db: Database) -> None:
    """1.0 and 2e0 are whole numbers in JSON: accepted, stored as integers."""
    job, token = _claimed(jobforge_db, "acme", {"n": 21})
    with jobforge_db.connect() as conn, conn.transaction():
        conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
        rows = conn.execute(
            "SELECT job_id, state FROM jobforge.finish_followups_v1('w1', %s, %s, "
            "ARRAY['succeeded'], NULL, NULL, NULL, 1, 60, %s::jsonb)",
            ([job], [token], '[{"job": 1.0, "type": "fu.child", "payload": {}, "key": "d", '
                             '"priority": 1.0, "max_attempts": 2e0}]'),
        ).fetchall()  # fmt: skip
    assert rows == [(job, "succeeded")]
    assert [(k[4], k[5], k[6]) for k in _children(jobforge_db, job)] == [("d", 1, 2)]


def test_a_lost_lease_enqueues_nothing(jobforge_db: Database) -> None:
    job, token = _claimed(jobforge_db, "acme", {"n": 30})
    later = datetime.now(UTC) + timedelta(minutes=5)
    with QueueClient.connect(jobforge_db.dsn) as worker:
        assert worker.reap(now=later) == 1  # the lease expired: back to the queue
        assert worker.finish("w1", [_done(job, token, "k1")], now=later) == {job: "lost"}
        (again,) = worker.claim("w2", 1, types=["fu.parent"], now=later)
        assert again.id == job
        # the new holder's finish enqueues its own follow-ups; the old token still nothing
        assert worker.finish("w1", [_done(job, token, "k9")], now=later) == {job: "lost"}
        assert worker.finish("w2", [_done(job, again.lease_token, "k2")],
                             now=later) == {job: "succeeded"}  # fmt: skip
    assert [k[4] for k in _children(jobforge_db, job)] == ["k2"]


def test_follow_ups_of_other_outcomes_in_the_batch_are_not_sent(jobforge_db: Database) -> None:
    job, token = _claimed(jobforge_db, "acme", {"n": 40})
    failed = Outcome(job_id=job, lease_token=token, outcome="failed", error={"message": "x"},
                     followups=_done(job, token, "k1").followups)  # fmt: skip
    with QueueClient.connect(jobforge_db.dsn) as worker:
        assert worker.finish("w1", [failed]) == {job: "failed"}
    assert _children(jobforge_db, job) == []


KILLED = """
import os, signal, sys
sys.path.insert(0, {root!r})
from pydantic import BaseModel
from jobforge.contracts import runner
from jobforge.worker import Registry, WorkerConfig, drain
from jobforge.worker.runners import register_runner, runner_handler
from jobforge.contracts import RUNNERS

class In(BaseModel):
    n: int
    fail_first: bool = False

class Out(BaseModel):
    ok: bool

@runner("fu.parent", version="1.0.0", input=In, output=Out)
def parent(inp, ctx):
    ctx.enqueue("fu.child", {{"value": inp.n}})
    os.kill(os.getpid(), signal.SIGKILL)  # after the run asked, before any finish
    return Out(ok=True)

registry = Registry()
register_runner(registry, RUNNERS["fu.parent"])
drain(sys.argv[1], registry, WorkerConfig(completion_flush_s=0.0))
"""


def test_a_worker_killed_between_the_run_and_the_finish_enqueues_nothing(
    jobforge_db: Database,
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        job = queue.enqueue("fu.parent", {"n": 50}).job_id
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFORGE_")}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED.format(root=str(ROOT))), jobforge_db.dsn],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        assert queue.get(job).status == "running"
        assert _children(jobforge_db, job) == []
        later = datetime.now(UTC) + timedelta(minutes=5)
        with QueueClient.connect(jobforge_db.dsn) as worker:
            assert worker.reap(now=later) == 1
        # another worker takes the job again: its success enqueues the follow-up, once
        _due_now(jobforge_db, job)
        drain(jobforge_db.dsn, _registry("fu.parent"))
        assert queue.get(job).status == "succeeded"
    assert [k[4] for k in _children(jobforge_db, job)] == [followup_key(job, 0), "explicit-50"]


def test_an_invalid_follow_up_input_fails_the_parent_in_its_own_code(
    jobforge_db: Database,
) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        job = queue.enqueue("fu.bad-child", {"n": 1}).job_id
        drain(jobforge_db.dsn, _registry("fu.bad-child"))
        done = queue.get(job)
        assert done.status == "failed"
        assert "follow-up fu.child: the input is invalid: value:" in done.error["message"]
    assert _children(jobforge_db, job) == []


def test_a_follow_up_of_an_undeclared_runner_is_enqueued_as_given(jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        job = queue.enqueue("fu.other", {"n": 3}).job_id
        drain(jobforge_db.dsn, _registry("fu.other"))
        assert queue.get(job).status == "succeeded"
    assert [(k[0], k[1], k[6]) for k in _children(jobforge_db, job)] == [
        ("fu.elsewhere", {"anything": 3}, 3)]  # fmt: skip


def _catalogue(database: Database, runner_id: str, *, enabled: bool) -> None:
    schema = {"type": "object", "properties": {"value": {"type": "integer"}}}
    with database.connect() as conn:
        sync_runners(conn, [Declared(runner_id, "1.0.0", schema, {"type": "object"},
                                     "sha256:" + "1" * 64)])  # fmt: skip
        conn.execute("UPDATE jobforge.runner_catalogue SET enabled = %s WHERE runner_id = %s",
                     (enabled, runner_id))  # fmt: skip


def test_a_follow_up_of_a_disabled_runner_makes_the_parent_retry(jobforge_db: Database) -> None:
    _catalogue(jobforge_db, "fu.child", enabled=False)
    job, token = _claimed(jobforge_db, "acme", {"n": 60})
    with QueueClient.connect(jobforge_db.dsn) as worker:
        assert worker.finish("w1", [_done(job, token, "k1")]) == {job: "retry_scheduled"}
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        error = queue.get(job).error
    assert error["kind"] == "followup_rejected"
    assert error["message"] == "follow-up #1 cannot be enqueued: runner fu.child is disabled"
    assert _children(jobforge_db, job) == []


@pytest.mark.parametrize(
    ("followup", "message"),
    [
        ({"type": "Bad Type", "payload": {}, "key": "k"}, "its type 'Bad Type' is invalid"),
        ({"type": "fu.child", "payload": [], "key": "k"}, "its payload must be a JSON object"),
        ({"type": "fu.child", "payload": {}, "key": ""}, "its idempotency key must be 1-1000"),
        ({"type": "fu.child", "payload": {}, "key": "k", "priority": 40000},
         "its priority must be a whole number 0-32767"),
        ({"type": "fu.child", "payload": {}, "key": "k", "priority": "high"},
         "its priority must be a whole number 0-32767"),
        ({"type": "fu.child", "payload": {}, "key": "k", "max_attempts": 1.5},
         "its max_attempts must be a whole number 1-1000"),
        ({"type": "fu.child", "payload": {"n": 10**400}, "key": "k"},
         "its payload cannot be stored"),
    ],
)  # fmt: skip
def test_a_forged_follow_up_fails_only_its_parent(
    jobforge_db: Database, followup: dict[str, Any], message: str
) -> None:
    """What the worker's client would never send, sent by a worker login's own SQL: the parent
    fails with the reason; the other job of the batch finishes as it should."""
    job, token = _claimed(jobforge_db, "acme", {"n": 70})
    other, other_token = _claimed(jobforge_db, "acme", {"n": 71})
    with jobforge_db.connect() as conn, conn.transaction():
        conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
        rows = conn.execute(
            "SELECT job_id, state FROM jobforge.finish_followups_v1('w1', %s, %s, "
            "ARRAY['succeeded', 'succeeded'], NULL, NULL, NULL, 1, 60, %s)",
            ([job, other], [token, other_token],
             psycopg.types.json.Jsonb([{"job": 1, **followup},
                                       {"job": 2, "type": "fu.child", "payload": {"v": 1},
                                        "key": "fine"}])),
        ).fetchall()  # fmt: skip
    assert rows == [(job, "failed"), (other, "succeeded")]
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        assert message in queue.get(job).error["message"]
    assert _children(jobforge_db, job) == []
    assert [k[4] for k in _children(jobforge_db, other)] == ["fine"]


def test_a_key_taken_with_another_payload_fails_the_parent(jobforge_db: Database) -> None:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        queue.enqueue("fu.child", {"value": 999}, idempotency_key="taken")
    job, token = _claimed(jobforge_db, "acme", {"n": 80})
    with QueueClient.connect(jobforge_db.dsn) as worker:
        assert worker.finish("w1", [_done(job, token, "taken")]) == {job: "failed"}
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        assert "'taken' is already used by another job" in queue.get(job).error["message"]


def test_a_tenant_app_login_cannot_finish_with_follow_ups(jobforge_db: Database) -> None:
    job, token = _claimed(jobforge_db, "acme", {"n": 90})
    with (
        new_app_login(jobforge_db, ["acme"]) as url,
        psycopg.connect(url, autocommit=True) as c,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        c.execute(
            "SELECT * FROM jobforge.finish_followups_v1('w1', %s, %s, ARRAY['succeeded'], "
            "NULL, NULL, NULL, 1, 60, '[]')", ([job], [token]),
        )  # fmt: skip
    assert _children(jobforge_db, job) == []
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        assert queue.get(job).status == "running"


def test_errors_are_typed() -> None:
    assert errors.SQLSTATE_ERRORS["JF010"] is errors.RunnerDisabled


def test_a_result_the_database_rejects_enqueues_nothing(jobforge_db: Database) -> None:
    """finish_v1 turns a result over the limit into a failure: its follow-ups go with it."""
    job, token = _claimed(jobforge_db, "acme", {"n": 100})
    with jobforge_db.connect() as owner:
        owner.execute("UPDATE jobforge.settings SET max_result_bytes = 8")
    big = Outcome(job_id=job, lease_token=token, outcome="succeeded", result={"x": "y" * 100},
                  followups=_done(job, token, "k1").followups)  # fmt: skip
    with QueueClient.connect(jobforge_db.dsn) as worker:
        assert worker.finish("w1", [big]) == {job: "failed"}
    assert _children(jobforge_db, job) == []


@pytest.mark.parametrize(
    "followups",
    ['{"job": 1}', "[1]", '[{"job": "x"}]', '[{"job": 2}]', '[{"job": 0}]', '[{"job": 1.5}]',
     '[{"type": "fu.child"}]'],
)  # fmt: skip
def test_a_malformed_follow_up_list_is_refused_whole(jobforge_db: Database, followups: str) -> None:
    """The worker's client builds the list; one that is not of its shape is a caller's bug:
    JF006 in one line, and nothing changes (the job stays running)."""
    job, token = _claimed(jobforge_db, "acme", {"n": 110})
    with jobforge_db.connect() as conn, conn.transaction():
        conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
        with pytest.raises(psycopg.Error) as info:
            conn.execute(
                "SELECT * FROM jobforge.finish_followups_v1('w1', %s, %s, ARRAY['succeeded'], "
                "NULL, NULL, NULL, 1, 60, %s::jsonb)", ([job], [token], followups),
            )  # fmt: skip
    assert info.value.sqlstate == "JF006", info.value
    assert "follow-ups must be a JSON array of objects naming a job position 1-1" in str(info.value)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        assert queue.get(job).status == "running"
