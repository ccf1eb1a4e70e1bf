"""The worker's writes find their jobs by primary key whatever the planner's statistics say.

Once ANALYZE has seen a queue with few running jobs, the partial index of running jobs
(`jobs_leased`) looks tiny to the planner, and a finish that also named the status read that
index from end to end for every outcome: a drain of 50,000 jobs fell from ~10,000 to ~640 jobs
a second (migrations/0026). What the index scans returned is read from the statistics views,
so the test counts work, not time.
"""

from __future__ import annotations

import psycopg
import pytest

from jobforge.provision import Database
from jobforge.queue import NewJob, QueueClient

TENANT = "acme"
QUEUED = 3000
RUNNING = 2000
FINISHED = 200


def _leased_reads(conn: psycopg.Connection) -> int:
    conn.execute("SELECT pg_catalog.pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT idx_tup_read FROM pg_catalog.pg_stat_user_indexes "
        "WHERE schemaname = 'jobforge' AND indexrelname = 'jobs_leased'"
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def running(jobforge_db: Database) -> list[tuple[int, str]]:
    """RUNNING jobs claimed by worker `w`, claimed after ANALYZE saw every job queued."""
    with QueueClient.connect(jobforge_db.dsn, tenant=TENANT) as client:
        client.enqueue_many([NewJob(type="p.job", payload={"i": i}) for i in range(QUEUED)])
    with jobforge_db.connect() as owner:
        owner.autocommit = True
        owner.execute("ANALYZE jobforge.jobs")
        rows = owner.execute(
            "SELECT id, lease_token::text FROM jobforge.claim_v1('w', %s, NULL, 300)", (RUNNING,)
        ).fetchall()
    assert len(rows) == RUNNING
    return [(int(i), str(t)) for i, t in rows]


def test_a_finish_after_analyze_probes_each_job_by_key(
    jobforge_db: Database, running: list[tuple[int, str]]
) -> None:
    batch = running[:FINISHED]
    with jobforge_db.connect() as owner:
        owner.autocommit = True
        before = _leased_reads(owner)
        states = owner.execute(
            "SELECT state FROM jobforge.finish_v1('w', %s, %s::uuid[], %s)",
            ([i for i, _ in batch], [t for _, t in batch], ["succeeded"] * len(batch)),
        ).fetchall()
        owner.execute("SELECT pg_catalog.pg_stat_force_next_flush()")
        owner.execute("SELECT 1")  # the flush happens as this backend goes idle again
        after = _leased_reads(owner)
    assert [s for (s,) in states] == ["succeeded"] * FINISHED
    # the bug read the index once per outcome: ~FINISHED * RUNNING / 2 entries
    assert after - before < RUNNING, after - before


def test_a_heartbeat_after_analyze_reads_each_lease_once(
    jobforge_db: Database, running: list[tuple[int, str]]
) -> None:
    with jobforge_db.connect() as owner:
        owner.autocommit = True
        before = _leased_reads(owner)
        states = owner.execute(
            "SELECT state FROM jobforge.heartbeat_v1('w', %s, %s::uuid[], 300)",
            ([i for i, _ in running], [t for _, t in running]),
        ).fetchall()
        owner.execute("SELECT pg_catalog.pg_stat_force_next_flush()")
        owner.execute("SELECT 1")
        after = _leased_reads(owner)
    assert [s for (s,) in states] == ["ok"] * RUNNING
    assert after - before < RUNNING, after - before


def _reads_of(jobforge_db: Database, statement: str, params: tuple[object, ...]) -> int:
    with jobforge_db.connect() as owner:
        owner.autocommit = True
        before = _leased_reads(owner)
        owner.execute(statement, params).fetchall()
        owner.execute("SELECT pg_catalog.pg_stat_force_next_flush()")
        owner.execute("SELECT 1")
        return _leased_reads(owner) - before


def test_one_jobs_writes_after_analyze_read_no_index_of_running_jobs(
    jobforge_db: Database, running: list[tuple[int, str]]
) -> None:
    """progress, a token's use and a release: the worker's other fenced writes."""
    (job_id, token), (other_id, other_token) = running[0], running[1]
    reads = {
        "progress": _reads_of(
            jobforge_db, "SELECT jobforge.progress_v1('w', %s, %s::uuid, 50)", (job_id, token)
        ),
        "token": _reads_of(
            jobforge_db,
            "SELECT jobforge.token_consume_v1('w', %s, %s::uuid, 'jti-1', now() + interval '1 h')",
            (job_id, token),
        ),
        "release": _reads_of(
            jobforge_db,
            "SELECT * FROM jobforge.release_v1('w', %s, %s::uuid[])",
            ([i for i, _ in running[2:FINISHED]], [t for _, t in running[2:FINISHED]]),
        ),
        "run record": _reads_of(
            jobforge_db,
            "SELECT jobforge.record_run_v2('w', %s, %s::uuid, 'p.job', '1.0.0', 'succeeded', "
            "%s, NULL, %s, '{}'::jsonb, '{}', '{}', '{}')",
            (other_id, other_token, "sha256:" + "0" * 64, "sha256:" + "0" * 64),
        ),
    }
    assert all(n < RUNNING for n in reads.values()), reads


def test_a_claim_counts_a_capped_tenants_running_jobs_only(
    jobforge_db: Database, running: list[tuple[int, str]]
) -> None:
    """A tenant cap is counted on every claim: the count reads that tenant's running jobs
    (jobs_running_by_tenant, migrations/0033), not every running job of every tenant."""
    with jobforge_db.connect() as owner:
        owner.autocommit = True
        owner.execute(
            "INSERT INTO jobforge.queue_limits (scope, key, max_running, updated_at)"
            " VALUES ('tenant', 'globex', 10, now()), ('tenant', 'initech', 10, now())"
        )
        owner.execute("ANALYZE jobforge.jobs")
    reads = _reads_of(jobforge_db, "SELECT id FROM jobforge.claim_v1('w2', 5, NULL, 300)", ())
    # before 0033's index: jobs_leased read through, ~RUNNING entries for each of the two caps
    assert reads < RUNNING, reads
