"""Golden-case costs: what one case costs beyond its runner, in-process and in a fresh interpreter.

Usage: `python benchmarks/golden.py [--cases N] [--fresh-calls K] [--handler sync|async|both]`.
Runs on a throwaway server unless JOBFORGE_SCRATCH_DATABASE_URL is set. A trivial runner is
written to a temporary runner project (pyproject.toml with `[tool.jobforge] runners`, so the fresh
interpreter imports it as the pytest plugin's does), then:

- in-process, the goal figure: `jobforge.golden.lane.Lane.run` for each of N cases back to
  back, as the plugin runs them (enqueue, worker, recorder, read back, and the reset of the
  clone to the template's state; the lane's clone changes every RECYCLE_AFTER cases are in the
  timings), strict mode on (the golden default) and off; the overhead per case is its time minus
  the runner's own (measured inside the runner, ~0 here);
- for comparison, `jobforge.golden.execute.run_case` on a fresh clone per case (the clone
  prepared ahead by the plugin's `ClonePool`, not timed): what a case costs with the cold
  backend every new database brings;
- fresh interpreter: `jobforge.golden.fresh.FreshInterpreter.run`, the first call (interpreter
  start-up, imports and the child's own lane included) and the median of the later ones.

Figures are milliseconds (keys say so); the last line is one JSON object.
Goal ([5/7]): overhead per golden case beyond the handler <= 10 ms in-process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jobforge import db
from jobforge.config import find_config
from jobforge.contracts import RunnerDef, discover
from jobforge.golden.case import GoldenCase, write_case
from jobforge.golden.execute import RunOptions, run_case
from jobforge.golden.fresh import FreshInterpreter
from jobforge.golden.lane import Databases, Lane
from jobforge.provision import ClonePool, Template, provide_server

MODULE = "jobforge_bench_golden_runners"
GOAL_MS = 10.0

RUNNERS = """
import time

from pydantic import BaseModel

from jobforge.contracts import runner

#: seconds spent inside each runner call (the handler's own time)
SPENT: list[float] = []


class In(BaseModel):
    n: int


class Out(BaseModel):
    doubled: int


@runner("bench.sync", version="1.0.0", input=In, output=Out)
def trivial_sync(inp, ctx):
    began = time.perf_counter()
    ctx.decide("n", inp.n)
    out = Out(doubled=inp.n * 2)
    SPENT.append(time.perf_counter() - began)
    return out


@runner("bench.async", version="1.0.0", input=In, output=Out)
async def trivial_async(inp, ctx):
    began = time.perf_counter()
    ctx.decide("n", inp.n)
    out = Out(doubled=inp.n * 2)
    SPENT.append(time.perf_counter() - began)
    return out
