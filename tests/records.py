"""Run records for tests that store them through the queue directly (no worker, no recorder)."""

from __future__ import annotations

from typing import Any

from jobforge.queue import RunWrite


def run_write(document: dict[str, Any]) -> RunWrite:
    """The columns of a (possibly hand-made) run record document, as the recorder fills them."""
    output = document.get("output") or {}
    return RunWrite(
        runner_id=document["runner_id"],
        runner_version=document["runner_version"],
        status=document["status"],
        input_sha256=document["input"]["sha256"],
        output_sha256=output.get("sha256"),
        trace_sha256=document["trace_sha256"],
        document=document,
    )
