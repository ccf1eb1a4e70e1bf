"""The checks a worker runs on a job's signatures before its handler, in a fixed order, each
refusal one `errors.JobRefused` with a reason code (and the key id when one is concerned):

1. `unsigned`: no signatures (a row written straight into the table has none);
   `malformed`: the envelope's signing members are not as written by a signer;
2. `issued_in_future` (beyond the skew), `signature_expired` (past `expires_at` plus the skew),
   `before_run_at` (the row says run, but the signed run_at is still ahead: a row moved forward);
3. for every signature, in order: `unsupported_algorithm`, `unknown_key` (not a key of the
   job's tenant: a key of another tenant is unknown here), `revoked_key`, `key_not_yet_valid`,
   `key_expired` (outside valid_from/valid_until now), `bad_signature` (the bytes rebuilt from
   the row and the envelope do not verify: tampered input, type, tenant, attempts, ...).

Every signature present must verify, not just one: a job carrying a forged signature beside a
good one is refused, so what a job claims is never partly checked. Key validity is judged at
verification time: a key revoked after a job was signed no longer admits it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobforge import errors
from jobforge.trust.keys import from_b64url, verify_bytes
from jobforge.trust.payload import SignedFields, parse_time, signing_bytes

Refusal = errors.JobRefused

#: Most signatures one job may carry.
MAX_SIGNATURES = 16
#: Clock skew allowed between signer and worker: the policy tokens' 60 s.
DEFAULT_SKEW_S = 60.0


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A registered public key of a tenant (jobforge.signing_keys)."""

    key_id: str
    public_key: bytes
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_at: datetime | None = None
    owner: str = ""


@dataclass(frozen=True, slots=True)
class Verified:
    """What a job's signatures established: the key ids, and the signed window."""

    key_ids: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime | None


def verify_signatures(
    row: SignedFields,
    envelope: Mapping[str, Any] | None,
    keys: Mapping[str, KeyRecord],
    now: datetime,
    *,
    skew_s: float = DEFAULT_SKEW_S,
) -> Verified:
    """Check a job's signatures; `row` holds the row's values (its issued_at etc. are ignored:
    they come from the envelope). `keys`: the job's tenant's keys by id."""
    env = envelope or {}
    entries = env.get("signatures")
    if not entries:
        raise Refusal("the job carries no signature, and its runner (or the deployment) "
                      "requires one", reason="unsigned")  # fmt: skip
    if not isinstance(entries, list) or len(entries) > MAX_SIGNATURES:
        raise Refusal(f"the job's signatures must be a list of at most {MAX_SIGNATURES}",
                      reason="malformed")  # fmt: skip
    try:
        issued_at = parse_time(env.get("issued_at"))
        expires_at = parse_time(env.get("expires_at"))
        run_at = parse_time(env.get("run_at"))
    except ValueError as exc:
        raise Refusal(f"the job's signed times are malformed: {exc}", reason="malformed") from None
    if issued_at is None:
        raise Refusal("the job's signatures name no issued_at", reason="malformed")
    timeout = env.get("timeout_s")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
        raise Refusal("the job's timeout_s is not a number", reason="malformed")
    skew = timedelta(seconds=skew_s)
    if issued_at > now + skew:
        raise Refusal(f"the signature was issued at {env['issued_at']}, in the future",
                      reason="issued_in_future")  # fmt: skip
    if expires_at is not None and now > expires_at + skew:
        raise Refusal(f"the signature expired at {env['expires_at']}", reason="signature_expired")
    if run_at is not None and now + skew < run_at:
        raise Refusal(f"the job was signed to run at {env['run_at']}, not before",
                      reason="before_run_at")  # fmt: skip
    fields = SignedFields(
        tenant=row.tenant, type=row.type, input=row.input, max_attempts=row.max_attempts,
        idempotency_key=row.idempotency_key, issued_at=issued_at, expires_at=expires_at,
        run_at=run_at, timeout_s=timeout,
    )  # fmt: skip
    try:
        data = signing_bytes(fields)
    except errors.CanonicalError as exc:
        raise Refusal(f"the job cannot be put in signing form: {exc}", reason="malformed") from None
    return Verified(_each(entries, keys, data, now), issued_at, expires_at)


def _each(entries: Sequence[Any], keys: Mapping[str, KeyRecord], data: bytes,
          now: datetime) -> tuple[str, ...]:  # fmt: skip
    verified = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("key_id"), str):
            raise Refusal("a signature is not {key_id, algorithm, signature}", reason="malformed")
        key_id: str = entry["key_id"][:128]
        if entry.get("algorithm") != "ed25519":
            raise Refusal(f"signature algorithm {str(entry.get('algorithm'))[:40]!r} is not "
                          "supported (ed25519)", reason="unsupported_algorithm",
                          key_id=key_id)  # fmt: skip
        key = keys.get(key_id)
        if key is None:
            raise Refusal(f"key {key_id!r} is not a signing key of the job's tenant",
                          reason="unknown_key", key_id=key_id)  # fmt: skip
        if key.revoked_at is not None and key.revoked_at <= now:
            raise Refusal(f"key {key_id!r} was revoked at {key.revoked_at.isoformat()}",
                          reason="revoked_key", key_id=key_id)  # fmt: skip
        if now < key.valid_from:
            raise Refusal(f"key {key_id!r} is valid only from {key.valid_from.isoformat()}",
                          reason="key_not_yet_valid", key_id=key_id)  # fmt: skip
        if key.valid_until is not None and now >= key.valid_until:
            raise Refusal(f"key {key_id!r} was valid until {key.valid_until.isoformat()}",
                          reason="key_expired", key_id=key_id)  # fmt: skip
        try:
            signature = from_b64url(entry.get("signature"))  # type: ignore[arg-type]
        except ValueError:
            signature = b""
        if len(signature) != 64 or not verify_bytes(key.public_key, signature, data):
            raise Refusal(f"the signature of key {key_id!r} does not match the job",
                          reason="bad_signature", key_id=key_id)  # fmt: skip
        verified.append(key_id)
    return tuple(verified)
