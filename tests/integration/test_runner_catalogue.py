"""The runner catalogue on real Postgres: synced from contracts, read by every login, written
only by operators; requests by runner id validated against the synced schema before anything
is stored; a disabled runner refused by the client and by enqueue_v1 itself."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from jobforge import db, errors
from jobforge.contracts import RUNNERS, runner
from jobforge.declared_runners import declared, sync_declared
from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, QueueClient
from jobforge.queue.catalogue import Declared, list_runners, set_enabled, sync_runners
from jobforge.runtime.context import RunContext
from tests.integration.conftest import new_app_login


class Inner(BaseModel):
    name: str


class ScanIn(BaseModel):
    target: str
    threshold: float = 0.2
    items: list[Inner] = []


class ScanOut(BaseModel):
    ok: bool


@runner("cat.scan", version="1.2.0", input=ScanIn, output=ScanOut)
def scan(inp: ScanIn, ctx: RunContext) -> ScanOut:
    return ScanOut(ok=True)


def _sync(database: Database, **kw: Any) -> list[str]:
    with db.connect(database.dsn) as conn:
        return [s.action for s in sync_declared(conn, {"cat.scan": RUNNERS["cat.scan"]}, **kw)]


def _jobs(database: Database) -> int:
    with database.connect() as conn:
        conn.execute("SELECT set_config('jobforge.scope', 'worker', false)")
        row = conn.execute("SELECT count(*) FROM jobforge.jobs").fetchone()
    assert row is not None
    return int(row[0])


def test_sync_reports_added_unchanged_changed_and_refuses_a_downgrade(
    jobforge_db: Database,
) -> None:
    assert _sync(jobforge_db) == ["added"]
    assert _sync(jobforge_db) == ["unchanged"]
    entry = declared(RUNNERS["cat.scan"])
    newer = entry.__class__(entry.runner_id, "1.3.0", {"type": "object"}, entry.output_schema,
                            "sha256:" + "2" * 64)  # fmt: skip
    with db.connect(jobforge_db.dsn) as conn:
        assert [s.action for s in sync_runners(conn, [newer])] == ["changed"]
        with pytest.raises(
            errors.CatalogueConflict,
            match=r"cat.scan: version 1.2.0 is older than the synced 1.3.0",
        ):
            sync_runners(conn, [entry])
        same = newer.__class__(newer.runner_id, "1.3.0", {"type": "object", "x": 1},
                               newer.output_schema, "sha256:" + "3" * 64)  # fmt: skip
        with pytest.raises(errors.CatalogueConflict, match=r"the version is still 1\.3\.0"):
            sync_runners(conn, [same])
        assert [s.action for s in sync_runners(conn, [entry], force=True)] == ["changed"]
        (row,) = list_runners(conn)
    assert (row.runner_id, row.version, row.enabled) == ("cat.scan", "1.2.0", True)
    assert row.synced_by == "postgres"
    assert row.input_schema["required"] == ["target"]


def test_a_sync_never_reenables_a_disabled_runner(jobforge_db: Database) -> None:
    _sync(jobforge_db)
    with db.connect(jobforge_db.dsn) as conn:
        assert set_enabled(conn, "cat.scan", False) is True
        assert set_enabled(conn, "cat.scan", False) is False
        sync_runners(conn, [declared(RUNNERS["cat.scan"])], force=True)
        assert list_runners(conn)[0].enabled is False
        with pytest.raises(errors.UnknownRunner, match=r"'cat\.nope' is not in the runner"):
            set_enabled(conn, "cat.nope", True)


def test_request_validates_against_the_synced_schema_before_storing(
    jobforge_db: Database,
) -> None:
    _sync(jobforge_db)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        with pytest.raises(errors.InvalidJob, match=r"^the input of cat.scan 1.2.0 is invalid: "
                           r"threshold: 'high' is not of type 'number'$"):  # fmt: skip
            queue.request("cat.scan", {"target": "x", "threshold": "high"})
        with pytest.raises(errors.InvalidJob, match=r"items\[1\]: 'name' is a required property"):
            queue.request("cat.scan", {"target": "x", "items": [{"name": "a"}, {}]})
        with pytest.raises(errors.InvalidJob, match=r"\(root\): 'target' is a required"):
            queue.request("cat.scan", {})
        with pytest.raises(errors.InvalidJob, match="must be a JSON object, not list"):
            queue.request("cat.scan", [1])
        with pytest.raises(errors.UnknownRunner, match=r"'cat\.nope' is not in the runner"):
            queue.request("cat.nope", {})
        assert _jobs(jobforge_db) == 0
        done = queue.request("cat.scan", ScanIn(target="x"), priority=3)
        job = queue.get(done.job_id)
    assert (job.type, job.payload["target"], job.priority) == ("cat.scan", "x", 3)


def test_a_disabled_runner_is_refused_by_the_client_and_by_the_database(
    jobforge_db: Database,
) -> None:
    _sync(jobforge_db)
    with db.connect(jobforge_db.dsn) as conn:
        set_enabled(conn, "cat.scan", False)
    with (
        new_app_login(jobforge_db, ["acme"]) as url,
        QueueClient.connect(url, tenant="acme") as queue,
    ):
        with pytest.raises(errors.RunnerDisabled, match=r"jobforge runners enable cat\.scan"):
            queue.request("cat.scan", {"target": "x"})
        # a producer that skips the catalogue: the database refuses it all the same
        with pytest.raises(errors.RunnerDisabled,
                               match=r"^job #2: runner cat.scan is disabled"):  # fmt: skip
            queue.enqueue_many([_new("other.type"), _new("cat.scan")])
        assert queue.enqueue("other.type", {}).created  # other types are not affected
    assert _jobs(jobforge_db) == 1
    with db.connect(jobforge_db.dsn) as conn:
        set_enabled(conn, "cat.scan", True)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        assert queue.enqueue("cat.scan", {"target": "x"}).created


def _new(type: str) -> Any:
    from jobforge.queue import NewJob

    return NewJob(type=type, payload={"target": "x"})


def test_the_async_client_requests_too(jobforge_db: Database) -> None:
    _sync(jobforge_db)

    async def main() -> int:
        pool = db.AsyncConnectionPool(jobforge_db.dsn, open=False)
        await pool.open()
        try:
            client = AsyncQueueClient(pool, tenant="acme")
            with pytest.raises(errors.InvalidJob, match="target"):
                await client.request("cat.scan", {"threshold": 1})
            return (await client.request("cat.scan", {"target": "y"})).job_id
        finally:
            await pool.close()

    assert asyncio.run(main()) > 0


def test_the_client_caches_entries_for_a_few_seconds(jobforge_db: Database) -> None:
    _sync(jobforge_db)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        queue.request("cat.scan", {"target": "x"})
        with db.connect(jobforge_db.dsn) as conn:
            set_enabled(conn, "cat.scan", False)
        # the cached entry says enabled: the database refuses anyway
        with pytest.raises(errors.RunnerDisabled, match=r"job #1: runner cat\.scan is disabled"):
            queue.request("cat.scan", {"target": "x"})
        queue.catalogue.clear()
        with pytest.raises(errors.RunnerDisabled, match=r"^runner cat\.scan is disabled"):
            queue.request("cat.scan", {"target": "x"})


SQL_WRITES = [
    "SELECT jobforge.catalogue_sync_v1('cat.scan', '9.0.0', '{}', '{}', 'sha256:"
    + "0" * 64
    + "', true)",
    "SELECT jobforge.catalogue_sync_v2('cat.scan', '9.0.0', '{}', '{}', 'sha256:"
    + "0" * 64
    + "', true, 1000)",
    "SELECT jobforge.catalogue_enable_v1('cat.scan', false)",
    "UPDATE jobforge.runner_catalogue SET max_attempts = 1000",
    "UPDATE jobforge.runner_catalogue SET enabled = false",
    "DELETE FROM jobforge.runner_catalogue",
    "INSERT INTO jobforge.runner_catalogue VALUES ('cat.x', '1.0.0', '{}', '{}', 'sha256:"
    + "0" * 64
    + "', true, now(), 'me')",
]


@pytest.mark.parametrize("statement", SQL_WRITES)
def test_a_tenant_app_login_reads_the_catalogue_but_cannot_change_it(
    jobforge_db: Database, statement: str
) -> None:
    _sync(jobforge_db)
    with (
        new_app_login(jobforge_db, ["acme"]) as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        conn.execute("SELECT set_config('jobforge.tenant', 'acme', false)")
        conn.execute("SELECT set_config('jobforge.scope', 'worker', false)")  # asks: not given
        assert conn.execute("SELECT runner_id, enabled FROM jobforge.runner_catalogue"
                            ).fetchall() == [("cat.scan", True)]  # fmt: skip
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    with db.connect(jobforge_db.dsn) as conn:
        (row,) = list_runners(conn)
    assert (row.version, row.enabled, row.max_attempts) == ("1.2.0", True, 3)


@pytest.mark.parametrize(
    ("runner_id", "version", "schema", "message"),
    [
        ("Bad Id", "1.0.0", {}, "runner id 'Bad Id' is invalid"),
        ("a" * 201, "1.0.0", {}, "is invalid: use dotted names"),
        ("cat.x", "1.0", {}, "version '1.0' is not a semantic version"),
        ("cat.x", "1.0.0" + "x" * 100, {}, "is not a semantic version"),
        ("cat.x", "1.0.0", [], "the input and output schemas must be JSON objects"),
    ],
)  # fmt: skip
def test_a_sync_of_values_at_the_edges_is_refused_in_one_line(
    jobforge_db: Database, runner_id: str, version: str, schema: Any, message: str
) -> None:
    bad = Declared(runner_id, version, schema, {}, "sha256:" + "0" * 64)
    with db.connect(jobforge_db.dsn) as conn:
        with pytest.raises(errors.InvalidJob) as info:
            sync_runners(conn, [bad])
        assert message in str(info.value)
        assert "\n" not in str(info.value)
        assert list_runners(conn) == []


def test_a_job_requested_through_the_catalogue_gets_its_runners_max_attempts(
    jobforge_db: Database,
) -> None:
    """A producer without the runner's code applies the max_attempts the runner declares (the
    catalogue holds it since migrations/0029), unless the job names its own; an entry synced
    without one (an older client, or v1 directly) leaves the default, and the next sync fills it."""
    schema = {"type": "object"}
    with db.connect(jobforge_db.dsn) as conn:
        hook = Declared("cat.hook", "1.0.0", schema, schema, "sha256:" + "1" * 64, 8)
        plain = Declared("cat.plain", "1.0.0", schema, schema, "sha256:" + "2" * 64)
        sync_runners(conn, [hook, plain])
        assert {e.runner_id: e.max_attempts for e in list_runners(conn)} == {
            "cat.hook": 8, "cat.plain": None}  # fmt: skip
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        eight = queue.get(queue.request("cat.hook", {}).job_id)
        own = queue.get(queue.request("cat.hook", {}, max_attempts=2).job_id)
        three = queue.get(queue.request("cat.plain", {}).job_id)
    assert (eight.max_attempts, own.max_attempts, three.max_attempts) == (8, 2, 3)

    # an entry synced before the column existed gets it on the next sync, otherwise unchanged
    with db.connect(jobforge_db.dsn, autocommit=True) as conn:
        conn.execute("UPDATE jobforge.runner_catalogue SET max_attempts = NULL")  # as before 0029
        again = sync_runners(conn, [Declared("cat.hook", "1.0.0", schema, schema,
                                             "sha256:" + "1" * 64, 8)])  # fmt: skip
        assert [s.action for s in again] == ["unchanged"]
        assert {e.runner_id: e.max_attempts for e in list_runners(conn)}["cat.hook"] == 8
        # out of range: one line, nothing changed
        for bad in (0, 1001):
            with pytest.raises(errors.InvalidJob, match=rf"max_attempts {bad} is out of range"):
                sync_runners(conn, [Declared("cat.hook", "1.0.0", schema, schema,
                                             "sha256:" + "1" * 64, bad)])  # fmt: skip
        assert {e.runner_id: e.max_attempts for e in list_runners(conn)}["cat.hook"] == 8


def test_the_declared_entry_carries_the_runners_max_attempts() -> None:
    @runner("cat.eight", version="1.0.0", input=ScanIn, output=ScanOut, max_attempts=8)
    def eight(inp: ScanIn, ctx: RunContext) -> ScanOut:
        raise AssertionError("never run")

    try:
        assert declared(RUNNERS["cat.eight"]).max_attempts == 8
    finally:
        RUNNERS.pop("cat.eight", None)
