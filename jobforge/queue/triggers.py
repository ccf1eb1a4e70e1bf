"""Triggers (migrations/0020): what a tenant's events enqueue.

A trigger matches events of one type whose data passes its predicates, maps the event onto a
job's input and enqueues it, with a cooldown, a cap per hour and an idempotency key derived from
the trigger and the event. The predicates and the mapping are evaluated by the database alone
(`jobforge.trigger_match`, `jobforge.trigger_render`), inside the transaction that stores the
event: one implementation, which `test` calls too, so what a test shows is what a submit does.
This module holds the records, the checks made before anything is sent (the same rules the
database applies, so a mistake is one line before any connection), and each call's parameters.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobforge import errors
from jobforge.db import Jsonb

Call = tuple[str, dict[str, Any]]
#: A trigger's name: no ':' (the idempotency key trigger:<name>:<...> reads one way only).
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
OPS = ("eq", "ne", "in", "exists", "gt", "ge", "lt", "le")
Op = Literal["eq", "ne", "in", "exists", "gt", "ge", "lt", "le"]
#: The event fields a mapping reads: "$.id", "$.type", ..., "$.data.<dotted keys>".
FIELDS = ("id", "type", "source", "subject", "time", "data")
MAX_PREDICATES = 20
MAX_COOLDOWN = timedelta(days=1)
MAX_PER_HOUR = 1000
DEFAULT_EVALUATIONS = 50
Reason = Literal["predicate", "cooldown", "hourly_cap", "dedupe", "paused", "mapping", "enqueue",
                 "feature_off"]  # fmt: skip
_PATH = re.compile(r"[^.\x00-\x1f\x7f]{1,100}(\.[^.\x00-\x1f\x7f]{1,100}){0,31}")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Predicate(_Record):
    """`data.<path> <op> <value>`: a dotted path into the event's data."""

    path: str
    op: Op
    value: Any = None

    @classmethod
    def parse(cls, path: str, op: str, value: str) -> Predicate:
        """A predicate from the command line's `PATH OP VALUE`: VALUE is JSON when it parses
        (100, true, ["eu","us"], "quoted"), else the string as given."""
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        if op not in OPS:
            given = " ".join((path[:60], op[:20]))
            raise errors.ConfigurationError(
                f"--where {given!r}: the op must be one of {', '.join(OPS)}"
            )
        predicate = cls(path=path, op=op, value=parsed)  # type: ignore[arg-type]
        predicate.check(f"--where {' '.join((path[:60], op, value[:60]))!r}")
        return predicate

    def check(self, where: str) -> None:
        """One line naming what is wrong (the database's `trigger_predicates_problem` rules)."""
        if not _PATH.fullmatch(self.path):
            raise errors.ConfigurationError(
                f"{where}: the path must be dotted keys into the data, e.g. order.total"
            )
        kind = type(self.value)
        if self.op == "in" and kind is not list:
            raise errors.ConfigurationError(f'{where}: in needs a JSON array, e.g. \'["eu","us"]\'')
        if self.op == "exists" and kind is not bool:
            raise errors.ConfigurationError(f"{where}: exists needs true or false")
        if self.op in ("gt", "ge", "lt", "le") and (kind not in (int, float)):
            raise errors.ConfigurationError(f"{where}: {self.op} compares numbers: give a number")

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "value": self.value}


def check_reference(text: str, what: str) -> None:
    """One line unless `text` ("$.data.x", "$.subject", ...) names an event field."""
    keys = text[2:].split(".")
    if (not text.startswith("$.") or keys[0] not in FIELDS or "" in keys
            or (keys[0] != "data" and len(keys) > 1)):  # fmt: skip
        raise errors.ConfigurationError(
            f"{what} {text[:120]!r} is not an event field: use $.id, $.type, $.source, "
            "$.subject, $.time, $.data or $.data.<keys>"
        )


def references(template: Any) -> list[str]:
    """The "$." strings of a template (a "$$" string stands for itself)."""
    if isinstance(template, dict):
        return [r for v in template.values() for r in references(v)]
    if isinstance(template, list):
        return [r for v in template for r in references(v)]
    if isinstance(template, str) and template.startswith("$."):
        return [template]
    return []


class Trigger(_Record):
    """One trigger as stored."""

    id: int
    tenant_id: str
    name: str
    event_type: str
    predicates: list[Predicate]
    job_type: str
    input: dict[str, Any]
    dedupe: str | None = None
    cooldown: timedelta
    max_per_hour: int | None = None
    priority: int = 0
    max_attempts: int | None = None
    dry_run: bool
    paused: bool
    last_fired_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    login: str
    actor: str | None = None


