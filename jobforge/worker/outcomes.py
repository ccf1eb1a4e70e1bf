"""How one attempt of a job ends: its handler run (through the middleware) under the job's
timeout, and what came of it classified into the `Outcome` the queue records.

A JSON result is `succeeded`; invalid input and `NonRetryable` are `failed`, not retried; a
timeout and any other exception are `retry`, with the runner's backoff. A job stopped by a
cancellation, a lost lease or the shutdown has no outcome at all (None): what follows is
`jobforge.worker.stopping`'s work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import traceback
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel

from jobforge import errors, storable
from jobforge.queue import AsyncQueueClient, Job, Outcome
from jobforge.worker import logs
from jobforge.worker.admission import Admission, KeyLoader, Policy, admit
from jobforge.worker.context import JobContext
from jobforge.worker.deadlines import Deadlines
from jobforge.worker.executor import Executor
from jobforge.worker.leases import Running
from jobforge.worker.metrics import Metrics
from jobforge.worker.middleware import Middleware, chain
from jobforge.worker.runners import followups_of

logger = logs.logger

#: The stop reasons after which a job has no outcome to record.
NO_OUTCOME = frozenset({"canceled", "lease_lost", "shutdown"})


async def outcome_of(
    running: Running,
    executor: Executor,
    middleware: Sequence[Middleware],
    *,
    timeout_s: float | None,
    timeout_source: str = "runner",
    metrics: Metrics,
    worker: str,
    deadlines: Deadlines,
) -> Outcome | None:
    """Run the job in this task; None when it was stopped (cancel, lost lease, shutdown)."""
    job, spec, ctx = running.job, running.spec, running.ctx
    token = job.lease_token
    assert token is not None

    def done(kind: str, **fields: Any) -> Outcome:
        backoff = spec.backoff_s if kind == "retry" else None  # the runner's retry policy
        return Outcome(job_id=job.id, lease_token=token, outcome=kind,  # type: ignore[arg-type]
                       backoff_s=backoff, **fields)  # fmt: skip

    def timed_out(exc: BaseException | None) -> Outcome:
        metrics.inc("timed_out", job_type=job.type)
        message = f"the handler ran past its timeout of {timeout_s} s ({timeout_source}'s)"
        _retried(job, worker, message)
        return done("retry", result=None, error=error_record("timeout", exc, message))

    timer = None
    try:
        if timeout_s is not None:
            # Our own timer rather than asyncio.timeout: the handler sees stop_reason "timeout"
            # (and sync ones ctx.cancelled) before the cancellation lands, and a TimeoutError the
            # handler raises itself stays an ordinary exception. On the worker's shared ticks
            # (`deadlines`), not a timer of its own; inside the try, so that whatever arming it
            # raises ends this attempt like any error instead of leaving its lease held.
            # The task running this attempt, which the worker recorded when it made it
            # (asyncio.current_task() is pure Python on 3.11: ~2 us a job).
            task = running.task or asyncio.current_task()
            assert task is not None
            timer = deadlines.arm(timeout_s, _time_out, ctx, task)
        arg = job.payload
        if spec.parse_input is not None:
            try:
                arg = spec.parse_input(job.payload)
            except Exception as exc:
                raise errors.InvalidInput(f"invalid input for {job.type}: {exc}") from exc
        if middleware:
            call = chain(middleware, partial(executor.run, spec, arg=arg))
            result = await call(ctx)
        else:
            result = await executor.run(spec, ctx, arg)
        if ctx.stop_reason == "timeout":  # it returned anyway, after being told to stop
            raise asyncio.CancelledError
        return done(
            "succeeded", result=_json_result(result), error=None, followups=followups_of(ctx)
        )
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if ctx.stop_reason is None or current is None:
            raise
        if current.cancelling():
            current.uncancel()  # we asked for it: the job stops, the worker goes on
        if ctx.stop_reason != "timeout":
            return None
        return timed_out(None)
    except errors.InvalidInput as exc:
        _not_retried(job, worker, "invalid input", exc)
        return done("failed", result=None, error=error_record("invalid_input", exc))
    except errors.NonRetryable as exc:
        _not_retried(job, worker, type(exc).__name__, exc)
        return done("failed", result=None, error=error_record("non_retryable", exc))
    except Exception as exc:
        if ctx.stop_reason in NO_OUTCOME:
            return None
        if ctx.stop_reason == "timeout":  # the handler turned the cancellation into an error
            return timed_out(exc)
        _retried(job, worker, f"raised {_one_line(exc)}")
        return done("retry", result=None, error=error_record("exception", exc))
    finally:
        if timer is not None:
            deadlines.disarm(timer)


async def admitted(running: Running, policy: Policy, client: AsyncQueueClient, *,
                   metrics: Metrics, worker: str,
                   keys: KeyLoader | None = None) -> Admission | Outcome | None:  # fmt: skip
    """The job's admission (`worker/admission.py`), or the outcome of its refusal: failed, not
    retried, for signatures or a token that do not hold; a retry when they could not be checked
    (the database did not answer); None when the lease was lost meanwhile."""
    job, ctx = running.job, running.ctx
    token = job.lease_token
    assert token is not None
    try:
        return await admit(job, running.spec, policy, client, worker, keys)
    except errors.JobRefused as exc:
        metrics.inc("refused", job_type=job.type)
        _not_retried(job, worker, f"refused: {exc.reason}", exc)
        error = {**error_record("refused", None, str(exc)), "reason": exc.reason}
        if exc.key_id is not None:
            error["key_id"] = exc.key_id
        return Outcome(job_id=job.id, lease_token=token, outcome="failed", error=error)
    except errors.LeaseLost:
        ctx.stop("lease_lost")
        return None
    except Exception as exc:
        logger.warning("job %d: its admission could not be checked: %s", job.id, exc,
                       extra=logs.job_fields(job, worker))  # fmt: skip
        return Outcome(
            job_id=job.id,
            lease_token=token,
            outcome="retry",
            error=error_record("admission", exc),
            backoff_s=running.spec.backoff_s,
        )


def _time_out(ctx: JobContext, task: asyncio.Task[Any]) -> None:
    if ctx.stop_reason is None and not task.done():
        ctx.stop("timeout")
        task.cancel()


#: The worker's own modules and the runtime around a runner: a traceback starts below them.
_GLUE = tuple(str(Path(__file__).parent.parent / part) + os.sep for part in ("worker", "runtime"))


def handler_traceback(exc: BaseException) -> str:
    """The exception's traceback from where the worker called into other code: the worker's
    frames above that call (outcome, executor, thread, middleware, runner adapter) say nothing
    about the job and pushed its own frames out of sight in `jobs show`. The last of them, the
    call site, stays, and a line says how many were left out; all of it when it never left
    them, or when there is nothing to leave out."""
    entries: list[TracebackType] = []
    tb = exc.__traceback__
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    first = next((i for i, e in enumerate(entries)
                  if not e.tb_frame.f_code.co_filename.startswith(_GLUE)), None)  # fmt: skip
    if first is None or first < 2:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text = "".join(traceback.format_exception(type(exc), exc, entries[first - 1]))
    head = "Traceback (most recent call last):\n"
    at = text.rfind(head)  # the exception's own block, after those of its causes
    if at < 0:
        return text
    left_out = first - 1
    note = f"  ({left_out} frame{'s' if left_out > 1 else ''} of jobforge's worker left out)\n"
    return text[: at + len(head)] + note + text[at + len(head) :]


def _retried(job: Job, worker: str, what: str) -> None:
    """One line for an attempt that ends in a retry, saying what the queue makes of it
    (finish_v1): another attempt (a warning), or none left, so the job is dead (an error, as a
    failure that is not retried)."""
    again = job.attempts < job.max_attempts
    logger.log(
        logging.WARNING if again else logging.ERROR,
        "job %d (%s), attempt %d of %d, %s; %s", job.id, job.type, job.attempts,
        job.max_attempts, what,
        "it will be retried" if again else "no attempts are left, so the job is dead",
        extra=logs.job_fields(job, worker),
    )  # fmt: skip


def _one_line(exc: BaseException) -> str:
    """The exception's type and message on one line (the message cut at 1,000 characters)."""
    message = " ".join(str(exc).split())[:1000]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _not_retried(job: Job, worker: str, why: str, exc: BaseException) -> None:
    """A job failed for good: one line (a retried failure logs a warning already)."""
    reason = " ".join(str(exc).split())[:1000] or type(exc).__name__
    logger.error("job %d (%s) failed, not retried (%s): %s", job.id, job.type, why, reason,
                 extra=logs.job_fields(job, worker))  # fmt: skip


