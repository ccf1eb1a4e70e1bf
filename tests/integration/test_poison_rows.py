"""Poison rows, from the attacker's side: rows no reader can load, inserted straight into the
table (as a row stored before migration 0008's checks would be), never stall a worker. The claim
loads each row on its own and fails the ones it cannot load, with the reason; every other
tenant's jobs run."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from jobforge.provision import Database
from jobforge.queue import NewJob, QueueClient
from jobforge.states import JobState
from jobforge.worker import JobContext, Registry, WorkerConfig, drain

DEEP = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"
HUGE_INT = '{"n": ' + "7" * 5000 + "}"

#: (what the row holds, the columns overridden, the reason the worker must give)
POISON = {
    "run_at -infinity": ({"run_at": "-infinity"}, "timestamp"),
    "run_at 44 BC": ({"run_at": "0044-03-15 BC"}, "timestamp"),
    "created_at 44 BC": ({"created_at": "0044-03-15 BC"}, "timestamp"),
    "payload 5,000 deep": ({"payload": DEEP}, "RecursionError"),
    "an integer of 5,000 digits": ({"payload": HUGE_INT}, "digits"),
}


def plant(database: Database, overrides: dict[str, str]) -> int:
    """One queued job written directly by the superuser, with `overrides` as column values."""
    values = {
        "tenant_id": "mallory", "type": "ops.work", "payload": "{}",
        "payload_hash": "sha256:" + "0" * 64, "run_at": "now", "created_at": "now",
        "updated_at": "now", **overrides,
    }  # fmt: skip
    columns = ", ".join(values)
    casts = ", ".join(
        f"%({k})s::timestamptz" if k.endswith("_at") else f"%({k})s::jsonb" if k == "payload"
        else f"%({k})s" for k in values
    )  # fmt: skip
    with database.connect() as conn:
        row = conn.execute(
            f"INSERT INTO jobforge.jobs ({columns}) VALUES ({casts}) RETURNING id", values
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def tenants(jobforge_db: Database) -> Iterator[dict[str, QueueClient]]:
    clients = {t: QueueClient.connect(jobforge_db.dsn, tenant=t) for t in ("acme", "globex")}
    yield clients
    for client in clients.values():
        client.close()


def test_poison_rows_are_failed_with_their_reason_and_every_other_job_runs(
    jobforge_db: Database, tenants: dict[str, QueueClient], caplog: pytest.LogCaptureFixture
) -> None:
    poisoned = {name: plant(jobforge_db, columns) for name, (columns, _) in POISON.items()}
    good = {
        tenant: [e.job_id for e in client.enqueue_many(
            [NewJob(type="ops.work", payload={"n": n}) for n in range(40)]
        )]
        for tenant, client in tenants.items()
    }  # fmt: skip
    registry = Registry()
    ran: list[int] = []

    def work(payload: dict[str, int], ctx: JobContext) -> int:
        ran.append(ctx.job_id)
        return payload["n"]

    registry.register("ops.work", work)
    caplog.set_level(logging.WARNING)
    report = drain(jobforge_db.dsn, registry, WorkerConfig(name="w1", concurrency=8), timeout_s=30)

    assert report.counts["succeeded"] == 80
    assert sorted(ran) == sorted(good["acme"] + good["globex"])  # no poison row reached a handler
    assert not [r for r in caplog.records if "claim failed" in r.getMessage()]
    quarantined = [r.getMessage() for r in caplog.records if "quarantined" in r.getMessage()]
    assert len(quarantined) == len(POISON)
    with jobforge_db.connect() as conn:
        for name, job_id in poisoned.items():
            reason = POISON[name][1]
            row = conn.execute(
                "SELECT status::text, error->>'kind', error->>'message', attempts"
                " FROM jobforge.jobs WHERE id = %s",
                (job_id,),
            ).fetchone()
            assert row is not None
            status, kind, message, attempts = row
            assert (status, kind, attempts) == ("failed", "unloadable", 1), name
            assert "cannot be loaded" in message, (name, message)
            assert reason in message, (name, message)
    for tenant, client in tenants.items():
        assert {client.get(i).status for i in good[tenant]} == {JobState.SUCCEEDED}
