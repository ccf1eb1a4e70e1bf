-- Queue statistics and bulk actions ([6/10]).
--
-- Statistics. jobforge.stats_v1 counts jobs by tenant, type and state in one statement, the one
-- query behind `jobforge jobs stats`, `jobforge health` and the worker's Prometheus gauges. The
-- states are those an operator asks about, finer than the status column:
--   due              queued, run_at reached (earliest_run_at: the oldest due job's due time)
--   scheduled        queued for later, never tried
--   retry_scheduled  queued for later after a failed attempt (waiting out its backoff)
--   running          leased (expiring: leases that end within p_expiring_s, expired ones included;
--                    expired: leases already past their end, not yet reaped)
--   succeeded, failed, dead, canceled   finished (recent, but for succeeded: finished within
--                    p_recent_s, 24 h)
-- Cost. Queued jobs are read through jobs_fair and running ones through jobs_leased (both partial:
-- only live rows), failed, dead and canceled ones through jobs_settled below (an index-only scan:
-- these are the unhappy few). Succeeded jobs are most of a big table and have no index of their
-- own (one more index written by every finish would slow the hot path to serve a dashboard), so
-- counting them reads the table: p_succeeded => false leaves them out, and the health check and
-- the gauges do (a worker counts what it finished itself, by type).
-- Scope. A tenant's transaction (its app login, or an operator acting for it) counts that
-- tenant's jobs; the worker scope (an operator's login) counts every tenant's.
--
-- Bulk actions. jobforge.bulk_retry_v1 and bulk_cancel_v1 act on the tenant's jobs that match a
-- filter (statuses, types, since), one batch per call: at most p_limit jobs with ids above
-- p_after_id, in id order, each changed exactly as reschedule_v1 / cancel_v1 change one (same
-- checks, same event, with `bulk: true` in its data). The caller loops from the returned last id,
-- so each batch is its own short transaction and a job that fails again meanwhile is never
-- visited twice; jobs another transaction holds are handed back (busy_ids) to be tried again.
-- p_dry_run counts what a run would change (and, for a retry, skip) and changes nothing. A job whose attempts are used up is retried only with p_reset_attempts, as one is by
-- reschedule_v1; without it the job is skipped and counted.

CREATE INDEX jobs_settled ON jobforge.jobs (tenant_id, status, type, finished_at)
    WHERE status IN ('failed', 'dead', 'canceled');

-- The statuses a bulk action takes, checked in one place; one line naming the bad one.
CREATE FUNCTION jobforge.bulk_statuses(p_action text, p_statuses text[], p_allowed text[])
RETURNS jobforge.job_status[]
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_bad text;
BEGIN
    IF p_statuses IS NULL OR cardinality(p_statuses) = 0 THEN
        RETURN p_allowed[1:1]::jobforge.job_status[];
    END IF;
    SELECT s INTO v_bad FROM unnest(p_statuses) AS s WHERE s IS NULL OR s <> ALL (p_allowed) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'bulk %: status % cannot be %: choose from %', p_action,
            coalesce(quote_literal(left(v_bad, 40)), 'null'),
            CASE p_action WHEN 'retry' THEN 'retried' ELSE 'canceled' END,
            array_to_string(p_allowed, ', ') USING ERRCODE = 'JF006';
    END IF;
    RETURN p_statuses::jobforge.job_status[];
END $$;

CREATE FUNCTION jobforge.bulk_check(p_action text, p_limit integer, p_since timestamptz,
                                    p_now timestamptz)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'bulk %: the batch size must be 1-10000', p_action USING ERRCODE = 'JF006';
    END IF;
    PERFORM jobforge.check_run_at(p_since, p_now, 'bulk ' || p_action || ': since');
END $$;

