"""Events (migrations/0020): a tenant's CloudEvents-like envelopes, each evaluated by the
tenant's triggers in the transaction that stores it.

The records (`NewEvent`, `StoredEvent`, `Submitted`) and the parameters of each call; the
operations themselves (one transaction each, sync and async) are in `jobforge.queue.operations`.
An event file is the whole envelope as JSON (`NewEvent.from_envelope`): `type`, `source`,
`subject`, `data`, `time`, `dedupe_key`, and nothing else, so a misspelt field is refused
rather than dropped.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobforge import errors, validation
from jobforge.db import Jsonb
from jobforge.queue.triggers import Evaluation

Call = tuple[str, dict[str, Any]]
#: An event type: what a trigger matches, e.g. order.created (CloudEvents' reverse-DNS style fits).
TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
#: Events `list` returns when not told.
DEFAULT_LIST = 50
#: The fields of an event file.
ENVELOPE = ("type", "source", "subject", "data", "time", "dedupe_key")
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class NewEvent(BaseModel):
    """An event to submit. `time`: when it occurred (default: when it is stored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
    source: str = Field(min_length=1, max_length=500, pattern=_PRINTABLE)
    subject: str | None = Field(default=None, min_length=1, max_length=500, pattern=_PRINTABLE)
    data: dict[str, Any] = Field(default_factory=dict)
    time: datetime | None = None
    dedupe_key: str | None = Field(default=None, min_length=1, max_length=200, pattern=_PRINTABLE)

    @classmethod
    def from_envelope(cls, envelope: object, *, source: str = "the event") -> NewEvent:
        """The event an envelope (an event file's JSON) describes, or one line saying why not."""
        if not isinstance(envelope, dict):
            raise errors.ConfigurationError(
                f"{source} must be a JSON object (an envelope with type, source, data), "
                f"not {type(envelope).__name__}"
            )
        unknown = sorted(set(envelope) - set(ENVELOPE))
        if unknown:
            raise errors.ConfigurationError(
                f"{source} has unknown field(s) {', '.join(unknown)[:200]}: an envelope has "
                f"{', '.join(ENVELOPE)}"
            )
        return checked(source, **envelope)


def checked(where: str = "the event", /, **fields: Any) -> NewEvent:
    """`NewEvent(**fields)`, or one line naming the field that is wrong (`where` names the
    event: an event file's envelope has a field `source` of its own)."""
    try:
        return NewEvent(**fields)
    except ValidationError as exc:
        raise errors.ConfigurationError(f"{where}: {validation.summary(exc)}") from None


class StoredEvent(_Record):
    """An event as stored."""

    id: int
    tenant_id: str
    type: str
    source: str
    subject: str | None = None
    data: dict[str, Any]
    dedupe_key: str | None = None
    occurred_at: datetime
    submitted_at: datetime
    login: str
    actor: str | None = None


class Submitted(_Record):
    """What a submit did: the event (`created` False: its dedupe key named an event submitted
    before, returned as it was and not evaluated again), and each trigger's evaluation.
    `dry_run`: nothing was kept."""

    event: StoredEvent
    created: bool
    evaluations: list[Evaluation]
    dry_run: bool = False


def submit(new: NewEvent, dry_run: bool, now: datetime | None) -> Call:
    """The data's size and JSON are checked by the database (its limit, as for payloads)."""
    return "event_submit", {
        "type": new.type, "source": new.source, "subject": new.subject, "data": Jsonb(new.data),
        "dedupe_key": new.dedupe_key, "occurred_at": new.time, "dry_run": dry_run, "now": now,
    }  # fmt: skip


def submitted(rows: list[dict[str, Any]], dry_run: bool) -> Submitted:
    row = rows[0]
    return Submitted(event=StoredEvent.model_validate(row["event"]), created=row["created"],
                     evaluations=[Evaluation.model_validate(e) for e in row["evaluations"]],
                     dry_run=dry_run)  # fmt: skip


def listing(event_type: str | None, since: datetime | None, limit: int) -> Call:
    if not 1 <= limit <= 1000:
        raise errors.ConfigurationError(f"limit must be 1-1000, not {limit}")
    if event_type is not None and not TYPE.fullmatch(event_type):
        raise errors.ConfigurationError(
            f"event type {event_type[:240]!r} is invalid: use 1-200 of [A-Za-z0-9._-]"
        )
    return "event_list", {"type": event_type, "since": since, "limit": limit}
