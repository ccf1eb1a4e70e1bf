"""What a job must show before its handler runs, and the timeout it runs under.

Before a handler is called (and before any middleware: the recorder, a user's), the worker
checks, for a runner declared `signed=True` or for every job when the deployment requires
signatures (`WorkerConfig.require_signatures`), the job's ed25519 signatures against its
tenant's registered keys (`jobforge.trust.verify`); for a runner that `requires_scopes`, its
policy token against the configured HMAC secrets (`jobforge.trust.tokens`), then records the
token's jti as used by this job (`token_consume_v1`: a second job with the same token is
refused), and a signed envelope's signatures the same way (a second job presenting them is
refused: `signature_replayed`). A refusal is an `errors.JobRefused`: the job fails, not
retried, the reason and the key id in its error and its `failed` event, and nothing it would
have done happens. The database is
not trusted to have checked anything: a row written into the jobs table by hand is verified
like any other.

The timeout: the job's own (`NewJob.timeout_s`) when it is within the runner's declared bound,
else the bound; the runner's when the job names none; else the deployment's default (60 s unless
configured). Which one applied is said in the run record (`admission.timeout`).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from jobforge import canonical, errors, trust
from jobforge.queue import AsyncQueueClient, Job
from jobforge.queue.signing import SigningKey
from jobforge.trust.payload import parse_time
from jobforge.trust.tokens import TokenKeys
from jobforge.worker.registry import HandlerSpec

TimeoutSource = Literal["job", "runner", "default", "none"]


@dataclass(frozen=True)
class Policy:
    """The deployment's side of admission (from `WorkerConfig`)."""

    require_signatures: bool = False
    token_keys: TokenKeys | None = None
    skew_s: float = trust.verify.DEFAULT_SKEW_S
    default_timeout_s: float | None = 60.0
    #: False in a harness (golden, replay): the recorded inputs run as recorded, nothing is
    #: verified (a replay report says so)
    verify: bool = True


class KeyLoader:
    """The signing keys of the jobs a claim brought, read in one query as the claim returns
    (`want`), so verifying a job costs no round trip of its own; a job whose keys were not asked
    for that way (another claim's, since replaced) is looked up when it starts, together with
    whatever else starts in the same turn of the event loop. Only the latest claim's look-up is
    kept: a key is judged as the registry held it when the job was claimed, or later."""

    def __init__(self, client: AsyncQueueClient) -> None:
        self._client = client
        self._claimed: dict[tuple[str, str], asyncio.Future[SigningKey | None]] = {}
        self._wanted: dict[tuple[str, str], asyncio.Future[SigningKey | None]] = {}
        self._loads: set[asyncio.Task[None]] = set()

    def want(self, jobs: Sequence[Job]) -> None:
        """Start the look-up of these claimed jobs' keys (call it on the event loop)."""
        pairs = {(job.tenant_id, key_id) for job in jobs for key_id in key_ids_of(job)}
        self._claimed = {pair: self._future(pair) for pair in pairs}

    async def keys(self, tenant: str, key_ids: Sequence[str]) -> dict[str, SigningKey]:
        futures = {k: self._claimed.get((tenant, k)) or self._future((tenant, k))
                   for k in key_ids}  # fmt: skip
        found = await asyncio.gather(*futures.values())
        return {k: key for k, key in zip(futures, found, strict=True) if key is not None}

    def _future(self, pair: tuple[str, str]) -> asyncio.Future[SigningKey | None]:
        future = self._wanted.get(pair)
        if future is None:
            if not self._wanted:
                asyncio.get_running_loop().call_soon(self._send)
            future = self._wanted[pair] = asyncio.get_running_loop().create_future()
        return future

    def _send(self) -> None:
        wanted, self._wanted = self._wanted, {}
        task = asyncio.ensure_future(self._load(wanted))
        self._loads.add(task)
        task.add_done_callback(self._loads.discard)

    async def _load(self, wanted: dict[tuple[str, str], asyncio.Future[SigningKey | None]]) -> None:
        try:
            rows = await self._client.tenant_signing_keys(list(wanted))
        except Exception as exc:  # each job waiting for it retries: the keys could not be read
            for future in wanted.values():
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved: a job that no longer waits logs nothing
            return
        found = {(r.tenant_id, r.key_id): r for r in rows}
        for pair, future in wanted.items():
            if not future.done():
                future.set_result(found.get(pair))


def key_ids_of(job: Job) -> list[str]:
    """The key ids a job's signatures name (what the worker looks up), at most 16."""
    entries = (job.envelope or {}).get("signatures")
    listed = entries if isinstance(entries, list) else []
    return sorted({e["key_id"][:128] for e in listed[:16]
                   if isinstance(e, dict) and isinstance(e.get("key_id"), str)})  # fmt: skip


@dataclass
class Admission:
    """What admitted a job: shown in its run record (never a token or a secret)."""

    timeout_s: float | None
    timeout_source: TimeoutSource
    #: the job asked for more than its bound: what it asked
    timeout_asked_s: float | None = None
    signed_by: tuple[str, ...] = ()
    signature_issued_at: str | None = None
    signature_expires_at: str | None = None
    token: dict[str, Any] | None = None
    verified: bool = True
    notes: list[str] = field(default_factory=list)

    def shown(self) -> dict[str, Any]:
        timeout: dict[str, Any] = {"seconds": self.timeout_s, "source": self.timeout_source}
        if self.timeout_asked_s is not None:
            timeout["asked_s"] = self.timeout_asked_s
        shown: dict[str, Any] = {"timeout": timeout}
        if self.signed_by:
            shown["signatures"] = {"key_ids": list(self.signed_by),
                                   "issued_at": self.signature_issued_at,
                                   "expires_at": self.signature_expires_at}  # fmt: skip
        if self.token is not None:
            shown["token"] = self.token
        if not self.verified:
            shown["verified"] = False
        return shown


