-- [5/10] The checks of what a job's row is given once, made when it is given.
--
-- PostgreSQL evaluates every CHECK constraint of a table on every UPDATE of a row, whatever the
-- UPDATE changed, and compiles all of them again for every statement that writes the table.
-- Seven of the fifteen checks of jobforge.jobs are on columns written once, at the enqueue:
-- tenant_id, project, type, payload, payload_hash, idempotency_key and envelope. A claim and a
-- finish evaluated them again for every job (~3 us of a job's ~18 us update), and a one-job
-- enqueue compiled them for its one row (~37 us of its ~200 us in the database).
--
-- The same rules are now the columns' types, domains over text and jsonb: a domain's check runs
-- when a value is written to the column (an INSERT, or an UPDATE that sets that column), and
-- its compiled form is cached by the session. What a row may hold is unchanged; an UPDATE that
-- rewrites one of these columns is checked as before, by the domain. Measured on one throwaway
-- server: a one-process drain of no-op jobs ~5% faster, a one-job enqueue ~10%.
--
-- The upgrade does not rewrite the table: the columns change to the domains while they carry
-- no check (text to a domain over text is binary-coercible, so no row is rewritten), then each
-- domain gets its check, validated against the stored rows (one read of the table), and the
-- table's own checks of those columns are dropped. PostgreSQL rebuilds the partial indexes that
-- name a changed column (jobs_fair, jobs_settled, jobs_finished, jobs_finished_by_tenant,
-- jobs_idempotency, jobs_by_trace): writes to jobs wait while it does. Measured: 7 s for a
-- table of a million finished jobs (2 cores, data in memory). The policy and the event
-- log's view name these columns, so they are dropped and made again, unchanged. Clients see
-- the base types (PostgreSQL describes a domain's column by its base type).

CREATE DOMAIN jobforge.tenant_id AS text;
CREATE DOMAIN jobforge.project_name AS text;
CREATE DOMAIN jobforge.job_type AS text;
CREATE DOMAIN jobforge.payload AS jsonb;
CREATE DOMAIN jobforge.payload_hash AS text;
CREATE DOMAIN jobforge.idempotency_key AS text;
CREATE DOMAIN jobforge.envelope AS jsonb;

-- Nobody but the owner may name these types in a function or an operator of their own: a login
-- that may create in `public` could otherwise plant `public.=(jobforge.tenant_id, text)`, which
-- matches these columns more exactly than pg_catalog's text = text and would run inside any
-- session that puts `public` first (tests/integration/test_planted_functions.py).
REVOKE USAGE ON DOMAIN jobforge.tenant_id, jobforge.project_name, jobforge.job_type,
    jobforge.payload, jobforge.payload_hash, jobforge.idempotency_key, jobforge.envelope
    FROM PUBLIC;

DROP POLICY tenant_isolation ON jobforge.jobs;
DROP VIEW jobforge.job_event_log;

ALTER TABLE jobforge.jobs
    ALTER COLUMN tenant_id TYPE jobforge.tenant_id,
    ALTER COLUMN project TYPE jobforge.project_name,
    ALTER COLUMN type TYPE jobforge.job_type,
    ALTER COLUMN payload TYPE jobforge.payload,
    ALTER COLUMN payload_hash TYPE jobforge.payload_hash,
    ALTER COLUMN idempotency_key TYPE jobforge.idempotency_key,
    ALTER COLUMN envelope TYPE jobforge.envelope;

ALTER TABLE jobforge.jobs
    DROP CONSTRAINT jobs_tenant_id_check,
    DROP CONSTRAINT jobs_project_check,
    DROP CONSTRAINT jobs_type_check,
    DROP CONSTRAINT jobs_payload_check,
    DROP CONSTRAINT jobs_payload_hash_check,
    DROP CONSTRAINT jobs_idempotency_key_check,
    DROP CONSTRAINT jobs_envelope_check;

-- The same rules, under the same names (0002, 0021).
ALTER DOMAIN jobforge.tenant_id ADD CONSTRAINT jobs_tenant_id_check
    CHECK (VALUE ~ '^[A-Za-z0-9._:-]+$' AND length(VALUE) <= 128);
ALTER DOMAIN jobforge.project_name ADD CONSTRAINT jobs_project_check
    CHECK (VALUE ~ '^[A-Za-z0-9._-]+$' AND length(VALUE) <= 128);
ALTER DOMAIN jobforge.job_type ADD CONSTRAINT jobs_type_check
    CHECK (VALUE ~ '^[a-z0-9._-]+$' AND length(VALUE) <= 200);
ALTER DOMAIN jobforge.payload ADD CONSTRAINT jobs_payload_check
    CHECK (jsonb_typeof(VALUE) = 'object');
ALTER DOMAIN jobforge.payload_hash ADD CONSTRAINT jobs_payload_hash_check
    CHECK (VALUE ~ '^sha256:[0-9a-f]+$' AND length(VALUE) = 71);
ALTER DOMAIN jobforge.idempotency_key ADD CONSTRAINT jobs_idempotency_key_check
    CHECK (length(VALUE) >= 1 AND length(VALUE) <= 255);
ALTER DOMAIN jobforge.envelope ADD CONSTRAINT jobs_envelope_check
    CHECK (jsonb_typeof(VALUE) = 'object' AND octet_length(VALUE::text) <= 65536);

CREATE POLICY tenant_isolation ON jobforge.jobs
    USING ((tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope()))
           AND project = coalesce((SELECT jobforge.current_project()), project))
    WITH CHECK ((tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope()))
                AND project = coalesce((SELECT jobforge.current_project()), project));

