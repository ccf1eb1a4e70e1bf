"""Reads of the whole queue, across tenants, for an operator's tools (`jobforge doctor`)."""

from __future__ import annotations

from jobforge import db


def queued_types(dsn: str) -> dict[str, int] | None:
    """Queued jobs per type in every tenant; None when the login may not read every tenant (only
    a superuser or a member of jobforge_worker may: row-level security shows others nothing)."""
    with db.connect(dsn) as conn, db.tenant_transaction(conn, None, worker=True):
        if not db.scalar(conn, "worker_scope_allowed"):
            return None
        return {str(t): int(n) for t, n in db.execute(conn, "queued_types").fetchall()}
