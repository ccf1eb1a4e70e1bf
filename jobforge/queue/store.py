"""The artifact store: blobs of any size, content-addressed (`sha256:<hex>`) and per tenant, behind
one small interface with two backends (and `MemoryStore`, for bytes already at hand).

- `PostgresStore` (the default; migrations/0017): chunks of 1 MiB under row-level security.
  Writes are a worker's only, for an attempt it holds the lease of (`Fence`); reads are the
  tenant's.
- `FilesystemStore`: a directory, `<root>/<tenant>/<aa>/<64 hex>`, each file written to a
  temporary name and renamed into place (a reader never sees half a blob).

An object store (S3, GCS, Azure) fits the same interface: `put` as a PUT of the key
`<tenant>/<hex>` if absent, `chunks` as ranged GETs, `exists` as a HEAD. None ships: it would
add a dependency.

Blobs are never shared between tenants, even when the bytes are the same: a write skipped
because another tenant holds the bytes would tell one tenant what another stores. Every read is
verified: the bytes are hashed as they stream, and a mismatch raises `ArtifactCorrupt` (one line)
after the last chunk, so a caller that writes a file writes it under a temporary name and keeps
it only once the iteration has ended without an error (`jobforge.queue.artifact_files` does).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from uuid import UUID

from jobforge import errors
from jobforge.queue.blobs import CHUNK_BYTES, digest
from jobforge.queue.sync_client import QueueClient

_SHA = re.compile(r"sha256:[0-9a-f]{64}")
_TENANT = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class ArtifactStore(Protocol):
    """What every backend does. `sha256` is always written `sha256:<64 hex>`."""

    def put(self, tenant: str, data: bytes) -> str:
        """Store `data` for `tenant` (once: the same bytes again are not stored twice); its
        sha256."""
        ...

    def get(self, tenant: str, sha256: str) -> bytes:
        """The bytes, verified; `ArtifactNotFound` or `ArtifactCorrupt`."""
        ...

    def chunks(self, tenant: str, sha256: str) -> Iterator[bytes]:
        """The bytes a chunk at a time, hashed as they go; `ArtifactCorrupt` after the last
        chunk when they do not match (`ArtifactNotFound` before the first)."""
        ...

    def exists(self, tenant: str, sha256: str) -> bool:
        """Whether the tenant holds the complete blob."""
        ...


def check_sha(sha256: object) -> str:
    """`sha256` when it is `sha256:<64 lowercase hex>`; one line otherwise."""
    if not isinstance(sha256, str) or _SHA.fullmatch(sha256) is None:
        raise errors.ArtifactError(f"{str(sha256)[:80]!r} is not a sha256 (sha256:<64 hex>)")
    return sha256


def check_tenant(tenant: object) -> str:
    """`tenant` when it is a tenant id the queue takes (and not `.` or `..`)."""
    if not isinstance(tenant, str) or _TENANT.fullmatch(tenant) is None or tenant in (".", ".."):
        raise errors.ArtifactError(f"{str(tenant)[:130]!r} is not a valid tenant id")
    return tenant


def verified(tenant: str, sha256: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """`chunks`, passed on as they come, then `ArtifactCorrupt` unless they hash to `sha256`."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk
    found = "sha256:" + hasher.hexdigest()
    if found != sha256:
        raise errors.ArtifactCorrupt(
            f"artifact {sha256} of tenant {tenant}: the stored bytes hash to {found}; refusing them"
        )


@dataclass(frozen=True, slots=True)
class Fence:
    """The attempt a worker stores blobs for: only the worker holding its lease may, and only
    until its run record is written."""

    worker: str
    job_id: int
    lease_token: UUID


