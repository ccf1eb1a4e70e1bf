"""Strict mode's vocabulary: the causes of an uncontrolled call (each with its severity and what
to use instead), and the records a watch reports, `UncontrolledCall` and `GlobalChange`. Kept
apart from the machinery so that reports (the golden check, certify) can read them without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: "info": evidence only, never reported by itself (a library read the wall clock for the runner)
Severity = Literal["error", "warning", "info"]

#: cause -> (severity, what to use instead). "error": differs from run to run or process to
#: process; "warning": stable across runs on one machine, differs across machines.
CAUSES: dict[str, tuple[Severity, str]] = {
    "wall clock": ("error", "ctx.now()"),
    "monotonic clock": ("error", "ctx.now(), and keep durations out of the result"),
    "performance counter": ("error", "ctx.now(), and keep durations out of the result"),
    "process CPU time": ("error", "nothing: keep CPU times out of the result"),
    "thread CPU time": ("error", "nothing: keep CPU times out of the result"),
    "a system clock": ("error", "ctx.now()"),
    "random module": ("error", "ctx.random"),
    "unseeded random generator": ("error", "ctx.random"),
    "OS randomness": ("error", "ctx.random"),
    "random id (uuid4)": ("error", "ctx.uuid()"),
    "time-based id (uuid1)": ("error", "ctx.uuid()"),
    "random temporary name": ("error", "a fixed name, or ctx.random"),
    "process id": ("error", "a value passed in the input"),
    "thread id": ("error", "a value passed in the input"),
    "object address (id)": ("error", "a key derived from the data"),
    "object address in a repr": ("error", "a repr without the address"),
    "hash randomized per process": ("error", "a stable digest (hashlib) or sorting"),
    "a read under /proc": ("error", "a value passed in the input"),
    "a read under /sys": ("error", "a value passed in the input"),
    "system load": ("error", "a value passed in the input"),
    "network connection": ("error", "ctx.http"),
    "DNS lookup": ("error", "ctx.http"),
    "an environment variable": ("warning", "a value passed in the input"),
    "host name": ("warning", "a value passed in the input"),
    "host details": ("warning", "a value passed in the input"),
    "MAC address": ("warning", "a value passed in the input"),
    "CPU count": ("warning", "a value passed in the input"),
    "working directory": ("warning", "a path passed in the input"),
    "an external program": ("warning", "its output recorded as an input, or ctx.http"),
    "user account": ("warning", "a value passed in the input"),
    "directory listing order": ("warning", "sorted(...)"),
    "the wall clock, read inside a library": ("info", "ctx.now(), passed to the library"),
}


#: Causes whose values change on every call or in every process (timings, addresses, scratch
#: names, thread and process ids). When every run of a case still gives the same result, such
#: values evidently never reached it (a timed log line, an identity map, a scratch directory):
#: the golden check then reports the call as a warning, not an error. The clock, randomness,
#: ids and reads of the machine stay errors: a date or a coin flip agrees by chance.
INERT_WHEN_RUNS_AGREE = frozenset({
    "monotonic clock", "performance counter", "process CPU time", "thread CPU time",
    "object address (id)", "object address in a repr", "random temporary name", "thread id",
    "process id",
})  # fmt: skip


@dataclass(frozen=True)
class UncontrolledCall:
    #: e.g. "os.getpid", "time.monotonic_ns", "open('/proc/uptime')", "os.environ['HOME']", "id"
    call: str
    file: str
    line: int
    cause: str = ""  #: plain words: "process id", "monotonic clock", "a read under /proc", ...
    severity: Severity = "error"
    #: repr()s (at most ~200 characters each) of the first values this site returned in this
    #: run, in call order; () when the value could not be captured.
    values: tuple[str, ...] = ()

    @property
    def hint(self) -> str:
        return CAUSES.get(self.cause, ("error", "RunContext"))[1]

    def render(self) -> str:
        call = self.call if re.search(r"[(\[ ]", self.call) else f"{self.call}()"
        return f"{call} at {self.file}:{self.line} — {self.cause} (use {self.hint})"


@dataclass(frozen=True)
class GlobalChange:
    module: str
    name: str
    before: str  #: short repr, or "<unset>"
    after: str
    file: str
    line: int | None  #: where the module assigns or mutates it (in a function), else defines it
