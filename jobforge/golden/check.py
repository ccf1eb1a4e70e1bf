"""Check one golden case: run it N times in-process (each from the template's state, on a
`Lane`) and once in a fresh interpreter, report nondeterminism with its cause, then compare the
first run with `expect` — or, when refreshing and every run agreed, write `expect`. A run that
failed is written only when asked (`refresh_failures`) or when the case already expects that
status (a case of rejected input says `"expect": {"status": "invalid_input"}`); else it is
reported, in one line, and the file is left alone.

Runs are compared with each other on their unredacted values (kept in memory, never stored):
a field named `token` or `api_key` is checked like any other. Only the comparison with the stored
expectation sees redacted values; what it cannot compare is listed in `not_compared`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from jobforge.contracts import RunnerDef
from jobforge.errors import JobforgeError
from jobforge.golden.case import Expect, GoldenCase, expectation_of, write_case
from jobforge.golden.compare import Difference, differences, not_compared
from jobforge.golden.execute import UNREDACTED, RunOptions
from jobforge.golden.explain import (
    MISSING,
    Divergence,
    call_lines,
    divergences,
    explain,
    render_call,
)
from jobforge.golden.fresh import FreshInterpreter
from jobforge.golden.lane import Lane
from jobforge.runtime.http.policy import HttpPolicy
from jobforge.runtime.redact import Redactor
from jobforge.runtime.strict.causes import INERT_WHEN_RUNS_AGREE

#: "unrecorded": refreshing, the run failed and was not written as the case's expectation.
Verdict = Literal["passed", "failed", "nondeterministic", "refreshed", "missing", "unrecorded"]

#: How a failing run is recorded on purpose (the pytest plugin's option).
REFRESH_FAILURES = "--jobforge-refresh-failures"

#: How far the wall clock is moved for each later run of a case (run k by k-1 times this): a
#: day, an hour, a minute and a second and a half, so a date, hour, minute or second the runner
#: takes from the clock anywhere (a library, a default factory) differs between runs.
CLOCK_SHIFT_S = 86_400 + 3_600 + 60 + 1.5

#: Said of a timing, an address or a scratch name whose values never reached the result.
INERT_NOTE = "whose values never reached the result in any run"

#: Said of a read that differs between machines (an environment variable, the host name).
MACHINE_NOTE = "the same on every run here, but another machine (CI, production) may differ"


@dataclass
class CaseResult:
    name: str  #: <runner_id>/<case>
    verdict: Verdict
    differences: list[Difference] = field(default_factory=list)
    divergences: list[tuple[str, list[Divergence]]] = field(default_factory=list)
    uncontrolled: list[dict[str, Any]] = field(default_factory=list)  #: severity "error"
    warnings: list[dict[str, Any]] = field(default_factory=list)  #: strict mode, "warning"
    not_compared: list[str] = field(default_factory=list)  #: redacted expectation paths
    records: list[dict[str, Any]] = field(default_factory=list)
    #: the run failed, in one line (status, error type and message): refreshing (recorded or
    #: not), or when the expectation wanted another status
    failure: str = ""

    def report(self) -> str:
        lines: list[str] = []
        if self.verdict == "nondeterministic":
            lines.append(f"golden case {self.name} is nondeterministic:")
            for label, found in self.divergences:
                lines.append(f"  {label} differs from run 1:")
                lines += [f"    {d.render()}" for d in found]
            lines += call_lines(self.uncontrolled)
        elif self.verdict == "failed":
            lines.append(f"golden case {self.name} differs from its expectation:")
            lines += [f"  {d.render()}" for d in self.differences]
            if self.failure:
                lines.append(f"  the run ended {self.failure}")
        elif self.verdict == "unrecorded":
            status = self.failure.split(" ", 1)[0]
            lines.append(
                f"golden case {self.name}: the run ended {self.failure}; not recorded as its "
                f"expectation: fix the runner or the input, or record the failure on purpose "
                f'with {REFRESH_FAILURES} (or "expect": {{"status": "{status}"}} in the '
                "case file)"
            )
        elif self.verdict == "missing":
            lines.append(
                f"golden case {self.name} has no expectation: run pytest with "
                "--jobforge-refresh to record one (CI=true makes this a failure)"
            )
        else:
            lines.append(f"golden case {self.name}: {self.verdict}")
        lines += self.notes()
        return "\n".join(lines)

    def notes(self) -> list[str]:
        """What a passing case still wants a reader to know."""
        lines = []
        if self.verdict == "refreshed" and self.failure:
            lines.append(f"  {self.recorded_failure_note()}")
        if self.warnings:
            lines.append("  strict mode warnings (reported, not failed):")
            lines += [f"    {render_call(c)}" for c in self.warnings]
        if self.not_compared:
            lines.append(f"  {self.not_compared_note()}")
        return lines

    def recorded_failure_note(self) -> str:
        return f"recorded a failing run as its expectation: {self.failure}"

    def not_compared_note(self) -> str:
        return (
            "not compared with the expectation (redacted without a redaction key, or under "
            "another one; set JOBFORGE_REDACTION_KEY, or declare the field in "
            "@runner(public_keys=...) if it is no secret): " + ", ".join(self.not_compared)
        )


def check_case(
    name: str,
    path: Path,
    case: GoldenCase,
    definition: RunnerDef,
    lane: Lane,
    *,
    runs: int = 2,
    fresh: FreshInterpreter | None = None,
    refresh: bool = False,
    http_policy: HttpPolicy | None = None,
    strict: bool = True,
    refresh_failures: bool = False,
) -> CaseResult:
    """`refresh` writes `expect` from the runs when they agree, but a run that failed (raised,
    rejected its input, broke its contract, timed out) only with `refresh_failures`, or when the
    case already expects that status (``"expect": {"status": "invalid_input"}`` declares a case of
    rejected input); otherwise the verdict is "unrecorded" and the file is left alone."""
    records: list[dict[str, Any]] = []
    labels: list[str] = []
    saved_random = random.getstate()
    try:
        for index in range(max(runs, 1)):
            # Perturb the uncontrolled world between runs: the global random state differs, and
            # the wall clock has moved on by the time the next run starts.
            random.seed(f"jobforge-perturb-{index}")
            options = RunOptions(strict=strict, clock_shift_s=index * CLOCK_SHIFT_S,
                                 http_policy=http_policy)  # fmt: skip
            records.append(lane.run(definition, case, options))
            labels.append(f"run {index + 1} (in-process)")
    finally:
        random.setstate(saved_random)
    if fresh is not None:
        records.append(fresh.run(definition.id, path, len(records) * CLOCK_SHIFT_S))
        labels.append(f"run {len(records)} (fresh interpreter, PYTHONHASHSEED={fresh.hash_seed})")

    divergent = _divergent(records, labels, fresh, definition.id, path)
    secret = Redactor(key=None).for_runner(definition.secret_keys, definition.public_keys)
    divergent = [(label, [_masked(d, secret, records[0]) for d in found])
                 for label, found in divergent]  # fmt: skip
    calls = _unique(c for r in records for c in r.get("uncontrolled", []))
    calls = [_noted(c, agreed=not divergent) for c in calls]
    errors = [c for c in calls if c.get("severity", "error") == "error"]
    warnings = [c for c in calls if c.get("severity") == "warning"]
    if divergent or errors:
        return CaseResult(name, "nondeterministic", divergences=divergent, uncontrolled=errors,
                          warnings=warnings, records=records)  # fmt: skip

    actual = expectation_of(records[0])
    if refresh:
        if case.expect == actual:
            return CaseResult(name, "passed", warnings=warnings, records=records)
        failure = "" if actual.status == "succeeded" else failure_line(actual)
        declared = case.expect is not None and case.expect.status == actual.status
        if failure and not (refresh_failures or declared):
            return CaseResult(name, "unrecorded", warnings=warnings, records=records,
                              failure=failure)  # fmt: skip
        write_case(path, case.model_copy(update={"expect": actual}))
        return CaseResult(name, "refreshed", warnings=warnings, records=records,
                          failure=failure)  # fmt: skip
    if case.expect is None:
        return CaseResult(name, "missing", warnings=warnings, records=records)
    diffs = differences(case.expect, actual)
    failed_run = actual.status not in ("succeeded", case.expect.status)
    return CaseResult(name, "failed" if diffs else "passed", differences=diffs,
                      warnings=warnings, not_compared=not_compared(case.expect, actual),
                      records=records,
                      failure=failure_line(actual) if diffs and failed_run else "")  # fmt: skip


def failure_line(expect: Expect) -> str:
    """ "retry (RuntimeError: boom)": a failed run's status and the first line of its error."""
    error = expect.error or {}
    message = str(error.get("message", "")).strip().splitlines()
    text = message[0] if message else ""
    if len(text) > 1000:
        text = text[:997] + "..."
    kind = error.get("type")
    detail = f"{kind}: {text}" if kind and text else str(kind or text)
    return f"{expect.status} ({detail})" if detail else str(expect.status)


