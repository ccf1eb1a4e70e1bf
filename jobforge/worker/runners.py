"""Runs a declared runner (`@runner`) as a worker handler: input validated before, output,
trace keys and artifacts checked after, a RunContext built from the run's environment. What the
run leaves for the recorder goes into the job context's typed run slot (`worker/slot.py`)."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, ValidationError

from jobforge import canonical, errors, validation
from jobforge.contracts import RUNNERS, RunnerDef
from jobforge.queue import FollowUp
from jobforge.runtime.context import Environment, RunContext
from jobforge.runtime.http.policy import HttpPolicy
from jobforge.runtime.redact import Redactor
from jobforge.runtime.strict import Watch, watching
from jobforge.worker.connectors import lookup_for
from jobforge.worker.context import JobContext
from jobforge.worker.registry import Handler, HandlerSpec, Registry


def register_runner(
    registry: Registry, definition: RunnerDef, *, http_policy: HttpPolicy | None = None
) -> HandlerSpec:
    return registry.register(
        definition.id,
        runner_handler(definition, http_policy=http_policy),
        timeout_s=definition.timeout_s,
        backoff_s=(definition.retry.base_s, definition.retry.cap_s),
        signed=definition.signed,
        requires_scopes=definition.requires_scopes,
    )


@functools.cache
def runner_handler(definition: RunnerDef, *, http_policy: HttpPolicy | None = None) -> Handler:
    """A handler with the runner's sync-or-async nature (sync ones keep running on threads)."""
    if definition.is_async:

        async def run_async(payload: dict[str, Any], job: JobContext) -> Any:
            inp, ctx = _before(definition, payload, job, http_policy)
            if not job.run.strict:
                return _after(definition, await definition.fn(inp, ctx), ctx, job)
            watch = job.run.watch = Watch(job.run.clock_shift_s)
            with watching(watch, modules=_modules(definition)):
                result = await definition.fn(inp, ctx)
            return _after(definition, result, ctx, job)

        return run_async

    def run(payload: dict[str, Any], job: JobContext) -> Any:
        inp, ctx = _before(definition, payload, job, http_policy)
        if not job.run.strict:
            return _after(definition, definition.fn(inp, ctx), ctx, job)
        watch = job.run.watch = Watch(job.run.clock_shift_s)
        with watching(watch, modules=_modules(definition)):
            result = definition.fn(inp, ctx)
        return _after(definition, result, ctx, job)

    return run


def _modules(definition: RunnerDef) -> tuple[str, ...]:
    """The modules whose globals strict mode watches: the runner's own."""
    module = getattr(definition.fn, "__module__", None)
    return (module,) if isinstance(module, str) else ()


def _before(
    definition: RunnerDef, payload: dict[str, Any], job: JobContext, policy: HttpPolicy | None
) -> tuple[BaseModel, RunContext]:
    slot = job.run
    slot.definition = definition
    if slot.environment is None:
        slot.environment = Environment.fresh(job.tenant_id, job.trace_id)
    ctx = RunContext(
        slot.environment,
        mode=slot.mode,
        job_id=job.job_id,
        attempt=job.attempt,
        http_policy=policy,
        progress=job.progress,
        cancelled=job.cancelled,
        # the runner's own secret names too, so request bodies hash without them
        secrets=Redactor(key=None).for_runner(definition.secret_keys, definition.public_keys),
        check_followup=check_followup,
        connectors=lookup_for(job),
    )
    slot.run = ctx
    try:
        inp = definition.input.model_validate(payload)
    except ValidationError as exc:
        raise errors.InvalidInput(
            f"the input of {definition.id} is invalid: {validation.summary(exc, limit=5)}",
            details=validation.details(exc),
        ) from None
    return inp, ctx


def _after(definition: RunnerDef, result: Any, ctx: RunContext, job: JobContext) -> Any:
    data = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
    try:
        output = definition.output.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        raise errors.ContractViolation(
            f"the output of {definition.id} violates its contract: "
            + validation.summary(exc, limit=5),
            details=validation.details(exc),
        ) from None
    try:  # what cannot be recorded exactly (an int beyond 2**53, NaN) is refused here, named
        canonical.jsonable(output)
    except errors.CanonicalError as exc:
        raise errors.ContractViolation(
            f"the output of {definition.id} cannot be recorded: {exc}"
        ) from None
    problems = []
    seen = {step.key for step in ctx.trace}
    if missing := [k for k in definition.trace_keys if k not in seen]:
        problems.append(f"required trace keys never decided: {', '.join(missing)}")
    if missing := [a for a in definition.artifacts if a not in ctx.artifacts]:
        problems.append(f"required artifacts never written: {', '.join(missing)}")
    if problems:
        raise errors.ContractViolation(
            f"{definition.id} broke its contract: " + "; ".join(problems),
            details={"problems": problems},
        )
    job.run.output = output
    return output


def check_followup(runner_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A follow-up's input checked against its runner's contract when this process declares
    the runner (a bad one is the parent runner's bug: `ContractViolation`, not retried); a runner
    declared elsewhere is enqueued as given, and checked by its own worker when it runs."""
    definition = RUNNERS.get(runner_id)
    if definition is None:
        return payload
    try:
        definition.input.model_validate(payload)
    except ValidationError as exc:
        raise errors.ContractViolation(
            f"follow-up {runner_id}: the input is invalid: {validation.summary(exc, limit=5)}",
            details=validation.details(exc),
        ) from None
    return payload


def followup_key(job_id: int, index: int) -> str:
    """The idempotency key of a follow-up its runner gave none: the parent job and the
    follow-up's position, the same in every attempt, so a retried parent enqueues it once."""
    return f"jobforge.followup:{job_id}:{index}"


def followups_of(job: JobContext) -> tuple[FollowUp, ...]:
    """What a succeeded attempt enqueues with its completion: the run's effects, in a live run
    only (a harness in replay mode, golden or replay, compares them and performs none)."""
    run = job.run.run
    if run is None or job.run.mode != "record" or not run.effects:
        return ()
    found = []
    for effect in run.effects:
        known = RUNNERS.get(effect.runner_id)
        attempts = effect.max_attempts or (known.max_attempts if known is not None else None)
        found.append(FollowUp(
            type=effect.runner_id, payload=effect.input,
            idempotency_key=effect.key or followup_key(job.job_id, effect.index),
            priority=effect.priority, max_attempts=attempts,
        ))  # fmt: skip
    return tuple(found)
