"""The recorder middleware: one run record per attempt of a runner, written through the queue
(fenced on the attempt's lease token) whatever the outcome: success, failure, retry, contract
violation, timeout or cancellation. Plain (non-runner) handlers are not recorded.

The bytes of every artifact the run wrote (whatever their size) and its captured log lines
(redacted; `jobforge.worker.capture`) go to the artifact store, fenced on the same lease token
(`jobforge.queue.blobs`): the small ones with the record, in its call, the others before it;
the record references them all in the transaction that writes it, so a record never names a
blob that is not stored."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from jobforge import canonical, errors
from jobforge.contracts import RunnerDef
from jobforge.queue import AsyncQueueClient, RunWrite
from jobforge.queue.blobs import CHUNK_BYTES, LOGS_NAME
from jobforge.queue.models import StoredArtifact
from jobforge.runtime.context import ArtifactRecord, RunContext
from jobforge.runtime.http.redaction import redact_exchange
from jobforge.runtime.record import (
    GlobalChangeModel,
    Provenance,
    Redactor,
    RunRecord,
    RunStatus,
    Snapshot,
    UncontrolledCallModel,
    fingerprints,
    redacted_effects,
    redacted_trace,
    snapshot,
    trace_hash,
)
from jobforge.worker.capture import RunLog, capturing
from jobforge.worker.context import JobContext
from jobforge.worker.middleware import Next

logger = logging.getLogger("jobforge.worker")

#: The bytes of small artifacts (one chunk at most each) sent with the record, in its call and
#: transaction, at most: a run's usual artifacts cost no round trip and no commit of their own,
#: and no call is larger than a few chunks. The rest are stored first, each on its own.
WITH_RECORD_BYTES = 4 * CHUNK_BYTES


class Recorder:
    """`Worker(..., middleware=[Recorder(client)])`."""

    def __init__(
        self,
        client: AsyncQueueClient | None = None,
        *,
        redactor: Redactor | None = None,
        keep: list[dict[str, Any]] | None = None,
    ) -> None:
        """Without a client, the records go through the worker's own. With `keep`, each record is
        also appended there unredacted (it never leaves memory): runs are compared on it, so a
        value under a secret-looking key still counts."""
        self._client = client
        self._redact = redactor or Redactor()
        self._keep = keep

    async def __call__(self, ctx: JobContext, call_next: Next) -> Any:
        began, clock = datetime.now(UTC), time.perf_counter()
        log = RunLog(ctx.job.payload)
        try:
            with capturing(log):
                result = await call_next(ctx)
        except asyncio.CancelledError:
            await self._write(ctx, began, clock, ctx.stop_reason or "canceled", None, log)
            raise
        except BaseException as exc:
            await self._write(ctx, began, clock, _status(exc, ctx), exc, log)
            raise
        await self._write(ctx, began, clock, "succeeded", None, log)
        return result

    async def _write(self, ctx: JobContext, began: datetime, clock: float, status: RunStatus,
                     exc: BaseException | None, log: RunLog) -> None:  # fmt: skip
        definition, run = ctx.run.definition, ctx.run.run
        if definition is None or run is None:
            return  # not a runner, or it never started
        record = build_record(
            definition, run, ctx, status, exc, began=began,
            duration_ms=(time.perf_counter() - clock) * 1000, redactor=self._redact,
        )  # fmt: skip
        if self._keep is not None:
            whole = record.model_copy(update=_unredacted(definition, run, ctx, status))
            self._keep.append(whole.model_dump(mode="json"))
        token = ctx.job.lease_token
        assert token is not None
        client = self._client or ctx.client
        if client is None:
            logger.warning("job %d: no queue client to record the run with", ctx.job_id)
            return
        try:
            contents = [(a.name, run.artifact_bytes(a.name)) for a in record.artifacts]
            lines = log.render(self._redact.for_runner(definition.secret_keys,
                                                       definition.public_keys))  # fmt: skip
            if lines:
                logs = ArtifactRecord(name=LOGS_NAME, media="text", size=len(lines),
                                      sha256=canonical.sha256_of(lines))  # fmt: skip
                record = record.model_copy(update={"logs": logs})
                contents.append((LOGS_NAME, lines))
            blobs: list[StoredArtifact] = []
            budget = WITH_RECORD_BYTES
            for name, data in contents:
                sha = canonical.sha256_of(data)
                if len(data) <= CHUNK_BYTES and len(data) <= budget:  # with the record
                    budget -= len(data)
                    blobs.append(StoredArtifact(name, sha, len(data), data))
                    continue
                if not await self._store(client, ctx, token, data):
                    return
                blobs.append(StoredArtifact(name, sha, len(data)))
            written = dataclasses.replace(stored(record), artifacts=tuple(blobs))
            await client.record_run(ctx.worker, ctx.job_id, token, written)
        except Exception:
            logger.warning("job %d: run record not written", ctx.job_id, exc_info=True)

    async def _store(
        self, client: AsyncQueueClient, ctx: JobContext, token: UUID, data: bytes
    ) -> bool:
        """Store one blob for the attempt; False (logged) when the attempt is not ours any more
        or its record is written already."""
        sha = await client.store_blob(ctx.worker, ctx.job_id, token, ctx.tenant_id, data)
        if sha is None:
            logger.warning("job %d: the attempt is no longer this worker's: run not recorded",
                           ctx.job_id)  # fmt: skip
        return sha is not None


def build_record(
    definition: RunnerDef,
    run: RunContext,
    ctx: JobContext,
    status: RunStatus,
    exc: BaseException | None,
    *,
    began: datetime,
    duration_ms: float,
    redactor: Redactor,
) -> RunRecord:
    output = ctx.run.output if status == "succeeded" else None
    redactor = redactor.for_runner(definition.secret_keys, definition.public_keys)
    trace = redacted_trace(run.trace, redactor)
    watch = ctx.run.watch
    environment = run.recorded_environment()
    return RunRecord(
        runner_id=definition.id,
        runner_version=definition.version,
        status=status,
        error=None if exc is None else _error(exc),
        input=snapshot(ctx.job.payload, redactor),
        environment=environment.model_copy(
            update={"http": [redact_exchange(e, redactor) for e in redactor(environment.http)]}
        ),
        trace=trace,
        trace_sha256=trace_hash(trace),
        output=None if output is None else snapshot(output, redactor),
        artifacts=sorted(run.artifacts.values(), key=lambda a: a.name),
        uncontrolled=[
            UncontrolledCallModel(
                call=c.call,
                file=c.file,
                line=c.line,
                hint=c.hint,
                cause=c.cause,
                severity=c.severity,
                values=list(c.values),
            )
            for c in (watch.calls if watch else [])
        ],
        globals_changed=[
            GlobalChangeModel(
                module=g.module,
                name=g.name,
                before=g.before,
                after=g.after,
                file=g.file,
                line=g.line,
            )
            for g in (watch.globals_changed if watch else [])
        ],
        provenance=Provenance(
            job_id=ctx.job_id,
            attempt=ctx.attempt,
            worker=ctx.worker,
            recorded_at=began.isoformat(),
            duration_ms=round(duration_ms, 3),
            fingerprints=fingerprints(definition.fn),
        ),
        effects=redacted_effects(run.effects, redactor),
        admission=ctx.run.admission,
    )


def _unredacted(definition: RunnerDef, run: RunContext, ctx: JobContext,
                status: RunStatus) -> dict[str, Any]:  # fmt: skip
    """The parts of a record that redaction changes, as the run produced them."""
    everything = Redactor.none()
    output = ctx.run.output if status == "succeeded" else None
    environment = run.recorded_environment()
    trace = list(run.trace)
    return {
        "input": snapshot(ctx.job.payload, everything),
        "environment": environment,
        "trace": trace,
        "trace_sha256": trace_hash(trace),
        "output": None if output is None else snapshot(output, everything),
        "effects": run.effects,
    }


def _status(exc: BaseException, ctx: JobContext) -> RunStatus:
    if ctx.stop_reason == "timeout":
        return "timeout"
    if ctx.stop_reason in ("canceled", "lease_lost", "shutdown"):
        return ctx.stop_reason
    if isinstance(exc, errors.InvalidInput):
        return "invalid_input"
    if isinstance(exc, errors.ContractViolation):
        return "contract_violation"
    if isinstance(exc, errors.NonRetryable):
        return "failed"
    return "retry"


def _error(exc: BaseException) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type(exc).__qualname__, "message": str(exc)[:4000]}
    details = getattr(exc, "details", None)
    if details is not None:
        body["details"] = details
    return body


def stored(record: RunRecord) -> RunWrite:
    """The record as the queue stores it: the columns it is found by, beside the document (the
    queue never reads inside a run record; its format belongs to this layer)."""
    return RunWrite(
        runner_id=record.runner_id,
        runner_version=record.runner_version,
        status=record.status,
        input_sha256=record.input.sha256,
        output_sha256=None if record.output is None else record.output.sha256,
        trace_sha256=record.trace_sha256,
        document=record.model_dump(mode="json"),
    )


__all__ = ["Recorder", "Snapshot", "build_record", "stored"]