def _json_result(result: Any) -> Any:
    """The handler's result as the queue stores it, or NonRetryable: what jsonb cannot hold would
    fail the whole batch of outcomes recorded with it, the other jobs' included."""
    if result is None or type(result) is bool:
        return result
    if type(result) is str:
        problem = storable.text_problem(result)
    else:
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json")
        try:  # jsonb has no NaN or Infinity; an int too long for Python to print fails here too
            text = json.dumps(result, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise errors.NonRetryable(f"the handler's result is not JSON: {exc}") from None
        problem = storable.json_problem(text)
    if problem is not None:
        raise errors.NonRetryable(f"the handler's result cannot be stored: {problem}")
    return result


def error_record(
    kind: str, exc: BaseException | None, message: str | None = None
) -> dict[str, Any]:
    """The `error` an outcome (or a compensation record) stores: kind, type, message, traceback."""
    if exc is None:
        return {"kind": kind, "message": None if message is None else storable.shown(message)}
    record: dict[str, Any] = {
        "kind": kind,
        "type": storable.shown(type(exc).__qualname__),
        "message": storable.shown((message or str(exc))[:4000]),
        "traceback": storable.shown(handler_traceback(exc)[-8000:]),
    }
    if (details := getattr(exc, "details", None)) is not None:
        try:
            text = json.dumps(details, allow_nan=False, ensure_ascii=False)
            problem = storable.json_problem(text)
        except (TypeError, ValueError):
            problem = "not JSON"
        record["details"] = details if problem is None else storable.shown(repr(details)[:4000])
    return record
