"""The tenants' signing keys and the policy tokens' uses (migrations/0021), as client calls.

Adding, rotating and revoking a key are an operator's calls (a superuser or a member of
jobforge_worker) for a tenant, on a connection of their own (`jobforge_app`, the role a tenant's
client takes, may not call them); a tenant's own login may list its keys. The worker
reads a job's tenant's keys by id (`keys_of`) and records a token's jti as used by the job it
holds the lease of (`consume_token`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from jobforge import db
from jobforge.queue.operations import Client, Statement, Steps


class SigningKey(BaseModel):
    """One registered ed25519 public key of a tenant."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant_id: str
    key_id: str
    algorithm: str
    public_key: bytes
    owner: str
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    created_at: datetime
    created_by: str


def add_key(
    conn: db.Connection,
    tenant: str,
    key_id: str,
    public_key: bytes,
    owner: str,
    *,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> str:
    """Register a public key for `tenant`: 'added' or 'unchanged'. An operator's call, on a
    connection of its own (not as jobforge_app, which may not call it)."""
    args = {"key_id": key_id, "public_key": public_key, "owner": owner,
            "valid_from": valid_from, "valid_until": valid_until}  # fmt: skip
    with db.tenant_transaction(conn, tenant):
        return str(db.scalar(conn, "signing_key_add", args))


def revoke_key(conn: db.Connection, tenant: str, key_id: str, *,
               reason: str | None = None) -> bool:  # fmt: skip
    """Revoke a key of `tenant` for good; whether it was not revoked already."""
    with db.tenant_transaction(conn, tenant):
        return bool(db.scalar(conn, "signing_key_revoke", {"key_id": key_id, "reason": reason}))


def rotate_key(
    conn: db.Connection, tenant: str, old: str, key_id: str, public_key: bytes, *,
    owner: str | None = None, overlap_s: float = 86400.0,
) -> datetime:  # fmt: skip
    """Add `key_id` and end `old`'s validity after the overlap; when `old` stops being valid."""
    args = {"old": old, "key_id": key_id, "public_key": public_key, "owner": owner,
            "overlap_s": overlap_s}  # fmt: skip
    with db.tenant_transaction(conn, tenant):
        until: datetime = db.scalar(conn, "signing_key_rotate", args)
    return until


def list_keys(client: Client) -> Steps[list[SigningKey]]:
    rows = yield Statement(("signing_key_list", {}))
    return [SigningKey.model_validate(r) for r in rows]


def keys_of(client: Client, wanted: Sequence[tuple[str, str]]) -> Steps[list[SigningKey]]:
    """The keys of these (tenant, key id) pairs that are registered: the worker's one look-up
    for the jobs it is about to verify."""
    args = {"tenants": [t for t, _ in wanted], "key_ids": [k for _, k in wanted]}
    rows = yield Statement(("signing_keys_of", args), worker=True)
    return [SigningKey.model_validate(r) for r in rows]


def consume_token(
    client: Client, worker: str, job_id: int, lease_token: UUID, jti: str, expires_at: datetime
) -> Steps[str]:
    """Record `jti` as used by the job: 'ok' or 'lost'; `errors.TokenReplayed` when another
    job of the tenant used it."""
    args = {"worker": worker, "id": job_id, "token": lease_token, "jti": jti,
            "expires_at": expires_at}  # fmt: skip
    (row,) = yield Statement(("token_consume", args), worker=True)
    state: str = row["state"]
    return state
