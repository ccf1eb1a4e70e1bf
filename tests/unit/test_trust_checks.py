"""The signature checks on hostile envelopes, without a database: every malformed or
out-of-window envelope is refused with its reason, never an exception of another kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobforge import errors, trust
from jobforge.produce import sign_job
from jobforge.queue import NewJob
from jobforge.trust.payload import parse_time

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
KEY = trust.generate_private_key()
RECORD = trust.KeyRecord("k1", trust.public_key_bytes(KEY), NOW - timedelta(days=1))


def signed(**kw: Any) -> NewJob:
    job = NewJob(type="t.job", payload={"n": 1}, **kw.pop("fields", {}))
    return sign_job(job, "acme", KEY, "k1", issued_at=kw.get("issued_at", NOW),
                    expires_at=kw.get("expires_at"))  # fmt: skip


def entry(**kw: Any) -> dict[str, Any]:
    return {"key_id": "k1", "algorithm": "ed25519", "signature": "A" * 86, **kw}


def check(job: NewJob, envelope: Any = None, *, keys: Any = None, now: datetime = NOW) -> str:
    row = trust.SignedFields(tenant="acme", type=job.type, input=job.payload,
                             max_attempts=job.max_attempts, issued_at=now,
                             idempotency_key=job.idempotency_key)  # fmt: skip
    given = job.envelope() if envelope is None else envelope
    try:
        trust.verify_signatures(row, given, {"k1": RECORD} if keys is None else keys, now)
    except errors.JobRefused as exc:
        return exc.reason
    return "ok"


def test_a_good_signature_passes() -> None:
    assert check(signed()) == "ok"


@pytest.mark.parametrize(("change", "reason"), [
    ({"signatures": "nope"}, "malformed"),
    ({"signatures": [{"key_id": "k1"}] * 17}, "malformed"),
    ({"signatures": [1]}, "malformed"),
    ({"issued_at": "yesterday"}, "malformed"),
    ({"issued_at": "2026-11-30T12:00:00.000000Z"}, "malformed"),
    ({"issued_at": None}, "malformed"),
    ({"timeout_s": "60"}, "malformed"),
    ({"signatures": []}, "unsigned"),
    ({"issued_at": "2026-11-30T12:05:00Z"}, "issued_in_future"),
    ({"run_at": "2026-11-30T12:30:00Z"}, "before_run_at"),
    ({"signatures": [entry(algorithm="rsa")]}, "unsupported_algorithm"),
    ({"signatures": [entry(signature="!!")]}, "bad_signature"),
    ({"signatures": [entry(signature=None)]}, "bad_signature"),
    ({"signatures": [entry(key_id="k9")]}, "unknown_key"),
])  # fmt: skip
def test_hostile_envelopes_are_refused_with_their_reason(change: dict[str, Any],
                                                         reason: str) -> None:  # fmt: skip
    job = signed()
    envelope = {**(job.envelope() or {}), **change}
    assert check(job, envelope) == reason


def test_the_signed_window_and_the_key_window() -> None:
    expired = signed(expires_at=NOW - timedelta(minutes=2))
    assert check(expired) == "signature_expired"
    assert check(signed(expires_at=NOW - timedelta(seconds=30))) == "ok"  # within the skew
    ended = trust.KeyRecord("k1", RECORD.public_key, NOW - timedelta(days=2),
                            valid_until=NOW - timedelta(seconds=1))  # fmt: skip
    assert check(signed(), keys={"k1": ended}) == "key_expired"
    revoked = trust.KeyRecord("k1", RECORD.public_key, NOW - timedelta(days=2),
                              revoked_at=NOW - timedelta(seconds=1))  # fmt: skip
    assert check(signed(), keys={"k1": revoked}) == "revoked_key"
    later = trust.KeyRecord("k1", RECORD.public_key, NOW + timedelta(hours=1))
    assert check(signed(), keys={"k1": later}) == "key_not_yet_valid"


def test_every_signed_field_is_covered() -> None:
    job = signed(fields={"timeout_s": 5, "idempotency_key": "once", "max_attempts": 2})
    assert check(job) == "ok"
    for update in ({"payload": {"n": 2}}, {"type": "t.other"}, {"max_attempts": 3},
                   {"idempotency_key": "twice"}):  # fmt: skip
        assert check(job.model_copy(update=update), job.envelope()) == "bad_signature", update
    envelope = {**(job.envelope() or {}), "timeout_s": 50}
    assert check(job, envelope) == "bad_signature"


def test_times_have_one_spelling() -> None:
    assert parse_time("2026-11-30T12:00:00Z") == NOW
    assert parse_time(None) is None
    for bad in ("2026-11-30T12:00:00+00:00", "2026-11-30 12:00:00Z", "2026-13-30T12:00:00Z", 5):
        with pytest.raises(ValueError, match=r"UTC time|month"):
            parse_time(bad)
