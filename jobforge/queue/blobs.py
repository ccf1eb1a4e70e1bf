"""The Postgres side of the artifact store (migrations/0017), as queue operations: the
statements each call runs, written once for the sync and the async client.

Writes are a worker's, fenced on the attempt's lease token: `store` sends a blob of one chunk in
one call (most artifacts), and a larger one in steps: it begins the blob (the database answers
whether the tenant holds it already), sends its chunks, each in a transaction of its own (a large
artifact is never one statement or one transaction), and finishes it. Reads are the
tenant's (row-level security) or, for a login allowed the worker scope without a tenant, any
tenant's; a blob is read a chunk per statement. Hashes are verified by the readers
(`jobforge.queue.store`), not here: this module moves bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from jobforge import errors
from jobforge.queue import calls
from jobforge.queue.models import StoredArtifact
from jobforge.queue.operations import Client, Statement, Steps

#: The chunk size the database takes (every chunk but a blob's last is exactly this long).
CHUNK_BYTES = 1024 * 1024
#: How long a blob no run references is kept after it was last stored: a worker stores its
#: blobs and then records its run; a prune in between must not take them.
DEFAULT_GRACE = timedelta(hours=1)
#: The reserved name of a run's captured log lines: outside the names a runner may give an
#: artifact (`[A-Za-z0-9_.-]` first), so it never clashes with one.
LOGS_NAME = "@logs.jsonl"


def digest(data: bytes) -> str:
    """`sha256:<hex>` of `data`, as every hash in jobforge is written."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class BlobInfo:
    size: int
    chunks: int
    complete: bool


@dataclass(frozen=True, slots=True)
class JobArtifact:
    """One artifact of one attempt of a job, as referenced by its run record (`run_id`: an
    attempt number repeats when a job is retried with its attempts reset)."""

    run_id: int
    attempt: int
    name: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class PrunedBlobs:
    """What a prune of blobs deleted (or, dry, would delete)."""

    blobs: int = 0
    bytes: int = 0

    def __add__(self, other: PrunedBlobs) -> PrunedBlobs:
        return PrunedBlobs(self.blobs + other.blobs, self.bytes + other.bytes)

    def __bool__(self) -> bool:
        return bool(self.blobs)


#: Where a prune of blobs stopped: (touched_at, tenant, sha256) of the last blob it looked at.
BlobCursor = tuple[datetime, str, str]


def _scoped(client: Client, tenant: str, call: calls.Call, *, more: bool = False) -> Statement:
    """A read of `tenant`'s blobs: in the client's tenant scope (it must be that tenant), or in
    the worker scope for a client acting for no tenant (an operator's or a worker's login)."""
    if client.tenant is not None and client.tenant != tenant:
        raise errors.TenantRequired(
            f"this client acts for tenant {client.tenant!r}: it cannot read blobs of {tenant!r}"
        )
    return Statement(call, worker=client.tenant is None, more=more)


def store(
    client: Client,
    worker: str,
    job_id: int,
    lease_token: UUID,
    tenant: str,
    data: bytes,
    *,
    now: datetime | None = None,
) -> Steps[str | None]:
    """Store `data` for the attempt `lease_token` of `job_id` (only its worker may, until its run
    record is written); its sha256, or None when the attempt is not this worker's any more."""
    sha = digest(data)
    fence = {"worker": worker, "id": job_id, "token": lease_token}
    if len(data) <= CHUNK_BYTES:  # one chunk: one call, one round trip
        put = {**fence, "tenant": tenant, "sha256": sha, "data": data, "now": now}
        (row,) = yield Statement(("artifact_put", put), worker=True)
        return None if row["state"] == "lost" else sha
    begin = {**fence, "tenant": tenant, "sha256": sha, "size": len(data), "now": now}
    (row,) = yield Statement(("artifact_begin", begin), worker=True)
    if row["state"] == "lost":
        return None
    if row["state"] == "stored":
        return sha
    view = memoryview(data)
    for seq, start in enumerate(range(0, len(data), CHUNK_BYTES)):
        chunk = {**fence, "sha256": sha, "seq": seq, "data": view[start : start + CHUNK_BYTES]}
        (sent,) = yield Statement(("artifact_chunk", chunk), worker=True)
        if not sent["stored"]:
            return None
    (done,) = yield Statement(("artifact_finish", {**fence, "sha256": sha}), worker=True)
    return sha if done["stored"] else None


def blob(client: Client, tenant: str, sha256: str) -> Steps[BlobInfo | None]:
    """The stored blob `sha256` of `tenant`, or None."""
    rows = yield _scoped(client, tenant, ("artifact_blob", {"tenant": tenant, "sha256": sha256}))
    if not rows:
        return None
    row = rows[0]
    return BlobInfo(int(row["size"]), int(row["chunks"]), bool(row["complete"]))


def chunk(client: Client, tenant: str, sha256: str, seq: int) -> Steps[bytes | None]:
    """Chunk `seq` of the blob, or None when it is not there."""
    params = {"tenant": tenant, "sha256": sha256, "seq": seq}
    rows = yield _scoped(client, tenant, ("artifact_read_chunk", params))
    return bytes(rows[0]["data"]) if rows else None


def job_artifacts(client: Client, job_id: int) -> Steps[list[JobArtifact]]:
    """The artifacts of every recorded attempt of the tenant's job (`JobNotFound` when the job
    is not the tenant's), by run and name."""
    job = yield Statement(calls.get(job_id), more=True)
    rows: calls.Rows = yield Statement(("artifact_refs", {"id": job_id}))
    calls.found(job_id, job)
    return [JobArtifact(int(r["run_id"]), int(r["attempt"]), r["name"], r["sha256"],
                        int(r["size"])) for r in rows]  # fmt: skip


def prune_batch(
    client: Client,
    *,
    tenant: str | None = None,
    grace: timedelta = DEFAULT_GRACE,
    batch: int = calls.DEFAULT_PRUNE_BATCH,
    dry_run: bool = False,
    after: BlobCursor | None = None,
    now: datetime | None = None,
) -> Steps[tuple[PrunedBlobs, BlobCursor | None]]:
    """One batch of a prune of the blobs no run references (an operator's or a worker's), last
    stored more than `grace` ago, of `tenant` (default: the client's, else every tenant's)."""
    after_at, after_tenant, after_sha = after or (None, None, None)
    params: dict[str, Any] = {
        "tenant": tenant or client.tenant, "grace": grace, "batch": batch, "dry_run": dry_run,
        "after_at": after_at, "after_tenant": after_tenant, "after_sha": after_sha, "now": now,
    }  # fmt: skip
    (row,) = yield Statement(("artifact_prune", params), worker=True)
    done = PrunedBlobs(int(row["blobs"]), int(row["bytes"]))
    cursor = None if row["after_at"] is None else (
        row["after_at"], row["after_tenant"], row["after_sha"])  # fmt: skip
    return done, cursor


def stored(artifacts: Sequence[tuple[str, str, int]]) -> tuple[StoredArtifact, ...]:
    """(name, sha256, size) each, as a run record's write carries them."""
    return tuple(StoredArtifact(name, sha, size) for name, sha, size in artifacts)
