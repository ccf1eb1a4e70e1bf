"""An event as `jobforge events submit` and `jobforge triggers test` take it: an event file
(the whole envelope as JSON), or the envelope's fields as options; and a trigger's input
template checked against the runner's input model when this repository knows the runner.

A template is checked with its "$." strings left as they are: a field the model lacks, a
required field left out or a literal of the wrong type is refused at `add`; the fields an event
fills are checked when `triggers test` renders them from a real event.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jobforge import errors, validation
from jobforge.cli.known_types import known_types
from jobforge.queue.events import NewEvent, checked


def read_json(path: Path, noun: str) -> Any:
    """The JSON in `path`, or one line saying why not."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot read {noun} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise errors.ConfigurationError(
            f"cannot read {noun} {path}: it is not UTF-8 text"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.ConfigurationError(f"{noun} {path} is not valid JSON: {exc}") from None


def event_from_file(path: Path) -> NewEvent:
    return NewEvent.from_envelope(read_json(path, "event file"), source=f"event file {path}")


def event_from_options(
    event_type: str | None,
    source: str | None,
    subject: str | None,
    data: dict[str, Any],
    time: datetime | None,
    dedupe_key: str | None,
) -> NewEvent:
    if event_type is None or source is None:
        raise errors.ConfigurationError(
            "give --type and --source (or an event file with the whole envelope)"
        )
    return checked("the event", type=event_type, source=source, subject=subject, data=data,
                   time=time, dedupe_key=dedupe_key)  # fmt: skip


def _is_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith("$.")


def check_template(
    job_type: str, template: dict[str, Any], *, allow_unknown_type: bool
) -> int | None:
    """One line when the template cannot make valid input for the runner of `job_type` (known
    in this repository): every problem but those at a "$." string the event fills. The
    runner's max_attempts (None: no runner known here), the jobs' default as for an enqueue."""
    known = known_types()
    if known is None:
        return None
    if job_type not in known.types and not allow_unknown_type:
        raise errors.ConfigurationError(known.unknown_message(job_type))
    definition = known.runners.get(job_type)
    if definition is None:
        return None
    try:
        definition.input.model_validate(template)
    except ValidationError as exc:
        real = [e for e in exc.errors() if not _is_reference(e.get("input"))]
        if real:
            shown = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in real[:5]
            )
            raise errors.ConfigurationError(
                f"--input: invalid input for {definition.id}: {shown} (the template checked "
                'against the runner\'s input model; "$." values are filled by each event)'
            ) from None
    return definition.max_attempts


def check_rendered(job_type: str, payload: dict[str, Any]) -> str | None:
    """Why `payload` is not valid input for the runner of `job_type` (None when it is, or when
    this repository does not know the runner)."""
    known = known_types()
    definition = known.runners.get(job_type) if known is not None else None
    if definition is None:
        return None
    try:
        definition.input.model_validate(payload)
    except ValidationError as exc:
        return f"invalid input for {definition.id}: {validation.summary(exc, limit=5)}"
    return None