"""


def _ms(seconds: list[float]) -> tuple[float, float]:
    """Median and p90 in milliseconds."""
    ordered = sorted(s * 1000 for s in seconds)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return round(statistics.median(ordered), 3), round(p90, 3)


def project(root: Path) -> dict[str, RunnerDef]:
    """A runner project in `root`: pyproject.toml, the runner module; its runners, imported."""
    (root / "pyproject.toml").write_text(f'[tool.jobforge]\nrunners = ["{MODULE}"]\n')
    (root / f"{MODULE}.py").write_text(textwrap.dedent(RUNNERS).lstrip())
    return discover(find_config(root), entry_points=False)


def in_process(
    lane: Lane, variants: dict[str, tuple[RunnerDef, bool]], cases: int
) -> dict[str, float]:
    """Lane.run per case, the runner's own time subtracted; the variants (runner, strict mode)
    take turns case by case, so a slower spell of the machine is shared."""
    spent: list[float] = importlib.import_module(MODULE).SPENT
    case = GoldenCase(input={"n": 21})
    overheads: dict[str, list[float]] = {label: [] for label in variants}
    handler: dict[str, list[float]] = {label: [] for label in variants}
    first: dict[str, float] = {}
    for index in range(cases + 1):
        for label, (definition, strict) in variants.items():
            spent.clear()
            began = time.perf_counter()
            record = lane.run(definition, case, RunOptions(strict=strict))
            elapsed = time.perf_counter() - began
            if record["status"] != "succeeded" or len(spent) != 1:
                raise SystemExit(f"the benchmark case did not run cleanly: {record['status']}")
            if index == 0:  # the first: imports, pydantic schema caches, the clone's cold backend
                first[label] = elapsed
                continue
            overheads[label].append(elapsed - spent[0])
            handler[label].append(spent[0])
    figures: dict[str, float] = {}
    for label in variants:
        figures[f"{label}_case_first_ms"] = round(first[label] * 1000, 3)
        median, p90 = _ms(overheads[label])
        figures[f"{label}_case_overhead_ms_median"] = median
        figures[f"{label}_case_overhead_ms_p90"] = p90
        figures[f"{label}_handler_ms_median"], _ = _ms(handler[label])
    return figures


def fresh_clone_per_case(pool: ClonePool, definition: RunnerDef, cases: int) -> dict[str, float]:
    """run_case on a new clone each time (prepared ahead, not timed): the cold-backend cost."""
    spent: list[float] = importlib.import_module(MODULE).SPENT
    case = GoldenCase(input={"n": 21})
    overheads = []
    for index in range(cases + 1):
        database = pool.acquire()
        spent.clear()
        began = time.perf_counter()
        record = run_case(database.dsn, definition, case)
        elapsed = time.perf_counter() - began
        pool.release(database)
        if record["status"] != "succeeded":
            raise SystemExit(f"the fresh-clone run failed: {record.get('error')}")
        if index:
            overheads.append(elapsed - spent[0])
    median, p90 = _ms(overheads)
    return {"fresh_clone_case_overhead_ms_median": median,
            "fresh_clone_case_overhead_ms_p90": p90}  # fmt: skip


def fresh_interpreter(
    databases: Databases, root: Path, runner_id: str, calls: int
) -> dict[str, float]:
    """FreshInterpreter.run: the first call (start-up) and the later ones (one child for all)."""
    case_path = root / "golden" / runner_id / "basic.json"
    case_path.parent.mkdir(parents=True, exist_ok=True)
    write_case(case_path, GoldenCase(input={"n": 21}))
    child = FreshInterpreter(root, [MODULE], databases, strict=True)
    times = []
    try:
        for _ in range(calls + 1):
            began = time.perf_counter()
            record = child.run(runner_id, case_path)
            times.append(time.perf_counter() - began)
            if record["status"] != "succeeded":
                raise SystemExit(f"the fresh-interpreter run failed: {record.get('error')}")
    finally:
        child.close()
    figures: dict[str, float] = {"fresh_first_ms": round(times[0] * 1000, 1)}
    figures["fresh_rerun_ms_median"], figures["fresh_rerun_ms_p90"] = _ms(times[1:])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=400, help="in-process cases per figure")
    parser.add_argument("--fresh-calls", type=int, default=20, help="fresh-interpreter reruns")
    parser.add_argument("--handler", choices=["sync", "async", "both"], default="both")
    args = parser.parse_args()
    kinds = ["sync", "async"] if args.handler == "both" else [args.handler]

    root = Path(tempfile.mkdtemp(prefix="jobforge-bench-golden-"))
    server = provide_server()
    results: dict[str, Any] = {"cases": args.cases, "fresh_calls": args.fresh_calls}
    try:
        runners = project(root)
        template = Template(server.dsn).ensure()
        with db.connect(server.dsn) as conn:
            results["postgres_version"] = db.scalar(conn, "server_version")
        results["provider"] = server.origin
        print(f"on {server.describe()}", flush=True)
        pool = ClonePool(template)

        @contextmanager
        def databases() -> Iterator[str]:
            database = pool.acquire()
            try:
                yield database.dsn
            finally:
                pool.release(database)

        try:
            variants = {
                f"{kind}{'' if strict else '_nonstrict'}": (runners[f"bench.{kind}"], strict)
                for kind in kinds
                for strict in (True, False)
            }
            lane = Lane(databases)
            try:
                figures = in_process(lane, variants, args.cases)
            finally:
                lane.close()
            for label in variants:
                print(f"  {label}: " + ", ".join(
                    f"{k.removeprefix(label + '_')} {v}" for k, v in figures.items()
                    if k.startswith(label + "_case") or k.startswith(label + "_handler")
                ), flush=True)  # fmt: skip
            results.update(figures)
            figures = fresh_clone_per_case(
                pool, runners[f"bench.{kinds[0]}"], max(args.cases // 4, 20)
            )
            print(f"  a fresh clone per case ({kinds[0]} runner): {figures}", flush=True)
            results.update(figures)
            figures = fresh_interpreter(databases, root, f"bench.{kinds[0]}", args.fresh_calls)
            print(f"  fresh interpreter ({kinds[0]} runner): {figures}", flush=True)
            results.update(figures)
        finally:
            pool.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

    # the goal figure: the worst kind, strict mode on (the golden default)
    results["case_overhead_ms_median"] = max(results[f"{k}_case_overhead_ms_median"] for k in kinds)
    met = results["case_overhead_ms_median"] <= GOAL_MS
    print("\nsummary")
    for kind in kinds:
        print(
            f"  {kind} runner: {results[f'{kind}_case_overhead_ms_median']} ms per case beyond "
            f"the handler (strict on; {results[f'{kind}_nonstrict_case_overhead_ms_median']} ms "
            f"off), handler {results[f'{kind}_handler_ms_median']} ms"
        )
    print(f"  overhead per case {results['case_overhead_ms_median']} ms, goal <= {GOAL_MS} ms: "
          f"{'met' if met else 'NOT met'}")  # fmt: skip
    print(f"  the same case on a fresh clone of its own, cold backend: "
          f"{results['fresh_clone_case_overhead_ms_median']} ms per case")  # fmt: skip
    print(f"  fresh interpreter: first call {results['fresh_first_ms']} ms, then "
          f"{results['fresh_rerun_ms_median']} ms per case")  # fmt: skip
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
