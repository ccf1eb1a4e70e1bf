"""Signed jobs against a real database and the real worker, with real ed25519 keys: a valid
signature runs; every way a job can fail its signatures is refused before the handler runs
(the side-effect counter stays 0), failed and not retried, the reason and key id in its event
log; key rotation keeps old and new valid during the overlap and refuses the old key once it is
revoked. Plus the key registry's own refusals (operator only, key ids never reused)."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ValidationError

from jobforge import db, errors, trust
from jobforge.contracts import RUNNERS, runner
from jobforge.produce import sign_job
from jobforge.provision import ClonePool, Database, Template
from jobforge.queue import AsyncQueueClient, JobSignature, NewJob, QueueClient, signing
from jobforge.replay.bundle import from_record
from jobforge.replay.engine import Target, replay
from jobforge.worker import Recorder, Registry, WorkerConfig, drain, drain_async
from jobforge.worker.runners import register_runner

TENANT = "acme"
#: what the handler did: one entry per run (the side effect a refused job must never have)
EFFECTS: list[str] = []


class PayIn(BaseModel):
    amount: int


class PayOut(BaseModel):
    paid: int


@runner("signed.pay", version="1.0.0", input=PayIn, output=PayOut, signed=True, timeout_s=30)
def pay(inp: PayIn, ctx: Any) -> PayOut:
    EFFECTS.append(f"paid {inp.amount}")
    return PayOut(paid=inp.amount)


@runner("signed.other", version="1.0.0", input=PayIn, output=PayOut, signed=True)
def other(inp: PayIn, ctx: Any) -> PayOut:
    EFFECTS.append(f"other {inp.amount}")
    return PayOut(paid=inp.amount)


@pytest.fixture(autouse=True)
def _no_effects() -> Iterator[None]:
    EFFECTS.clear()
    yield
    EFFECTS.clear()


@pytest.fixture
def queue(jobforge_db: Database) -> Iterator[QueueClient]:
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as client:
        yield client


@dataclass(frozen=True)
class Operator:
    """The key registry's operator calls for one tenant (as the database's owner)."""

    dsn: str
    tenant: str = TENANT

    def add(self, key_id: str, public: bytes, owner: str = "billing", **kw: Any) -> str:
        with db.connect(self.dsn) as conn:
            return signing.add_key(conn, self.tenant, key_id, public, owner, **kw)

    def revoke(self, key_id: str, **kw: Any) -> bool:
        with db.connect(self.dsn) as conn:
            return signing.revoke_key(conn, self.tenant, key_id, **kw)

    def rotate(self, old: str, key_id: str, public: bytes, **kw: Any) -> datetime:
        with db.connect(self.dsn) as conn:
            return signing.rotate_key(conn, self.tenant, old, key_id, public, **kw)


@pytest.fixture
def op(jobforge_db: Database) -> Operator:
    return Operator(jobforge_db.dsn)


def registered(op: Operator, key_id: str, **kw: Any) -> trust.keys.Ed25519PrivateKey:
    key = trust.generate_private_key()
    assert op.add(key_id, trust.public_key_bytes(key), **kw) == "added"
    return key


def drained(db: Database, config: WorkerConfig | None = None) -> None:
    """Run the real worker, with the recorder, until nothing is left to do."""
    registry = Registry()
    for runner_id in ("signed.pay", "signed.other"):
        register_runner(registry, RUNNERS[runner_id])

    async def go() -> None:
        client = await AsyncQueueClient.connect(db.dsn)
        try:
            await drain_async(client, registry, config or QUIET, middleware=[Recorder(client)])
        finally:
            await client.close()

    asyncio.run(go())


QUIET = WorkerConfig(prune_every_s=None, schedules_every_s=None)


def refusal(queue: QueueClient, job_id: int, *, created: bool = True) -> dict[str, Any]:
    """The job's `failed` event's error, after checking it failed once, not retried."""
    job = queue.get(job_id)
    assert job.status == "failed", job
    kinds = [e.kind for e in queue.events(job_id) if e.kind != "created" or created]
    assert kinds[-2:] == ["claimed", "failed"], kinds  # claimed once, failed: not retried
    assert kinds.count("claimed") == 1, kinds
    (failed,) = [e for e in queue.events(job_id) if e.kind == "failed"]
    error: dict[str, Any] = failed.data["error"]
    assert error["kind"] == "refused"
    return error


def job(amount: int = 5, **kw: Any) -> NewJob:
    return NewJob(type="signed.pay", payload={"amount": amount}, **kw)


def test_a_valid_signature_runs_and_its_run_record_names_the_key(
    jobforge_db: Database, queue: QueueClient, op: Operator
) -> None:
    key = registered(op, "billing-1")
    (done,) = queue.enqueue_many([sign_job(job(timeout_s=5), TENANT, key, "billing-1")])
    drained(jobforge_db)
    assert queue.get(done.job_id).status == "succeeded"
    assert EFFECTS == ["paid 5"]
    (run,) = queue.runs(done.job_id)
    admission = run["admission"]
    assert admission["signatures"]["key_ids"] == ["billing-1"]
    assert admission["timeout"] == {"seconds": 5.0, "source": "job"}
    signature = sign_job(job(timeout_s=5), TENANT, key, "billing-1").signatures[0].signature
    assert signature[:20] not in json.dumps(run)  # key ids and times, never signature bytes


@pytest.mark.parametrize("case", ["tampered_input", "tampered_type", "wrong_tenant",
                                  "unknown_key", "revoked_key", "expired", "forged",
                                  "not_yet_valid_key", "tampered_attempts"])  # fmt: skip
def test_a_bad_signature_is_refused_before_the_handler_runs(
    jobforge_db: Database, queue: QueueClient, case: str, op: Operator
) -> None:
    key = registered(op, "billing-1")
    signed = sign_job(job(), TENANT, key, "billing-1")
    expected = ("bad_signature", "billing-1")
    if case == "tampered_input":
        signed = signed.model_copy(update={"payload": {"amount": 5000}})
    elif case == "tampered_type":  # a signature for one runner used for another
        signed = signed.model_copy(update={"type": "signed.other"})
    elif case == "tampered_attempts":
        signed = signed.model_copy(update={"max_attempts": 9})
    elif case == "wrong_tenant":  # signed for another tenant, with that tenant's key
        signed = sign_job(job(), "globex", key, "billing-1")
    elif case == "unknown_key":
        stranger = trust.generate_private_key()
        signed = sign_job(job(), TENANT, stranger, "stranger-1")
        expected = ("unknown_key", "stranger-1")
    elif case == "revoked_key":
        assert op.revoke("billing-1", reason="leaked")
        expected = ("revoked_key", "billing-1")
    elif case == "expired":
        long_ago = datetime.now(UTC) - timedelta(hours=2)
        signed = sign_job(job(), TENANT, key, "billing-1", issued_at=long_ago,
                          expires_at=long_ago + timedelta(minutes=5))  # fmt: skip
        expected = ("signature_expired", None)  # type: ignore[assignment]
    elif case == "forged":  # a second, forged signature beside a good one
        forger = trust.generate_private_key()
        forged = sign_job(signed.model_copy(update={"signatures": ()}), TENANT, forger)
        fake = forged.signatures[0].model_copy(update={"key_id": "billing-1"})
        signed = signed.model_copy(update={"signatures": (*signed.signatures, fake)})
    elif case == "not_yet_valid_key":
        later = registered(op, "billing-2", valid_from=datetime.now(UTC) + timedelta(days=1))
        signed = sign_job(job(), TENANT, later, "billing-2")
        expected = ("key_not_yet_valid", "billing-2")
    (done,) = queue.enqueue_many([signed])
    drained(jobforge_db)
    assert EFFECTS == []
    error = refusal(queue, done.job_id)
    assert (error["reason"], error.get("key_id")) == expected, error
    assert error["message"]


def test_a_row_inserted_directly_with_sql_is_refused(
    jobforge_db: Database, queue: QueueClient, op: Operator
) -> None:
    """Written into the table by hand (as the owner, past every function): once with no
    envelope, once with a signature copied from another job. Neither runs."""
    key = registered(op, "billing-1")
    genuine = sign_job(job(1), TENANT, key, "billing-1")
    copied = genuine.envelope()
    with jobforge_db.connect() as conn:
        ids = [conn.execute(
            "INSERT INTO jobforge.jobs (tenant_id, type, payload, payload_hash, run_at, "
            "created_at, updated_at, envelope) VALUES (%s, 'signed.pay', %s, %s, now(), now(), "
            "now(), %s) RETURNING id",
            (TENANT, Jsonb({"amount": 999}), "sha256:" + "0" * 64, envelope),
        ).fetchone()[0] for envelope in (None, Jsonb(copied))]  # type: ignore[index]  # fmt: skip
    drained(jobforge_db)
    assert EFFECTS == []
    assert refusal(queue, ids[0], created=False)["reason"] == "unsigned"
    forged = refusal(queue, ids[1], created=False)
    assert (forged["reason"], forged["key_id"]) == ("bad_signature", "billing-1")


def test_a_signed_envelope_runs_one_job(
    jobforge_db: Database, queue: QueueClient, op: Operator
) -> None:
    """The signing payload names no job: the same type, input and envelope enqueued again (in
    another project, so no idempotency key stops it) is refused as a replay, the first runs."""
    key = registered(op, "billing-1")
    signed = sign_job(job(7), TENANT, key, "billing-1")
    (first,) = queue.enqueue_many([signed])
    drained(jobforge_db)
    (again,) = queue.enqueue_many([signed.model_copy(update={"project": "elsewhere"})])
    drained(jobforge_db)
    assert EFFECTS == ["paid 7"]
    assert queue.get(first.job_id).status == "succeeded"
    assert refusal(queue, again.job_id)["reason"] == "signature_replayed"


def test_key_rotation_overlap_then_revocation(
    jobforge_db: Database, queue: QueueClient, op: Operator
) -> None:
    old = registered(op, "billing-1")
    new = trust.generate_private_key()
    until = op.rotate("billing-1", "billing-2", trust.public_key_bytes(new),
                                     overlap_s=3600)  # fmt: skip
    assert until > datetime.now(UTC) + timedelta(minutes=59)
    during = queue.enqueue_many([sign_job(job(1), TENANT, old, "billing-1"),
                                 sign_job(job(2), TENANT, new, "billing-2")])  # fmt: skip
    drained(jobforge_db)
    assert sorted(EFFECTS) == ["paid 1", "paid 2"]
    assert [queue.get(d.job_id).status for d in during] == ["succeeded", "succeeded"]
    EFFECTS.clear()
    assert op.revoke("billing-1", reason="rotated out")
    assert not op.revoke("billing-1")  # revoked once, for good
    after = queue.enqueue_many([sign_job(job(3), TENANT, old, "billing-1"),
                                sign_job(job(4), TENANT, new, "billing-2")])  # fmt: skip
    drained(jobforge_db)
    assert EFFECTS == ["paid 4"]
    error = refusal(queue, after[0].job_id)
    assert (error["reason"], error["key_id"]) == ("revoked_key", "billing-1")
    keys = {k.key_id: k for k in queue.signing_keys()}
    assert keys["billing-1"].revoked_reason == "rotated out"
    assert keys["billing-2"].revoked_at is None


def test_the_deployment_may_require_signatures_for_every_job(
    jobforge_db: Database, queue: QueueClient
) -> None:
    ran: list[int] = []
    registry = Registry()
    registry.register("plain.job", lambda payload, ctx: ran.append(payload["n"]))
    queue.enqueue("plain.job", {"n": 1})
    config = WorkerConfig(require_signatures=True, prune_every_s=None, schedules_every_s=None)
    drain(jobforge_db.dsn, registry, config)
    assert ran == []
    (job_row,) = queue.list_jobs().jobs
    assert job_row.status == "failed"
    assert job_row.error["reason"] == "unsigned"


def test_per_job_timeout_within_the_runners_bound(jobforge_db: Database,
                                                  queue: QueueClient) -> None:  # fmt: skip
    """The job's own timeout applies within the bound; above it the bound applies, and the
    timeout's source is said; a job that names none runs under the default."""
    import time

    registry = Registry()
    registry.register("slow.job", lambda payload, ctx: time.sleep(payload["s"]), timeout_s=0.5)
    registry.register("free.job", lambda payload, ctx: time.sleep(payload["s"]))
    quick = queue.enqueue("slow.job", {"s": 0.3}, timeout_s=0.1, max_attempts=1)
    capped = queue.enqueue("slow.job", {"s": 0.8}, timeout_s=100, max_attempts=1)
    default = queue.enqueue("free.job", {"s": 0.4}, max_attempts=1)
    config = WorkerConfig(default_timeout_s=0.2, prune_every_s=None, schedules_every_s=None)
    drain(jobforge_db.dsn, registry, config)
    messages = {d.job_id: queue.get(d.job_id).error["message"] for d in (quick, capped, default)}
    assert messages[quick.job_id].endswith("timeout of 0.1 s (job's)"), messages
    assert messages[capped.job_id].endswith("timeout of 0.5 s (runner's)"), messages
    assert messages[default.job_id].endswith("timeout of 0.2 s (default's)"), messages


