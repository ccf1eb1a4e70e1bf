"""`@runner(...)`: the user-facing declaration of a runner and its contract.

Declaring needs no database: the decorator checks the declaration, records it in the runner
registry of this process, and returns the function unchanged (it stays callable in plain tests).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from jobforge import errors
from jobforge.config import did_you_mean

F = TypeVar("F", bound=Callable[..., Any])

#: A runner id is a job type and a folder name (golden/<id>/): no "." or ".." parts.
#: (Dots only between non-empty parts; no look-around, so pydantic's regex engine takes it too.)
RUNNER_ID_PATTERN = r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$"
_ID = re.compile(RUNNER_ID_PATTERN)
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


#: The ranges `jobforge.queue.limits` and the database accept (a contract cannot import them:
#: contracts never reach the queue); a declared limit outside them fails at declaration time.
LIMIT_MAX = 1_000_000
RATE_MIN = 0.000001


@dataclass(frozen=True)
class Limits:
    """Queue limits a runner declares for its job type: at most `max_running` of its jobs
    running at once (across every worker), and a token bucket of `rate_per_s` claims a second
    on average, `burst` at once after a quiet spell (default: the rate, at least 1).

    Declared here, they are part of the contract and its lock, reviewed like any other change;
    the claim enforces what is in the database (`jobforge limits apply` writes them there), so
    an operator can still change a limit at run time without a release. Per-tenant caps are no
    runner's business and are set in the database only."""

    max_running: int | None = None
    rate_per_s: float | None = None
    burst: float | None = None

    @property
    def effective_burst(self) -> float | None:
        """The burst the database keeps: the one given, else the rate (at least 1)."""
        if self.rate_per_s is None:
            return None
        return self.burst if self.burst is not None else max(1.0, float(self.rate_per_s))

    def problems(self) -> list[str]:
        """What the database would refuse, as `jobforge.queue.limits.check_limit` checks it."""
        found = []
        if self.max_running is None and self.rate_per_s is None:
            found.append("limits declare nothing: give max_running or rate_per_s (or both)")
        running = self.max_running
        if running is not None and not _within(running, 1, LIMIT_MAX, integer=True):
            found.append(f"limits max_running {running!r} is out of range: give 1-{LIMIT_MAX}")
        if self.rate_per_s is not None and not _within(self.rate_per_s, RATE_MIN, LIMIT_MAX):
            found.append(f"limits rate_per_s {self.rate_per_s!r} is out of range: give "
                         f"{RATE_MIN:f}-{LIMIT_MAX}")  # fmt: skip
        if self.burst is not None:
            if self.rate_per_s is None:
                found.append("limits burst needs rate_per_s")
            elif not _within(self.burst, 1, LIMIT_MAX):
                found.append(f"limits burst {self.burst!r} is out of range: give 1-{LIMIT_MAX}")
        return found

    def describe(self) -> str:
        """ "max_running 4, rate_per_s 2/s, burst 5" (the burst as the database keeps it)."""
        parts = []
        if self.max_running is not None:
            parts.append(f"max_running {self.max_running}")
        if self.rate_per_s is not None:
            parts.append(f"rate_per_s {self.rate_per_s:g}/s, burst {self.effective_burst:g}")
        return ", ".join(parts)


def _within(value: object, low: float, high: float, *, integer: bool = False) -> bool:
    """A number (an integer when `integer`; never a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        return False
    return math.isfinite(value) and low <= value <= high


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
    #: key names redacted from this runner's stored records beyond the name rules (`session`)
    secret_keys: tuple[str, ...] = ()
    #: key names the name rules would redact that hold no secret here (`next_page_token`)
    public_keys: tuple[str, ...] = ()
    #: queue limits of this job type, applied to the database by `jobforge limits apply`
    limits: Limits | None = None
    #: the worker runs only jobs whose ed25519 signatures verify (docs/trust.md)
    signed: bool = False
    #: the scopes a job's policy token must grant: an action runner's (docs/trust.md)
    requires_scopes: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


#: Every runner declared in this process, by id.
RUNNERS: dict[str, RunnerDef] = {}


class RunnerNotDeclared(errors.ConfigurationError):
    """A runner id that nothing declares (`find_runner`); the message names what is declared."""


def find_runner(
    runner_id: str, runners: Mapping[str, RunnerDef] | None = None, *, where: str = ""
) -> RunnerDef:
    """The runner `runner_id` of `runners` (default: every runner of this process, `RUNNERS`);
    `RunnerNotDeclared` with `not_declared`'s message when there is none."""
    chosen = RUNNERS if runners is None else runners
    found = chosen.get(runner_id)
    if found is None:
        raise RunnerNotDeclared(not_declared(runner_id, chosen, where=where))
    return found


