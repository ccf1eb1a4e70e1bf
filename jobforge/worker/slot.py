"""The run slot: what the harness sets before a runner's attempt and what the runner adapter
leaves after it, typed, on the job's context. Golden cases and replay fill in the environment,
mode and strictness; the adapter (`worker/runners.py`) fills in the runner, its RunContext, its
output and what strict mode saw; the recorder reads them back. One object instead of string keys
in a shared dict, so a reader finds every writer and reader of a field by its name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobforge.contracts import RunnerDef
from jobforge.runtime.context import Environment, Mode, RunContext
from jobforge.runtime.strict import Watch


@dataclass(eq=False)
class RunSlot:
    #: Set by a harness before the run; a production attempt leaves them at their defaults.
    #: The run's environment (clock, seed, recorded HTTP); None means a fresh one for the job.
    environment: Environment | None = None
    #: "record" in production; "replay" answers HTTP only from the environment's exchanges.
    mode: Mode = "record"
    #: Watch the runner's module for uncontrolled calls (clock, randomness, globals).
    strict: bool = False
    #: With `strict`: seconds the wall clock is moved by for the runner (golden runs differ by it).
    clock_shift_s: float = 0.0

    #: Set by the runner adapter during the run; None when the handler is not a runner or the
    #: runner never started.
    definition: RunnerDef | None = None
    run: RunContext | None = None
    #: The output as checked against the contract (None unless the runner returned one).
    output: Any = None
    #: What strict mode saw, when it watched.
    watch: Watch | None = None
    #: What admitted the job (`worker/admission.py`): the timeout and where it came from, the
    #: signatures' key ids, the policy token's claims. Set by the worker before the handler.
    admission: dict[str, Any] | None = None
