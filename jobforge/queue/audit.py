"""Who acts and why (migrations/0014): the actor and reason a client sets on its transactions,
checked here so that a bad one is one line before anything is sent (the database's checks on
job_events refuse it too), and the audit trail read back across jobs."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobforge import db, errors

#: The longest actor and reason the database keeps.
MAX_ACTOR = 200
MAX_REASON = 1000
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: What an actor may not hold: controls, and the invisible characters (formats, line and
#: paragraph separators) that make one name look like another ("adm\u200bin").
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _printable(text: str) -> bool:
    return not any(unicodedata.category(ch) in _HIDDEN for ch in text)


def acting(actor: str | None, reason: str | None) -> db.Acting:
    """The actor and reason, once they are what the database keeps; else one line why."""
    if actor is not None and not (1 <= len(actor) <= MAX_ACTOR and _printable(actor)):
        raise errors.ConfigurationError(
            f"actor {actor[:60]!r} is not 1-{MAX_ACTOR} printable characters"
        )
    if reason is not None and not (
        1 <= len(reason) <= MAX_REASON and not _CONTROL_BUT_LINES.search(reason)
    ):
        raise errors.ConfigurationError(
            f"reason {reason[:60]!r} is not 1-{MAX_REASON} characters without control characters"
        )
    return db.Acting(actor, reason)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One event of the trail: what happened to which job, when, who did it and why."""

    id: int
    job_id: int
    kind: str
    at: datetime
    actor: str | None  #: None: a manual change sent without one
    login: str | None
    reason: str | None
    data: Any


@dataclass(frozen=True, slots=True)
class AuditCount:
    """How many events of one kind one actor caused in the window."""

    kind: str
    actor: str | None
    count: int
    first: datetime
    last: datetime


#: Every kind of event the queue writes.
KINDS = (
    "created", "claimed", "progress", "retry_scheduled", "succeeded", "failed", "dead",
    "canceled", "lease_expired", "rescheduled", "released", "cancel_acknowledged",
)  # fmt: skip
#: The most events one listing returns.
MAX_LIST = 10_000


def _kinds(kinds: Sequence[str] | None) -> list[str] | None:
    for kind in kinds or ():
        if kind not in KINDS:
            raise errors.ConfigurationError(
                f"unknown event kind {kind!r}: choose among {', '.join(KINDS)}"
            )
    return list(kinds) if kinds else None


def list_call(
    since: datetime,
    kinds: Sequence[str] | None,
    actor: str | None,
    job_id: int | None,
    limit: int,
) -> tuple[str, dict[str, Any]]:
    if not 1 <= limit <= MAX_LIST:
        raise errors.ConfigurationError(f"limit {limit} is out of range 1-{MAX_LIST}")
    params = {"since": since, "kinds": _kinds(kinds), "actor": actor, "job_id": job_id}
    return "audit_list", {**params, "limit": limit}


def summary_call(
    since: datetime, kinds: Sequence[str] | None, actor: str | None
) -> tuple[str, dict[str, Any]]:
    return "audit_summary", {"since": since, "kinds": _kinds(kinds), "actor": actor}


def events_of(rows: Sequence[dict[str, Any]]) -> list[AuditEvent]:
    return [AuditEvent(**row) for row in rows]


def counts_of(rows: Sequence[dict[str, Any]]) -> list[AuditCount]:
    return [AuditCount(**row) for row in rows]
