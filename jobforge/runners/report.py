"""``jobforge.report.generate``: job analytics of the run's tenant over a window, as JSON, CSV
and Markdown artifacts, exact from run to run.

The jobs come in the input (``jobs``: one row per job, as `rows_of` makes them from
`jobforge.queue` jobs), not from a query the runner makes:
the database the runner would read is not the one a golden case or a replay runs on, and an
input is recorded, so a report is re-made exactly from its run record. A producer that wants
today's report reads the jobs and enqueues them (a schedule's job, an agent...).

What it computes, for the jobs created in ``[window_start, window_end)``: per job type and in
total, the number of jobs in each state, the success rate (succeeded over finished, i.e.
succeeded, failed, dead and canceled), the jobs retried (more than one attempt), the mean number
of attempts, and the time to finish (finished minus created, for the finished jobs) at the 50th
and 95th percentiles (nearest rank, in seconds). Types are sorted by name, states in their fixed
order, numbers rounded to 6 digits: the output depends on nothing but the input and
``ctx.now()`` (``generated_at``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from jobforge import errors
from jobforge.contracts import runner
from jobforge.runtime.context import RunContext

STATES = ("queued", "running", "succeeded", "failed", "dead", "canceled")
FINISHED = ("succeeded", "failed", "dead", "canceled")
State = Literal["queued", "running", "succeeded", "failed", "dead", "canceled"]
Format = Literal["json", "csv", "md"]
FORMATS: tuple[Format, ...] = ("json", "csv", "md")


class JobRow(BaseModel):
    id: int
    type: str = Field(min_length=1, max_length=200)
    state: State
    attempts: int = Field(ge=0)
    created_at: datetime
    finished_at: datetime | None = None

    @field_validator("created_at", "finished_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone (a naive time would depend on the machine)")
        return value


class ReportIn(BaseModel):
    window_start: datetime
    window_end: datetime
    jobs: list[JobRow] = Field(max_length=200_000)
    formats: list[Format] = Field(default_factory=lambda: list(FORMATS), min_length=1)

    @model_validator(mode="after")
    def _window(self) -> ReportIn:
        for name in ("window_start", "window_end"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-11-01T00:00:00Z)")
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        return self


class TypeStats(BaseModel):
    type: str
    total: int
    states: dict[str, int]
    success_rate: float | None
    retried: int
    mean_attempts: float | None
    p50_finish_s: float | None
    p95_finish_s: float | None


class ReportOut(BaseModel):
    tenant: str
    window_start: str
    window_end: str
    generated_at: str
    jobs: int
    total: TypeStats
    types: list[TypeStats]


@runner("jobforge.report.generate", version="1.0.0", input=ReportIn, output=ReportOut,
        trace_keys=["window"], artifacts=["report.json"], max_attempts=1)  # fmt: skip
def generate(inp: ReportIn, ctx: RunContext) -> ReportOut:
    start, end = inp.window_start.astimezone(UTC), inp.window_end.astimezone(UTC)
    rows = [r for r in inp.jobs if start <= r.created_at.astimezone(UTC) < end]
    if len({r.id for r in rows}) != len(rows):
        raise errors.InvalidInput("a job id appears twice in the report's jobs")
    ctx.decide("window", {"start": _iso(start), "end": _iso(end)}, given=len(inp.jobs),
               in_window=len(rows))  # fmt: skip
    by_type: dict[str, list[JobRow]] = {}
    for row in rows:
        by_type.setdefault(row.type, []).append(row)
    report = ReportOut(
        tenant=ctx.tenant_id, window_start=_iso(start), window_end=_iso(end),
        generated_at=_iso(ctx.now()), jobs=len(rows), total=_stats("*", rows),
        types=[_stats(name, by_type[name]) for name in sorted(by_type)],
    )  # fmt: skip
    data = report.model_dump(mode="json")
    ctx.artifact("report.json", data)
    if "csv" in inp.formats:
        ctx.artifact("report.csv", to_csv(report))
    if "md" in inp.formats:
        ctx.artifact("report.md", to_markdown(report))
    return report


def rows_of(jobs: Iterable[Any]) -> list[dict[str, Any]]:
    """Report input rows from `jobforge.queue` jobs (anything with the same attributes)."""
    return [
        {"id": j.id, "type": j.type, "state": str(getattr(j.status, "value", j.status)),
         "attempts": j.attempts, "created_at": _iso(j.created_at),
         "finished_at": _iso(j.finished_at) if j.finished_at else None}
        for j in sorted(jobs, key=lambda j: j.id)
    ]  # fmt: skip


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _stats(name: str, rows: list[JobRow]) -> TypeStats:
    states = {s: sum(1 for r in rows if r.state == s) for s in STATES}
    finished = sum(states[s] for s in FINISHED)
    waits = sorted(
        (r.finished_at - r.created_at).total_seconds() for r in rows if r.finished_at is not None
    )
    return TypeStats(
        type=name, total=len(rows), states=states,
        success_rate=_round(states["succeeded"] / finished) if finished else None,
        retried=sum(1 for r in rows if r.attempts > 1),
        mean_attempts=_round(sum(r.attempts for r in rows) / len(rows)) if rows else None,
        p50_finish_s=_rank(waits, 0.50), p95_finish_s=_rank(waits, 0.95),
    )  # fmt: skip


def _rank(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile of sorted `values`."""
    if not values:
        return None
    return _round(values[max(1, math.ceil(q * len(values))) - 1])


def _round(value: float) -> float:
    return round(value, 6)


def _num(value: float | None) -> str:
    return "" if value is None else repr(value)


_COLUMNS = ("type", "total", *STATES, "success_rate", "retried", "mean_attempts",
            "p50_finish_s", "p95_finish_s")  # fmt: skip


def _cells(s: TypeStats) -> list[str]:
    numbers = (s.success_rate, s.retried, s.mean_attempts, s.p50_finish_s, s.p95_finish_s)
    return [s.type, str(s.total), *(str(s.states[x]) for x in STATES),
            *(str(n) if isinstance(n, int) else _num(n) for n in numbers)]  # fmt: skip


def to_csv(report: ReportOut) -> str:
    """One row per type, then the total (type ``*``); ``\\n`` line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for s in [*report.types, report.total]:
        cells = _cells(s)
        writer.writerow([_not_a_formula(cells[0]), *cells[1:]])
    return out.getvalue()


def _not_a_formula(cell: str) -> str:
    """A text cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return first) gets a leading ``'``: a report's type comes from its input rows."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def to_markdown(report: ReportOut) -> str:
    """A heading, the window, and the CSV's table."""
    lines = [
        f"# Job report: {report.tenant}",
        "",
        f"Window {report.window_start} to {report.window_end} (end excluded), {report.jobs} "
        f"job(s); generated {report.generated_at}.",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "|".join("---" for _ in _COLUMNS) + "|",
    ]
    for s in [*report.types, report.total]:
        cells = [c.replace("|", "\\|") or "-" for c in _cells(s)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
