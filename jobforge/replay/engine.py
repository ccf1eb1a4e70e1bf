"""Re-execute recorded runs against the current code and say exactly where they part ways.

Every bundle of a batch is enqueued on one throwaway template-cloned database, one worker with the
recorder drains them (each job gets its own recorded environment: clock, seed, HTTP exchanges; the
harness golden cases run through too, `jobforge.golden.execute`), and each new run record is
compared with the recorded expectation: the first differing decision (index, key, both values,
both `why`), then output, status, error and artifact differences. What cannot be replayed is
reported as such, never as a crash: a runner no longer declared, an input the current contract
rejects (contract drift), a request the recording does not have.

A batch shares one fresh database instead of one per run: runners never see the queue's database,
jobs are isolated by id, and a clone plus a cold backend per run would cost more than the run.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from jobforge import validation
from jobforge.contracts import RunnerDef, not_declared
from jobforge.golden.case import expectation_of
from jobforge.golden.compare import (
    Difference,
    differences,
    only_normalized,
    only_rescaled,
    reconciled,
)
from jobforge.golden.execute import Run, RunOptions, connected, execute
from jobforge.golden.explain import call_lines
from jobforge.replay.bundle import Bundle
from jobforge.runtime.http import HttpPolicy
from jobforge.runtime.record import Fingerprints, fingerprints

Verdict = Literal["identical", "diverged", "runner_missing", "input_rejected", "unrecorded_http"]


@dataclass(frozen=True)
class Target:
    """One run to replay: a bundle and the name it is reported under (its file, its job)."""

    name: str
    bundle: Bundle
    file: str | None = None  #: the bundle file, when the run comes from one (as `shown_path`)
    run_id: int | None = None  #: the stored run, when the run comes from a database


@dataclass(frozen=True)
class StepDivergence:
    """The first decision where the replay went another way."""

    index: int
    recorded: dict[str, Any] | None  #: the step {key, value, why}; None: the recording ended
    replayed: dict[str, Any] | None

    def lines(self) -> list[str]:
        def side(step: dict[str, Any] | None) -> str:
            if step is None:
                return "<no step: the trace ended here>"
            why = f"  why: {_short(step.get('why'))}" if step.get("why") else ""
            return f"{step['key']} = {_short(step['value'])}{why}"

        return [
            f"first divergent decision: trace[{self.index}]",
            f"  recorded: {side(self.recorded)}",
            f"  replayed: {side(self.replayed)}",
        ]


@dataclass
class ReplayResult:
    name: str
    runner_id: str
    verdict: Verdict
    message: str = ""  #: why a run could not be replayed
    step: StepDivergence | None = None
    differences: list[Difference] = field(default_factory=list)  #: beyond the trace
    context: list[str] = field(default_factory=list)  #: fingerprint changes, not failures
    uncontrolled: list[dict[str, Any]] = field(default_factory=list)
    record: dict[str, Any] | None = None  #: the replayed run record
    #: recorded values redacted without a key (or under another): not compared
    not_compared: list[str] = field(default_factory=list)
    #: where a report points (a CI annotation's file=): the bundle file, else the runner's source
    file: str | None = None
    line: int | None = None
    #: what admitted the recorded run (signatures, a policy token), said once: replay
    #: verifies nothing new
    admission: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "identical"

    def report(self) -> str:
        lines = [f"{self.name} ({self.runner_id}): {self.verdict.replace('_', ' ')}"]
        if self.message:
            lines.append(f"  {self.message}")
        if self.admission:
            lines.append(f"  {self.admission}")
        if self.step is not None:
            lines += [f"  {line}" for line in self.step.lines()]
        lines += [f"  {d.render()}" for d in self.differences]
        lines += call_lines(self.uncontrolled)
        if self.not_compared:
            lines.append(
                "  not compared (redacted in the recording without JOBFORGE_REDACTION_KEY, or "
                "under another key): " + ", ".join(self.not_compared)
            )
        if self.context and not self.ok:
            lines.append("  context (not a failure by itself):")
            lines += [f"    {c}" for c in self.context]
        return "\n".join(lines)


def replay(
    targets: Sequence[Target],
    runners: Mapping[str, RunnerDef],
    dsn: str,
    *,
    http_policy: HttpPolicy | None = None,
    concurrency: int = 16,
    explain: bool = True,
) -> list[ReplayResult]:
    """Replay every target on the fresh database `dsn`; results in the order of `targets`.

    With `explain`, runs that diverged are replayed once more, one at a time under strict mode,
    so the report can name the uncontrolled calls (time, random, uuid…) that likely caused it.
    """
    return asyncio.run(_replay(targets, runners, dsn, http_policy, concurrency, explain))


async def _replay(targets: Sequence[Target], runners: Mapping[str, RunnerDef], dsn: str,
                  http_policy: HttpPolicy | None, concurrency: int,
                  explain: bool) -> list[ReplayResult]:  # fmt: skip
    results: dict[int, ReplayResult] = {}
    runnable: list[tuple[int, Target, RunnerDef]] = []
    for index, target in enumerate(targets):
        refused = _refusal(target, runners)
        if refused is not None:
            results[index] = refused
        else:
            runnable.append((index, target, runners[target.bundle.runner_id]))
    async with connected(dsn, max_size=2) as pool:
        options = RunOptions(strict=False, http_policy=http_policy, concurrency=concurrency)
        ran = await execute(pool, [_run(t, d) for _, t, d in runnable], options)
        diverged: list[tuple[int, Target, RunnerDef]] = []
        for (index, target, definition), run in zip(runnable, ran, strict=True):
            results[index] = _compare(target, definition, run.record)
            if results[index].verdict == "diverged":
                diverged.append((index, target, definition))
        if explain and diverged:
            options = RunOptions(strict=True, http_policy=http_policy)
            again = await execute(pool, [_run(t, d) for _, t, d in diverged], options)
            for (index, _, _), run in zip(diverged, again, strict=True):
                results[index].uncontrolled = [c for c in run.record.get("uncontrolled", [])
                                               if c.get("severity") != "info"]  # fmt: skip
    for index, target in enumerate(targets):
        results[index].file, results[index].line = _where(target, runners)
    return [results[i] for i in range(len(targets))]


def _run(target: Target, definition: RunnerDef) -> Run:
    return Run(definition, target.bundle.input, target.bundle.environment)


def _where(target: Target, runners: Mapping[str, RunnerDef]) -> tuple[str | None, int | None]:
    """The bundle file of a run; for a run from a database, its runner's declaration (the
    `@runner` line)."""
    if target.file is not None:
        return target.file, None
    definition = runners.get(target.bundle.runner_id)
    if definition is None:
        return None, None
    try:
        source = inspect.getsourcefile(definition.fn)
        line = inspect.getsourcelines(definition.fn)[1]
    except (OSError, TypeError):
        return None, None
    return (shown_path(Path(source)), line) if source else (None, None)


def shown_path(path: Path) -> str:
    """`path` as a CI shows it: relative to the working directory (a checkout's root) when
    under it, else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def _refusal(target: Target, runners: Mapping[str, RunnerDef]) -> ReplayResult | None:
    """Why a target cannot be replayed at all, or None."""
    bundle = target.bundle
    definition = runners.get(bundle.runner_id)
    if definition is None:
        return ReplayResult(
            target.name,
            bundle.runner_id,
            "runner_missing",
            message=not_declared(bundle.runner_id, runners, where=" any more"),
        )
    if bundle.expect.status == "invalid_input":
        return None  # recorded as rejected: replaying checks it is still rejected the same way
    try:
        definition.input.model_validate(bundle.input)
    except ValidationError as exc:
        return ReplayResult(
            target.name, bundle.runner_id, "input_rejected",
            message=(
                f"contract drift: the current input model of {bundle.runner_id} "
                f"{definition.version} (recorded under {bundle.runner_version}) rejects the "
                f"recorded input: {validation.summary(exc, limit=1)}"
            ),
            context=_context(bundle, definition),
        )  # fmt: skip
    return None


def _compare(target: Target, definition: RunnerDef, record: dict[str, Any]) -> ReplayResult:
    result = _compared(target, definition, record)
    result.admission = admission_note(target.bundle.admission)
    return result


def admission_note(admission: dict[str, Any] | None) -> str:
    """One line on what admitted a recorded run, when signatures or a token did ("" else)."""
    if not admission:
        return ""
    parts = []
    if signatures := admission.get("signatures"):
        parts.append("signatures of key " + ", ".join(map(str, signatures.get("key_ids", []))))
    if token := admission.get("token"):
        parts.append(
            f"policy token jti {token.get('jti')} (scopes "
            f"{', '.join(map(str, token.get('scp', [])))}, aud {token.get('aud')})"
        )
    if not parts:
        return ""
    return (
        "admitted when recorded by "
        + " and ".join(parts)
        + ": replay verifies nothing new (no signature or token is checked again)"
    )


def _compared(target: Target, definition: RunnerDef, record: dict[str, Any]) -> ReplayResult:
    bundle = target.bundle
    context = _context(bundle, definition)
    error = record.get("error") or {}
    # a recorded exchange is always served: a refusal too is a request the recording lacks
    unrecorded = {"UnrecordedRequest": "", "HttpRefused": ", to a host the worker's guard refuses"}
    if error.get("type") in unrecorded and bundle.expect.status != record["status"]:
        return ReplayResult(
            target.name, bundle.runner_id, "unrecorded_http",
            message=f"the replay made an HTTP request the recording does not have"
            f"{unrecorded[error['type']]}: {error.get('message', '')}",
            context=context, record=record,
        )  # fmt: skip
    actual, skipped = reconciled(bundle.expect, expectation_of(record))
    found = differences(bundle.expect, actual)
    step = first_divergent_step(
        [s.model_dump(mode="json") for s in bundle.expect.trace],
        [s.model_dump(mode="json") for s in actual.trace],
    )
    rest = [d for d in found if not d.path.startswith("trace")]
    if step is not None and only_normalized(step.recorded, step.replayed):
        context.append(f"trace[{step.index}] differs only in the scale of a decimal number: a "
                       "Decimal is recorded with its scale now, normalized in a recording made "
                       "before that (export the run again)")  # fmt: skip
    elif step is not None and only_rescaled(step.recorded, step.replayed):
        # the recording kept a scale normalizing never leaves: the runner's text changed
        context.append(f"trace[{step.index}] differs only in the scale of a decimal number: the "
                       "runner now writes it with another scale than the recorded run did, a "
                       "real change in its text")  # fmt: skip
    if step is None and not rest:
        return ReplayResult(target.name, bundle.runner_id, "identical", context=context,
                            record=record, not_compared=skipped)  # fmt: skip
    return ReplayResult(target.name, bundle.runner_id, "diverged", step=step, differences=rest,
                        context=context, record=record, not_compared=skipped)  # fmt: skip


def first_divergent_step(
    recorded: Sequence[dict[str, Any]], replayed: Sequence[dict[str, Any]]
) -> StepDivergence | None:
    """The first index where two traces differ (key, value or why), or None when equal."""
    for index in range(max(len(recorded), len(replayed))):
        a = recorded[index] if index < len(recorded) else None
        b = replayed[index] if index < len(replayed) else None
        if a != b:
            return StepDivergence(index, a, b)
    return None


def _context(bundle: Bundle, definition: RunnerDef) -> list[str]:
    """What changed around the run since it was recorded: worth knowing, never a failure."""
    found = []
    if bundle.runner_version != definition.version:
        found.append(
            f"runner version {bundle.runner_version} when recorded, {definition.version} now"
        )
    then: Fingerprints = bundle.provenance.fingerprints
    now = fingerprints(definition.fn)
    if then.code_sha256 != now.code_sha256:
        found.append(
            f"the runner's source file changed: {_hash(then.code_sha256)} -> "
            f"{_hash(now.code_sha256)}"
        )
    if then.python != now.python:
        found.append(f"python {then.python} when recorded, {now.python} now")
    for name in sorted(set(then.packages) | set(now.packages)):
        a, b = then.packages.get(name), now.packages.get(name)
        if a != b:
            found.append(f"{name} {a or '(absent)'} when recorded, {b or '(absent)'} now")
    return found


def _hash(value: str | None) -> str:
    return "unknown" if value is None else value[:19]


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