def timeout_for(spec: HandlerSpec, job: Job, default_s: float | None) -> Admission:
    """The timeout a job runs under, and where it came from."""
    source: TimeoutSource = "runner" if spec.timeout_s else "default"
    bound = spec.timeout_s or default_s
    raw = (job.envelope or {}).get("timeout_s")
    try:  # an integer past a float's range (1e400 as digits) is not finite either
        asked = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 0.0
    except OverflowError:
        asked = math.inf
    if not 0 < asked < math.inf:  # none, or not a finite positive number: the bound's
        return Admission(bound, source) if bound is not None else Admission(None, "none")
    if bound is None or asked <= bound:
        return Admission(asked, "job")
    return Admission(bound, source, timeout_asked_s=asked)


def admit_now(job: Job, spec: HandlerSpec, policy: Policy) -> Admission | None:
    """The job's admission when nothing in it needs the database (no signature and no token
    to check), or None: most jobs, admitted without a coroutine of their own."""
    if policy.verify and (spec.signed or policy.require_signatures or spec.requires_scopes):
        return None
    admission = timeout_for(spec, job, policy.default_timeout_s)
    if not policy.verify:
        admission.verified = False
    return admission


async def admit(job: Job, spec: HandlerSpec, policy: Policy, client: AsyncQueueClient,
                worker: str, keys: KeyLoader | None = None) -> Admission:  # fmt: skip
    """The job's admission, or `errors.JobRefused` when it may not run."""
    admission = admit_now(job, spec, policy)
    if admission is not None:
        return admission
    admission = timeout_for(spec, job, policy.default_timeout_s)
    if spec.signed or policy.require_signatures:
        await _signatures(job, policy, keys or KeyLoader(client), admission)
        await _signature_used_once(job, client, worker)
    if spec.requires_scopes:
        await _token(job, spec, policy, client, worker, admission)
    return admission


async def _signatures(job: Job, policy: Policy, loader: KeyLoader,
                      admission: Admission) -> None:  # fmt: skip
    envelope = job.envelope or {}
    ids = key_ids_of(job)
    found = await loader.keys(job.tenant_id, ids) if ids else {}
    keys = {k.key_id: trust.KeyRecord(k.key_id, k.public_key, k.valid_from, k.valid_until,
                                      k.revoked_at, k.owner) for k in found.values()}  # fmt: skip
    now = datetime.now(UTC)  # after the look-up: a key that expired meanwhile has expired
    row = trust.SignedFields(tenant=job.tenant_id, type=job.type, input=job.payload,
                             max_attempts=job.max_attempts, issued_at=now,
                             idempotency_key=job.idempotency_key)  # fmt: skip
    verified = trust.verify_signatures(row, envelope, keys, now, skew_s=policy.skew_s)
    admission.signed_by = verified.key_ids
    admission.signature_issued_at = envelope.get("issued_at")
    admission.signature_expires_at = envelope.get("expires_at")


#: How long a signature's use is remembered when it names no expiry (a finite time the use
#: table requires; a signature without expiry is used once for as long as the table keeps it).
UNEXPIRING_USE = timedelta(days=3650)


async def _signature_used_once(job: Job, client: AsyncQueueClient, worker: str) -> None:
    """A signed envelope authorizes one job: its signatures' digest is recorded as used by this
    job, as a policy token's jti is (`token_consume_v1`; a retried attempt of the same job is
    the same use). The signing payload names no job id, so without this a reader of the
    tenant's rows could enqueue the same type, input and envelope again (in another project, or
    without the idempotency key) and have it run as often as they liked."""
    envelope = job.envelope or {}
    digest = hashlib.sha256(
        canonical.plain_bytes(sorted(str(s.get("signature")) for s in envelope["signatures"]))
    ).hexdigest()
    until = parse_time(envelope.get("expires_at")) or datetime.now(UTC) + UNEXPIRING_USE
    assert job.lease_token is not None
    try:
        state = await client.consume_token(worker, job.id, job.lease_token, f"sig:{digest}", until)
    except errors.TokenReplayed as exc:
        raise errors.JobRefused(
            f"its signatures were already used by another job: a signed job runs once "
            f"({exc})", reason="signature_replayed",
        ) from None  # fmt: skip
    if state == "lost":
        raise errors.LeaseLost(f"job {job.id}: the lease was lost before its signature was used")


async def _token(job: Job, spec: HandlerSpec, policy: Policy, client: AsyncQueueClient,
                 worker: str, admission: Admission) -> None:  # fmt: skip
    if policy.token_keys is None:
        raise errors.JobRefused(f"{job.type} requires a policy token and this worker has no "
                                "token keys to verify one (JOBFORGE_TOKEN_KEYS)",
                                reason="token_unverifiable")  # fmt: skip
    token = (job.envelope or {}).get("token")
    resource = None
    if token is not None:
        try:
            resource = canonical.hash_of(job.payload)
        except errors.CanonicalError:
            resource = None
    claims = trust.verify_token(token, policy.token_keys, tenant=job.tenant_id,
                                project=job.project, action=job.type,
                                required_scopes=spec.requires_scopes, resource=resource,
                                skew_s=policy.skew_s)  # fmt: skip
    assert job.lease_token is not None
    expires = datetime.fromtimestamp(claims.exp, UTC)
    try:
        state = await client.consume_token(worker, job.id, job.lease_token, claims.jti, expires)
    except errors.TokenReplayed as exc:
        raise errors.JobRefused(str(exc), reason="token_replayed") from None
    if state == "lost":
        raise errors.LeaseLost(f"job {job.id}: the lease was lost before its token was used")
    admission.token = claims.shown()
