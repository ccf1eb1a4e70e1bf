"""The garbage collector's pace while a worker runs.

A worker allocates a few dozen container objects a job (rows, models, contexts, tasks, futures),
so with CPython's default thresholds (700, 10, 10) the cyclic collector runs every few dozen
jobs, and each older-generation pass walks everything the process made at startup: modules,
pydantic's schemas, the registry. Measured on a one-process drain of 20,000 no-op jobs (2 cores),
that was ~10 us of the worker's ~60 us of Python a job. Two standard measures take it back:

* `gc.freeze()` when the worker starts: what exists then moves to the permanent generation and
  no collection walks it again (it is not garbage: the worker's own modules and objects);
* a young-generation threshold of 10,000 allocations instead of 700 (the older thresholds stay):
  the worker's garbage is short-lived, almost none of it cyclic.

The young generations are collected first, so that recent cyclic garbage is not frozen with
the rest (older garbage, if any, waits until the worker stops; a full collection here took
~90 ms, once per worker, and tests start hundreds). Both measures are undone when the worker
stops, by the outermost of several workers in one process, and only as far as they are still
the worker's: a threshold the application changed meanwhile is kept. A process that froze
objects itself (a pre-fork server) keeps its freeze: the worker then only raises the threshold.
A process that turned the collector off keeps it off. `WorkerConfig(tune_gc=False)` leaves the
collector alone, for a worker embedded in a process that tunes it itself.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between young-generation collections while a worker runs (CPython's default: 700).
YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] = gc.get_threshold()  #: the process's thresholds, to restore
_set: tuple[int, int, int] = _saved  #: the thresholds the outermost worker set
_froze = False  #: whether the outermost worker froze (and so unfreezes)


@contextmanager
def paced(enabled: bool = True) -> Iterator[None]:
    """The collector at the worker's pace inside the block (see the module's docstring)."""
    global _depth, _saved, _set, _froze
    with _lock:
        applied = enabled and (_depth > 0 or gc.isenabled())
        if applied:
            if _depth == 0:
                _saved = gc.get_threshold()
                _froze = gc.get_freeze_count() == 0
                if _froze:
                    gc.collect(1)
                    gc.freeze()
                young, middle, old = _saved
                _set = (max(young, YOUNG_THRESHOLD), middle, old)
                gc.set_threshold(*_set)
            _depth += 1
    try:
        yield
    finally:
        if applied:
            with _lock:
                _depth -= 1
                if _depth == 0:
                    if gc.get_threshold() == _set:
                        gc.set_threshold(*_saved)
                    if _froze:
                        gc.unfreeze()