class PostgresStore:
    """Blobs in Postgres (migrations/0017), over a queue client: a tenant's client reads its own
    blobs; a client without a tenant (a worker's or an operator's login) reads any tenant's.
    Writing needs `fence`."""

    def __init__(self, client: QueueClient, fence: Fence | None = None) -> None:
        self.client = client
        self.fence = fence

    def put(self, tenant: str, data: bytes) -> str:
        check_tenant(tenant)
        if self.fence is None:
            raise errors.ArtifactError(
                "the Postgres store is written by a worker for an attempt it holds: "
                "PostgresStore(client, fence=Fence(worker, job_id, lease_token))"
            )
        f = self.fence
        sha = self.client.store_blob(f.worker, f.job_id, f.lease_token, tenant, bytes(data))
        if sha is None:
            raise errors.LeaseLost(
                f"job {f.job_id}: the attempt is not worker {f.worker}'s, or its run is recorded"
            )
        return sha

    def exists(self, tenant: str, sha256: str) -> bool:
        info = self.client.blob(check_tenant(tenant), check_sha(sha256))
        return info is not None and info.complete

    def chunks(self, tenant: str, sha256: str) -> Iterator[bytes]:
        info = self.client.blob(check_tenant(tenant), check_sha(sha256))
        if info is None or not info.complete:
            raise errors.ArtifactNotFound(f"no artifact {sha256} for tenant {tenant}")
        return verified(tenant, sha256, self._read(tenant, sha256, info.chunks))

    def _read(self, tenant: str, sha256: str, count: int) -> Iterator[bytes]:
        for seq in range(count):
            data = self.client.blob_chunk(tenant, sha256, seq)
            if data is None:
                raise errors.ArtifactCorrupt(
                    f"artifact {sha256} of tenant {tenant}: chunk {seq} of {count} is missing"
                )
            yield data

    def get(self, tenant: str, sha256: str) -> bytes:
        return b"".join(self.chunks(tenant, sha256))


class FilesystemStore:
    """Blobs as files under `root`: `<root>/<tenant>/<first 2 hex>/<64 hex>`. The tenant and the
    hash are checked before any path is made of them, and a tenant folder that is a symlink is
    refused: nothing is read or written outside `root`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, tenant: str, sha256: str) -> Path:
        hexa = check_sha(sha256).removeprefix("sha256:")
        folder = self.root / check_tenant(tenant)
        if folder.is_symlink():
            raise errors.ArtifactError(
                f"the store's folder of tenant {tenant} is a symlink: refusing to follow it"
            )
        return folder / hexa[:2] / hexa

    def put(self, tenant: str, data: bytes) -> str:
        sha = digest(data)
        path = self._path(tenant, sha)
        if path.is_file():
            return sha
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".put-", dir=path.parent)
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            raise errors.ArtifactError(
                f"cannot store artifact {sha} under {self.root}: {exc.strerror or exc}"
            ) from None
        return sha

    def exists(self, tenant: str, sha256: str) -> bool:
        return self._path(tenant, sha256).is_file()

    def chunks(self, tenant: str, sha256: str) -> Iterator[bytes]:
        path = self._path(tenant, sha256)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise errors.ArtifactNotFound(f"no artifact {sha256} for tenant {tenant}") from None
        except OSError as exc:
            raise errors.ArtifactError(
                f"cannot read artifact {sha256}: {exc.strerror or exc}"
            ) from None
        return verified(tenant, sha256, _file_chunks(handle))

    def get(self, tenant: str, sha256: str) -> bytes:
        return b"".join(self.chunks(tenant, sha256))


class MemoryStore:
    """Blobs in a dict, for bytes already at hand: a run record's inline artifacts (a run recorded
    before artifacts were stored), tests. Verified on read like the others."""

    def __init__(self) -> None:
        self._blobs: dict[tuple[str, str], bytes] = {}

    def put(self, tenant: str, data: bytes) -> str:
        sha = digest(data)
        self._blobs[(check_tenant(tenant), sha)] = bytes(data)
        return sha

    def add(self, tenant: str, sha256: str, data: bytes) -> None:
        """Keep `data` under the hash it claims (checked when it is read)."""
        self._blobs[(check_tenant(tenant), check_sha(sha256))] = bytes(data)

    def exists(self, tenant: str, sha256: str) -> bool:
        return (tenant, sha256) in self._blobs

    def chunks(self, tenant: str, sha256: str) -> Iterator[bytes]:
        data = self._blobs.get((tenant, sha256))
        if data is None:
            raise errors.ArtifactNotFound(f"no artifact {sha256} for tenant {tenant}")
        pieces = (data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES))
        return verified(tenant, sha256, pieces)

    def get(self, tenant: str, sha256: str) -> bytes:
        return b"".join(self.chunks(tenant, sha256))


def _file_chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
