"""Golden cases and run recording: the recorder middleware writes one run record per attempt."""

from __future__ import annotations

from jobforge.golden.recorder import Recorder, build_record

__all__ = ["Recorder", "build_record"]