-- 0031's event log, unchanged.
CREATE VIEW jobforge.job_event_log WITH (security_invoker = true) AS
SELECT e.id, e.job_id, e.tenant_id, e.project, e.kind, e.at, e.attempt, e.worker, e.data,
       e.login, e.actor, e.reason
FROM jobforge.job_events e
UNION ALL
SELECT 0::bigint, j.id, j.tenant_id, j.project, 'created'::text, j.created_at, NULL::integer,
       NULL::text, CASE WHEN j.parent_id IS NOT NULL THEN jsonb_build_object('parent_id', j.parent_id) END,
       NULL::text, NULL::text, NULL::text
FROM jobforge.jobs j
WHERE NOT EXISTS (SELECT 1 FROM jobforge.job_events c WHERE c.job_id = j.id AND c.kind = 'created')
UNION ALL
SELECT a.claim_event_id, a.job_id, a.tenant_id, a.project, 'claimed'::text, a.started_at,
       a.attempt, a.worker, NULL::jsonb, a.login, NULL::text, NULL::text
FROM jobforge.job_attempts a
WHERE a.claim_event_id IS NOT NULL
UNION ALL
SELECT a.finish_event_id, a.job_id, a.tenant_id, a.project,
       CASE a.outcome WHEN 'retry' THEN 'retry_scheduled' ELSE a.outcome END, a.finished_at,
       a.attempt, a.worker,
       coalesce(a.finish_data, CASE WHEN a.error IS NOT NULL THEN jsonb_build_object('error', a.error) END),
       a.login, NULL::text, NULL::text
FROM jobforge.job_attempts a
WHERE a.finish_event_id IS NOT NULL;

REVOKE ALL ON jobforge.job_event_log FROM PUBLIC;
GRANT SELECT ON jobforge.job_event_log TO jobforge_app, jobforge_worker;

-- 0016's stats_v1, the tenant and the type cast to the text it returns: PL/pgSQL's RETURN QUERY
-- refuses a domain where the function's result says text (no other function returns them so).
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
        WHERE d.status = 'succeeded' AND (v_tenant IS NULL OR d.tenant_id = v_tenant)
      AND d.project = coalesce(v_project, d.project)
        GROUP BY 1, 2
        ORDER BY 1, 2;
    END IF;
END $$;
