"""Golden cases: a runner's expected behaviour on fixed inputs and environments, run through the
real queue and worker and compared with what it recorded. (The run recorder itself is part of the
worker, `jobforge.worker.Recorder`; it is re-exported here for code written before it moved.)"""

from __future__ import annotations

from jobforge.worker.recorder import Recorder, build_record

__all__ = ["Recorder", "build_record"]
