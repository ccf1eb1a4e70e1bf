"""Inputs of recorded runs as samples for the drift gate's empirical check: would the inputs
production actually sent still validate under the declared input model?"""

from __future__ import annotations

import json
from collections.abc import Sequence

from jobforge.contracts.samples import REJECTED_STATUS, Sample
from jobforge.queue import QueueClient


def recorded_inputs(
    dsn: str, runner_ids: Sequence[str], *, per_runner: int = 1000
) -> dict[str, list[Sample]]:
    """The newest `per_runner` recorded inputs of each runner, across tenants (redacted, as
    stored), labelled by run and job. A run whose input was rejected (status invalid_input) is
    left out: it never validated, so it is no evidence of what the model must accept."""
    found: dict[str, list[Sample]] = {}
    with QueueClient.connect(dsn, max_size=1) as client:
        for runner_id in runner_ids:
            rows = client.find_runs(runner_ids=[runner_id], limit=per_runner)
            found[runner_id] = [
                (f"run {r.id} (job {r.job_id})", json.loads(r.record["input"]["canonical"]))
                for r in rows
                if r.record.get("status") != REJECTED_STATUS
            ]
    return found