def _divergent(records: list[dict[str, Any]], labels: list[str], fresh: FreshInterpreter | None,
               runner_id: str, path: Path) -> list[tuple[str, list[Divergence]]]:  # fmt: skip
    """Each later run's differences from run 1, compared unredacted, with their causes."""
    whole = [r.get(UNREDACTED, r) for r in records]
    found: list[tuple[str, list[Divergence]]] = []
    for index in range(1, len(whole)):
        differing = divergences(whole[0], whole[index])
        if not differing:
            continue
        seed = False
        only_fresh = fresh is not None and index == len(whole) - 1 and not found
        if only_fresh and fresh is not None:
            seed = _same_with_seed(fresh, runner_id, path, whole[index], differing,
                                   index * CLOCK_SHIFT_S)  # fmt: skip
        pair = (labels[0].split(" (")[0], labels[index].split(" (")[0])
        found.append((labels[index], explain(whole[0], whole[index], differing, labels=pair,
                                             hash_seed=seed)))  # fmt: skip
    return found


def _same_with_seed(fresh: FreshInterpreter, runner_id: str, path: Path, record: dict[str, Any],
                    differing: list[Divergence], clock_shift_s: float) -> bool:  # fmt: skip
    """Whether another new interpreter with the same hash seed gives the fresh run's values at
    every differing path (then the hash seed, not the process, decides them)."""
    try:
        again = fresh.same_seed_run(runner_id, path, clock_shift_s)
    except JobforgeError:  # the evidence is missing, not the verdict: say "likely", not why
        return False
    second = divergences(record, again.get(UNREDACTED, again))
    differing_paths = {d.path for d in differing}
    return not any(d.path in differing_paths or d.path.startswith(tuple(differing_paths))
                   for d in second)  # fmt: skip


