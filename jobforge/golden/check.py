"""Check one golden case: run it N times in-process (each from the template's state, on a
`Lane`) and once in a fresh interpreter, report nondeterminism with its likely cause, then
compare the first run with `expect` — or, when refreshing and every run agreed, write `expect`."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jobforge.contracts import RunnerDef
from jobforge.golden.case import GoldenCase, expectation_of, write_case
from jobforge.golden.compare import Difference, Divergence, differences, divergences
from jobforge.golden.fresh import FreshInterpreter
from jobforge.golden.lane import Lane
from jobforge.runtime.http import HttpPolicy

Verdict = Literal["passed", "failed", "nondeterministic", "refreshed", "missing"]


@dataclass
class CaseResult:
    name: str  #: <runner_id>/<case>
    verdict: Verdict
    differences: list[Difference] = field(default_factory=list)
    divergences: list[tuple[str, list[Divergence]]] = field(default_factory=list)
    uncontrolled: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> str:
        lines: list[str] = []
        if self.verdict == "nondeterministic":
            lines.append(f"golden case {self.name} is nondeterministic:")
            if self.uncontrolled:
                lines.append("  strict mode: the runner called uncontrolled sources:")
                lines += [
                    f"    {c['call']}() at {c['file']}:{c['line']} (use {c['hint']})"
                    for c in self.uncontrolled
                ]
            for label, found in self.divergences:
                lines.append(f"  {label} differs from run 1:")
                lines += [f"    {d.render()}" for d in found]
        elif self.verdict == "failed":
            lines.append(f"golden case {self.name} differs from its expectation:")
            lines += [f"  {d.render()}" for d in self.differences]
        elif self.verdict == "missing":
            lines.append(
                f"golden case {self.name} has no expectation: run pytest with "
                "--jobforge-refresh to record one (CI=true makes this a failure)"
            )
        else:
            lines.append(f"golden case {self.name}: {self.verdict}")
        return "\n".join(lines)


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
) -> CaseResult:
    records: list[dict[str, Any]] = []
    labels: list[str] = []
    saved_random = random.getstate()
    try:
        for index in range(max(runs, 1)):
            # Perturb the uncontrolled world between runs: the global random state differs, and
            # the wall clock has moved on by the time the next run starts.
            random.seed(f"jobforge-perturb-{index}")
            records.append(lane.run(definition, case, http_policy=http_policy, strict=strict))
            labels.append(f"run {index + 1} (in-process)")
    finally:
        random.setstate(saved_random)
    if fresh is not None:
        records.append(fresh.run(definition.id, path))
        labels.append(f"run {len(records)} (fresh interpreter, PYTHONHASHSEED={fresh.hash_seed})")

    found = [(label, divergences(records[0], other))
             for label, other in zip(labels[1:], records[1:], strict=True)]  # fmt: skip
    divergent = [(label, d) for label, d in found if d]
    uncontrolled = _unique(c for r in records for c in r.get("uncontrolled", []))
    if divergent or uncontrolled:
        return CaseResult(name, "nondeterministic", divergences=divergent,
                          uncontrolled=uncontrolled, records=records)  # fmt: skip

    actual = expectation_of(records[0])
    if refresh:
        if case.expect == actual:
            return CaseResult(name, "passed", records=records)
        write_case(path, case.model_copy(update={"expect": actual}))
        return CaseResult(name, "refreshed", records=records)
    if case.expect is None:
        return CaseResult(name, "missing", records=records)
    diffs = differences(case.expect, actual)
    return CaseResult(name, "failed" if diffs else "passed", differences=diffs, records=records)


def _unique(calls: Any) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str, int], dict[str, Any]] = {}
    for call in calls:
        seen.setdefault((call["call"], call["file"], call["line"]), call)
    return list(seen.values())