CREATE FUNCTION jobforge.stats_v1(
    p_succeeded  boolean DEFAULT true,
    p_expiring_s double precision DEFAULT 10,
    p_recent_s   double precision DEFAULT 86400,
    p_now        timestamptz DEFAULT NULL
) RETURNS TABLE (tenant_id text, type text, state text, jobs bigint, earliest_run_at timestamptz,
                 expiring bigint, expired bigint, recent bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now    timestamptz := jobforge.clock(p_now);
    v_tenant text;
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
    SELECT q.tenant_id, q.type,
           CASE WHEN q.run_at <= v_now THEN 'due'
                WHEN q.attempts > 0 THEN 'retry_scheduled' ELSE 'scheduled' END AS state,
           count(*), min(q.run_at), NULL::bigint, NULL::bigint, NULL::bigint
    FROM jobforge.jobs q
    WHERE q.status = 'queued' AND (v_tenant IS NULL OR q.tenant_id = v_tenant)
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT r.tenant_id, r.type, 'running', count(*), NULL,
           count(*) FILTER (WHERE r.lease_expires_at <= v_soon),
           count(*) FILTER (WHERE r.lease_expires_at <= v_now), NULL
    FROM jobforge.jobs r
    WHERE r.status = 'running' AND (v_tenant IS NULL OR r.tenant_id = v_tenant)
    GROUP BY 1, 2
    UNION ALL
    SELECT s.tenant_id, s.type, s.status::text, count(*), NULL, NULL, NULL,
           count(*) FILTER (WHERE s.finished_at >= v_since)
    FROM jobforge.jobs s
    WHERE s.status IN ('failed', 'dead', 'canceled') AND (v_tenant IS NULL OR s.tenant_id = v_tenant)
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3;
    -- A statement of its own: planned alone, the one scan of the table runs in parallel (in a
    -- UNION ALL with the index scans above it ran in one worker, at twice the time).
    IF p_succeeded THEN
        RETURN QUERY
        SELECT d.tenant_id, d.type, 'succeeded', count(*), NULL::timestamptz, NULL::bigint,
               NULL::bigint, NULL::bigint
        FROM jobforge.jobs d
        WHERE d.status = 'succeeded' AND (v_tenant IS NULL OR d.tenant_id = v_tenant)
        GROUP BY 1, 2
        ORDER BY 1, 2;
    END IF;
END $$;

-- A batch: the first p_limit matching jobs above p_after_id (or among p_ids), locked
-- FOR UPDATE SKIP LOCKED. A job another transaction holds (a worker finishing or heartbeating it,
-- a prune) is not waited for: waiting while holding the batch's other locks could deadlock with a
-- statement that takes the same rows in another order. Its id comes back in busy_ids and the
-- caller tries it again (p_ids) once the cursor has passed; last_id moves on regardless.
CREATE FUNCTION jobforge.bulk_retry_v1(
    p_statuses       text[] DEFAULT NULL,
    p_types          text[] DEFAULT NULL,
    p_since          timestamptz DEFAULT NULL,
    p_reset_attempts boolean DEFAULT false,
    p_after_id       bigint DEFAULT 0,
    p_limit          integer DEFAULT 1000,
    p_dry_run        boolean DEFAULT false,
    p_ids            bigint[] DEFAULT NULL,
    p_now            timestamptz DEFAULT NULL
) RETURNS TABLE (matched bigint, changed bigint, skipped bigint, busy_ids bigint[], last_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant   text := jobforge.require_tenant();
    v_now      timestamptz := jobforge.clock(p_now);
    v_statuses jobforge.job_status[] :=
        jobforge.bulk_statuses('retry', p_statuses, ARRAY['dead', 'failed', 'canceled']);
    v_reset    boolean := coalesce(p_reset_attempts, false);
BEGIN
    PERFORM jobforge.bulk_check('retry', p_limit, p_since, v_now);
    IF coalesce(p_dry_run, false) THEN
        RETURN QUERY
        SELECT count(*), 0::bigint,
               count(*) FILTER (WHERE NOT v_reset AND j.attempts >= j.max_attempts),
               '{}'::bigint[], NULL::bigint
        FROM jobforge.jobs j
        WHERE j.tenant_id = v_tenant AND j.status = ANY (v_statuses)
          AND j.id > coalesce(p_after_id, 0) AND (p_ids IS NULL OR j.id = ANY (p_ids))
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (p_since IS NULL OR j.finished_at >= p_since);
        RETURN;
    END IF;
    RETURN QUERY
    WITH candidates AS MATERIALIZED (
        SELECT j.id FROM jobforge.jobs j
        WHERE j.tenant_id = v_tenant AND j.status = ANY (v_statuses)
          AND j.id > coalesce(p_after_id, 0) AND (p_ids IS NULL OR j.id = ANY (p_ids))
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (p_since IS NULL OR j.finished_at >= p_since)
        ORDER BY j.id
        LIMIT p_limit
    ),
    picked AS MATERIALIZED (
        SELECT j.id, j.tenant_id, j.status, j.attempts >= j.max_attempts AS exhausted
        FROM jobforge.jobs j
        WHERE j.id IN (SELECT c.id FROM candidates c)  -- the filter again, on the locked row
          AND j.tenant_id = v_tenant AND j.status = ANY (v_statuses)
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (p_since IS NULL OR j.finished_at >= p_since)
        FOR UPDATE OF j SKIP LOCKED
    ),
    updated AS (
        UPDATE jobforge.jobs j
        SET status = 'queued', finished_at = NULL, error = NULL, updated_at = v_now, run_at = v_now,
            attempts = CASE WHEN v_reset THEN 0 ELSE j.attempts END
        FROM picked p WHERE j.id = p.id AND (v_reset OR NOT p.exhausted)
        RETURNING j.id
    ),
    logged AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, data)
        SELECT p.id, p.tenant_id, 'rescheduled', v_now,
               jsonb_build_object('from', p.status, 'reset_attempts', v_reset, 'bulk', true)
        FROM picked p WHERE v_reset OR NOT p.exhausted
        ORDER BY p.id
    )
    SELECT (SELECT count(*) FROM picked), (SELECT count(*) FROM updated),
           (SELECT count(*) FROM picked p WHERE NOT v_reset AND p.exhausted),
           coalesce((SELECT array_agg(c.id ORDER BY c.id) FROM candidates c
                     WHERE c.id NOT IN (SELECT p.id FROM picked p)), '{}'),
           CASE WHEN (SELECT count(*) FROM candidates) = p_limit
                THEN (SELECT max(c.id) FROM candidates c) END;
