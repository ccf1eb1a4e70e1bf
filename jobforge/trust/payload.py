"""The signing payload of a job: what an ed25519 signature covers, as RFC 8785 bytes.

The payload is a JSON object of exactly these members (every one present; an absent value is
JSON `null`, never a left-out member, so two implementations cannot disagree on what "absent"
means):

    format           "jobforge.job-signature/1": the version, and a domain separator (these
                     bytes can never be mistaken for another document a key signs)
    tenant           the job's tenant id
    type             the job type (runner id)
    input            the job's payload, a JSON object
    run_at           when the producer asked it to run, or null for "now"
    max_attempts     an integer, 1-1000 (the queue's default, 3, is written out)
    timeout_s        the job's own timeout in seconds, or null
    idempotency_key  or null
    issued_at        when the signature was made (required)
    expires_at       after when it is refused, or null for never

Times are strings `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` in UTC, six fraction digits present only when
the microseconds are not zero (`jobforge.canonical`'s form of a datetime). The signed bytes are
the UTF-8 RFC 8785 serialization of that object, no prefix, no trailing newline.

Nothing the queue rewrites is signed: the project (a session's scope may fill it in), the
priority and the trace id are not, and `run_at` is the requested time kept in the job's
envelope, since a retry moves the row's run_at. The worker rebuilds the payload from the row
(tenant, type, payload, max_attempts, idempotency key) and the envelope (the rest), so a row
edited in the database no longer matches its signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from jobforge import canonical

SIGNING_FORMAT: Literal["jobforge.job-signature/1"] = "jobforge.job-signature/1"


@dataclass(frozen=True, slots=True)
class SignedFields:
    """The values a job's signatures cover (times as aware datetimes, or None)."""

    tenant: str
    type: str
    input: dict[str, Any]
    max_attempts: int
    issued_at: datetime
    run_at: datetime | None = None
    timeout_s: float | None = None
    idempotency_key: str | None = None
    expires_at: datetime | None = None


def signing_payload(fields: SignedFields) -> dict[str, Any]:
    """The payload object, every member present (JSON-ready: times as canonical strings)."""
    return {
        "format": SIGNING_FORMAT,
        "tenant": fields.tenant,
        "type": fields.type,
        "input": canonical.jsonable(fields.input),
        "run_at": _time(fields.run_at),
        "max_attempts": fields.max_attempts,
        "timeout_s": fields.timeout_s,
        "idempotency_key": fields.idempotency_key,
        "issued_at": _time(fields.issued_at),
        "expires_at": _time(fields.expires_at),
    }


def signing_bytes(fields: SignedFields) -> bytes:
    """What a signature signs: RFC 8785 bytes of `signing_payload`."""
    return canonical.canonical_bytes(signing_payload(fields))


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    text: str = canonical.jsonable(value)
    return text


def parse_time(text: object) -> datetime | None:
    """A time as the envelope holds it (the canonical string), None when absent; ValueError
    when it is not one."""
    if text is None:
        return None
    if not isinstance(text, str) or not text.endswith("Z"):
        raise ValueError(f"{text!r} is not a UTC time (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)")
    value = datetime.fromisoformat(text[:-1] + "+00:00")
    if _time(value) != text:  # one spelling per instant: what the signer signed
        raise ValueError(f"{text!r} is not in canonical form")
    return value
