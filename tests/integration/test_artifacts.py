"""Artifacts (migrations/0017) on a real database, through the real worker: a 5 MB artifact
written by a runner round-trips with the same sha256 (through the store and written out as a
file), the run's log lines are stored redacted, another tenant's login cannot read a byte of it,
a write without the attempt's lease token is refused, a corrupt blob is refused on read, and a
prune deletes the blobs no run references and only those."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from pydantic import BaseModel

from jobforge import errors
from jobforge.contracts import RUNNERS, runner
from jobforge.golden import Recorder
from jobforge.provision import Database
from jobforge.queue import QueueClient
from jobforge.queue.artifact_files import Wanted, write_all
from jobforge.queue.blobs import LOGS_NAME, digest
from jobforge.queue.models import StoredArtifact
from jobforge.queue.retention import prune, prune_blobs
from jobforge.queue.store import Fence, PostgresStore
from jobforge.runtime.context import RunContext
from jobforge.worker import Registry, Worker, WorkerConfig, drain
from jobforge.worker.runners import register_runner
from tests.integration.conftest import new_app_login
from tests.records import run_write

BIG = 5 * 1024 * 1024 + 12_345  # 5 MB and a partial last chunk
DIGEST = "sha256:" + "0" * 64
log = logging.getLogger("tests.artifacts")
#: A hand-made record for jobs claimed here (no runner).
MANUAL = {"format": "jobforge.run/1", "runner_id": "art.manual", "runner_version": "1",
          "status": "succeeded", "input": {"sha256": DIGEST}, "trace_sha256": DIGEST}  # fmt: skip


class BigIn(BaseModel):
    seed: int
    api_key: str | None = None


class BigOut(BaseModel):
    size: int


def big_bytes(seed: int) -> bytes:
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < BIG:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:BIG])


@runner("art.big", version="1.0.0", input=BigIn, output=BigOut, artifacts=["out/big.bin"])
def write_big(inp: BigIn, ctx: RunContext) -> BigOut:
    data = big_bytes(inp.seed)
    ctx.artifact("out/big.bin", data)
    ctx.artifact("small.txt", "hello\n")
    log.warning("calling upstream with api_key=%s and key %s", inp.api_key, inp.api_key)
    return BigOut(size=len(data))


def _registry() -> Registry:
    registry = Registry()
    register_runner(registry, RUNNERS["art.big"])
    return registry


@pytest.fixture
def acme(jobforge_db: Database) -> Iterator[QueueClient]:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        yield client


def run_big(db: Database, queue: QueueClient, seed: int = 1) -> int:
    job = queue.enqueue("art.big", {"seed": seed, "api_key": "sk-live-TOPSECRET"})
    report = drain(db.dsn, _registry(), middleware=[Recorder()])
    assert report.counts["succeeded"] == 1
    return job.job_id


def test_a_5mb_artifact_round_trips_through_the_worker_with_the_same_hash(
    jobforge_db: Database, acme: QueueClient, tmp_path: Path
) -> None:
    job_id = run_big(jobforge_db, acme)
    expected = digest(big_bytes(1))
    (record,) = acme.runs(job_id)
    recorded = {a["name"]: a for a in record["artifacts"]}
    assert recorded["out/big.bin"]["sha256"] == expected
    assert recorded["out/big.bin"]["size"] == BIG
    assert recorded["out/big.bin"]["content"] is None  # too big to keep inline
    assert recorded["small.txt"]["content"] == "hello\n"  # small ones stay inline too
    refs = {a.name: a for a in acme.job_artifacts(job_id)}
    assert set(refs) == {"out/big.bin", "small.txt", LOGS_NAME}
    assert (refs["out/big.bin"].sha256, refs["out/big.bin"].size) == (expected, BIG)
    store = PostgresStore(acme)
    assert store.exists("acme", expected)
    assert digest(store.get("acme", expected)) == expected
    # chunked in the database: 6 rows of at most 1 MiB, none the whole blob
    with jobforge_db.connect() as owner:
        sizes = owner.execute(
            "SELECT octet_length(data) FROM jobforge.artifact_chunks WHERE sha256 = %s "
            "ORDER BY seq", (expected,)).fetchall()  # fmt: skip
    assert [s for (s,) in sizes] == [1024 * 1024] * 5 + [BIG - 5 * 1024 * 1024]
    # written out as files: the same bytes
    wanted = [Wanted(a.name, a.sha256, a.size) for a in refs.values()]
    written = write_all(store, "acme", wanted, tmp_path / "out", force=False)
    assert {w.name for w in written} == set(refs)
    assert digest((tmp_path / "out" / "out/big.bin").read_bytes()) == expected


def test_the_run_s_log_lines_are_stored_redacted(jobforge_db: Database, acme: QueueClient) -> None:
    job_id = run_big(jobforge_db, acme)
    (record,) = acme.runs(job_id)
    assert record["logs"]["name"] == LOGS_NAME
    assert LOGS_NAME not in {a["name"] for a in record["artifacts"]}  # never compared
    lines = PostgresStore(acme).get("acme", record["logs"]["sha256"]).decode()
    assert "calling upstream" in lines
    assert "TOPSECRET" not in lines
    assert "[redacted]" in lines


def test_the_same_bytes_of_two_tenants_are_two_blobs(
    jobforge_db: Database, acme: QueueClient
) -> None:
    run_big(jobforge_db, acme)
    with QueueClient.connect(jobforge_db.dsn, tenant="globex") as globex:
        run_big(jobforge_db, globex)
    with jobforge_db.connect() as owner:
        tenants = owner.execute(
            "SELECT tenant_id FROM jobforge.artifact_blobs WHERE sha256 = %s ORDER BY 1",
            (digest(big_bytes(1)),)).fetchall()  # fmt: skip
    assert tenants == [("acme",), ("globex",)]


def test_another_tenant_s_login_cannot_read_the_artifact(
    jobforge_db: Database, acme: QueueClient
) -> None:
    job_id = run_big(jobforge_db, acme)
    sha = digest(big_bytes(1))
    with new_app_login(jobforge_db, ["globex"]) as url:
        with QueueClient.connect(url, tenant="globex") as globex:
            store = PostgresStore(globex)
            assert not store.exists("globex", sha)
            with pytest.raises(errors.ArtifactNotFound):
                store.get("globex", sha)
            with pytest.raises(errors.TenantRequired):
                store.get("acme", sha)  # the client refuses another tenant up front
            with pytest.raises(errors.JobNotFound):
                globex.job_artifacts(job_id)
        with psycopg.connect(url, autocommit=True) as conn:  # the raw tables, as that login
            for tenant in ("", "globex", "acme"):  # acme: not a tenant this login is bound to
                conn.execute("SELECT set_config('jobforge.tenant', %s, false)", (tenant,))
                for table in ("artifact_blobs", "artifact_chunks", "artifact_refs"):
                    count = conn.execute(f"SELECT count(*) FROM jobforge.{table}").fetchone()
                    assert count == (0,), (tenant, table)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "SELECT jobforge.artifact_begin_v1('w', 1, %s, 'globex', %s, 1)",
                    (uuid.uuid4(), sha),
                )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM jobforge.artifact_chunks")


def _claimed(dsn: str, tenant: str) -> tuple[QueueClient, int, uuid.UUID]:
    with QueueClient.connect(dsn, tenant=tenant) as queue:
        job_id = queue.enqueue("art.manual", {}).job_id
    worker = QueueClient.connect(dsn)
    (job,) = worker.claim("w", 1, types=["art.manual"])
    assert job.lease_token is not None
    return worker, job_id, job.lease_token


def test_a_write_without_the_lease_token_is_refused(jobforge_db: Database) -> None:
    worker, job_id, token = _claimed(jobforge_db.dsn, "acme")
    with worker:
        forged = PostgresStore(worker, Fence("w", job_id, uuid.uuid4()))
        with pytest.raises(errors.LeaseLost):
            forged.put("acme", b"forged bytes")
        other = PostgresStore(worker, Fence("another-worker", job_id, token))
        with pytest.raises(errors.LeaseLost):
            other.put("acme", b"forged bytes")
        with pytest.raises(errors.ArtifactError):
            PostgresStore(worker).put("acme", b"no fence at all")
        real = PostgresStore(worker, Fence("w", job_id, token))
        with pytest.raises(errors.InvalidJob, match="another tenant"):
            real.put("globex", b"into another tenant")  # the tenant is the attempt's
        sha = real.put("acme", b"the real bytes")
        assert real.exists("acme", sha)
        with jobforge_db.connect() as owner:
            assert owner.execute("SELECT count(*) FROM jobforge.artifact_blobs").fetchone() == (1,)
        # once the run is recorded, the attempt stores nothing more
        document = {"format": "jobforge.run/1", "runner_id": "art.manual",
                    "runner_version": "1", "status": "succeeded", "input": {"sha256": DIGEST},
                    "trace_sha256": DIGEST}  # fmt: skip
        assert worker.record_run("w", job_id, token, run_write(document))
        with pytest.raises(errors.LeaseLost):
            real.put("acme", b"after the record")


def test_the_database_checks_chunks_and_references(jobforge_db: Database) -> None:
    worker, job_id, token = _claimed(jobforge_db.dsn, "acme")
    sha = digest(b"x" * 10)
    with worker, worker.transaction(worker=True) as conn:
        args = ("w", job_id, token)
        assert conn.execute(
            "SELECT jobforge.artifact_begin_v1(%s, %s, %s, 'acme', %s, 10)", (*args, sha)
        ).fetchone() == ("send",)
        with pytest.raises(psycopg.Error, match="is 3 bytes, not 10"), conn.transaction():
            conn.execute("SELECT jobforge.artifact_chunk_v1(%s, %s, %s, %s, 0, %s)",
                         (*args, sha, b"xxx"))  # fmt: skip
        with pytest.raises(psycopg.Error, match="out of range"), conn.transaction():
            conn.execute("SELECT jobforge.artifact_chunk_v1(%s, %s, %s, %s, 1, %s)",
                         (*args, sha, b"x" * 10))  # fmt: skip
        with pytest.raises(psycopg.Error, match="has 0 of 1 chunks"), conn.transaction():
            conn.execute("SELECT jobforge.artifact_finish_v1(%s, %s, %s, %s)", (*args, sha))
        with pytest.raises(psycopg.Error, match="is not stored complete"), conn.transaction():
            conn.execute(
                "SELECT jobforge.record_run_v2(%s, %s, %s, 'art.manual', '1', 'succeeded', "
                "%s, NULL, %s, %s, ARRAY['a.txt'], ARRAY[%s], ARRAY[10::bigint])",
                (*args, DIGEST, DIGEST, '{"format": "jobforge.run/1"}', sha),
            )


def test_a_corrupt_blob_is_refused_and_leaves_no_file(
    jobforge_db: Database, acme: QueueClient, tmp_path: Path
) -> None:
    job_id = run_big(jobforge_db, acme)
    sha = digest(big_bytes(1))
    with jobforge_db.connect() as owner:
        owner.execute(
            "UPDATE jobforge.artifact_chunks SET data = overlay(data placing '\\x00'::bytea "
            "from 7) WHERE sha256 = %s AND seq = 3", (sha,))  # fmt: skip
    store = PostgresStore(acme)
    with pytest.raises(errors.ArtifactCorrupt, match="hash to sha256:"):
        store.get("acme", sha)
    refs = [a for a in acme.job_artifacts(job_id) if a.name == "out/big.bin"]
    with pytest.raises(errors.ArtifactCorrupt):
        write_all(store, "acme", [Wanted(a.name, a.sha256, a.size) for a in refs],
                  tmp_path, force=False)  # fmt: skip
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_prune_deletes_the_blobs_no_run_references_and_only_those(
    jobforge_db: Database, acme: QueueClient
) -> None:
    first = run_big(jobforge_db, acme, seed=1)
    second = run_big(jobforge_db, acme, seed=2)  # shares small.txt with the first
    with jobforge_db.connect() as owner:
        owner.execute("UPDATE jobforge.settings SET caller_clock = true")
        owner.execute("UPDATE jobforge.artifact_blobs SET touched_at = now() - interval '2 hours'")
        owner.execute(
            "UPDATE jobforge.jobs SET finished_at = now() - interval '40 days' WHERE id = %s",
            (first,),
        )
    with QueueClient.connect(jobforge_db.dsn) as operator:
        # a blob stored a moment ago with no run yet (a worker about to record) is kept
        worker, job_id, token = _claimed(jobforge_db.dsn, "acme")
        with worker:
            fresh = PostgresStore(worker, Fence("w", job_id, token)).put("acme", b"in flight")
        pruned = prune(operator, older_than=timedelta(days=30), throttle=0)
    assert pruned.jobs == 1
    assert pruned.blobs == 2  # the first run's big blob and its log lines
    assert pruned.blob_bytes > BIG
    store = PostgresStore(acme)
    assert not store.exists("acme", digest(big_bytes(1)))
    assert store.exists("acme", digest(big_bytes(2)))
    assert store.exists("acme", digest(b"hello\n"))  # still the second run's
    assert store.exists("acme", fresh)
    assert {a.name for a in acme.job_artifacts(second)} == {"out/big.bin", "small.txt", LOGS_NAME}
    with QueueClient.connect(jobforge_db.dsn) as operator:  # once past its grace, it goes
        later = datetime.now(UTC) + timedelta(hours=2)
        assert prune_blobs(operator, throttle=0, now=later).blobs == 1
        assert prune_blobs(operator, throttle=0, now=later).blobs == 0
    assert not store.exists("acme", fresh)
    assert store.exists("acme", digest(big_bytes(2)))


def test_an_app_login_cannot_prune_blobs(jobforge_db: Database) -> None:
    with new_app_login(jobforge_db, ["acme"]) as url, QueueClient.connect(url) as client:
        with pytest.raises(psycopg.Error) as info:
            prune_blobs(client, throttle=0)
        assert info.value.sqlstate == "42501"


def test_a_record_cannot_reference_another_tenant_s_blob(jobforge_db: Database) -> None:
    theirs, their_job, their_token = _claimed(jobforge_db.dsn, "globex")
    with theirs:
        sha = PostgresStore(theirs, Fence("w", their_job, their_token)).put("globex", b"theirs")
    worker, job_id, token = _claimed(jobforge_db.dsn, "acme")
    document = MANUAL
    with worker, pytest.raises(errors.InvalidJob, match="is not stored complete"):
        worker.record_run("w", job_id, token, run_write(document, [("x.txt", sha, 6)]))
    with jobforge_db.connect() as owner:
        assert owner.execute("SELECT count(*) FROM jobforge.job_runs").fetchone() == (0,)
        assert owner.execute("SELECT count(*) FROM jobforge.artifact_refs").fetchone() == (0,)


def test_a_reference_with_another_size_or_a_bad_name_is_refused(jobforge_db: Database) -> None:
    worker, job_id, token = _claimed(jobforge_db.dsn, "acme")
    document = MANUAL
    with worker:
        sha = PostgresStore(worker, Fence("w", job_id, token)).put("acme", b"twelve bytes")
        cases = {
            "is not stored complete": [("a.txt", sha, 13)],
            "artifact name '../a.txt' is invalid": [("../a.txt", sha, 12)],
            "artifact name '/a' is invalid": [("/a", sha, 12)],
            "given twice": [("a.txt", sha, 12), ("a.txt", sha, 12)],
        }
        for message, artifacts in cases.items():
            with pytest.raises(errors.InvalidJob, match=message):
                worker.record_run("w", job_id, token, run_write(document, artifacts))
        assert worker.record_run("w", job_id, token, run_write(document, [("a.txt", sha, 12)]))


class LogIn(BaseModel):
    n: int


@runner("art.chatty", version="1.0.0", input=LogIn, output=BigOut)
async def chatty(inp: LogIn, ctx: RunContext) -> BigOut:
    for i in range(20):
        log.warning("job-marker-%d line %d", inp.n, i)
        await asyncio.sleep(0.001)  # the runs interleave on the loop
    return BigOut(size=inp.n)


def test_concurrent_runs_keep_their_own_log_lines(jobforge_db: Database, acme: QueueClient) -> None:
    registry = Registry()
    register_runner(registry, RUNNERS["art.chatty"])
    jobs = {n: acme.enqueue("art.chatty", {"n": n}).job_id for n in range(4)}
    report = drain(jobforge_db.dsn, registry, WorkerConfig(concurrency=4),
                   middleware=[Recorder()])  # fmt: skip
    assert report.counts["succeeded"] == 4
    store = PostgresStore(acme)
    for n, job_id in jobs.items():
        (record,) = acme.runs(job_id)
        lines = [json.loads(x) for x in store.get("acme", record["logs"]["sha256"]).splitlines()]
        assert [line["message"] for line in lines] == [
            f"job-marker-{n} line {i}" for i in range(20)
        ]


def test_a_worker_s_prune_pass_deletes_the_blobs_of_the_runs_it_pruned(
    jobforge_db: Database, acme: QueueClient
) -> None:
    job_id = run_big(jobforge_db, acme)
    with jobforge_db.connect() as owner:
        owner.execute("UPDATE jobforge.artifact_blobs SET touched_at = now() - interval '2 hours'")
        owner.execute(
            "UPDATE jobforge.jobs SET finished_at = now() - interval '40 days' WHERE id = %s",
            (job_id,),
        )
    config = WorkerConfig(name="pruner", types=["art.none"], prune_every_s=0.2,
                          poll_min_s=0.05, poll_max_s=0.1)  # fmt: skip

    def blobs() -> int:
        with jobforge_db.connect() as owner:
            row = owner.execute("SELECT count(*) FROM jobforge.artifact_blobs").fetchone()
        return int(row[0]) if row else -1

    async def until_pruned() -> None:
        idle = Registry()
        idle.register("art.none", lambda payload, ctx: None)
        worker = Worker(jobforge_db.dsn, idle, config)
        running = asyncio.ensure_future(worker.run())
        for _ in range(200):
            await asyncio.sleep(0.05)
            if blobs() == 0:
                break
        worker.stop()
        await running

    assert blobs() == 3
    asyncio.run(until_pruned())
    assert blobs() == 0


def test_a_one_chunk_put_is_hashed_by_the_server_and_a_big_one_is_fenced_too(
    jobforge_db: Database,
) -> None:
    worker, job_id, token = _claimed(jobforge_db.dsn, "acme")
    with worker, worker.transaction(worker=True) as conn:
        with pytest.raises(psycopg.Error, match="the bytes hash to sha256:"), conn.transaction():
            conn.execute(
                "SELECT jobforge.artifact_put_v1(%s, %s, %s, 'acme', %s, %s)",
                ("w", job_id, token, digest(b"claimed"), b"actual"),
            )
        big = b"x" * (1024 * 1024 + 1)
        with pytest.raises(psycopg.Error, match="takes 0 to 1048576 bytes"), conn.transaction():
            conn.execute(
                "SELECT jobforge.artifact_put_v1(%s, %s, %s, 'acme', %s, %s)",
                ("w", job_id, token, digest(big), big),
            )
    with QueueClient.connect(jobforge_db.dsn) as other:
        forged = PostgresStore(other, Fence("w", job_id, uuid.uuid4()))
        with pytest.raises(errors.LeaseLost):
            forged.put("acme", big_bytes(3))  # the chunked path: refused at its first step
        assert PostgresStore(other, Fence("w", job_id, token)).put("acme", b"") == digest(b"")
    with jobforge_db.connect() as owner:
        assert owner.execute(
            "SELECT sha256, size, complete FROM jobforge.artifact_blobs"
        ).fetchall() == [(digest(b""), 0, True)]


def test_small_artifacts_are_stored_with_the_record_and_hashed_by_the_database(
    jobforge_db: Database,
) -> None:
    worker, job_id, token = _claimed(jobforge_db.dsn, "acme")
    good = StoredArtifact("a.txt", digest(b"abc"), 3, b"abc")
    cases = {
        "are not of its sha256 and size": [StoredArtifact("a.txt", digest(b"abc"), 3, b"abd")],
        "are not of its sha256": [StoredArtifact("a.txt", digest(b"abc"), 4, b"abc")],
        "or more than one chunk": [
            StoredArtifact(
                "a.txt", digest(b"x" * ((1 << 20) + 1)), (1 << 20) + 1, b"x" * ((1 << 20) + 1)
            )
        ],
    }
    with worker:
        for message, artifacts in cases.items():
            written = dataclasses.replace(run_write(MANUAL), artifacts=tuple(artifacts))
            with pytest.raises(errors.InvalidJob, match=message):
                worker.record_run("w", job_id, token, written)
        empty = StoredArtifact("empty.txt", digest(b""), 0, b"")
        written = dataclasses.replace(run_write(MANUAL), artifacts=(good, empty))
        assert worker.record_run("w", job_id, token, written)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as acme:
        store = PostgresStore(acme)
        assert store.get("acme", good.sha256) == b"abc"
        assert store.get("acme", empty.sha256) == b""
        refs = {a.name: (a.sha256, a.size) for a in acme.job_artifacts(job_id)}
    assert refs == {"a.txt": (good.sha256, 3), "empty.txt": (empty.sha256, 0)}


def test_two_workers_storing_the_same_big_blob_at_once_store_it_once(
    jobforge_db: Database,
) -> None:
    data = big_bytes(7)[: 3 * 1024 * 1024 + 5]
    fences = []
    for _ in range(2):
        worker, job_id, token = _claimed(jobforge_db.dsn, "acme")
        worker.close()
        fences.append(Fence("w", job_id, token))
    results: list[str | BaseException] = []

    def put(fence: Fence) -> None:
        with QueueClient.connect(jobforge_db.dsn) as client:
            try:
                results.append(PostgresStore(client, fence).put("acme", data))
            except BaseException as exc:  # reported below
                results.append(exc)

    threads = [threading.Thread(target=put, args=(f,)) for f in fences]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [digest(data)] * 2
    with jobforge_db.connect() as owner:
        assert owner.execute(
            "SELECT count(*), bool_and(complete) FROM jobforge.artifact_blobs"
        ).fetchone() == (1, True)
        assert owner.execute("SELECT count(*) FROM jobforge.artifact_chunks").fetchone() == (4,)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as acme:
        assert PostgresStore(acme).get("acme", digest(data)) == data


def test_a_dry_prune_counts_orphans_and_a_tenant_s_prune_keeps_to_its_tenant(
    jobforge_db: Database,
) -> None:
    orphans = {}
    for tenant in ("acme", "globex"):
        worker, job_id, token = _claimed(jobforge_db.dsn, tenant)
        with worker:
            orphans[tenant] = PostgresStore(worker, Fence("w", job_id, token)).put(
                tenant, f"orphan of {tenant}".encode()
            )
    later = datetime.now(UTC) + timedelta(hours=2)
    with jobforge_db.connect() as owner:
        owner.execute("UPDATE jobforge.settings SET caller_clock = true")
    with QueueClient.connect(jobforge_db.dsn) as operator:
        dry = prune_blobs(operator, dry_run=True, throttle=0, now=later)
        assert (dry.blobs, dry.blob_bytes) == (2, len(b"orphan of acme") + len(b"orphan of globex"))
        assert prune_blobs(operator, tenant="acme", throttle=0, now=later).blobs == 1
    with jobforge_db.connect() as owner:
        left = owner.execute("SELECT tenant_id FROM jobforge.artifact_blobs").fetchall()
    assert left == [("globex",)]


CALLS: list[int] = []


@runner("art.fail-once", version="1.0.0", input=LogIn, output=BigOut)
def fail_once(inp: LogIn, ctx: RunContext) -> BigOut:
    CALLS.append(inp.n)
    ctx.artifact("out.txt", f"call {len(CALLS)}\n")
    if len(CALLS) == 1:
        raise errors.NonRetryable("the first call fails")
    return BigOut(size=len(CALLS))


def test_each_run_of_a_repeated_attempt_number_keeps_its_own_artifacts(
    jobforge_db: Database, acme: QueueClient
) -> None:
    CALLS.clear()
    registry = Registry()
    register_runner(registry, RUNNERS["art.fail-once"])
    job_id = acme.enqueue("art.fail-once", {"n": 1}).job_id
    drain(jobforge_db.dsn, registry, middleware=[Recorder()])
    acme.reschedule(job_id, reset_attempts=True)
    drain(jobforge_db.dsn, registry, middleware=[Recorder()])
    found = acme.job_artifacts(job_id)
    assert [(a.attempt, a.name) for a in found] == [(1, "out.txt"), (1, "out.txt")]
    first, second = found
    assert first.run_id < second.run_id
    store = PostgresStore(acme)
    assert store.get("acme", first.sha256) == b"call 1\n"
    assert store.get("acme", second.sha256) == b"call 2\n"