def not_declared(runner_id: str, runners: Mapping[str, object], *, where: str = "") -> str:
    """The one message for a runner id nothing declares: "no runner 'x' is declared{where}
    (did you mean 'y'?) (declared: a, b)". `where` says in what sense (" any more")."""
    known = ", ".join(sorted(runners)) or "none"
    hint = did_you_mean(runner_id, runners)
    return f"no runner {runner_id!r} is declared{where}{hint} (declared: {known})"


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
    secret_keys: Sequence[str] = (),
    public_keys: Sequence[str] = (),
    limits: Limits | None = None,
    signed: bool = False,
    requires_scopes: Sequence[str] = (),
) -> Callable[[F], F]:
    """Declare `fn(inp, ctx) -> output` as the runner `id` (= its job type)."""

    def declare(fn: F) -> F:
        where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
        problems = _problems(id, version, input, output, trace_keys, artifacts, timeout_s,
                             max_attempts, retry, fn)  # fmt: skip
        problems += _key_problems(secret_keys, public_keys)
        problems += _limit_problems(limits)
        problems += _policy_problems(signed, requires_scopes)
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
            secret_keys=tuple(secret_keys),
            public_keys=tuple(public_keys),
            limits=limits,
            signed=signed,
            requires_scopes=tuple(sorted(requires_scopes)),
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
              retry: RetryPolicy | None, fn: Callable[..., Any]) -> list[str]:  # fmt: skip
    found = []
    if not isinstance(id, str) or len(id) > 200 or not _ID.fullmatch(id):
        found.append(
            "the id must be 1-200 of [a-z0-9._-], not starting or ending with '.' nor holding "
            "'..' (it is the job type and a folder name)"
        )
    if not isinstance(version, str) or not SEMVER.fullmatch(version):
        found.append(f"version {version!r} is not semver (MAJOR.MINOR.PATCH)")
    for name, model in (("input", input), ("output", output)):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            found.append(f"{name} must be a pydantic model class, not {model!r}")
    # a bare string is a Sequence[str] too: "ab" would declare "a" and "b"
    if isinstance(trace_keys, str | bytes):
        found.append(f"trace keys must be a list of names, not the string {trace_keys!r}")
        trace_keys = ()
    for key in trace_keys:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            found.append(f"trace key {key!r} must be 1-200 of [A-Za-z0-9_.:-]")
    if _repeats(trace_keys):
        found.append("trace keys repeat")
    if isinstance(artifacts, str | bytes):
        found.append(f"artifacts must be a list of names, not the string {artifacts!r}")
        artifacts = ()
    for name in artifacts:
        if not _artifact_name_ok(name):
            found.append(f"artifact name {name!r} must be a relative name, no '..' or '.' parts")
    if _repeats(artifacts):
        found.append("artifact names repeat")
    if timeout_s is not None and not _positive(timeout_s):
        found.append(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")
    if (
        not isinstance(max_attempts, int)
        or isinstance(max_attempts, bool)
        or not 1 <= max_attempts <= 1000
    ):
        found.append("max_attempts must be 1-1000")
    if retry is not None and not (
        isinstance(retry, RetryPolicy) and _positive(retry.base_s) and _positive(retry.cap_s)
    ):
        found.append(f"retry must be a RetryPolicy of positive seconds, not {retry!r}")
    if not callable(fn):
        found.append("the decorated object is not callable")
    elif not _takes_inp_and_ctx(fn):
        found.append("the function must take (inp, ctx)")
    return found


def _key_problems(secret_keys: Sequence[str], public_keys: Sequence[str]) -> list[str]:
    found = []
    for label, keys in (("secret_keys", secret_keys), ("public_keys", public_keys)):
        if isinstance(keys, str | bytes):
            found.append(f"{label} must be a list of key names, not the string {keys!r}")
            continue
        for key in keys:
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                found.append(f"{label}: {key!r} must be 1-200 of [A-Za-z0-9_.:-]")
        if _repeats(keys):
            found.append(f"{label} repeat")
    if not found and (both := sorted(set(secret_keys) & set(public_keys))):
        found.append(f"{', '.join(both)} cannot be both secret and public")
    return found


def _limit_problems(limits: Limits | None) -> list[str]:
    if limits is None:
        return []
    if not isinstance(limits, Limits):
        return [f"limits must be a Limits(max_running=..., rate_per_s=..., burst=...), "
                f"not {limits!r}"]  # fmt: skip
    return limits.problems()


#: A scope a policy token grants: `payments:refund`, `ops.restart`.
_SCOPE = re.compile(r"[A-Za-z0-9_.:/-]{1,100}")


def _policy_problems(signed: object, scopes: Sequence[str]) -> list[str]:
    found = []
    if not isinstance(signed, bool):
        found.append(f"signed must be True or False, not {signed!r}")
    if isinstance(scopes, str | bytes):
        return [*found, f"requires_scopes must be a list of scopes, not the string {scopes!r}"]
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
            found.append(f"scope {scope!r} must be 1-100 of [A-Za-z0-9_.:/-]")
    if _repeats(scopes):
        found.append("requires_scopes repeat")
    return found


def _positive(seconds: object) -> bool:
    return (
        isinstance(seconds, int | float)
        and not isinstance(seconds, bool)
        and math.isfinite(seconds)
        and seconds > 0
    )


def _repeats(names: Sequence[Any]) -> bool:
    seen: list[Any] = []
    for name in names:
        if name in seen:
            return True
        seen.append(name)
    return False


def _artifact_name_ok(name: Any) -> bool:
    return (
        isinstance(name, str)
        and _ARTIFACT.fullmatch(name) is not None
        and ".." not in name
        and all(part not in ("", ".") for part in name.split("/"))
    )


def _takes_inp_and_ctx(fn: Callable[..., Any]) -> bool:
    """Whether `fn(inp, ctx)` binds: two positional arguments, nothing else required."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to inspect (some builtins): trust it
        return True
    try:
        signature.bind(None, None)
    except TypeError:
        return False
    return True
