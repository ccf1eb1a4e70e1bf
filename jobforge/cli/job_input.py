"""A job's input as a command takes it, checked as `jobforge enqueue` checks it: JSON from the
command line or a file, an object, not a jobforge file by mistake, of a job type the runner
repository around the working directory handles, and valid input for that runner's model.

Shared by `jobforge enqueue` (PAYLOAD_JSON / --payload-file) and `jobforge schedules add`
(--input / --input-file), so a schedule is refused for what an enqueue of its job would be.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jobforge import errors, validation
from jobforge.cli.known_types import known_types, not_a_payload
from jobforge.produce import runner_job
from jobforge.queue import NewJob


@dataclass(frozen=True)
class Flags:
    """How the command names its input: the argument or option of the JSON, and of the file."""

    text: str = "PAYLOAD_JSON"
    file: str = "--payload-file"
    noun: str = "payload"


PAYLOAD = Flags()


def read_input(text: str | None, file: Path | None, flags: Flags = PAYLOAD) -> dict[str, Any]:
    """The JSON object given as text or in a file (default {}), or one line saying why not."""
    if text is not None and file is not None:
        raise errors.ConfigurationError(f"give {flags.text} or {flags.file}, not both")
    if file is not None:
        try:
            text = file.read_text()
        except OSError as exc:
            raise errors.ConfigurationError(
                f"cannot read {flags.noun} file {file}: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise errors.ConfigurationError(
                f"cannot read {flags.noun} file {file}: it is not UTF-8 text"
            ) from None
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise errors.ConfigurationError(f"the {flags.noun} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise errors.ConfigurationError(
            f"the {flags.noun} must be a JSON object, not {type(value).__name__}"
        )
    return value


def checked_job(
    job_type: str,
    body: dict[str, Any],
    *,
    source: str,
    allow_unknown_type: bool,
    fields: dict[str, Any],
) -> NewJob:
    """The job, checked before anything is sent. In a runner repository ([tool.jobforge]) the
    type must be one its runners or handlers handle (unless `allow_unknown_type`) and a
    runner's input must be valid for its model; the runner's max_attempts is the default.
    `source` names where the input came from in messages."""
    known = known_types()
    definition = known.runners.get(job_type) if known is not None else None
    if (why := not_a_payload(body, definition)) is not None:
        raise errors.ConfigurationError(f"{source} is {why}")
    if known is not None and job_type not in known.types and not allow_unknown_type:
        raise errors.ConfigurationError(known.unknown_message(job_type))
    try:
        if definition is not None:  # checked against its input model, before anything is stored
            return runner_job(definition, body, **fields)
        return NewJob(type=job_type, payload=body, **fields)
    except errors.InvalidInput as exc:
        raise errors.ConfigurationError(
            f"{exc} ({source} checked against the runner's input model)"
        ) from None
    except ValidationError as exc:
        raise errors.ConfigurationError(f"invalid job: {validation.summary(exc)}") from None
