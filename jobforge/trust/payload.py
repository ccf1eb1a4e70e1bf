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

import re
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


def signing_payload(fields: SignedFields, *, plain: bool = False) -> dict[str, Any]:
    """The payload object, every member present (JSON-ready: times as canonical strings). With
    `plain` the input is taken as the plain JSON it already is (read from the database)."""
    return {
        "format": SIGNING_FORMAT,
        "tenant": fields.tenant,
        "type": fields.type,
        "input": fields.input if plain else canonical.jsonable(fields.input),
        "run_at": _time(fields.run_at),
        "max_attempts": fields.max_attempts,
        "timeout_s": fields.timeout_s,
        "idempotency_key": fields.idempotency_key,
        "issued_at": _time(fields.issued_at),
        "expires_at": _time(fields.expires_at),
    }


def signing_bytes(fields: SignedFields) -> bytes:
    """What a signature signs: RFC 8785 bytes of `signing_payload` (`canonical.plain_bytes`:
    the same bytes, without a conversion pass over an input that is plain JSON already)."""
    return canonical.plain_bytes(signing_payload(fields, plain=True))


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    text: str = canonical.jsonable(value)
    return text


#: The one spelling of an instant in the payload (six fraction digits only when not all zero).
_CANONICAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(?!000000)\d{6})?Z")


def parse_time(text: object) -> datetime | None:
    """A time as the envelope holds it (the canonical string), None when absent; ValueError
    when it is not one, or not spelled as the signer's payload spells it."""
    if text is None:
        return None
    if not isinstance(text, str) or not _CANONICAL_TIME.fullmatch(text):
        raise ValueError(f"{str(text)[:40]!r} is not a UTC time as YYYY-MM-DDTHH:MM:SS[.ffffff]Z")
    return datetime.fromisoformat(text[:-1] + "+00:00")