def test_an_infinite_timeout_means_none_and_the_job_ends(jobforge_db: Database,
                                                       queue: QueueClient) -> None:  # fmt: skip
    """An infinite timeout, the deployment's or a job's own (a tenant can store 1e400 as the
    envelope's timeout_s, which Python reads as infinity), means none: the job runs and its
    outcome is recorded. Arming such a timer used to raise before the outcome was recorded,
    leaving the job running and its lease heartbeated for good."""
    registry = Registry()
    registry.register("free.job", lambda payload, ctx: payload["n"])
    job = queue.enqueue("free.job", {"n": 7}, max_attempts=1)
    with jobforge_db.connect() as owner:
        owner.execute(
            "UPDATE jobforge.jobs SET envelope = jsonb_build_object('timeout_s', "
            "1e400::numeric + 0.5) WHERE id = %s",
            (job.job_id,),
        )
        owner.commit()
    config = WorkerConfig(default_timeout_s=math.inf, prune_every_s=None, schedules_every_s=None)
    drain(jobforge_db.dsn, registry, config)
    assert queue.get(job.job_id).status == "succeeded"
    assert queue.result(job.job_id) == 7


# -- the registry's own refusals --------------------------------------------------------------


@pytest.fixture
def app_dsn(jobforge_db: Database) -> Iterator[str]:
    name = f"jf_sign_app_{secrets.token_hex(4)}"
    with jobforge_db.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_app").format(
            sql.Identifier(name)))  # fmt: skip
    yield make_conninfo(jobforge_db.dsn, user=name)
    with jobforge_db.connect() as admin:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_a_tenant_login_cannot_register_or_revoke_keys(
    jobforge_db: Database, queue: QueueClient, app_dsn: str, op: Operator
) -> None:
    """The login that enqueues must not be able to add the key it then signs with, nor write
    the table past the functions; it reads its own tenant's keys, not another's."""
    registered(op, "billing-1")
    registered(Operator(jobforge_db.dsn, "globex"), "globex-1")
    public = trust.public_key_bytes(trust.generate_private_key())
    calls = (
        ("SELECT jobforge.signing_key_add_v1('mine', %s, 'attacker')", (public,)),
        ("SELECT jobforge.signing_key_revoke_v1('billing-1')", ()),
        ("SELECT jobforge.signing_key_rotate_v1('billing-1', 'mine', %s, 'x')", (public,)),
        ("INSERT INTO jobforge.signing_keys (tenant_id, key_id, public_key, owner, valid_from, "
         "created_at) VALUES ('acme', 'mine', %s, 'x', now(), now())", (public,)),
        ("UPDATE jobforge.signing_keys SET revoked_at = NULL", ()),
    )  # fmt: skip
    with QueueClient.connect(app_dsn, tenant=TENANT) as app:
        for call, args in calls:
            with app.transaction() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(call, args)
        assert [k.key_id for k in app.signing_keys()] == ["billing-1"]
    # past the app role, the function checks the caller itself: one line, not a traceback
    refused = pytest.raises(errors.ConfigurationError, match="only an operator may add keys")
    with db.connect(app_dsn) as conn, refused, db.readable_or("only an operator may add keys"):
        signing.add_key(conn, TENANT, "mine", public, "attacker")


