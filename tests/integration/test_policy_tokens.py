"""Policy tokens against a real database and the real worker: a job of an action runner
(`requires_scopes`) runs only with a token for its tenant, action, audience and scopes, not
expired beyond the 60 s skew, never used by another job; each refusal happens before the
handler (the side-effect counter stays 0) with its reason in the job's event log. The run
record shows the token's claims and hash, never the token or a secret."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from jobforge import canonical, errors, trust
from jobforge.contracts import RUNNERS, runner
from jobforge.produce import check_job, runner_job
from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, NewJob, QueueClient
from jobforge.trust.keys import b64url
from jobforge.worker import Recorder, Registry, WorkerConfig, drain_async
from jobforge.worker.runners import register_runner

TENANT = "acme"
SECRET_OLD = b"o" * 32
SECRET_NEW = b"n" * 32
#: the worker verifies with both secrets (rotation), the issuer signs with the new one
KEYS = trust.TokenKeys.parse(f"new:{b64url(SECRET_NEW)},old:{b64url(SECRET_OLD)}", "payments")
EFFECTS: list[int] = []


class RefundIn(BaseModel):
    order: int


class RefundOut(BaseModel):
    refunded: int


@runner("tokens.refund", version="1.0.0", input=RefundIn, output=RefundOut,
        requires_scopes=["payments:refund", "orders:read"])  # fmt: skip
def refund(inp: RefundIn, ctx: Any) -> RefundOut:
    EFFECTS.append(inp.order)
    return RefundOut(refunded=inp.order)


@pytest.fixture(autouse=True)
def _no_effects() -> Iterator[None]:
    EFFECTS.clear()
    yield
    EFFECTS.clear()


@pytest.fixture
def queue(jobforge_db: Database) -> Iterator[QueueClient]:
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as client:
        yield client


def token(**kw: Any) -> str:
    fields: dict[str, Any] = {"tenant": TENANT, "action": "tokens.refund",
                              "scopes": ["payments:refund", "orders:read"]}  # fmt: skip
    fields.update(kw)
    keys = fields.pop("keys", KEYS)
    return trust.issue_token(keys, **fields)


def drained(db: Database, keys: trust.TokenKeys | None = KEYS) -> None:
    registry = Registry()
    register_runner(registry, RUNNERS["tokens.refund"])
    config = WorkerConfig(token_keys=keys, prune_every_s=None, schedules_every_s=None)

    async def go() -> None:
        client = await AsyncQueueClient.connect(db.dsn)
        try:
            await drain_async(client, registry, config, middleware=[Recorder(client)])
        finally:
            await client.close()

    asyncio.run(go())


def reason_of(queue: QueueClient, job_id: int) -> str:
    assert queue.get(job_id).status == "failed"
    (failed,) = [e for e in queue.events(job_id) if e.kind == "failed"]
    kinds = [e.kind for e in queue.events(job_id)]
    assert kinds[-2:] == ["claimed", "failed"], kinds  # claimed once, failed: not retried
    assert kinds.count("claimed") == 1, kinds
    reason: str = failed.data["error"]["reason"]
    return reason


def test_a_valid_token_runs_and_the_record_shows_claims_not_the_token(
    jobforge_db: Database, queue: QueueClient
) -> None:
    issued = token(jti="refund-1")
    done = queue.enqueue("tokens.refund", {"order": 7}, token=issued)
    drained(jobforge_db)
    assert EFFECTS == [7]
    (run,) = queue.runs(done.job_id)
    shown = run["admission"]["token"]
    assert shown["jti"] == "refund-1"
    assert shown["aud"] == "payments"
    assert shown["kid"] == "new"
    assert shown["scp"] == ["orders:read", "payments:refund"]
    assert shown["token_sha256"] == canonical.sha256_of(issued.encode())
    text = json.dumps(run)
    assert issued not in text
    assert issued.split(".")[2] not in text
    assert b64url(SECRET_NEW) not in text


@pytest.mark.parametrize("case", ["missing", "expired", "wrong_scope", "wrong_tenant",
                                  "wrong_audience", "wrong_action", "unknown_secret",
                                  "wrong_resource", "wrong_project"])  # fmt: skip
def test_a_bad_token_is_refused_before_the_handler_runs(
    jobforge_db: Database, queue: QueueClient, case: str
) -> None:
    now = time.time()
    given: str | None
    if case == "missing":
        given = None
    elif case == "expired":  # beyond the 60 s skew
        given = token(now=now - 400, ttl_s=300)
    elif case == "wrong_scope":
        given = token(scopes=["payments:refund"])
    elif case == "wrong_tenant":
        given = token(tenant="globex")
    elif case == "wrong_audience":
        given = token(audience="billing")
    elif case == "wrong_action":
        given = token(action="tokens.other")
    elif case == "unknown_secret":
        rogue = trust.TokenKeys({"new": b"r" * 32}, "new", "payments")
        given = token(keys=rogue)
    elif case == "wrong_resource":
        given = token(resource=canonical.hash_of({"order": 8}))
    else:
        given = token(project="elsewhere")
    done = queue.enqueue("tokens.refund", {"order": 7}, token=given)
    drained(jobforge_db)
    assert EFFECTS == []
    expected = {"missing": "token_missing", "expired": "token_expired",
                "wrong_scope": "token_scope", "wrong_tenant": "token_tenant",
                "wrong_audience": "token_audience", "wrong_action": "token_action",
                "unknown_secret": "token_bad_signature", "wrong_resource": "token_resource",
                "wrong_project": "token_project"}[case]  # fmt: skip
    assert reason_of(queue, done.job_id) == expected


def test_within_the_skew_rotation_and_resource_binding_still_run(
    jobforge_db: Database, queue: QueueClient
) -> None:
    """Expired 30 s ago (inside the skew), issued with the old secret (still verifying),
    bound to exactly this input: all three run."""
    old_keys = trust.TokenKeys({"old": SECRET_OLD}, "old", "payments")
    given = [token(now=time.time() - 330, ttl_s=300), token(keys=old_keys),
             token(resource=canonical.hash_of({"order": 3}))]  # fmt: skip
    for order, issued in enumerate(given, start=1):
        queue.enqueue("tokens.refund", {"order": order}, token=issued)
    drained(jobforge_db)
    assert sorted(EFFECTS) == [1, 2, 3]


def test_a_reused_jti_is_refused(jobforge_db: Database, queue: QueueClient) -> None:
    issued = token(jti="once")
    first = queue.enqueue("tokens.refund", {"order": 1}, token=issued)
    drained(jobforge_db)
    second = queue.enqueue("tokens.refund", {"order": 1}, token=issued, idempotency_key="again")
    drained(jobforge_db)
    assert EFFECTS == [1]
    assert queue.get(first.job_id).status == "succeeded"
    assert reason_of(queue, second.job_id) == "token_replayed"
    (failed,) = [e for e in queue.events(second.job_id) if e.kind == "failed"]
    assert f"job {first.job_id}" in failed.data["error"]["message"]


def test_a_worker_without_token_keys_refuses_action_jobs(
    jobforge_db: Database, queue: QueueClient
) -> None:
    done = queue.enqueue("tokens.refund", {"order": 1}, token=token())
    drained(jobforge_db, keys=None)
    assert EFFECTS == []
    assert reason_of(queue, done.job_id) == "token_unverifiable"


def test_the_producer_refuses_what_it_can_check_without_the_secret() -> None:
    definition = RUNNERS["tokens.refund"]
    job = runner_job(definition, {"order": 1})
    with pytest.raises(errors.InvalidJob, match="requires a policy token"):
        check_job(definition, job, tenant=TENANT)
    for bad, why in ((token(scopes=["orders:read"]), "lacks scope payments:refund"),
                     (token(tenant="globex"), "tenant 'globex'"),
                     (token(now=time.time() - 900), "expired")):  # fmt: skip
        with pytest.raises(errors.InvalidJob, match=why):
            check_job(definition, job.model_copy(update={"token": bad}), tenant=TENANT)
    check_job(definition, job.model_copy(update={"token": token()}), tenant=TENANT)
    with pytest.raises(errors.InvalidJob, match="above the runner's bound"):
        check_job(definition, NewJob(type="tokens.refund", payload={}, timeout_s=61,
                                     token=token()))  # fmt: skip


def test_token_keys_from_configuration_name_the_problem() -> None:
    with pytest.raises(errors.ConfigurationError, match="kid:base64url-secret"):
        trust.TokenKeys.from_env({"JOBFORGE_TOKEN_KEYS": "nokid"})
    with pytest.raises(errors.ConfigurationError, match="at least 32"):
        trust.TokenKeys.from_env({"JOBFORGE_TOKEN_KEYS": f"k:{b64url(b'short')}"})
    with pytest.raises(errors.ConfigurationError, match="given twice"):
        trust.TokenKeys.parse(f"k:{b64url(SECRET_OLD)},k:{b64url(SECRET_NEW)}")
    assert trust.TokenKeys.from_env({}) is None
    keys = trust.TokenKeys.from_env({"JOBFORGE_TOKEN_KEYS": f"a:{b64url(SECRET_OLD)}",
                                     "JOBFORGE_TOKEN_AUDIENCE": "payments"})  # fmt: skip
    assert keys is not None
    assert keys.audience == "payments"
    assert keys.signing == "a"


def test_token_uses_are_fenced_per_lease_and_per_tenant(jobforge_db: Database) -> None:
    """A jti is recorded only by the worker holding the job's lease; the same job using it
    again (a retried attempt) is the same use; another tenant's jti of the same text is its
    own; another job of the tenant is refused (JF013)."""
    jobs = {}
    for tenant in ("acme", "globex"):
        with QueueClient.connect(jobforge_db.dsn, tenant=tenant) as client:
            jobs[tenant] = [client.enqueue("tokens.raw", {"n": n}).job_id for n in range(2)]
    expires = datetime.now(UTC) + timedelta(minutes=5)
    with QueueClient.connect(jobforge_db.dsn) as worker:
        claimed = {j.id: j for j in worker.claim("w", 10, types=["tokens.raw"])}
        first, second = (claimed[i] for i in jobs["acme"])
        other = claimed[jobs["globex"][0]]
        assert first.lease_token is not None
        assert second.lease_token is not None
        assert worker.consume_token("w", first.id, uuid.uuid4(), "same", expires) == "lost"
        assert worker.consume_token("x", first.id, first.lease_token, "same", expires) == "lost"
        assert worker.consume_token("w", first.id, first.lease_token, "same", expires) == "ok"
        assert worker.consume_token("w", first.id, first.lease_token, "same", expires) == "ok"
        assert other.lease_token is not None
        assert worker.consume_token("w", other.id, other.lease_token, "same", expires) == "ok"
        with pytest.raises(errors.TokenReplayed, match=f"already used by job {first.id}"):
            worker.consume_token("w", second.id, second.lease_token, "same", expires)
    with (
        QueueClient.connect(jobforge_db.dsn, tenant="acme") as client,
        client.transaction() as conn,
    ):
        rows = conn.execute("SELECT tenant_id, jti, job_id FROM jobforge.token_uses").fetchall()
    assert rows == [("acme", "same", first.id)]  # the tenant's own uses only
