"""Runs a declared runner (`@runner`) as a worker handler: input validated before, output,
trace keys and artifacts checked after, a RunContext built from the run's environment."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from jobforge import canonical, errors
from jobforge.contracts import RunnerDef
from jobforge.queue import NewJob
from jobforge.runtime.context import Environment, Mode, RunContext
from jobforge.runtime.http import HttpPolicy
from jobforge.runtime.redact import Redactor
from jobforge.runtime.strict import Watch, watching
from jobforge.worker.context import JobContext
from jobforge.worker.registry import Handler, HandlerSpec, Registry

#: Keys of JobContext.extensions shared with middleware (the recorder) and replay.
ENVIRONMENT = "jobforge.environment"
MODE = "jobforge.mode"
RUN = "jobforge.run"
RUNNER = "jobforge.runner"
OUTPUT = "jobforge.output"
STRICT = "jobforge.strict"  #: set to True to watch the runner for uncontrolled calls
#: with STRICT: seconds the wall clock is moved by for the runner (golden runs differ by it)
CLOCK_SHIFT = "jobforge.clock_shift"
UNCONTROLLED = "jobforge.uncontrolled"  #: what strict mode saw (list of UncontrolledCall)


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
        raise errors.InvalidInput(f"invalid input for {definition.id}: {_summary(exc)}") from None
    fields.setdefault("max_attempts", definition.max_attempts)
    return NewJob(type=definition.id, payload=payload, **fields)


def register_runner(
    registry: Registry, definition: RunnerDef, *, http_policy: HttpPolicy | None = None
) -> HandlerSpec:
    return registry.register(
        definition.id,
        runner_handler(definition, http_policy=http_policy),
        timeout_s=definition.timeout_s,
        backoff_s=(definition.retry.base_s, definition.retry.cap_s),
    )


@functools.cache
def runner_handler(definition: RunnerDef, *, http_policy: HttpPolicy | None = None) -> Handler:
    """A handler with the runner's sync-or-async nature (sync ones keep running on threads)."""
    if definition.is_async:

        async def run_async(payload: dict[str, Any], job: JobContext) -> Any:
            inp, ctx = _before(definition, payload, job, http_policy)
            if not job.extensions.get(STRICT):
                return _after(definition, await definition.fn(inp, ctx), ctx, job)
            watch = job.extensions[UNCONTROLLED] = Watch(job.extensions.get(CLOCK_SHIFT, 0.0))
            with watching(watch, modules=_modules(definition)):
                result = await definition.fn(inp, ctx)
            return _after(definition, result, ctx, job)

        return run_async

    def run(payload: dict[str, Any], job: JobContext) -> Any:
        inp, ctx = _before(definition, payload, job, http_policy)
        if not job.extensions.get(STRICT):
            return _after(definition, definition.fn(inp, ctx), ctx, job)
        watch = job.extensions[UNCONTROLLED] = Watch(job.extensions.get(CLOCK_SHIFT, 0.0))
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
    job.extensions[RUNNER] = definition
    environment = job.extensions.get(ENVIRONMENT)
    if not isinstance(environment, Environment):
        environment = Environment.fresh(job.tenant_id, job.trace_id)
        job.extensions[ENVIRONMENT] = environment
    mode: Mode = job.extensions.get(MODE, "record")
    ctx = RunContext(
        environment,
        mode=mode,
        job_id=job.job_id,
        attempt=job.attempt,
        http_policy=policy,
        progress=job.progress,
        cancelled=job.cancelled,
        # the runner's own secret names too, so request bodies hash without them
        secrets=Redactor(key=None).for_runner(definition.secret_keys, definition.public_keys),
    )
    job.extensions[RUN] = ctx
    try:
        inp = definition.input.model_validate(payload)
    except ValidationError as exc:
        raise errors.InvalidInput(
            f"the input of {definition.id} is invalid: {_summary(exc)}",
            details=_details(exc),
        ) from None
    return inp, ctx


def _after(definition: RunnerDef, result: Any, ctx: RunContext, job: JobContext) -> Any:
    data = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
    try:
        output = definition.output.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        raise errors.ContractViolation(
            f"the output of {definition.id} violates its contract: {_summary(exc)}",
            details=_details(exc),
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
    job.extensions[OUTPUT] = output
    return output


def _summary(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:5]
    ]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
