"""0031 derives a job's `claimed` and outcome events from its attempts instead of storing them.
What readers see must not change: the same life, played on a database before 0031 (stored
events) and on one after it (derived events), gives the same log, event for event, with the
same data, login, actor and reason, in the same order; what the audit trail reads (stored events
with an actor) is the same; a database upgraded with history keeps its log as it was."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge import migrate
from jobforge.provision import Database, Server, Template

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LogRow = tuple[str, int | None, str | None, datetime, Any, str | None, str | None, str | None]
#: A second worker login: an outcome written by another login than the claim's says who did.
FINISHER = f"jf_upgrade_finisher_{secrets.token_hex(4)}"  # one per test process


@pytest.fixture
def blank(jobforge_server: Server) -> Iterator[Template]:
    """Databases with no migrations applied (each test migrates its own), and the second login."""
    template = Template(jobforge_server.dsn, []).ensure()
    database = template.create()
    migrate.migrate(database.dsn)  # the roles jobforge_worker and friends
    with database.connect() as conn:
        conn.autocommit = True
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(FINISHER)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_worker").format(
            sql.Identifier(FINISHER)))  # fmt: skip
    yield template
    with database.connect() as conn:
        conn.autocommit = True
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(FINISHER)))
    template.drop(database)


def _database(template: Template, before: int | None) -> Database:
    database = template.create()
    shipped = migrate.discover()
    migrate.migrate(database.dsn, [m for m in shipped if before is None or m.version < before])
    with database.connect() as conn:  # the test's clock, as a throwaway database takes it
        conn.execute("UPDATE jobforge.settings SET caller_clock = true")
    return database


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _play(database: Database) -> list[int]:
    """Six jobs of tenant acme: a retry then a death (2 attempts), a failure, a success after
    a progress report, a cancel while running, a claim and a success by an actor (an agent's,
    say: the audit trail's), and a success written by another login than the claim's."""
    with database.connect() as conn:
        conn.autocommit = True

        def run(
            sql: str, params: tuple[Any, ...], *, tenant: bool = False, actor: str = ""
        ) -> list[Any]:
            with conn.transaction():
                conn.execute("SELECT set_config('jobforge.tenant', 'acme', true)")
                conn.execute("SELECT set_config('jobforge.actor', %s, true)", (actor,))
                if not tenant:
                    conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
                return conn.execute(sql, params).fetchall()

        ids = [r[1] for r in run(
            "SELECT * FROM jobforge.enqueue_v1(ARRAY['ops.a','ops.a','ops.a','ops.a'],"
            " ARRAY['{\"n\":1}','{\"n\":2}','{\"n\":3}','{\"n\":4}']::jsonb[], NULL, NULL, NULL,"
            " ARRAY[2,3,3,3], NULL, %s)", (_at(0),), tenant=True,
        )]  # fmt: skip
        claimed = run("SELECT id, lease_token FROM jobforge.claim_v1('w1', 4, NULL, 600, %s)",
                      (_at(1),))  # fmt: skip
        token = {i: t for i, t in claimed}
        assert sorted(token) == sorted(ids)
        run("SELECT jobforge.progress_v1('w1', %s, %s, 50, 'half', %s)",
            (ids[2], token[ids[2]], _at(2)))  # fmt: skip
        errors = [json.dumps({"kind": "exception", "message": "boom"}),
                  json.dumps({"kind": "non_retryable", "message": "no"}), None]  # fmt: skip
        run("SELECT * FROM jobforge.finish_v1('w1', %s, %s::uuid[], %s, %s::jsonb[], %s::jsonb[],"
            " %s)", (ids[:3], [token[i] for i in ids[:3]], ["retry", "failed", "succeeded"],
                     [None, None, json.dumps({"ok": 1})], errors, _at(3)))  # fmt: skip
        run("SELECT jobforge.cancel_v1(%s, %s)", (ids[3], _at(4)), tenant=True)
        again = run("SELECT id, lease_token FROM jobforge.claim_v1('w2', 4, NULL, 600, %s)",
                    (_at(7200),))  # fmt: skip
        assert [i for i, _ in again] == [ids[0]]
        run("SELECT * FROM jobforge.finish_v1('w2', %s, %s::uuid[], %s, NULL,"
            " %s::jsonb[], %s)", ([ids[0]], [again[0][1]], ["retry"],
                                  [json.dumps({"kind": "exception", "message": "again"})],
                                  _at(7201)))  # fmt: skip
        ids += [r[1] for r in run(
            "SELECT * FROM jobforge.enqueue_v1(ARRAY['ops.b','ops.b'],"
            " ARRAY['{\"n\":5}','{\"n\":6}']::jsonb[], NULL, NULL, NULL, NULL, NULL, %s)",
            (_at(7300),), tenant=True,
        )]  # fmt: skip
        by_agent = run("SELECT id, lease_token FROM jobforge.claim_v1('agent', 1, ARRAY['ops.b'],"
                       " 600, %s)", (_at(7301),), actor="agent-a")  # fmt: skip
        run(
            "SELECT * FROM jobforge.finish_v1('agent', %s, %s::uuid[], %s, NULL, NULL, %s)",
            ([by_agent[0][0]], [by_agent[0][1]], ["succeeded"], _at(7302)),
            actor="agent-a",
        )
        handed = run("SELECT id, lease_token FROM jobforge.claim_v1('w3', 1, ARRAY['ops.b'],"
                     " 600, %s)", (_at(7303),))  # fmt: skip
    finisher = make_conninfo(database.dsn, user=FINISHER)
    with psycopg.connect(finisher, autocommit=True) as other, other.transaction():
        other.execute("SELECT set_config('jobforge.scope', 'worker', true)")
        other.execute(
            "SELECT * FROM jobforge.finish_v1('w3', %s, %s::uuid[], %s, NULL, NULL, %s)",
            ([handed[0][0]], [handed[0][1]], ["succeeded"], _at(7304)),
        )
    return ids


def _logs(database: Database, ids: list[int]) -> dict[int, list[LogRow]]:
    with database.connect() as conn, conn.transaction():
        conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
        return {
            job_id: [
                tuple(row)
                for row in conn.execute(
                    "SELECT kind, attempt, worker, at, data, login, actor, reason"
                    " FROM jobforge.job_event_log WHERE job_id = %s ORDER BY id",
                    (job_id,),
                ).fetchall()
            ]
            for job_id in ids
        }


def _stored_kinds(database: Database) -> list[str]:
    with database.connect() as conn, conn.transaction():
        conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
        return [k for (k,) in conn.execute("SELECT kind FROM jobforge.job_events ORDER BY id")]


def _audit(database: Database) -> list[tuple[str, str | None, str | None]]:
    """What the audit trail reads: stored events with an actor (queue.sql, audit_list)."""
    with database.connect() as conn, conn.transaction():
        conn.execute("SELECT set_config('jobforge.scope', 'worker', true)")
        return [tuple(r) for r in conn.execute(
            "SELECT kind, actor, login FROM jobforge.job_events WHERE actor IS NOT NULL ORDER BY id"
        )]  # fmt: skip


def test_the_same_life_gives_the_same_log_before_and_after(blank: Template) -> None:
    stored, derived = _database(blank, 31), _database(blank, None)
    try:
        old_ids, new_ids = _play(stored), _play(derived)
        assert old_ids == new_ids
        old, new = _logs(stored, old_ids), _logs(derived, new_ids)
        assert new == old
        assert _audit(derived) == _audit(stored) == [
            ("claimed", "agent-a", "postgres"), ("succeeded", "agent-a", "postgres"),
        ]  # fmt: skip
        first, failed, succeeded, canceled, _, handed = new_ids
        assert [(e[0], e[5]) for e in new[handed]][1:] == [
            ("claimed", "postgres"), ("succeeded", FINISHER),
        ]  # fmt: skip
        assert [e[0] for e in new[first]] == [
            "created", "claimed", "retry_scheduled", "claimed", "dead"
        ]  # fmt: skip
        assert [e[0] for e in new[failed]] == ["created", "claimed", "failed"]
        assert [e[0] for e in new[succeeded]] == ["created", "claimed", "progress", "succeeded"]
        assert [e[0] for e in new[canceled]] == ["created", "claimed", "canceled"]
        assert new[first][2][4].keys() == {"run_at"}  # a retry says when, as it always did
        assert new[first][4][4] == {"error": {"kind": "exception", "message": "again"}}
        # after 0031 the claims and the finishes store nothing; what else happened still is
        assert sorted(_stored_kinds(derived)) == [
            "canceled",
            "claimed",
            "progress",
            "succeeded",
            "succeeded",
        ]  # the cancel, the progress, the actor's claim and success, the other login's success
        assert "claimed" in _stored_kinds(stored)
    finally:
        blank.drop(stored)
        blank.drop(derived)


def test_an_upgrade_keeps_the_log_it_had_and_doubles_nothing(blank: Template) -> None:
    database = _database(blank, 31)
    try:
        ids = _play(database)
        before = _logs(database, ids)
        migrate.migrate(database.dsn)
        assert _logs(database, ids) == before
    finally:
        blank.drop(database)
