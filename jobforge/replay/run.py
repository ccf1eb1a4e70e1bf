"""`jobforge replay` as a library function: what to replay (bundle files and folders, runs read
from a database, or the failures saved by the last replay), the project's runners and HTTP
policy, a throwaway Postgres, the replay itself, the store of failures under `.jobforge/failed/`
and the report. The command parses its options, prints and sets the exit code; nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from jobforge import errors
from jobforge.config import ProjectConfig, find_config
from jobforge.contracts import discover
from jobforge.golden.execute import replay_policy
from jobforge.queue import RunRow
from jobforge.replay import batch
from jobforge.replay.bundle import from_record
from jobforge.replay.engine import Target
from jobforge.report import Report


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay (one source of three) and how."""

    root: Path  #: the runner repository: its [tool.jobforge] and its `.jobforge/failed/`
    paths: tuple[Path, ...] = ()  #: bundle files or folders (named relative to the working dir)
    #: finds stored runs, newest first (called where the runs are loaded: after the runners)
    runs: Callable[[], Sequence[RunRow]] | None = None
    failed: bool = False  #: the failures the last replay saved
    provider: str | None = None  #: where the throwaway Postgres comes from
    concurrency: int = 16
    #: hosts the recording worker was allowed (`--http-allow-host`), beside the project's
    allow_hosts: tuple[str, ...] = ()
    allow_hint: str = ""  #: how a refusal says to allow a host (`HttpPolicy.allow_hint`)


@dataclass(frozen=True)
class ReplayOutcome:
    report: Report
    saved: tuple[Path, ...] = ()  #: failures saved now (not with `failed`)
    dropped: int = 0  #: with `failed`: saved failures that now pass, removed from the store
    nothing: bool = False  #: with `failed`: there were no saved failures to replay


def replay_project(request: ReplayRequest, progress: batch.Progress | None = None) -> ReplayOutcome:
    """Replay what `request` names on a fresh clone of a throwaway server; `progress(done,
    total)` is told the total before the server is provided, then after each chunk."""
    root = request.root.resolve()
    store = batch.FailedStore(root)
    config = find_config(root)
    runners = discover(config)
    policy = replay_policy(config or ProjectConfig(root=root), request.allow_hosts,
                           request.allow_hint)  # fmt: skip
    unreadable: list[batch.Unreadable] = []
    if request.failed:
        targets, unreadable = batch.load_targets(store.paths(), root)
        if not targets and not unreadable:
            return ReplayOutcome(Report(), nothing=True)
    elif request.runs is not None:
        targets = targets_of_runs(request.runs())
    else:
        targets, unreadable = batch.load_targets(request.paths, Path.cwd())
    if progress is not None:
        progress(0, len(targets))
    started = time.perf_counter()
    results = batch.replay_on_throwaway(targets, runners, provider=request.provider,
                                        concurrency=request.concurrency, http_policy=policy,
                                        progress=progress)  # fmt: skip
    report = Report(batch.items(results, unreadable, seconds=time.perf_counter() - started))
    if request.failed:
        return ReplayOutcome(report, dropped=store.drop_passing(targets, results))
    return ReplayOutcome(report, saved=tuple(store.save(targets, results)))


def targets_of_runs(rows: Sequence[RunRow]) -> list[Target]:
    """Stored runs (newest first, as found) as targets, oldest first; `RunNotFound` when there
    are none."""
    if not rows:
        raise errors.RunNotFound("no recorded run matches")
    return [
        Target(f"job {r.job_id} attempt {r.attempt} (run {r.id})",
               from_record(r.record, where=f"run {r.id}"), run_id=r.id)
        for r in reversed(rows)
    ]  # fmt: skip