END $$;

CREATE FUNCTION jobforge.bulk_cancel_v1(
    p_statuses text[] DEFAULT NULL,
    p_types    text[] DEFAULT NULL,
    p_since    timestamptz DEFAULT NULL,
    p_after_id bigint DEFAULT 0,
    p_limit    integer DEFAULT 1000,
    p_dry_run  boolean DEFAULT false,
    p_ids      bigint[] DEFAULT NULL,
    p_now      timestamptz DEFAULT NULL
) RETURNS TABLE (matched bigint, changed bigint, skipped bigint, busy_ids bigint[], last_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant   text := jobforge.require_tenant();
    v_now      timestamptz := jobforge.clock(p_now);
    v_statuses jobforge.job_status[] :=
        jobforge.bulk_statuses('cancel', p_statuses, ARRAY['queued', 'running']);
BEGIN
    PERFORM jobforge.bulk_check('cancel', p_limit, p_since, v_now);
    IF coalesce(p_dry_run, false) THEN
        RETURN QUERY
        SELECT count(*), 0::bigint, 0::bigint, '{}'::bigint[], NULL::bigint
        FROM jobforge.jobs j
        WHERE j.tenant_id = v_tenant AND j.status = ANY (v_statuses)
          AND j.id > coalesce(p_after_id, 0) AND (p_ids IS NULL OR j.id = ANY (p_ids))
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (p_since IS NULL OR j.created_at >= p_since);
        RETURN;
    END IF;
    RETURN QUERY
    WITH candidates AS MATERIALIZED (
        SELECT j.id FROM jobforge.jobs j
        WHERE j.tenant_id = v_tenant AND j.status = ANY (v_statuses)
          AND j.id > coalesce(p_after_id, 0) AND (p_ids IS NULL OR j.id = ANY (p_ids))
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (p_since IS NULL OR j.created_at >= p_since)
        ORDER BY j.id
        LIMIT p_limit
    ),
    picked AS MATERIALIZED (
        SELECT j.id, j.tenant_id, j.status, j.attempts, j.lease_token, j.lease_expires_at
        FROM jobforge.jobs j
        WHERE j.id IN (SELECT c.id FROM candidates c)  -- the filter again, on the locked row
          AND j.tenant_id = v_tenant AND j.status = ANY (v_statuses)
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
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, data)
        SELECT p.id, p.tenant_id, 'canceled', v_now, nullif(p.attempts, 0),
               jsonb_build_object('from', p.status, 'bulk', true)
        FROM picked p ORDER BY p.id
    )
    SELECT (SELECT count(*) FROM picked), (SELECT count(*) FROM updated), 0::bigint,
           coalesce((SELECT array_agg(c.id ORDER BY c.id) FROM candidates c
                     WHERE c.id NOT IN (SELECT p.id FROM picked p)), '{}'),
           CASE WHEN (SELECT count(*) FROM candidates) = p_limit
                THEN (SELECT max(c.id) FROM candidates c) END;
END $$;

REVOKE ALL ON FUNCTION jobforge.bulk_statuses(text, text[], text[]),
    jobforge.bulk_check(text, integer, timestamptz, timestamptz),
    jobforge.stats_v1(boolean, double precision, double precision, timestamptz),
    jobforge.bulk_retry_v1(text[], text[], timestamptz, boolean, bigint, integer, boolean, bigint[],
                           timestamptz),
    jobforge.bulk_cancel_v1(text[], text[], timestamptz, bigint, integer, boolean, bigint[],
                            timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    jobforge.stats_v1(boolean, double precision, double precision, timestamptz)
    TO jobforge_app, jobforge_worker;
GRANT EXECUTE ON FUNCTION
    jobforge.bulk_retry_v1(text[], text[], timestamptz, boolean, bigint, integer, boolean, bigint[],
                           timestamptz),
    jobforge.bulk_cancel_v1(text[], text[], timestamptz, bigint, integer, boolean, bigint[],
                            timestamptz)
    TO jobforge_app;