def test_a_key_id_is_never_reused_for_another_key(queue: QueueClient, op: Operator) -> None:
    key = registered(op, "billing-1")
    assert op.add("billing-1", trust.public_key_bytes(key), "billing") == "unchanged"
    with pytest.raises(errors.SigningKeyConflict, match="never reused"):
        op.add("billing-1", trust.public_key_bytes(trust.generate_private_key()),
                              "billing")  # fmt: skip
    with pytest.raises(errors.SigningKeyConflict, match="already registered"):
        op.add("billing-9", trust.public_key_bytes(key), "billing")
    with pytest.raises(errors.JobNotFound, match="no signing key"):
        op.revoke("nope")
    op.revoke("billing-1")
    with pytest.raises(errors.SigningKeyConflict, match="revoked"):
        op.rotate("billing-1", "billing-2",
                                 trust.public_key_bytes(trust.generate_private_key()))  # fmt: skip


def test_a_malformed_envelope_is_refused_at_enqueue(queue: QueueClient) -> None:
    with pytest.raises(ValidationError, match="timeout_s"):
        NewJob(type="signed.pay", payload={}, timeout_s=-1)
    with pytest.raises(ValidationError, match="issued_at"):
        NewJob(type="signed.pay", payload={},
               signatures=(JobSignature(key_id="k", signature="A" * 86),))  # fmt: skip
    with queue.transaction() as conn, pytest.raises(psycopg.Error, match="envelope") as caught:
        conn.execute("SELECT * FROM jobforge.enqueue_v1(ARRAY['signed.pay'], "
                     "ARRAY['{}'::jsonb], p_envelopes => ARRAY['[1]'::jsonb])")  # fmt: skip
    assert caught.value.sqlstate == "JF006"


