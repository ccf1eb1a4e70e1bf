"""Golden cases: a runner's expected behaviour on fixed inputs and environments, run through the
real queue and worker and compared with what it recorded. (The run recorder itself is part of the
worker, `jobforge.worker.Recorder`; it is re-exported here for code written before it moved, and
loaded only when asked for, so reading a case file does not import the worker.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobforge.worker.recorder import Recorder, build_record

__all__ = ["Recorder", "build_record"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from jobforge.worker import recorder

        return getattr(recorder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
