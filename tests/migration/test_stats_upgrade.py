"""0033 drops the index jobs_by_tenant_status and has stats_v1 count succeeded jobs from
jobs_finished_by_tenant instead. The counts must not change: the same jobs (every state, two
tenants, two projects, finished over two days) give the same stats_v1 rows before and after the
upgrade, in every scope a caller can ask for (every tenant as a worker, one tenant, one tenant's
project, with and without the succeeded count)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jobforge import migrate
from jobforge.provision import Database, Server, Template

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

#: 4,000 jobs: tenant by the thousand, project by the parity, type by seven, state by g % 20.
SEED = """
INSERT INTO jobforge.jobs (tenant_id, project, type, payload, payload_hash, status, priority,
    run_at, attempts, max_attempts, lease_token, lease_holder, lease_expires_at, heartbeat_at,
    created_at, updated_at, finished_at)
SELECT CASE WHEN g < 2000 THEN 'acme' ELSE 'globex' END,
       CASE WHEN g %% 2 = 0 THEN 'default' ELSE 'p1' END,
       'ops.t' || (g / 7 %% 5), jsonb_build_object('i', g),
       'sha256:' || encode(sha256(g::text::bytea), 'hex'), x.status::jobforge.job_status, 0,
       %(now)s::timestamptz + (g %% 3 - 1) * interval '1 hour',
       CASE x.status WHEN 'queued' THEN g %% 2 ELSE 1 END, 3,
       CASE x.status WHEN 'running' THEN gen_random_uuid() END,
       CASE x.status WHEN 'running' THEN 'w' END,
       CASE x.status WHEN 'running' THEN %(now)s::timestamptz + (g %% 30 - 10) * interval '1 s' END,
       CASE x.status WHEN 'running' THEN %(now)s::timestamptz END,
       %(now)s::timestamptz - interval '3 days', %(now)s::timestamptz,
       CASE WHEN x.status IN ('succeeded', 'failed', 'dead', 'canceled')
            THEN %(now)s::timestamptz - (g * 43) * interval '1 second' END
FROM generate_series(0, 3999) AS g
CROSS JOIN LATERAL (
    SELECT (ARRAY['queued', 'queued', 'queued', 'running', 'dead', 'failed', 'canceled',
                  'succeeded'])[least(g %% 20, 7) + 1] AS status
) AS x
"""

SCOPES = [  # (tenant, project scope, worker scope)
    ("acme", "", False),
    ("globex", "", False),
    ("acme", "p1", False),
    ("globex", "default", False),
    ("acme", "", True),
]


@pytest.fixture
def blank(jobforge_server: Server) -> Template:
    """Databases with no migrations applied: each test migrates its own."""
    return Template(jobforge_server.dsn, []).ensure()


def _database(template: Template, before: int | None) -> Database:
    database = template.create()
    shipped = migrate.discover()
    migrate.migrate(database.dsn, [m for m in shipped if before is None or m.version < before])
    with database.connect() as conn:
        conn.execute("UPDATE jobforge.settings SET caller_clock = true")  # the test's clock
        conn.execute(SEED, {"now": NOW})
        conn.execute("COMMIT")
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE jobforge.jobs")
    return database


def _stats(database: Database) -> dict[tuple[str, str, bool], list[tuple[Any, ...]]]:
    found = {}
    with database.connect() as conn:
        for tenant, project, worker in SCOPES:
            for succeeded in (True, False):
                with conn.transaction():
                    conn.execute(
                        "SELECT set_config('jobforge.tenant', %s, true),"
                        " set_config('jobforge.project', %s, true),"
                        " set_config('jobforge.scope', %s, true)",
                        (tenant, project, "worker" if worker else ""),
                    )
                    rows = conn.execute(
                        "SELECT * FROM jobforge.stats_v1(%s, 10, 86400, %s)", (succeeded, NOW)
                    ).fetchall()
                found[(tenant + "/" + project, "worker" if worker else "", succeeded)] = rows
    return found


def test_stats_are_the_same_before_and_after_0033(blank: Template) -> None:
    before = _database(blank, 33)
    after = _database(blank, None)
    try:
        old, new = _stats(before), _stats(after)
        assert old == new
        every = old[("acme/", "worker", True)]
        assert {row[0] for row in every} == {"acme", "globex"}
        assert {row[2] for row in every} >= {
            "due", "scheduled", "retry_scheduled", "running", "dead", "failed", "canceled",
            "succeeded",
        }  # fmt: skip
        assert sum(row[3] for row in old[("acme/", "", True)]) == 2000
        assert sum(row[3] for row in old[("acme/p1", "", True)]) == 1000
        assert not any(row[2] == "succeeded" for row in old[("acme/", "", False)])
        with after.connect() as conn:
            indexes = {
                r[0]
                for r in conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = 'jobforge'"
                    " AND tablename = 'jobs'"
                )
            }
        assert "jobs_by_tenant_status" not in indexes
        assert {"jobs_by_tenant", "jobs_finished_by_tenant", "jobs_running_by_tenant"} <= indexes
    finally:
        blank.drop(before)
        blank.drop(after)