class NewTrigger(_Record):
    """A trigger to add; `check` applies the database's rules first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    event_type: str
    predicates: list[Predicate] = Field(default_factory=list)
    job_type: str
    input: dict[str, Any] = Field(default_factory=dict)
    dedupe: str | None = None
    cooldown: timedelta = timedelta(0)
    max_per_hour: int | None = None
    priority: int = Field(default=0, ge=0, le=32767)
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    dry_run: bool = False
    paused: bool = False

    def check(self) -> None:
        """One line naming the first thing the database would refuse."""
        if not NAME.fullmatch(self.name):
            raise errors.ConfigurationError(
                f"trigger name {self.name[:120]!r} is invalid: use 1-100 of [a-z0-9._-], "
                "starting with a letter or digit"
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", self.event_type):
            raise errors.ConfigurationError(
                f"event type {self.event_type[:240]!r} is invalid: use 1-200 of [A-Za-z0-9._-]"
            )
        if not re.fullmatch(r"[a-z0-9._-]{1,200}", self.job_type):
            raise errors.ConfigurationError(
                f"job type {self.job_type[:240]!r} is invalid: use 1-200 of [a-z0-9._-]"
            )
        if len(self.predicates) > MAX_PREDICATES:
            raise errors.ConfigurationError(
                f"{len(self.predicates)} predicates, over the limit of {MAX_PREDICATES}"
            )
        for i, p in enumerate(self.predicates, 1):
            p.check(f"predicate #{i}")
        for ref in references(self.input):
            check_reference(ref, "the input's")
        if self.dedupe is not None:
            check_reference(self.dedupe, "dedupe")
        if not timedelta(0) <= self.cooldown <= MAX_COOLDOWN:
            raise errors.ConfigurationError(
                f"cooldown {self.cooldown} is out of range: give 0s up to 1d"
            )
        if self.max_per_hour is not None and not 1 <= self.max_per_hour <= MAX_PER_HOUR:
            raise errors.ConfigurationError(
                f"max per hour {self.max_per_hour} is out of range 1-{MAX_PER_HOUR}"
            )


class Evaluation(_Record):
    """One entry of the evaluation log: a trigger evaluated on an event."""

    id: int
    trigger_id: int
    event_id: int
    evaluated_at: datetime
    outcome: Literal["fired", "dry_run", "skipped"]
    reason: Reason | None = None
    job_id: int | None = None
    job: dict[str, Any] | None = None  #: dry_run: the job it would have enqueued
    detail: str | None = None
    trigger: str | None = None  #: the trigger's name, where the log is read


class TestResult(_Record):
    """What `test` found: whether the trigger matches the event (its type and predicates), why
    not, or the job it would enqueue (the mapping's error in `detail`, `input` None)."""

    matched: bool
    reason: str | None = None
    detail: str | None = None
    job_type: str
    input: dict[str, Any] | None = None
    idempotency_key: str | None = None
    dry_run: bool
    paused: bool


def add(new: NewTrigger, now: datetime | None) -> Call:
    return "trigger_add", {
        "name": new.name, "event_type": new.event_type,
        "predicates": Jsonb([p.as_json() for p in new.predicates]), "job_type": new.job_type,
        "input": Jsonb(new.input), "dedupe": new.dedupe, "cooldown": new.cooldown,
        "max_per_hour": new.max_per_hour, "dry_run": new.dry_run, "paused": new.paused,
        "priority": new.priority, "max_attempts": new.max_attempts,
        "now": now,
    }  # fmt: skip


def trigger(rows: list[dict[str, Any]], name: str | None = None,
            tenant: str | None = None) -> Trigger:  # fmt: skip
    """The one row, or the database's words for none (JF004: not found for the tenant)."""
    if not rows:
        raise errors.JobNotFound(f"trigger {name!r} not found for tenant {tenant}")
    return Trigger.model_validate(rows[0])


def test(name: str, envelope: dict[str, Any]) -> Call:
    return "trigger_test", {"name": name, "event": Jsonb(envelope)}


def evaluations(name: str | None, limit: int) -> Call:
    if not 1 <= limit <= 1000:
        raise errors.ConfigurationError(f"limit must be 1-1000, not {limit}")
    return "trigger_evaluations", {"name": name, "limit": limit}
