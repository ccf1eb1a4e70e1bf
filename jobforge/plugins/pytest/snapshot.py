"""A syrupy extension for run records: canonical JSON (RFC 8785, pretty-printed for review)
with the volatile fields masked, so a snapshot changes only when the run's meaning does.

    def test_scan(jobforge_run, snapshot):
        record = jobforge_run("ops.scan", {"target": "db-1"})
        assert record == snapshot(extension_class=RunRecordSnapshot)
"""

from __future__ import annotations

import json
from typing import Any

from jobforge.errors import MissingTestStack

try:  # syrupy is part of the test stack, not of a core install
    from syrupy.extensions.json import JSONSnapshotExtension
except ImportError as exc:
    raise MissingTestStack.needed_by("RunRecordSnapshot (syrupy snapshots)", exc) from None

#: Fields of a run record that differ between two runs of the same meaning.
VOLATILE = ("provenance",)
MASK = "<volatile>"


def masked(record: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {k: (MASK if k in VOLATILE else v) for k, v in record.items()}
    body["uncontrolled"] = [
        {**item, "file": str(item.get("file", "")).rsplit("/", 1)[-1]}  # not the checkout's path
        for item in body.get("uncontrolled", []) or []
    ]
    return body


class RunRecordSnapshot(JSONSnapshotExtension):
    def serialize(self, data: Any, **kwargs: Any) -> str:
        if isinstance(data, dict) and data.get("format") == "jobforge.run/1":
            data = masked(data)
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
