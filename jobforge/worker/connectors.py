"""Where a run's `ctx.connector(name)` is looked up in production: the job's tenant's connector
configs in the database (`jobforge connectors set`), else the environment variable
``JOBFORGE_CONNECTOR_<NAME>`` of the worker (a JSON object naming the tenants it serves), else
nowhere (`ConnectorNotFound`).

The lookup runs in the runner's own code, which for a sync runner is one of the worker's
threads, away from the event loop that owns the worker's async pool; so it opens a short
connection of its own to the worker's database (one per connector name a run reads: the
RunContext keeps what it got for the rest of the run; an async runner's lookup holds the loop
for that connection's round trips). The read is scoped to the job's tenant
like a tenant's own (row-level security, and an explicit filter on the tenant), never across
tenants.
"""

from __future__ import annotations

import os
from typing import Any

from jobforge import db
from jobforge.queue.connectors import from_env
from jobforge.runtime.context import ConnectorLookup
from jobforge.worker.context import JobContext


def lookup_for(job: JobContext) -> ConnectorLookup:
    """The connector lookup of one attempt of `job`."""

    def lookup(name: str) -> dict[str, Any] | None:
        found = _from_database(job, name)
        return found if found is not None else from_env(name, dict(os.environ), job.tenant_id)

    return lookup


def _from_database(job: JobContext, name: str) -> dict[str, Any] | None:
    conninfo = job.client.pool.conninfo if job.client is not None else None
    if not isinstance(conninfo, str):  # no database (a bare handler test), or a callable one
        return None
    with db.connect(conninfo) as conn, db.tenant_transaction(conn, job.tenant_id):
        row = db.execute(conn, "connector_get", {"name": name}).fetchone()
    return None if row is None else dict(row[1])