def test_replay_of_a_signed_run_verifies_nothing_new_and_says_so(
    jobforge_db: Database, jobforge_template: Template, queue: QueueClient, op: Operator
) -> None:
    """The bundle of a signed run carries what admitted it (key ids, no signature bytes); its
    replay, on another database where no key is registered, runs the recorded input as recorded
    and the report says nothing was verified again."""
    key = registered(op, "billing-1")
    (done,) = queue.enqueue_many([sign_job(job(9), TENANT, key, "billing-1")])
    drained(jobforge_db)
    (run,) = queue.runs(done.job_id)
    bundle = from_record(run)
    assert bundle.admission is not None
    assert bundle.admission["signatures"]["key_ids"] == ["billing-1"]
    assert '"admission"' in bundle.model_dump_json()
    pool = ClonePool(jobforge_template, ahead=1, threads=1)
    database = pool.acquire()
    try:
        (result,) = replay([Target("signed", bundle)], {"signed.pay": RUNNERS["signed.pay"]},
                           database.dsn)  # fmt: skip
    finally:
        pool.release(database)
        pool.close()
    assert result.verdict == "identical", result.report()
    assert "admitted when recorded by signatures of key billing-1" in result.report()
    assert "replay verifies nothing new" in result.report()
    assert result.record is not None
    assert "admission" not in result.record  # the replayed run claims no admission of its own
