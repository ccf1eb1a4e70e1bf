"""A bulk cancel of a tenant's queued and running jobs reads those jobs, not its whole history
(migrations/0034): with 20,000 finished jobs beside 1,100 live ones, the rows it reads from the
table stay near the live ones. What the scans read comes from the statistics views, so the test
counts work, not time."""

from __future__ import annotations

import psycopg
import pytest

from jobforge.provision import Database

FINISHED = 20_000
QUEUED = 1_000
RUNNING = 100

SEED = """
INSERT INTO jobforge.jobs (tenant_id, type, payload, payload_hash, status, run_at, attempts,
    lease_token, lease_holder, lease_expires_at, heartbeat_at, created_at, updated_at,
    finished_at)
SELECT 'acme', 'ops.t', jsonb_build_object('i', g),
       'sha256:' || encode(sha256(g::text::bytea), 'hex'), x.status::jobforge.job_status, now(),
       CASE x.status WHEN 'queued' THEN 0 ELSE 1 END,
       CASE x.status WHEN 'running' THEN gen_random_uuid() END,
       CASE x.status WHEN 'running' THEN 'w' END,
       CASE x.status WHEN 'running' THEN now() + interval '1 hour' END,
       CASE x.status WHEN 'running' THEN now() END,
       now(), now(), CASE x.status WHEN 'succeeded' THEN now() END
FROM generate_series(1, %(total)s) AS g
CROSS JOIN LATERAL (
    SELECT CASE WHEN g %% 211 = 0 AND g / 211 <= %(running)s THEN 'running'
                WHEN g %% 21 = 0 THEN 'queued' ELSE 'succeeded' END AS status
) AS x
"""


def _rows_read(conn: psycopg.Connection) -> int:
    """The rows this database's scans read from jobs so far, this backend's own included."""
    conn.execute("SELECT pg_catalog.pg_stat_force_next_flush()")
    conn.execute("SELECT 1")  # the flush happens as this backend goes idle again
    conn.execute("SELECT pg_catalog.pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)"
        " FROM pg_catalog.pg_stat_user_tables WHERE relid = 'jobforge.jobs'::regclass"
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("statuses", [["queued", "running"], ["running"], ["queued"]])
def test_a_bulk_cancel_reads_the_live_jobs_not_the_history(
    jobforge_db: Database, statuses: list[str]
) -> None:
    with jobforge_db.connect() as owner:
        owner.autocommit = True
        owner.execute(SEED, {"total": FINISHED + QUEUED + RUNNING, "running": RUNNING})
        owner.execute("VACUUM ANALYZE jobforge.jobs")
        live = owner.execute(
            "SELECT count(*) FILTER (WHERE status = 'queued'),"
            " count(*) FILTER (WHERE status = 'running') FROM jobforge.jobs"
        ).fetchone()
        assert live is not None
        queued, running = live
        expected = (queued if "queued" in statuses else 0) + (
            running if "running" in statuses else 0
        )
        before = _rows_read(owner)
        with owner.transaction():
            owner.execute("SELECT set_config('jobforge.tenant', 'acme', true)")
            (matched,) = owner.execute(
                "SELECT matched FROM jobforge.bulk_cancel_v1(%s, p_dry_run => true)", (statuses,)
            ).fetchone() or (None,)
        read = _rows_read(owner) - before
    assert matched == expected
    assert read < 3 * (queued + running), (read, queued, running)  # the history is ~20,000
