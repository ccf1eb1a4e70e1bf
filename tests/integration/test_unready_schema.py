"""A database without jobforge's schema (or part of it), as the library meets it: typed errors.

The CLI checks the migrations up front (tests/e2e/test_cli_unready_db.py); a library caller, and
a worker whose schema disappears while it runs, get `errors.SchemaNotReady` from the db layer
instead of a psycopg error, at no cost to the calls that succeed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from jobforge import errors, migrate
from jobforge.provision import Database, Server
from jobforge.queue import AsyncQueueClient, NewJob, QueueClient
from jobforge.worker import Registry, Worker, WorkerConfig


@pytest.fixture
def empty(jobforge_server: Server) -> Iterator[str]:
    name = f"jf_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(jobforge_server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(jobforge_server.dsn, dbname=name)
    finally:
        with psycopg.connect(jobforge_server.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_client_on_a_database_without_the_schema(empty: str) -> None:
    with QueueClient.connect(empty, tenant="acme") as client:
        with pytest.raises(errors.SchemaNotReady, match=r'"jobforge\.jobs" does not exist'):
            client.list_jobs()
        with pytest.raises(errors.SchemaNotReady, match=r"run `jobforge migrate`"):
            client.enqueue("ops.scan", {})


def test_a_missing_function_is_named(jobforge_db: Database) -> None:
    with jobforge_db.connect() as conn:
        conn.execute("DROP FUNCTION jobforge.enqueue_v1 CASCADE")
        conn.execute("DROP FUNCTION jobforge.enqueue_one_v1 CASCADE")
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as client:
        with pytest.raises(errors.SchemaNotReady, match=r"function jobforge\.enqueue_one_v1\("):
            client.enqueue("ops.scan", {})  # one job: one statement (migrations/0025)
        with pytest.raises(errors.SchemaNotReady, match=r"function jobforge\.enqueue_v1\("):
            client.enqueue_many([NewJob(type="ops.scan", payload={})])
        assert client.list_jobs().jobs == []  # what is still there still works


def test_a_worker_stops_at_once_on_a_database_without_the_schema(empty: str) -> None:
    registry = Registry()
    registry.register("ops.scan", lambda payload, ctx: None)
    worker = Worker(empty, registry, WorkerConfig(exit_when_idle=True))
    with pytest.raises(errors.SchemaNotReady) as caught:
        asyncio.run(asyncio.wait_for(worker.run(), 30))
    assert caught.value.exit_code == 2


def test_require_up_to_date_names_what_is_pending(empty: str) -> None:
    shipped = migrate.discover()
    with pytest.raises(errors.SchemaNotReady, match=rf"has no jobforge schema \({len(shipped)} "):
        migrate.require_up_to_date(empty)
    migrate.migrate(empty, shipped[:-1])
    with pytest.raises(errors.SchemaNotReady, match=rf"1 of {len(shipped)} .*{shipped[-1].name}"):
        migrate.require_up_to_date(empty, source="--database-url")
    migrate.migrate(empty)
    assert migrate.require_up_to_date(empty).up_to_date


@pytest.mark.parametrize("client", ["sync", "async"])
def test_a_client_on_a_server_that_does_not_answer_fails_at_once(
    client: str, jobforge_server: Server
) -> None:
    """Not the pool's background retries until a first call times out (30 s): one error, fast."""
    nowhere = "postgresql://jobforge@127.0.0.1:1/jobforge"
    began = time.monotonic()

    def connect() -> object:
        if client == "sync":
            return QueueClient.connect(nowhere, tenant="acme")
        return asyncio.run(AsyncQueueClient.connect(nowhere, tenant="acme"))

    with pytest.raises(errors.DatabaseUnreachable, match=r"127\.0\.0\.1:1"):
        connect()
    assert time.monotonic() - began < 5
    missing = make_conninfo(jobforge_server.dsn, dbname="jf_no_such_database")
    with pytest.raises(errors.DatabaseUnreachable, match="jf_no_such_database"):
        QueueClient.connect(missing, tenant="acme")
