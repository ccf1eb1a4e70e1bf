"""`@runner(...)`: the user-facing declaration of a runner and its contract.

Declaring needs no database: the decorator checks the declaration, records it in the runner
registry of this process, and returns the function unchanged (it stays callable in plain tests).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from jobforge import errors

F = TypeVar("F", bound=Callable[..., Any])

_ID = re.compile(r"[a-z0-9._-]{1,200}")
#: semver.org's grammar, without build metadata ordering concerns (we compare major.minor.patch).
SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
_ARTIFACT = re.compile(r"[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,199}")


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between attempts: min(cap, base * 2^(attempt-1)), jittered into [50 %, 100 %]."""

    base_s: float = 1.0
    cap_s: float = 3600.0


@dataclass(frozen=True)
class Guarantees:
    input_snapshot: bool = True  #: the input is recorded (canonical, hashed)
    decision_trace: bool = True  #: decisions go through ctx.decide and are recorded in order
    output_artifact: bool = True  #: the output (and declared artifacts) are recorded and hashed
    replayable: bool = True  #: a recorded run re-executes to the same output, trace and artifacts


@dataclass(frozen=True)
class RunnerDef:
    """One declared runner: the function and everything its contract says."""

    id: str
    version: str
    fn: Callable[..., Any]
    input: type[BaseModel]
    output: type[BaseModel]
    trace_keys: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    guarantees: Guarantees = field(default_factory=Guarantees)
    timeout_s: float | None = None
    max_attempts: int = 3
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    is_async: bool = False

    @property
    def where(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


#: Every runner declared in this process, by id.
RUNNERS: dict[str, RunnerDef] = {}


def runner(
    id: str,
    *,
    version: str,
    input: type[BaseModel],
    output: type[BaseModel],
    trace_keys: Sequence[str] = (),
    artifacts: Sequence[str] = (),
    input_snapshot: bool = True,
    decision_trace: bool = True,
    output_artifact: bool = True,
    replayable: bool = True,
    timeout_s: float | None = None,
    max_attempts: int = 3,
    retry: RetryPolicy | None = None,
) -> Callable[[F], F]:
    """Declare `fn(inp, ctx) -> output` as the runner `id` (= its job type)."""

    def declare(fn: F) -> F:
        where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
        problems = _problems(id, version, input, output, trace_keys, artifacts, timeout_s,
                             max_attempts, fn)  # fmt: skip
        if problems:
            raise errors.ConfigurationError(f"runner {id!r} ({where}): " + "; ".join(problems))
        definition = RunnerDef(
            id=id,
            version=version,
            fn=fn,
            input=input,
            output=output,
            trace_keys=tuple(trace_keys),
            artifacts=tuple(artifacts),
            guarantees=Guarantees(input_snapshot, decision_trace, output_artifact, replayable),
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            retry=retry or RetryPolicy(),
            is_async=inspect.iscoroutinefunction(fn),
        )
        existing = RUNNERS.get(id)
        if existing is not None and existing.where != definition.where:
            raise errors.ConfigurationError(
                f"runner {id!r} is declared twice: {existing.where} and {definition.where}"
            )
        RUNNERS[id] = definition
        return fn

    return declare


def _problems(id: str, version: str, input: Any, output: Any, trace_keys: Sequence[str],
              artifacts: Sequence[str], timeout_s: float | None, max_attempts: int,
              fn: Callable[..., Any]) -> list[str]:  # fmt: skip
    found = []
    if not isinstance(id, str) or not _ID.fullmatch(id):
        found.append("the id must be 1-200 of [a-z0-9._-] (it is the job type)")
    if not isinstance(version, str) or not SEMVER.fullmatch(version):
        found.append(f"version {version!r} is not semver (MAJOR.MINOR.PATCH)")
    for name, model in (("input", input), ("output", output)):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            found.append(f"{name} must be a pydantic model class, not {model!r}")
    for key in trace_keys:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            found.append(f"trace key {key!r} must be 1-200 of [A-Za-z0-9_.:-]")
    if len(set(trace_keys)) != len(tuple(trace_keys)):
        found.append("trace keys repeat")
    for name in artifacts:
        if not isinstance(name, str) or not _ARTIFACT.fullmatch(name) or ".." in name:
            found.append(f"artifact name {name!r} must be a relative name without '..'")
    if len(set(artifacts)) != len(tuple(artifacts)):
        found.append("artifact names repeat")
    if timeout_s is not None and not timeout_s > 0:
        found.append("timeout_s must be positive")
    if not isinstance(max_attempts, int) or not 1 <= max_attempts <= 1000:
        found.append("max_attempts must be 1-1000")
    if not callable(fn):
        found.append("the decorated object is not callable")
    else:
        params = [
            p for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]  # fmt: skip
        if len(params) < 2:
            found.append("the function must take (inp, ctx)")
    return found