def _masked(d: Divergence, secret: Redactor, record: dict[str, Any]) -> Divergence:
    """A divergence under a secret-looking key, its values hidden: the report goes to CI logs.
    (Its path, cause and line still say what differs and why.)"""
    if not secret.is_secret(_key_of(d.path, record)):
        return d
    cause = d.cause
    for value in (d.first, d.other):  # the call site's values, quoted in the cause, too
        for text in {repr(value), str(value)}:
            if len(text) >= 3:
                cause = cause.replace(text, "[secret]")
    return replace(d, first=_hidden(d.first), other=_hidden(d.other), cause=cause)


def _key_of(path: str, record: dict[str, Any]) -> str:
    """The key a value sits under: `output.auth.token` -> token; `trace[2].value` -> the key
    of trace step 2."""
    step = re.fullmatch(r"trace\[(\d+)\]\.value", path)
    if step is not None:
        steps = record.get("trace", [])
        index = int(step.group(1))
        return str(steps[index].get("key", "")) if index < len(steps) else ""
    names = re.findall(r"[A-Za-z_][\w-]*", path.rsplit(".", 1)[-1])
    return names[0] if names else ""


def _hidden(value: Any) -> str:
    return "[secret, not shown]" if value is not MISSING else value


def _noted(call: dict[str, Any], *, agreed: bool) -> dict[str, Any]:
    """A strict-mode call with what its severity means here: a machine-dependent read is a
    warning; so is a timing, address or scratch name when every run agreed on the result."""
    if call.get("severity") == "warning":
        return {**call, "cause": f"{call.get('cause') or 'a read'}: {MACHINE_NOTE}"}
    if agreed and call.get("cause") in INERT_WHEN_RUNS_AGREE:
        return {**call, "severity": "warning", "cause": f"{call['cause']}, {INERT_NOTE}"}
    return call


def _unique(calls: Any) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str, int], dict[str, Any]] = {}
    for call in calls:
        seen.setdefault((call["call"], call["file"], call["line"]), call)
    return list(seen.values())
