-- [5/10] A bulk cancel of queued and running jobs reads the two partial indexes, not the tenant's
-- whole history.
--
-- bulk_cancel_v1 (0016) found its jobs by `status = ANY (v_statuses)`. 0033 dropped the index
-- that took that condition (jobs_by_tenant_status), and PostgreSQL does not match an `= ANY` of
-- two states against two partial indexes: a cancel of `queued` and `running` read every job of
-- the tenant through jobs_by_tenant (a dry run of one tenant of 100,000 jobs in a table of
-- 1,000,000: 18.6 ms). The states it may cancel are those two, so the condition is written as
-- one arm each, and the planner ORs jobs_fair and jobs_running_by_tenant (2-3 ms, custom or
-- generic plan). Same rows, same order, same messages: only the condition's form changes.

CREATE OR REPLACE FUNCTION jobforge.bulk_cancel_v1(p_statuses text[] DEFAULT NULL::text[], p_types text[] DEFAULT NULL::text[], p_since timestamp with time zone DEFAULT NULL::timestamp with time zone, p_after_id bigint DEFAULT 0, p_limit integer DEFAULT 1000, p_dry_run boolean DEFAULT false, p_ids bigint[] DEFAULT NULL::bigint[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(matched bigint, changed bigint, skipped bigint, busy_ids bigint[], last_id bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant   text := jobforge.require_tenant();
    v_project  text := jobforge.require_project_scope();
    v_now      timestamptz := jobforge.clock(p_now);
    v_statuses jobforge.job_status[] :=
        jobforge.bulk_statuses('cancel', p_statuses, ARRAY['queued', 'running']);
    v_queued   boolean := 'queued' = ANY (v_statuses);
    v_running  boolean := 'running' = ANY (v_statuses);
BEGIN
    PERFORM jobforge.bulk_check('cancel', p_limit, p_since, v_now);
    IF coalesce(p_dry_run, false) THEN
        RETURN QUERY
        SELECT count(*), 0::bigint, 0::bigint, '{}'::bigint[], NULL::bigint
        FROM jobforge.jobs j
        WHERE j.tenant_id = v_tenant AND j.project = coalesce(v_project, j.project)
          AND ((j.status = 'queued' AND v_queued) OR (j.status = 'running' AND v_running))
          AND j.id > coalesce(p_after_id, 0) AND (p_ids IS NULL OR j.id = ANY (p_ids))
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (p_since IS NULL OR j.created_at >= p_since);
        RETURN;
    END IF;
    RETURN QUERY
    WITH candidates AS MATERIALIZED (
        SELECT j.id FROM jobforge.jobs j
        WHERE j.tenant_id = v_tenant AND j.project = coalesce(v_project, j.project)
          AND ((j.status = 'queued' AND v_queued) OR (j.status = 'running' AND v_running))
          AND j.id > coalesce(p_after_id, 0) AND (p_ids IS NULL OR j.id = ANY (p_ids))
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (p_since IS NULL OR j.created_at >= p_since)
        ORDER BY j.id
        LIMIT p_limit
    ),
    picked AS MATERIALIZED (
        SELECT j.id, j.tenant_id, j.project, j.status, j.attempts, j.lease_token, j.lease_expires_at
        FROM jobforge.jobs j
        WHERE j.id IN (SELECT c.id FROM candidates c)  -- the filter again, on the locked row
          AND j.tenant_id = v_tenant AND j.project = coalesce(v_project, j.project)
          AND j.status = ANY (v_statuses)
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (p_since IS NULL OR j.created_at >= p_since)
        FOR UPDATE OF j SKIP LOCKED
    ),
    -- as cancel_v1 (0011): the canceled handler counts toward the caps until its worker
    -- acknowledges the cancel or the lease it held ends
    closed AS (
        UPDATE jobforge.job_attempts a
        SET finished_at = v_now, outcome = 'canceled',
            stops_by = CASE WHEN p.lease_expires_at > v_now THEN p.lease_expires_at END
        FROM picked p WHERE p.status = 'running' AND a.lease_token = p.lease_token
    ),
    updated AS (
        UPDATE jobforge.jobs j
        SET status = 'canceled', lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL,
            finished_at = v_now, updated_at = v_now
        FROM picked p WHERE j.id = p.id
        RETURNING j.id
    ),
    logged AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, attempt, data)
        SELECT p.id, p.tenant_id, p.project, 'canceled', v_now, nullif(p.attempts, 0),
               jsonb_build_object('from', p.status, 'bulk', true)
        FROM picked p ORDER BY p.id
    )
    SELECT (SELECT count(*) FROM picked), (SELECT count(*) FROM updated), 0::bigint,
           coalesce((SELECT array_agg(c.id ORDER BY c.id) FROM candidates c
                     WHERE c.id NOT IN (SELECT p.id FROM picked p)), '{}'),
           CASE WHEN (SELECT count(*) FROM candidates) = p_limit
                THEN (SELECT max(c.id) FROM candidates c) END;
END $$;
