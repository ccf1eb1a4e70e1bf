"""Producing jobs for declared runners: a job whose input is checked against the runner's
contract before anything is stored. A producer (a web app, the CLI, a script) needs the
runner's definition and a queue client, never a worker: so this sits beside the worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from jobforge import errors, validation
from jobforge.contracts import RunnerDef
from jobforge.queue import NewJob


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
