"""Run records for tests that store them through the queue directly (no worker, no recorder)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobforge.queue import RunWrite
from jobforge.queue.models import StoredArtifact


def run_write(document: dict[str, Any], artifacts: Sequence[tuple[str, str, int]] = ()) -> RunWrite:
    """The columns of a (possibly hand-made) run record document, as the recorder fills them;
    `artifacts`: (name, sha256, size) of blobs stored for the attempt, referenced by the record."""
    output = document.get("output") or {}
    return RunWrite(
        runner_id=document["runner_id"],
        runner_version=document["runner_version"],
        status=document["status"],
        input_sha256=document["input"]["sha256"],
        output_sha256=output.get("sha256"),
        trace_sha256=document["trace_sha256"],
        document=document,
        artifacts=tuple(StoredArtifact(n, sha, size) for n, sha, size in artifacts),
    )
