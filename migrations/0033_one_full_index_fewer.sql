-- [5/10] One full index fewer on jobs: an enqueue and a finish each write one index entry less.
--
-- A state change of a job is never a HOT update (its status is in the predicates of the partial
-- indexes), so each one adds an entry to every full index of the table, and each enqueue too.
-- There were three: the primary key, jobs_by_tenant (tenant_id, id) for a tenant's listing, and
-- jobs_by_tenant_status (tenant_id, status, type) INCLUDE (project), which 0024 added so that
-- stats_v1's per-state counts of one tenant read an index alone. What read it now reads a
-- partial index, which only the writes that enter its state pay for:
--
-- * a tenant's queued jobs: jobs_fair (tenant_id, ...) WHERE queued, as before; its settled
--   ones: jobs_settled (tenant_id, status, ...), as before;
-- * a tenant's running jobs, which claim_v1 counts for every tenant cap (queue_limits) on every
--   claim: jobs_running_by_tenant (tenant_id) WHERE running, new here. Without it the count read
--   every running job of every tenant through jobs_leased, a heap fetch each, per cap and claim.
--   A claim writes its entry in place of the one it wrote in jobs_by_tenant_status;
-- * a tenant's succeeded jobs: jobs_finished_by_tenant (tenant_id, finished_at), which already
--   listed the finished jobs for the dashboard's throughput, now carries the type as well, and
--   stats_v1's succeeded count says what the table's check (jobs_finished_iff_terminal) already
--   guarantees, `finished_at IS NOT NULL`, so the planner may read it: the count stays an
--   index-only scan of the tenant's finished jobs
-- (benchmarks/dashboard.py, 1,000,000 jobs: the counts of one tenant of 100,000 in 31-34 ms, 30
-- before).
--
-- So an enqueue and a finish each write one index entry fewer, a claim as many as before.
-- Measured on one throwaway server (4 alternating rounds, one process): a drain of no-op jobs
-- ~3% faster, a batch enqueue ~6%. The upgrade builds the new indexes beside the old ones, then
-- drops the two they replace; writes to jobs wait while they build (indexes of the finished and
-- the running jobs only: 0.8 s for a million jobs, 95% of them finished, on 2 cores, data in
-- memory).

CREATE INDEX jobs_finished_by_tenant_type ON jobforge.jobs (tenant_id, finished_at)
    INCLUDE (status, type, project) WHERE finished_at IS NOT NULL;
DROP INDEX jobforge.jobs_finished_by_tenant;
ALTER INDEX jobforge.jobs_finished_by_tenant_type RENAME TO jobs_finished_by_tenant;
CREATE INDEX jobs_running_by_tenant ON jobforge.jobs (tenant_id) WHERE status = 'running';
DROP INDEX jobforge.jobs_by_tenant_status;

-- 0032's stats_v1; the succeeded count names finished_at, so jobs_finished_by_tenant serves it,
-- and tests the project scope as `v_project IS NULL OR ...`: `project = coalesce(v_project,
-- project)` is estimated to keep 0.5% of the rows, and for a tenant of 100,000 jobs that guess
-- chose an external sort of the index's rows by type (49 ms) over hashing them (25-34 ms).
CREATE OR REPLACE FUNCTION jobforge.stats_v1(p_succeeded boolean DEFAULT true, p_expiring_s double precision DEFAULT 10, p_recent_s double precision DEFAULT 86400, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(tenant_id text, type text, state text, jobs bigint, earliest_run_at timestamp with time zone, expiring bigint, expired bigint, recent bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_now    timestamptz := jobforge.clock(p_now);
    v_tenant  text;
    v_project text := jobforge.require_project_scope();
    v_soon   timestamptz;
    v_since  timestamptz;
BEGIN
    IF p_expiring_s IS NULL OR NOT p_expiring_s BETWEEN 0 AND 86400
       OR p_recent_s IS NULL OR NOT p_recent_s BETWEEN 1 AND 31622400 THEN
        RAISE EXCEPTION 'stats: expiring must be 0-86400 s and recent 1 s to 366 days'
            USING ERRCODE = 'JF006';
    END IF;
    IF NOT jobforge.worker_scope() THEN
        v_tenant := jobforge.require_tenant();
    END IF;
    v_soon := v_now + make_interval(secs => p_expiring_s);
    v_since := v_now - make_interval(secs => p_recent_s);
    RETURN QUERY
    SELECT q.tenant_id::text, q.type::text,
           CASE WHEN q.run_at <= v_now THEN 'due'
                WHEN q.attempts > 0 THEN 'retry_scheduled' ELSE 'scheduled' END AS state,
           count(*), min(q.run_at), NULL::bigint, NULL::bigint, NULL::bigint
    FROM jobforge.jobs q
    WHERE q.status = 'queued' AND (v_tenant IS NULL OR q.tenant_id = v_tenant)
      AND q.project = coalesce(v_project, q.project)
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT r.tenant_id::text, r.type::text, 'running', count(*), NULL,
           count(*) FILTER (WHERE r.lease_expires_at <= v_soon),
           count(*) FILTER (WHERE r.lease_expires_at <= v_now), NULL
    FROM jobforge.jobs r
    WHERE r.status = 'running' AND (v_tenant IS NULL OR r.tenant_id = v_tenant)
      AND r.project = coalesce(v_project, r.project)
    GROUP BY 1, 2
    UNION ALL
    SELECT s.tenant_id::text, s.type::text, s.status::text, count(*), NULL, NULL, NULL,
           count(*) FILTER (WHERE s.finished_at >= v_since)
    FROM jobforge.jobs s
    WHERE s.status IN ('failed', 'dead', 'canceled') AND (v_tenant IS NULL OR s.tenant_id = v_tenant)
      AND s.project = coalesce(v_project, s.project)
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3;
    -- A statement of its own: planned alone, the one scan of the table runs in parallel (in a
    -- UNION ALL with the index scans above it ran in one worker, at twice the time).
    IF p_succeeded THEN
        RETURN QUERY
        SELECT d.tenant_id::text, d.type::text, 'succeeded', count(*), NULL::timestamptz, NULL::bigint,
               NULL::bigint, NULL::bigint
        FROM jobforge.jobs d
        WHERE d.status = 'succeeded' AND d.finished_at IS NOT NULL
          AND (v_tenant IS NULL OR d.tenant_id = v_tenant)
          AND (v_project IS NULL OR d.project = v_project)
        GROUP BY 1, 2
        ORDER BY 1, 2;
    END IF;
END $$;
