"""Producing jobs for declared runners: a job whose input is checked against the runner's
contract before anything is stored. A producer (a web app, the CLI, a script) needs the
runner's definition and a queue client, never a worker: so this sits beside the worker."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from jobforge import errors, validation
from jobforge.contracts import RunnerDef
from jobforge.queue import JobSignature, NewJob

if TYPE_CHECKING:  # signing loads cryptography and PyJWT; a command that signs nothing does not
    from jobforge import trust


def runner_job(definition: RunnerDef, input: BaseModel | Mapping[str, Any],
               **fields: Any) -> NewJob:  # fmt: skip
    """A job for the runner, as `QueueClient.enqueue_many` takes it: the input checked against
    the runner's input model now (a bad one is an `InvalidInput` naming each field, before
    anything is stored), and the runner's `max_attempts` unless `fields` say otherwise (the
    queue stores attempts per job; the worker applies the runner's retry backoff itself).

    A mapping is stored as given, as `client.enqueue(type, payload)` stores it: the defaults of
    the fields it leaves out are not written in, so the job runs with the defaults of the code
    that runs it (what the contract gate's `input.default_changed` warns about). A model
    instance is stored as it dumps, every field included."""
    payload = input.model_dump(mode="json") if isinstance(input, BaseModel) else dict(input)
    try:
        definition.input.model_validate(payload)
    except ValidationError as exc:
        summary = validation.summary(exc, limit=5)
        raise errors.InvalidInput(f"invalid input for {definition.id}: {summary}") from None
    fields.setdefault("max_attempts", definition.max_attempts)
    return NewJob(type=definition.id, payload=payload, **fields)


#: How long a signature holds when the signer names no expiry: a day past the later of its
#: issue and the job's run_at.
DEFAULT_SIGNATURE_TTL = timedelta(days=1)


def sign_job(
    job: NewJob,
    tenant: str,
    key: trust.keys.Ed25519PrivateKey,
    key_id: str | None = None,
    *,
    issued_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> NewJob:
    """`job` with one more ed25519 signature by `key` (key id: the registered one; default
    `trust.key_id_of` the public key) over its signing payload for `tenant`
    (`jobforge.trust.payload`). A second signature covers the same issued_at and expires_at as
    the first. A signed job must not be changed afterwards: the worker refuses it."""
    from jobforge import trust

    if job.signatures:
        issued, expires = job.issued_at, job.expires_at
    else:
        issued = issued_at or datetime.now(UTC).replace(microsecond=0)
        latest = max(issued, job.run_at) if job.run_at is not None else issued
        expires = expires_at if expires_at is not None else latest + DEFAULT_SIGNATURE_TTL
    assert issued is not None
    fields = trust.SignedFields(
        tenant=tenant, type=job.type, input=job.payload, max_attempts=job.max_attempts,
        issued_at=issued, run_at=job.run_at, timeout_s=job.timeout_s,
        idempotency_key=job.idempotency_key, expires_at=expires,
    )  # fmt: skip
    signature = trust.keys.b64url(trust.sign_bytes(key, trust.signing_bytes(fields)))
    kid = key_id or trust.key_id_of(trust.public_key_bytes(key))
    entry = JobSignature(key_id=kid, signature=signature)
    return job.model_copy(update={"signatures": (*job.signatures, entry), "issued_at": issued,
                                  "expires_at": expires})  # fmt: skip


def check_job(definition: RunnerDef, job: NewJob, *, tenant: str | None = None,
              audience: str | None = None, default_timeout_s: float = 60.0) -> None:  # fmt: skip
    """What a producer can check of a job for a runner before storing it, so a job the worker
    would refuse is refused now: its own timeout within the runner's bound, a signature when
    the runner is `signed`, and (without the secret) its policy token when the runner
    `requires_scopes`. `errors.InvalidJob` naming the problem."""
    bound = definition.timeout_s or default_timeout_s
    if job.timeout_s is not None and job.timeout_s > bound:
        raise errors.InvalidJob(f"{definition.id}: the job's timeout of {job.timeout_s:g} s is "
                                f"above the runner's bound of {bound:g} s")  # fmt: skip
    if definition.signed and not job.signatures:
        raise errors.InvalidJob(f"{definition.id} runs signed jobs only: sign it "
                                "(jobforge enqueue --sign KEYFILE, produce.sign_job)")  # fmt: skip
    if definition.requires_scopes:
        from jobforge import trust

        try:
            trust.tokens.precheck_token(job.token, action=definition.id, tenant=tenant,
                                        required_scopes=definition.requires_scopes,
                                        audience=audience)  # fmt: skip
        except errors.JobRefused as exc:
            raise errors.InvalidJob(f"{definition.id}: {exc}") from None
