"""`jobforge certify`: everything a runner repository promises, checked in one go.

Contracts (declaration vs lock, the drift engine), golden cases (expectations), determinism (each
case re-run in-process and in a fresh interpreter with another hash seed) and replay of the
bundles folder, all on a throwaway Postgres, into one report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jobforge import errors
from jobforge.config import ProjectConfig, find_config
from jobforge.contracts import RunnerDef, RunnerNotDeclared, discover
from jobforge.contracts.gate import check_project
from jobforge.golden.check import CaseResult
from jobforge.golden.execute import replay_policy
from jobforge.golden.explain import render_call
from jobforge.golden.suite import GoldenSuite
from jobforge.provision.session import ProvisionSession, Settings
from jobforge.replay import batch
from jobforge.report import Finding, Item, Outcome, Report
from jobforge.runtime.http import HttpPolicy
from jobforge.runtime.redact import key_from_env

SUITES = ("contracts", "golden", "determinism", "replay")

Say = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    project: Path
    database_url: str | None = None
    provider: str | None = None
    runs: int = 2  #: in-process runs per golden case
    fresh: bool = True  #: plus one run in a fresh interpreter (another PYTHONHASHSEED)
    strict: bool = True
    bundles: Path | None = None  #: default: `[tool.jobforge] bundles_dir`
    #: hosts treated as the worker's `--http-allow-host` did, beside `[tool.jobforge]
    #: http_allow_hosts` (recorded exchanges replay without them: see `replay_policy`)
    allow_hosts: tuple[str, ...] = ()


#: How `jobforge certify`'s refusal of an unrecorded request to a private address says to allow
#: it (`HttpPolicy.allow_hint`).
ALLOW_HINT = (
    "pass --http-allow-host {host} to jobforge certify, or list it in [tool.jobforge] "
    "http_allow_hosts"
)


def load_project(folder: Path) -> tuple[ProjectConfig, dict[str, RunnerDef]]:
    if not folder.is_dir():
        raise errors.ConfigurationError(f"no such project folder: {folder}")
    config = find_config(folder.resolve())
    if config is None:
        raise errors.ConfigurationError(
            f"no pyproject.toml with a [tool.jobforge] table in {folder.resolve()} or above it"
        )
    return config, discover(config)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def certify(options: Options, say: Say | None = None) -> Report:
    tell = say or (lambda _: None)
    key_from_env()  # a bad redaction key is a usage error before anything runs
    config, runners = load_project(options.project)
    # a folder [tool.jobforge] names must exist: a typo would turn a whole suite off in silence
    for key in ("golden_dir", "contracts_dir", *(() if options.bundles else ("bundles_dir",))):
        config.folder(key)
    report = Report()
    tell(f"contracts: {_count(len(runners), 'runner')}")
    report.extend(check_project(config, runners).items)
    session = ProvisionSession(Settings(options.database_url, options.provider, None, None))
    policy = replay_policy(config, options.allow_hosts, ALLOW_HINT)
    try:
        report.extend(_golden(config, runners, session, options, policy, tell))
        report.extend(_replay(config, runners, session, options, policy, tell))
    finally:
        session.close()
    return report


def _golden(config: ProjectConfig, runners: dict[str, RunnerDef], session: ProvisionSession,
            options: Options, policy: HttpPolicy, tell: Say) -> list[Item]:  # fmt: skip
    # a golden_dir named in [tool.jobforge] must exist
    suite = GoldenSuite(config, runners, session.fresh_database, config.folder("golden_dir"),
                        runs=options.runs, fresh=options.fresh, strict=options.strict,
                        http_policy=policy)  # fmt: skip
    paths = suite.paths()
    if not paths:
        return []
    tell(f"golden: {_count(len(paths), 'case')}")
    found: list[Item] = []
    try:
        for path in paths:
            found += _case_items(suite, path)
    finally:
        suite.close()
    return found


def _case_items(suite: GoldenSuite, path: Path) -> list[Item]:
    # the case's file, relative to the project (a golden_dir may sit deeper than its root)
    root = suite.project.root
    where = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    try:
        loaded = suite.load(path)
    except RunnerNotDeclared as exc:
        return [_error("golden", suite.name(path), "runner not declared", str(exc), where)]
    except errors.ConfigurationError as exc:
        return [_error("golden", where, "invalid golden case", str(exc), where)]
    started = time.perf_counter()
    result = suite.check(loaded)
    return _verdict_items(result, where, time.perf_counter() - started)


def _verdict_items(result: CaseResult, where: str, seconds: float) -> list[Item]:
    name = result.name
    notes = tuple(
        Finding(render_call(c), rule="strict", severity="warning", file=c["file"], line=c["line"])
        for c in result.warnings
    ) + tuple(
        Finding(f"{path}: redacted in the expectation, not compared (set "
                "JOBFORGE_REDACTION_KEY, or declare it in public_keys if it is no secret)",
                rule="not_compared", severity="notice", path=path)
        for path in result.not_compared
    )  # fmt: skip
    if result.verdict == "nondeterministic":
        findings = [
            Finding(f"{label}: {d.render()}", rule="divergence", severity="error", path=d.path,
                    file=_file(d.source), line=_line(d.source))
            for label, found in result.divergences for d in found
        ] + [
            Finding(render_call(c), rule="strict", severity="error", file=c["file"],
                    line=c["line"])
            for c in result.uncontrolled
        ]  # fmt: skip
        return [
            Item("golden", name, Outcome.skipped, "not compared: its runs disagree", file=where),
            Item("determinism", name, Outcome.failed, "nondeterministic", (*findings, *notes),
                 file=where, duration_s=seconds),
        ]  # fmt: skip
    determinism = Item("determinism", name, Outcome.passed, "runs agree",
                       tuple(f for f in notes if f.rule == "strict"), file=where,
                       duration_s=seconds)  # fmt: skip
    compared = tuple(f for f in notes if f.rule == "not_compared")
    if result.verdict == "missing":
        missing = Finding("no expectation: record one with pytest --jobforge-refresh",
                          rule="missing", severity="error")  # fmt: skip
        golden = Item("golden", name, Outcome.failed, "missing expectation", (missing,), file=where)
    elif result.verdict == "failed":
        ended = (
            (Finding(f"the run ended {result.failure}", rule="run_error", severity="error"),)
            if result.failure
            else ()
        )
        diffs = (
            tuple(
                Finding(d.render(), rule="expectation", severity="error", path=d.path)
                for d in result.differences
            )
            + ended
        )
        golden = Item("golden", name, Outcome.failed, "differs from its expectation",
                      (*diffs, *compared), file=where)  # fmt: skip
    else:
        golden = Item("golden", name, Outcome.passed, "matches its expectation", compared,
                      file=where)  # fmt: skip
    return [golden, determinism]


def _file(source: str | None) -> str | None:
    return None if source is None else source.rsplit(":", 1)[0]


def _line(source: str | None) -> int | None:
    if source is None or ":" not in source:
        return None
    tail = source.rsplit(":", 1)[1]
    return int(tail) if tail.isdigit() else None


def _replay(config: ProjectConfig, runners: dict[str, RunnerDef], session: ProvisionSession,
            options: Options, policy: HttpPolicy, tell: Say) -> list[Item]:  # fmt: skip
    # a bundles_dir named in [tool.jobforge] must exist; the default one may not yet
    folder = options.bundles or config.folder("bundles_dir")
    if not folder.is_dir():
        if options.bundles is not None:
            raise errors.ConfigurationError(f"no such bundles folder: {folder}")
        return []
    targets, unreadable = batch.load_targets([folder], config.root)
    if not targets and not unreadable:
        return []
    tell(f"replay: {_count(len(targets) + len(unreadable), 'bundle')}")
    started = time.perf_counter()
    results = batch.replay_on_throwaway(targets, runners, session=session, http_policy=policy)
    return batch.items(results, unreadable, seconds=time.perf_counter() - started)


def _error(suite: str, name: str, summary: str, message: str, where: str) -> Item:
    return Item(suite, name, Outcome.error, summary, (Finding(message, severity="error"),),
                file=where)  # fmt: skip
