"""Strict mode: while a runner executes, report calls to the uncontrolled sources of time,
randomness, ids, the process, the machine and outside I/O that RunContext replaces, each with the
file and line in the runner's code, a cause, a severity and the values it returned there.

How a call is seen:
- Wrappers. While at least one watch is active, every target of `SOURCES` (`time.monotonic_ns`,
  `os.getpid`, `builtins.open`, `os._Environ.__getitem__`, ...) is replaced by a wrapper, and so is
  every alias of one bound in a user module's globals (`from os import getpid`). A wrapper looks at
  the watch of the current context (a ContextVar: a thread, or an asyncio task) and at the frame
  calling it; when both say "a watched runner's own code", it calls the original, records the site
  and the value returned, and returns exactly what the original returned (or raises what it
  raised). Otherwise it passes straight through. Everything is put back when the last watch ends.
- A profile hook (`sys.setprofile`, on the watching thread) is the fallback: it still finds the site
  of a source whose reference escaped the patching (kept in a class attribute, a C type's method
  such as `datetime.now`), without the value when the source is a C function.

A call is blamed on the runner only when the frame making it is user code (not jobforge, the
standard library or an installed package), so what a library does internally is not blamed on the
runner. Some sources (`SOURCES[...].through`) are followed through library frames to the nearest
user frame (`Path.read_text('/proc/uptime')`, `os.environ.get`, `Path.iterdir`), never through a
jobforge frame.

`SOURCES` is a table: one line per source, naming where it lives, what it is (`cause`, whose
severity and hint come from `CAUSES`) and, when needed, which calls count (`label`) and which
value to keep (`value`).

Where each part lives: `causes` (causes, severities, the reported records), `sources` (the
table), `frames` (whose frame a call is blamed on), `watch` (what a watch collects), `wrappers`
(what runs in place of a source), `patching` (installing the wrappers and the profile hook) and
`module_globals` (which module globals a block changed); `watching`, here, ties them together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from jobforge.runtime.strict.causes import (
    CAUSES,
    INERT_WHEN_RUNS_AGREE,
    GlobalChange,
    Severity,
    UncontrolledCall,
)
from jobforge.runtime.strict.module_globals import _changes, _snapshot
from jobforge.runtime.strict.patching import _install, _uninstall
from jobforge.runtime.strict.sources import ANY, SOURCES, Source
from jobforge.runtime.strict.watch import _CURRENT, Watch
from jobforge.runtime.strict.watch import _short as _short  # the repr a value is reported as

__all__ = [
    "ANY",
    "CAUSES",
    "INERT_WHEN_RUNS_AGREE",
    "SOURCES",
    "GlobalChange",
    "Severity",
    "Source",
    "UncontrolledCall",
    "Watch",
    "watching",
]


@contextmanager
def watching(watch: Watch, modules: Sequence[str] = ()) -> Iterator[Watch]:
    """Watch the block (its thread or asyncio task, and what they hand their context to) for
    uncontrolled calls; with `modules`, also record which of their globals the block changed."""
    before = _snapshot(modules) if modules else None
    _install()
    token = _CURRENT.set(watch)
    try:
        yield watch
    finally:
        try:
            _CURRENT.reset(token)
        except ValueError:  # exited in another context than it was entered in
            _CURRENT.set(None)
        _uninstall()
        if before is not None:
            watch.globals_changed.extend(_changes(before, _snapshot(modules)))
