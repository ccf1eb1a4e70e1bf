-- jobforge's database schema as every migration up to and including
-- migrations/0034_bulk_cancel_arms.sql leaves it: `pg_dump --schema-only --no-owner`
-- of the jobforge schema of a freshly migrated database, without session settings or
-- version lines. Rows the migrations insert (job_transitions, settings) are data, not
-- shown here.
--
-- Generated, do not edit: databases are built by the migrations (`jobforge migrate`),
-- never from this file, which is for reading the live definitions in one place.
-- Refresh it with `python -m jobforge.provision.schema_dump --write`.

--
-- Roles: server-wide, so a database's dump leaves them out. These are the ones
-- the schema grants to; the migrations create them when missing.
--

CREATE ROLE jobforge_app NOLOGIN;
CREATE ROLE jobforge_worker NOLOGIN;


--
-- Name: jobforge; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA jobforge;


--
-- Name: SCHEMA jobforge; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA jobforge IS 'jobforge: Postgres-native job queue (managed by jobforge migrate)';


--
-- Name: claim_pick; Type: TYPE; Schema: jobforge; Owner: -
--

CREATE TYPE jobforge.claim_pick AS (
	id bigint,
	tenant_id text,
	type text,
	round integer,
	priority integer,
	turn integer,
	run_at timestamp with time zone
);


--
-- Name: envelope; Type: DOMAIN; Schema: jobforge; Owner: -
--

CREATE DOMAIN jobforge.envelope AS jsonb
	CONSTRAINT jobs_envelope_check CHECK (((jsonb_typeof(VALUE) = 'object'::text) AND (octet_length((VALUE)::text) <= 65536)));


--
-- Name: idempotency_key; Type: DOMAIN; Schema: jobforge; Owner: -
--

CREATE DOMAIN jobforge.idempotency_key AS text
	CONSTRAINT jobs_idempotency_key_check CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 255)));


--
-- Name: job_status; Type: TYPE; Schema: jobforge; Owner: -
--

CREATE TYPE jobforge.job_status AS ENUM (
    'queued',
    'running',
    'succeeded',
    'failed',
    'dead',
    'canceled'
);


--
-- Name: job_type; Type: DOMAIN; Schema: jobforge; Owner: -
--

CREATE DOMAIN jobforge.job_type AS text
	CONSTRAINT jobs_type_check CHECK (((VALUE ~ '^[a-z0-9._-]+$'::text) AND (length(VALUE) <= 200)));


--
-- Name: payload; Type: DOMAIN; Schema: jobforge; Owner: -
--

CREATE DOMAIN jobforge.payload AS jsonb
	CONSTRAINT jobs_payload_check CHECK ((jsonb_typeof(VALUE) = 'object'::text));


--
-- Name: payload_hash; Type: DOMAIN; Schema: jobforge; Owner: -
--

CREATE DOMAIN jobforge.payload_hash AS text
	CONSTRAINT jobs_payload_hash_check CHECK (((VALUE ~ '^sha256:[0-9a-f]+$'::text) AND (length(VALUE) = 71)));


--
-- Name: project_name; Type: DOMAIN; Schema: jobforge; Owner: -
--

CREATE DOMAIN jobforge.project_name AS text
	CONSTRAINT jobs_project_check CHECK (((VALUE ~ '^[A-Za-z0-9._-]+$'::text) AND (length(VALUE) <= 128)));


--
-- Name: tenant_id; Type: DOMAIN; Schema: jobforge; Owner: -
--

CREATE DOMAIN jobforge.tenant_id AS text
	CONSTRAINT jobs_tenant_id_check CHECK (((VALUE ~ '^[A-Za-z0-9._:-]+$'::text) AND (length(VALUE) <= 128)));


--
-- Name: acknowledge_cancel_v1(text, bigint, uuid, jsonb, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.acknowledge_cancel_v1(p_worker text, p_job_id bigint, p_token uuid, p_data jsonb, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_now     timestamptz := jobforge.clock(p_now);
    v_attempt jobforge.job_attempts;
    v_data    jsonb := p_data;
BEGIN
    PERFORM jobforge.require_worker();
    IF v_data IS NOT NULL AND (octet_length(v_data::text) > 16384 OR jobforge.json_problem(v_data) IS NOT NULL) THEN
        v_data := jsonb_build_object('compensation', left(v_data ->> 'compensation', 100), 'truncated', true);
    END IF;
    SELECT a.* INTO v_attempt FROM jobforge.job_attempts a
    JOIN jobforge.jobs j ON j.id = a.job_id AND j.status = 'canceled'
    WHERE a.lease_token = jobforge.lease_id(p_token) AND a.job_id = p_job_id AND a.worker = p_worker
      AND a.outcome = 'canceled'
    FOR UPDATE OF a;
    IF NOT FOUND OR EXISTS (
        SELECT 1 FROM jobforge.job_events e
        WHERE e.job_id = p_job_id AND e.kind = 'cancel_acknowledged' AND e.attempt = v_attempt.attempt
    ) THEN
        RETURN false;
    END IF;
    UPDATE jobforge.job_attempts a SET stops_by = NULL WHERE a.lease_token = v_attempt.lease_token;
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker, data)
    VALUES (p_job_id, v_attempt.tenant_id, 'cancel_acknowledged', v_now, v_attempt.attempt,
            p_worker, v_data);
    RETURN true;
END $$;


--
-- Name: artifact_begin_v1(text, bigint, uuid, text, text, bigint, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.artifact_begin_v1(p_worker text, p_job_id bigint, p_token uuid, p_tenant text, p_sha256 text, p_size bigint, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := jobforge.clock(p_now);
    v_tenant   text;
    v_complete boolean;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_sha256 IS NULL OR p_sha256 !~ '^sha256:[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'artifact: % is not a sha256 (sha256:<64 hex>)',
            coalesce(quote_literal(left(p_sha256, 80)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_size IS NULL OR p_size NOT BETWEEN 0 AND 1099511627776 THEN
        RAISE EXCEPTION 'artifact: size % is out of range 0-1099511627776', p_size
            USING ERRCODE = 'JF006';
    END IF;
    v_tenant := jobforge.artifact_fence(p_worker, p_job_id, p_token);
    IF v_tenant IS NULL THEN
        RETURN 'lost';
    END IF;
    IF p_tenant IS DISTINCT FROM v_tenant THEN
        RAISE EXCEPTION 'artifact: job % belongs to another tenant than %', p_job_id,
            coalesce(quote_literal(left(p_tenant, 130)), 'null') USING ERRCODE = 'JF006';
    END IF;
    INSERT INTO jobforge.artifact_blobs AS b (tenant_id, sha256, size, chunks, created_at,
                                              touched_at)
    VALUES (v_tenant, p_sha256, p_size, (p_size + 1048575) / 1048576, v_now, v_now)
    ON CONFLICT (tenant_id, sha256) DO UPDATE SET touched_at = EXCLUDED.touched_at
    RETURNING b.complete INTO v_complete;
    RETURN CASE WHEN v_complete THEN 'stored' ELSE 'send' END;
END $_$;


--
-- Name: artifact_chunk_v1(text, bigint, uuid, text, integer, bytea); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.artifact_chunk_v1(p_worker text, p_job_id bigint, p_token uuid, p_sha256 text, p_seq integer, p_data bytea) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant text;
    v_blob   jobforge.artifact_blobs;
    v_want   bigint;
BEGIN
    PERFORM jobforge.require_worker();
    v_tenant := jobforge.artifact_fence(p_worker, p_job_id, p_token);
    IF v_tenant IS NULL THEN
        RETURN false;
    END IF;
    SELECT * INTO v_blob FROM jobforge.artifact_blobs b
    WHERE b.tenant_id = v_tenant AND b.sha256 = p_sha256;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'artifact: % was not begun (artifact_begin_v1 first)',
            coalesce(quote_literal(left(p_sha256, 80)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF v_blob.complete THEN
        RETURN true;
    END IF;
    IF p_seq IS NULL OR p_seq < 0 OR p_seq >= v_blob.chunks THEN
        RAISE EXCEPTION 'artifact: chunk % is out of range 0-% for % bytes', p_seq,
            v_blob.chunks - 1, v_blob.size USING ERRCODE = 'JF006';
    END IF;
    v_want := least(1048576, v_blob.size - p_seq::bigint * 1048576);
    IF p_data IS NULL OR octet_length(p_data) <> v_want THEN
        RAISE EXCEPTION 'artifact: chunk % is % bytes, not %', p_seq, octet_length(p_data), v_want
            USING ERRCODE = 'JF006';
    END IF;
    INSERT INTO jobforge.artifact_chunks (tenant_id, sha256, seq, data)
    VALUES (v_tenant, p_sha256, p_seq, p_data)
    ON CONFLICT (tenant_id, sha256, seq) DO NOTHING;
    RETURN true;
END $$;


--
-- Name: artifact_fence(text, bigint, uuid); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.artifact_fence(p_worker text, p_job_id bigint, p_token uuid) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT a.tenant_id FROM jobforge.job_attempts a
    WHERE a.lease_token OPERATOR(pg_catalog.=) jobforge.lease_id(p_token)
      AND a.job_id OPERATOR(pg_catalog.=) p_job_id AND a.worker OPERATOR(pg_catalog.=) p_worker
      AND NOT EXISTS (SELECT 1 FROM jobforge.job_runs r
                      WHERE r.lease_token OPERATOR(pg_catalog.=) jobforge.lease_id(p_token))
$$;


--
-- Name: artifact_finish_v1(text, bigint, uuid, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.artifact_finish_v1(p_worker text, p_job_id bigint, p_token uuid, p_sha256 text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant text;
    v_blob   jobforge.artifact_blobs;
    v_count  bigint;
    v_bytes  bigint;
BEGIN
    PERFORM jobforge.require_worker();
    v_tenant := jobforge.artifact_fence(p_worker, p_job_id, p_token);
    IF v_tenant IS NULL THEN
        RETURN false;
    END IF;
    SELECT * INTO v_blob FROM jobforge.artifact_blobs b
    WHERE b.tenant_id = v_tenant AND b.sha256 = p_sha256 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'artifact: % was not begun (artifact_begin_v1 first)',
            coalesce(quote_literal(left(p_sha256, 80)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF v_blob.complete THEN
        RETURN true;
    END IF;
    SELECT count(*), coalesce(sum(octet_length(c.data)), 0) INTO v_count, v_bytes
    FROM jobforge.artifact_chunks c WHERE c.tenant_id = v_tenant AND c.sha256 = p_sha256;
    IF v_count <> v_blob.chunks OR v_bytes <> v_blob.size THEN
        RAISE EXCEPTION 'artifact: % has % of % chunks (% of % bytes)', p_sha256, v_count,
            v_blob.chunks, v_bytes, v_blob.size USING ERRCODE = 'JF006';
    END IF;
    UPDATE jobforge.artifact_blobs b SET complete = true
    WHERE b.tenant_id = v_tenant AND b.sha256 = p_sha256;
    RETURN true;
END $$;


--
-- Name: artifact_put_v1(text, bigint, uuid, text, text, bytea, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.artifact_put_v1(p_worker text, p_job_id bigint, p_token uuid, p_tenant text, p_sha256 text, p_data bytea, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_state text;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_data IS NULL OR octet_length(p_data) > 1048576 THEN
        RAISE EXCEPTION 'artifact: artifact_put_v1 takes 0 to 1048576 bytes, not %; send larger '
            'blobs in chunks (artifact_begin_v1)', octet_length(p_data) USING ERRCODE = 'JF006';
    END IF;
    IF p_sha256 IS DISTINCT FROM 'sha256:' || encode(sha256(p_data), 'hex') THEN
        RAISE EXCEPTION 'artifact: the bytes hash to sha256:%, not %', encode(sha256(p_data), 'hex'),
            coalesce(quote_literal(left(p_sha256, 80)), 'null') USING ERRCODE = 'JF006';
    END IF;
    v_state := jobforge.artifact_begin_v1(p_worker, p_job_id, p_token, p_tenant, p_sha256,
                                          octet_length(p_data), p_now);
    IF v_state <> 'send' THEN
        RETURN v_state;
    END IF;
    IF octet_length(p_data) > 0 THEN
        PERFORM jobforge.artifact_chunk_v1(p_worker, p_job_id, p_token, p_sha256, 0, p_data);
    END IF;
    PERFORM jobforge.artifact_finish_v1(p_worker, p_job_id, p_token, p_sha256);
    RETURN 'stored';
END $$;


--
-- Name: backoff(bigint, integer, double precision, double precision); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.backoff(p_job_id bigint, p_attempt integer, p_base_s double precision, p_cap_s double precision) RETURNS interval
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT make_interval(secs => least(p_cap_s, p_base_s * power(2, greatest(p_attempt - 1, 0)))
                                 * (0.5 + 0.5 * jobforge.jitter(p_job_id, p_attempt)))
$$;


--
-- Name: bulk_cancel_v1(text[], text[], timestamp with time zone, bigint, integer, boolean, bigint[], timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.bulk_cancel_v1(p_statuses text[] DEFAULT NULL::text[], p_types text[] DEFAULT NULL::text[], p_since timestamp with time zone DEFAULT NULL::timestamp with time zone, p_after_id bigint DEFAULT 0, p_limit integer DEFAULT 1000, p_dry_run boolean DEFAULT false, p_ids bigint[] DEFAULT NULL::bigint[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(matched bigint, changed bigint, skipped bigint, busy_ids bigint[], last_id bigint)
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


--
-- Name: bulk_check(text, integer, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.bulk_check(p_action text, p_limit integer, p_since timestamp with time zone, p_now timestamp with time zone) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'bulk %: the batch size must be 1-10000', p_action USING ERRCODE = 'JF006';
    END IF;
    PERFORM jobforge.check_run_at(p_since, p_now, 'bulk ' || p_action || ': since');
END $$;


--
-- Name: bulk_retry_v1(text[], text[], timestamp with time zone, boolean, bigint, integer, boolean, bigint[], timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.bulk_retry_v1(p_statuses text[] DEFAULT NULL::text[], p_types text[] DEFAULT NULL::text[], p_since timestamp with time zone DEFAULT NULL::timestamp with time zone, p_reset_attempts boolean DEFAULT false, p_after_id bigint DEFAULT 0, p_limit integer DEFAULT 1000, p_dry_run boolean DEFAULT false, p_ids bigint[] DEFAULT NULL::bigint[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(matched bigint, changed bigint, skipped bigint, busy_ids bigint[], last_id bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant   text := jobforge.require_tenant();
    v_project  text := jobforge.require_project_scope();
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
        WHERE j.tenant_id = v_tenant AND j.project = coalesce(v_project, j.project)
          AND j.status = ANY (v_statuses)
          AND j.id > coalesce(p_after_id, 0) AND (p_ids IS NULL OR j.id = ANY (p_ids))
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (p_since IS NULL OR j.finished_at >= p_since);
        RETURN;
    END IF;
    RETURN QUERY
    WITH candidates AS MATERIALIZED (
        SELECT j.id FROM jobforge.jobs j
        WHERE j.tenant_id = v_tenant AND j.project = coalesce(v_project, j.project)
          AND j.status = ANY (v_statuses)
          AND j.id > coalesce(p_after_id, 0) AND (p_ids IS NULL OR j.id = ANY (p_ids))
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (p_since IS NULL OR j.finished_at >= p_since)
        ORDER BY j.id
        LIMIT p_limit
    ),
    picked AS MATERIALIZED (
        SELECT j.id, j.tenant_id, j.project, j.status, j.attempts >= j.max_attempts AS exhausted
        FROM jobforge.jobs j
        WHERE j.id IN (SELECT c.id FROM candidates c)  -- the filter again, on the locked row
          AND j.tenant_id = v_tenant AND j.project = coalesce(v_project, j.project)
          AND j.status = ANY (v_statuses)
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
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, data)
        SELECT p.id, p.tenant_id, p.project, 'rescheduled', v_now,
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


--
-- Name: bulk_statuses(text, text[], text[]); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.bulk_statuses(p_action text, p_statuses text[], p_allowed text[]) RETURNS jobforge.job_status[]
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


--
-- Name: cancel_v1(bigint, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.cancel_v1(p_job_id bigint, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS jobforge.job_status
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_project text := jobforge.require_project_scope();
    v_now    timestamptz := jobforge.clock(p_now);
    v_job    jobforge.jobs;
BEGIN
    SELECT * INTO v_job FROM jobforge.jobs WHERE id = p_job_id AND tenant_id = v_tenant
      AND project = coalesce(v_project, project) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % not found', p_job_id USING ERRCODE = 'JF004';
    END IF;
    IF v_job.status = 'canceled' THEN
        RETURN v_job.status;
    END IF;
    IF v_job.status NOT IN ('queued', 'running') THEN
        RAISE EXCEPTION 'job % %: only queued or running jobs can be canceled',
            p_job_id, jobforge.state_phrase(v_job.status, true) USING ERRCODE = 'JF002';
    END IF;
    IF v_job.status = 'running' THEN
        UPDATE jobforge.job_attempts
        SET finished_at = v_now, outcome = 'canceled',
            stops_by = CASE WHEN v_job.lease_expires_at > v_now THEN v_job.lease_expires_at END
        WHERE lease_token = v_job.lease_token;
    END IF;
    UPDATE jobforge.jobs
    SET status = 'canceled', lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL,
        finished_at = v_now, updated_at = v_now
    WHERE id = p_job_id;
    INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, attempt)
    VALUES (p_job_id, v_tenant, v_job.project, 'canceled', v_now, nullif(v_job.attempts, 0));
    RETURN 'canceled';
END $$;


--
-- Name: catalogue_enable_v1(text, boolean); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.catalogue_enable_v1(p_runner_id text, p_enabled boolean) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_was boolean;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_enabled IS NULL THEN
        RAISE EXCEPTION 'catalogue: enabled must be true or false' USING ERRCODE = 'JF006';
    END IF;
    SELECT c.enabled INTO v_was FROM jobforge.runner_catalogue c WHERE c.runner_id = p_runner_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'runner % is not in the runner catalogue (jobforge runners sync adds it)',
            coalesce(quote_literal(left(p_runner_id, 240)), 'null') USING ERRCODE = 'JF004';
    END IF;
    IF v_was = p_enabled THEN
        RETURN false;
    END IF;
    UPDATE jobforge.runner_catalogue c
    SET enabled = p_enabled, changed_at = now(), changed_by = session_user,
        changed_actor = nullif(current_setting('jobforge.actor', true), '')
    WHERE c.runner_id = p_runner_id;
    RETURN true;
END $$;


--
-- Name: catalogue_sync_v1(text, text, jsonb, jsonb, text, boolean); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.catalogue_sync_v1(p_runner_id text, p_version text, p_input_schema jsonb, p_output_schema jsonb, p_contract_sha256 text, p_force boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_old   jobforge.runner_catalogue;
    v_actor text := nullif(current_setting('jobforge.actor', true), '');
BEGIN
    PERFORM jobforge.require_worker();
    IF p_runner_id IS NULL OR p_runner_id !~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)*$' OR length(p_runner_id) > 200 THEN
        RAISE EXCEPTION 'runner id % is invalid: use dotted names of [a-z0-9_-], at most 200 characters',
            coalesce(quote_literal(left(p_runner_id, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_version IS NULL OR jobforge.version_core(p_version) IS NULL OR length(p_version) > 100 THEN
        RAISE EXCEPTION 'runner %: version % is not a semantic version (1.2.3)', p_runner_id,
            coalesce(quote_literal(left(p_version, 120)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF jsonb_typeof(p_input_schema) IS DISTINCT FROM 'object'
       OR jsonb_typeof(p_output_schema) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'runner %: the input and output schemas must be JSON objects', p_runner_id
            USING ERRCODE = 'JF006';
    END IF;
    SELECT * INTO v_old FROM jobforge.runner_catalogue c WHERE c.runner_id = p_runner_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO jobforge.runner_catalogue (runner_id, version, input_schema, output_schema,
            contract_sha256, synced_at, synced_by, synced_actor)
        VALUES (p_runner_id, p_version, p_input_schema, p_output_schema, p_contract_sha256, now(),
                session_user, v_actor);
        RETURN 'added';
    END IF;
    IF v_old.version = p_version AND v_old.contract_sha256 = p_contract_sha256 THEN
        RETURN 'unchanged';
    END IF;
    IF NOT coalesce(p_force, false) THEN
        IF jobforge.version_core(p_version) < jobforge.version_core(v_old.version) THEN
            RAISE EXCEPTION 'runner %: version % is older than the synced %: a downgrade needs --force',
                p_runner_id, p_version, v_old.version USING ERRCODE = 'JF011';
        END IF;
        IF v_old.version = p_version THEN
            RAISE EXCEPTION 'runner %: the contract changed but the version is still %: bump the version, or sync with --force',
                p_runner_id, p_version USING ERRCODE = 'JF011';
        END IF;
    END IF;
    UPDATE jobforge.runner_catalogue c
    SET version = p_version, input_schema = p_input_schema, output_schema = p_output_schema,
        contract_sha256 = p_contract_sha256, synced_at = now(), synced_by = session_user,
        synced_actor = v_actor
    WHERE c.runner_id = p_runner_id;
    RETURN 'changed';
END $_$;


--
-- Name: catalogue_sync_v2(text, text, jsonb, jsonb, text, boolean, integer); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.catalogue_sync_v2(p_runner_id text, p_version text, p_input_schema jsonb, p_output_schema jsonb, p_contract_sha256 text, p_force boolean, p_max_attempts integer) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_action text;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_max_attempts IS NOT NULL AND p_max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'runner %: max_attempts % is out of range 1-1000', p_runner_id,
            p_max_attempts USING ERRCODE = 'JF006';
    END IF;
    v_action := jobforge.catalogue_sync_v1(p_runner_id, p_version, p_input_schema,
                                           p_output_schema, p_contract_sha256, p_force);
    UPDATE jobforge.runner_catalogue c SET max_attempts = p_max_attempts
    WHERE c.runner_id = p_runner_id AND c.max_attempts IS DISTINCT FROM p_max_attempts;
    RETURN v_action;
END $$;


--
-- Name: check_run_at(timestamp with time zone, timestamp with time zone, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.check_run_at(p_run_at timestamp with time zone, p_now timestamp with time zone, p_what text) RETURNS timestamp with time zone
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF p_run_at IS NOT NULL AND (NOT isfinite(p_run_at)
            OR p_run_at < p_now - interval '100 years' OR p_run_at > p_now + interval '100 years') THEN
        RAISE EXCEPTION '%: run_at % is out of range: it must be within 100 years of now', p_what, p_run_at
            USING ERRCODE = 'JF006';
    END IF;
    RETURN p_run_at;
END $$;


--
-- Name: child_project(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.child_project() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    SELECT j.project INTO NEW.project FROM jobforge.jobs j WHERE j.id = NEW.job_id;
    RETURN NEW;
END $$;


--
-- Name: jobs; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.jobs (
    id bigint NOT NULL,
    tenant_id jobforge.tenant_id NOT NULL,
    project jobforge.project_name DEFAULT 'default'::text NOT NULL,
    type jobforge.job_type NOT NULL,
    payload jobforge.payload NOT NULL,
    payload_hash jobforge.payload_hash NOT NULL,
    status jobforge.job_status DEFAULT 'queued'::jobforge.job_status NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    run_at timestamp with time zone NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer DEFAULT 3 NOT NULL,
    lease_token uuid,
    lease_holder text,
    lease_expires_at timestamp with time zone,
    heartbeat_at timestamp with time zone,
    idempotency_key jobforge.idempotency_key,
    error jsonb,
    trace_id text,
    progress_pct real,
    progress_message text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    parent_id bigint,
    envelope jobforge.envelope,
    CONSTRAINT jobs_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT jobs_attempts_within_max CHECK ((attempts <= max_attempts)),
    CONSTRAINT jobs_finished_iff_terminal CHECK (((status = ANY (ARRAY['succeeded'::jobforge.job_status, 'failed'::jobforge.job_status, 'dead'::jobforge.job_status, 'canceled'::jobforge.job_status])) = (finished_at IS NOT NULL))),
    CONSTRAINT jobs_lease_iff_running CHECK (((status = 'running'::jobforge.job_status) = ((lease_token IS NOT NULL) AND (lease_holder IS NOT NULL) AND (lease_expires_at IS NOT NULL)))),
    CONSTRAINT jobs_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 1000))),
    CONSTRAINT jobs_priority_check CHECK (((priority >= 0) AND (priority <= 32767))),
    CONSTRAINT jobs_progress_pct_check CHECK (((progress_pct >= (0)::double precision) AND (progress_pct <= (100)::double precision)))
);

ALTER TABLE ONLY jobforge.jobs FORCE ROW LEVEL SECURITY;


--
-- Name: claim_tenant_v1(text, text, integer, text[], double precision, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.claim_tenant_v1(p_tenant text, p_worker text, p_limit integer, p_types text[] DEFAULT NULL::text[], p_lease_seconds double precision DEFAULT 30, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF jobforge.jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := jobforge.clock(p_now);
    v_limited  text;
    v_bound    boolean;
    v_tenants  text[];
    v_projects text[];
BEGIN
    PERFORM jobforge.require_worker();
    -- A login bound to tenants (and projects) in jobforge.tenant_logins stays bound here: a
    -- worker member bound to one tenant claims no other tenant's jobs by naming it.
    SELECT true, l.tenants, l.projects INTO v_bound, v_tenants, v_projects
    FROM jobforge.tenant_logins l WHERE l.login = session_user;
    IF v_bound AND NOT coalesce(p_tenant = ANY (v_tenants), false) THEN
        RAISE EXCEPTION 'login % may not act for tenant % (jobforge.tenant_logins)',
            session_user, quote_literal(left(p_tenant, 130)) USING ERRCODE = 'JF003';
    END IF;
    IF p_tenant IS NULL OR p_tenant !~ '^[A-Za-z0-9._:-]+$' OR length(p_tenant) > 128 THEN
        RAISE EXCEPTION 'claim: the tenant must be 1-128 characters of A-Z a-z 0-9 . _ : -'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 OR p_lease_seconds IS NULL
       OR NOT p_lease_seconds > 0 OR p_lease_seconds > 86400 THEN
        RAISE EXCEPTION 'claim: limit must be 1-1000 and the lease 0-86400 s' USING ERRCODE = 'JF006';
    END IF;
    IF p_worker IS NULL OR length(p_worker) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'claim: the worker name must be 1-200 characters' USING ERRCODE = 'JF006';
    END IF;

    SELECT l.scope || ' ' || quote_literal(l.key) INTO v_limited
    FROM jobforge.queue_limits l
    WHERE (l.scope = 'tenant' AND l.key = p_tenant)
       OR (l.scope = 'type' AND (p_types IS NULL OR l.key = ANY (p_types))
           AND EXISTS (SELECT 1 FROM jobforge.jobs j
                       WHERE j.tenant_id = p_tenant AND j.type = l.key AND j.status = 'queued'))
    ORDER BY l.scope, l.key
    LIMIT 1;
    IF v_limited IS NOT NULL THEN
        RAISE EXCEPTION 'claim: a queue limit applies to %: jobs under a limit are claimed by workers, not agents (or name other types)',
            v_limited USING ERRCODE = 'JF017';
    END IF;

    RETURN QUERY
    WITH picked AS (
        SELECT j.id, gen_random_uuid() AS secret
        FROM jobforge.jobs j
        WHERE j.tenant_id = p_tenant AND j.status = 'queued' AND j.run_at <= v_now
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (v_projects IS NULL OR j.project = ANY (v_projects))
          AND j.envelope IS NULL  -- signed or token-bearing: a worker's, which verifies them
        ORDER BY j.priority, j.run_at, j.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ),
    claimed AS (
        UPDATE jobforge.jobs j
        SET status = 'running', attempts = j.attempts + 1, lease_token = jobforge.lease_id(p.secret),
            lease_holder = p_worker, lease_expires_at = v_now + make_interval(secs => p_lease_seconds),
            heartbeat_at = v_now, updated_at = v_now, error = NULL
        FROM picked p
        WHERE j.id = p.id
        RETURNING j AS jrow, p.secret
    ),
    attempts AS (
        INSERT INTO jobforge.job_attempts (job_id, tenant_id, project, attempt, worker, lease_token,
                                           started_at)
        SELECT (c.jrow).id, (c.jrow).tenant_id, (c.jrow).project, (c.jrow).attempts, p_worker,
               (c.jrow).lease_token, v_now
        FROM claimed c
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, attempt, worker)
        SELECT (c.jrow).id, (c.jrow).tenant_id, (c.jrow).project, 'claimed', v_now,
               (c.jrow).attempts, p_worker
        FROM claimed c ORDER BY (c.jrow).id
    )
    SELECT r.*
    FROM claimed c
    CROSS JOIN LATERAL jsonb_populate_record(c.jrow, jsonb_build_object('lease_token', c.secret)) r
    ORDER BY r.priority, r.run_at, r.id;
END $_$;


--
-- Name: claim_v1(text, integer, text[], double precision, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.claim_v1(p_worker text, p_limit integer, p_types text[] DEFAULT NULL::text[], p_lease_seconds double precision DEFAULT 30, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF jobforge.jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_now          timestamptz := jobforge.clock(p_now);
    v_lease        interval;
    v_takeover     bigint[];
    v_dead         bigint[];
    v_fresh        bigint[];
    v_room         integer;
    v_tenants      text[];
    v_open         text[];
    v_queue        text[];
    v_full         text[];
    v_share        integer;
    v_need         integer;
    v_rounds       integer := 0;
    v_picks        jobforge.claim_pick[] := '{}';
    v_batch        jobforge.claim_pick[];
    v_ids          bigint[] := '{}';
    v_short        text[];
    v_limited      boolean;
    v_type_keys    text[] := '{}';
    v_type_room    integer[] := '{}';
    v_tenant_keys  text[] := '{}';
    v_tenant_room  integer[] := '{}';
    v_no_types     text[] := '{}';
    v_no_tenants   text[] := '{}';
    v_audited      boolean := coalesce(current_setting('jobforge.actor', true), '') <> ''
                              OR coalesce(current_setting('jobforge.reason', true), '') <> '';
BEGIN
    PERFORM jobforge.require_worker();
    IF p_limit IS NULL OR p_limit < 1 OR p_lease_seconds IS NULL OR NOT p_lease_seconds > 0
       OR p_lease_seconds > 86400 THEN
        RAISE EXCEPTION 'claim: limit must be positive and the lease 0-86400 s' USING ERRCODE = 'JF006';
    END IF;
    IF p_worker IS NULL OR length(p_worker) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'claim: the worker name must be 1-200 characters' USING ERRCODE = 'JF006';
    END IF;
    v_lease := make_interval(secs => p_lease_seconds);

    -- Expired leases: close the old attempt, log lease_expired; dead when nothing is left.
    WITH expired AS (
        SELECT j.id, j.tenant_id, j.project, j.attempts, j.lease_holder, j.lease_token,
               j.attempts >= j.max_attempts AS exhausted
        FROM jobforge.jobs j
        WHERE j.status = 'running' AND j.lease_expires_at <= v_now
          AND (p_types IS NULL OR j.type = ANY (p_types))
        ORDER BY j.lease_expires_at, j.id  -- ties broken the same way every time
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ),
    closed AS (
        UPDATE jobforge.job_attempts a SET finished_at = v_now, outcome = 'lease_expired'
        FROM expired e WHERE a.lease_token = e.lease_token
    ),
    logged AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, attempt, worker)
        SELECT e.id, e.tenant_id, e.project, 'lease_expired', v_now, e.attempts, e.lease_holder
        FROM expired e ORDER BY e.id
    ),
    buried AS (
        UPDATE jobforge.jobs j
        SET status = 'dead', lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL,
            finished_at = v_now, updated_at = v_now,
            error = jsonb_build_object('kind', 'lease_expired', 'message',
                                       'the worker stopped heartbeating and no attempts are left')
        FROM expired e WHERE j.id = e.id AND e.exhausted
        RETURNING j.id
    )
    SELECT array_agg(e.id) FILTER (WHERE NOT e.exhausted),
           array_agg(e.id) FILTER (WHERE e.exhausted)
    INTO v_takeover, v_dead
    FROM expired e;

    -- 'dead' follows 'lease_expired' in the log: a separate statement keeps the ids in order.
    IF v_dead IS NOT NULL THEN
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, attempt)
        SELECT j.id, j.tenant_id, j.project, 'dead', v_now, j.attempts
        FROM jobforge.jobs j WHERE j.id = ANY (v_dead) ORDER BY j.id;
    END IF;

    v_room := p_limit - coalesce(cardinality(v_takeover), 0);
    v_limited := v_room > 0 AND EXISTS (SELECT 1 FROM jobforge.queue_limits);
    IF v_limited THEN
        IF current_setting('transaction_isolation') <> 'read committed' THEN
            RAISE EXCEPTION 'claim: queue limits need READ COMMITTED transactions, and this one is %',
                upper(current_setting('transaction_isolation')) USING ERRCODE = 'JF006';
        END IF;
        -- Claims that may touch a limit take turns on its row until they commit, so the running
        -- counts below (a new statement, a new snapshot) include every earlier claim's jobs.
        PERFORM 1 FROM jobforge.queue_limits l
        WHERE l.scope = 'tenant' OR p_types IS NULL OR l.key = ANY (p_types)
        ORDER BY l.scope, l.key
        FOR UPDATE;
        -- Running: status running, plus canceled handlers that may not have stopped yet.
        SELECT coalesce(array_agg(l.key ORDER BY l.key), '{}'),
               coalesce(array_agg(greatest(0, least(
                   coalesce(l.max_running - r.n - s.n, 2147483647),
                   coalesce(floor(least(l.burst, l.tokens + l.rate_per_s
                       * greatest(0, extract(epoch FROM v_now - l.refilled_at))))::bigint, 2147483647)
               ))::integer ORDER BY l.key), '{}')
        INTO v_type_keys, v_type_room
        FROM jobforge.queue_limits l
        LEFT JOIN LATERAL (
            SELECT count(*) AS n FROM jobforge.jobs j
            WHERE j.status = 'running' AND j.type = l.key
        ) r ON l.max_running IS NOT NULL
        LEFT JOIN LATERAL (
            SELECT count(*) AS n FROM jobforge.job_attempts a JOIN jobforge.jobs j ON j.id = a.job_id
            WHERE a.stops_by > v_now AND j.type = l.key
        ) s ON l.max_running IS NOT NULL
        WHERE l.scope = 'type' AND (p_types IS NULL OR l.key = ANY (p_types));
        SELECT coalesce(array_agg(l.key ORDER BY l.key), '{}'),
               coalesce(array_agg(greatest(0, l.max_running - r.n - s.n)::integer ORDER BY l.key), '{}')
        INTO v_tenant_keys, v_tenant_room
        FROM jobforge.queue_limits l
        CROSS JOIN LATERAL (
            SELECT count(*) AS n FROM jobforge.jobs j
            WHERE j.status = 'running' AND j.tenant_id = l.key
        ) r
        CROSS JOIN LATERAL (
            SELECT count(*) AS n FROM jobforge.job_attempts a
            WHERE a.stops_by > v_now AND a.tenant_id = l.key
        ) s
        WHERE l.scope = 'tenant';
        SELECT coalesce(array_agg(k.key) FILTER (WHERE k.room = 0), '{}') INTO v_no_types
        FROM unnest(v_type_keys, v_type_room) AS k(key, room);
        SELECT coalesce(array_agg(k.key) FILTER (WHERE k.room = 0), '{}') INTO v_no_tenants
        FROM unnest(v_tenant_keys, v_tenant_room) AS k(key, room);
    END IF;

    IF v_room > 0 THEN
        -- The tenants with due jobs of the types asked for: a skip scan of jobs_fair finds the
        -- tenants with queued jobs (one probe each), one more probe each finds whether one is
        -- due. They take turns in a random order: priority orders a tenant's own jobs, never
        -- which tenant goes first (a tenant could otherwise take every turn with priority 0).
        WITH RECURSIVE t AS (
            (SELECT j.tenant_id FROM jobforge.jobs j
             WHERE j.status = 'queued' ORDER BY j.tenant_id LIMIT 1)
            UNION ALL
            SELECT (SELECT j.tenant_id FROM jobforge.jobs j
                    WHERE j.status = 'queued' AND j.tenant_id > t.tenant_id
                    ORDER BY j.tenant_id LIMIT 1)
            FROM t WHERE t.tenant_id IS NOT NULL
        )
        SELECT array_agg(t.tenant_id ORDER BY random()) INTO v_tenants
        FROM t
        -- LATERAL, not EXISTS: the planner drops an EXISTS subquery's ORDER BY and LIMIT and
        -- made it a semi-join over every job; this probe reads jobs_fair from the tenant's
        -- first queued job to its first due one
        CROSS JOIN LATERAL (
            SELECT 1 FROM jobforge.jobs j
            WHERE j.tenant_id = t.tenant_id AND j.status = 'queued' AND j.run_at <= v_now
              AND (p_types IS NULL OR j.type = ANY (p_types)) AND j.type <> ALL (v_no_types)
            ORDER BY j.priority, j.run_at, j.id
            LIMIT 1
        ) d
        WHERE t.tenant_id IS NOT NULL AND t.tenant_id <> ALL (v_no_tenants);

        IF cardinality(v_tenants) = 1 AND NOT v_limited THEN
            -- One tenant, no limits: its most urgent due jobs, locked in one index scan.
            SELECT array_agg(f.id) INTO v_fresh FROM (
                SELECT j.id FROM jobforge.jobs j
                WHERE j.tenant_id = v_tenants[1] AND j.status = 'queued' AND j.run_at <= v_now
                  AND (p_types IS NULL OR j.type = ANY (p_types))
                ORDER BY j.priority, j.run_at, j.id
                LIMIT v_room
                FOR UPDATE SKIP LOCKED
            ) f;
        ELSIF cardinality(v_tenants) > 0 THEN
            -- Rounds: the next tenants in turn (at most as many as the room left) each lock a
            -- share of what is left (their own most urgent due jobs). A tenant that had fewer
            -- than its share, or reached its cap, leaves the turns; one that had its whole share
            -- goes to the back, behind the tenants that have not had a turn yet. A tenant whose
            -- due jobs are all locked by others (another claim, or the tenant itself holding
            -- them) gets nothing and the next one is asked: nobody can empty others' claims.
            -- What the picks may keep under each cap is trimmed before the next round.
            v_queue := v_tenants;
            FOR v_step IN 1..8 LOOP
                v_need := v_room - cardinality(v_picks);
                EXIT WHEN v_need <= 0 OR coalesce(cardinality(v_queue), 0) = 0;
                v_open := v_queue[1:v_need];
                v_queue := v_queue[v_need + 1:];
                v_share := ceil(v_need::numeric / cardinality(v_open));
                SELECT coalesce(array_agg(ROW(c.id, tn.tenant_id, c.type, v_rounds + c.nth, c.priority,
                                              array_position(v_tenants, tn.tenant_id), c.run_at
                                          )::jobforge.claim_pick), '{}'),
                       coalesce(array_agg(DISTINCT tn.tenant_id) FILTER (WHERE c.nth = c.asked), '{}')
                INTO v_batch, v_full
                FROM unnest(v_open) AS tn(tenant_id)
                CROSS JOIN LATERAL (
                    SELECT least(v_share, coalesce(
                        v_tenant_room[array_position(v_tenant_keys, tn.tenant_id)], 2147483647)) AS asked
                ) q
                CROSS JOIN LATERAL (
                    SELECT s.id, s.type, s.priority, s.run_at, q.asked,
                           (row_number() OVER ())::integer AS nth
                    FROM (
                        SELECT j.id, j.type, j.priority, j.run_at FROM jobforge.jobs j
                        WHERE j.tenant_id = tn.tenant_id AND j.status = 'queued' AND j.run_at <= v_now
                          AND (p_types IS NULL OR j.type = ANY (p_types))
                          AND j.type <> ALL (v_no_types) AND j.id <> ALL (v_ids)
                        ORDER BY j.priority, j.run_at, j.id
                        LIMIT q.asked
                        FOR UPDATE SKIP LOCKED
                    ) s
                ) c;
                v_rounds := v_rounds + v_share;
                IF v_limited THEN
                    -- Keep what each cap's room allows, in the rounds' order, and close the
                    -- types and tenants that have no room left.
                    SELECT coalesce(array_agg(ROW(x.id, x.tenant_id, x.type, x.round, x.priority,
                                                  x.turn, x.run_at)::jobforge.claim_pick ORDER BY x.pos), '{}')
                    INTO v_batch
                    FROM (
                        SELECT u.*,
                               row_number() OVER (PARTITION BY u.type ORDER BY u.pos) AS nth_of_type,
                               row_number() OVER (PARTITION BY u.tenant_id ORDER BY u.pos) AS nth_of_tenant
                        FROM unnest(v_batch) WITH ORDINALITY AS u(id, tenant_id, type, round, priority,
                                                                  turn, run_at, pos)
                    ) x
                    WHERE x.nth_of_type <= coalesce(v_type_room[array_position(v_type_keys, x.type)],
                                                    2147483647)
                      AND x.nth_of_tenant <= coalesce(
                              v_tenant_room[array_position(v_tenant_keys, x.tenant_id)], 2147483647);
                    SELECT coalesce(array_agg(k.room - (SELECT count(*) FROM unnest(v_batch) b
                                                        WHERE b.type = k.key)::integer ORDER BY k.ord), '{}')
                    INTO v_type_room
                    FROM unnest(v_type_keys, v_type_room) WITH ORDINALITY AS k(key, room, ord);
                    SELECT coalesce(array_agg(k.room - (SELECT count(*) FROM unnest(v_batch) b
                                                        WHERE b.tenant_id = k.key)::integer ORDER BY k.ord), '{}')
                    INTO v_tenant_room
                    FROM unnest(v_tenant_keys, v_tenant_room) WITH ORDINALITY AS k(key, room, ord);
                    SELECT coalesce(array_agg(k.key) FILTER (WHERE k.room <= 0), '{}') INTO v_no_types
                    FROM unnest(v_type_keys, v_type_room) AS k(key, room);
                END IF;
                v_picks := v_picks || v_batch;
                v_ids := v_ids || ARRAY(SELECT b.id FROM unnest(v_batch) b);
                -- those that had their whole share go round again, in their turn order
                v_queue := coalesce(v_queue, '{}') || ARRAY(
                    SELECT o.tenant_id FROM unnest(v_open) WITH ORDINALITY AS o(tenant_id, n)
                    WHERE o.tenant_id = ANY (v_full) ORDER BY o.n
                );
            END LOOP;
            -- The room's worth, in the rounds' order (a round's last share may overshoot it).
            SELECT array_agg(p.id ORDER BY p.round, p.priority, p.turn, p.run_at, p.id) INTO v_fresh
            FROM (
                SELECT u.* FROM unnest(v_picks) u
                ORDER BY u.round, u.priority, u.turn, u.run_at, u.id
                LIMIT v_room
            ) p;
        END IF;

        IF v_limited AND v_fresh IS NOT NULL THEN
            -- Buckets: refilled to now, less the jobs of their type just taken.
            UPDATE jobforge.queue_limits l
            SET tokens = least(l.burst, l.tokens + l.rate_per_s
                               * greatest(0, extract(epoch FROM v_now - l.refilled_at)))
                         - (SELECT count(*) FROM unnest(v_picks) p
                            WHERE p.id = ANY (v_fresh) AND p.type = l.key),
                refilled_at = greatest(l.refilled_at, v_now)
            WHERE l.scope = 'type' AND l.rate_per_s IS NOT NULL AND l.key = ANY (v_type_keys);
        END IF;
    END IF;
    IF v_takeover IS NULL AND v_fresh IS NULL THEN
        RETURN;
    END IF;

    RETURN QUERY
    WITH picked AS (
        SELECT p.id, gen_random_uuid() AS secret
        FROM unnest(coalesce(v_takeover, '{}') || coalesce(v_fresh, '{}')) AS p(id)
    ),
    -- The rows as the caller gets them, the lease's secret in place of its stored digest
    -- (lease_id), column by column: a composite row rebuilt through jsonb cost ~3 us a job.
    claimed AS (
        UPDATE jobforge.jobs j
        SET status = 'running', attempts = j.attempts + 1, lease_token = jobforge.lease_id(p.secret),
            lease_holder = p_worker, lease_expires_at = v_now + v_lease, heartbeat_at = v_now,
            updated_at = v_now, error = NULL
        FROM picked p
        WHERE j.id = p.id
        RETURNING
            j.id, j.tenant_id, j.project, j.type, j.payload, j.payload_hash, j.status,
            j.priority, j.run_at, j.attempts, j.max_attempts, p.secret AS lease_token,
            j.lease_holder, j.lease_expires_at, j.heartbeat_at, j.idempotency_key, j.error,
            j.trace_id, j.progress_pct, j.progress_message, j.created_at, j.updated_at,
            j.finished_at, j.parent_id, j.envelope, j.lease_token AS lease_id
    ),
    -- The `claimed` event is the attempt's row (job_event_log derives it, the login the
    -- attempt's), its id drawn from the events' sequence in the order the stored events took
    -- theirs; a claim that names an actor or a reason stores its events, for the audit trail.
    attempts AS (
        INSERT INTO jobforge.job_attempts (job_id, tenant_id, project, attempt, worker, lease_token,
                                           started_at, claim_event_id)
        SELECT c.id, c.tenant_id, c.project, c.attempts, p_worker, c.lease_id, v_now,
               CASE WHEN NOT v_audited THEN nextval('jobforge.job_events_id_seq'::regclass) END
        FROM (SELECT * FROM claimed ORDER BY claimed.id) c
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, attempt, worker)
        SELECT c.id, c.tenant_id, c.project, 'claimed', v_now, c.attempts, p_worker
        FROM claimed c WHERE v_audited ORDER BY c.id
    )
    SELECT
        c.id, c.tenant_id, c.project, c.type, c.payload, c.payload_hash, c.status, c.priority,
        c.run_at, c.attempts, c.max_attempts, c.lease_token, c.lease_holder, c.lease_expires_at,
        c.heartbeat_at, c.idempotency_key, c.error, c.trace_id, c.progress_pct,
        c.progress_message, c.created_at, c.updated_at, c.finished_at, c.parent_id, c.envelope
    FROM claimed c
    ORDER BY c.priority, c.run_at, c.id;
END $$;


--
-- Name: clear_feature_v1(text, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.clear_feature_v1(p_feature text, p_tenant text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'features: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_feature IS NULL OR NOT p_feature = ANY (jobforge.known_features()) THEN
        RAISE EXCEPTION 'unknown feature %: known features are %',
            coalesce(quote_literal(left(p_feature, 60)), 'null'),
            array_to_string(jobforge.known_features(), ', ') USING ERRCODE = 'JF006';
    END IF;
    DELETE FROM jobforge.features f WHERE f.feature = p_feature AND f.tenant = p_tenant;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM jobforge.hold_for_feature(p_feature, p_tenant);
    RETURN true;
END $$;


--
-- Name: clear_limit_v1(text, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.clear_limit_v1(p_scope text, p_key text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    PERFORM jobforge.require_worker();
    IF p_scope IS NULL OR p_scope NOT IN ('type', 'tenant') THEN
        RAISE EXCEPTION 'limit scope % is unknown: use type or tenant',
            coalesce(quote_literal(left(p_scope, 40)), 'null') USING ERRCODE = 'JF006';
    END IF;
    DELETE FROM jobforge.queue_limits l WHERE l.scope = p_scope AND l.key = p_key;
    RETURN FOUND;
END $$;


--
-- Name: clear_retention_v1(text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.clear_retention_v1(p_type text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    PERFORM jobforge.require_worker();
    IF p_type = '*' THEN
        RAISE EXCEPTION 'retention: the default cannot be cleared; set it to forever instead'
            USING ERRCODE = 'JF006';
    END IF;
    DELETE FROM jobforge.retention r WHERE r.type = p_type;
    RETURN FOUND;
END $$;


--
-- Name: clock(timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.clock(p_now timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF p_now IS NULL THEN
        RETURN now();
    END IF;
    IF NOT (SELECT s.caller_clock FROM jobforge.settings s) THEN
        RAISE EXCEPTION 'a caller''s clock (now=%) is refused: this database keeps its own time', p_now
            USING ERRCODE = 'JF006',
                  HINT = 'only a database whose owner set jobforge.settings.caller_clock (test databases) takes one';
    END IF;
    IF NOT isfinite(p_now) OR p_now < '1970-01-01 00:00+00' OR p_now > '9000-01-01 00:00+00' THEN
        RAISE EXCEPTION 'now=% is out of range 1970-9000', p_now USING ERRCODE = 'JF006';
    END IF;
    RETURN p_now;
END $$;


--
-- Name: connector_remove_v1(text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.connector_remove_v1(p_name text) RETURNS TABLE(name text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
BEGIN
    PERFORM jobforge.require_whole_tenant_login();
    RETURN QUERY
    DELETE FROM jobforge.connector_configs c
    WHERE c.tenant_id = v_tenant AND c.name = p_name
    RETURNING c.name;
END $$;


--
-- Name: connector_set_v1(text, jsonb); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.connector_set_v1(p_name text, p_config jsonb) RETURNS TABLE(name text, config jsonb, updated_at timestamp with time zone)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_problem text;
BEGIN
    PERFORM jobforge.require_whole_tenant_login();
    IF p_name IS NULL OR p_name !~ '^[a-z0-9._-]{1,128}$' THEN
        RAISE EXCEPTION 'connector name % is invalid: use 1-128 of [a-z0-9._-]',
            quote_literal(left(coalesce(p_name, ''), 60)) USING ERRCODE = 'JF015';
    END IF;
    IF p_config IS NULL OR jsonb_typeof(p_config) <> 'object' THEN
        RAISE EXCEPTION 'connector %: the config must be a JSON object, not %', p_name,
            coalesce(jsonb_typeof(p_config), 'null') USING ERRCODE = 'JF015';
    END IF;
    IF octet_length(p_config::text) > 65536 THEN
        RAISE EXCEPTION 'connector %: the config is % bytes, over the limit of 65536', p_name,
            octet_length(p_config::text) USING ERRCODE = 'JF015';
    END IF;
    v_problem := jobforge.json_problem(p_config);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'connector %: the config cannot be stored: %', p_name, v_problem
            USING ERRCODE = 'JF015';
    END IF;
    RETURN QUERY
    INSERT INTO jobforge.connector_configs AS c (tenant_id, name, config, updated_at)
    VALUES (v_tenant, p_name, p_config, statement_timestamp())
    ON CONFLICT (tenant_id, name) DO UPDATE
        SET config = excluded.config, updated_at = excluded.updated_at
    RETURNING c.name, c.config, c.updated_at;
END $_$;


--
-- Name: current_project(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.current_project() RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE
        WHEN b.projects IS NULL
            THEN NULLIF(pg_catalog.current_setting('jobforge.project', true), '')
        WHEN pg_catalog.current_setting('jobforge.project', true) OPERATOR(pg_catalog.=) ANY (b.projects)
            THEN pg_catalog.current_setting('jobforge.project', true)
        ELSE ''
    END
    FROM (SELECT (SELECT l.projects FROM jobforge.tenant_logins l
                  WHERE l.login OPERATOR(pg_catalog.=) session_user) AS projects) b
$$;


--
-- Name: current_tenant(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.current_tenant() RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE
        WHEN coalesce(pg_catalog.current_setting('jobforge.tenant', true), '') OPERATOR(pg_catalog.=) ''
            THEN NULL
        WHEN NOT EXISTS (SELECT 1 FROM jobforge.tenant_logins l
                         WHERE l.login OPERATOR(pg_catalog.=) session_user)
            THEN pg_catalog.current_setting('jobforge.tenant', true)
        WHEN EXISTS (SELECT 1 FROM jobforge.tenant_logins l
                     WHERE l.login OPERATOR(pg_catalog.=) session_user
                       AND pg_catalog.current_setting('jobforge.tenant', true)
                           OPERATOR(pg_catalog.=) ANY (l.tenants))
            THEN pg_catalog.current_setting('jobforge.tenant', true)
    END
$$;


--
-- Name: enqueue_one_v1(text, text, text, text, text, jsonb, text, integer, timestamp with time zone, integer, text, text, timestamp with time zone, integer, jsonb); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.enqueue_one_v1(p_tenant text, p_project_scope text, p_actor text, p_reason text, p_type text, p_payload jsonb, p_idempotency_key text DEFAULT NULL::text, p_priority integer DEFAULT NULL::integer, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_max_attempts integer DEFAULT NULL::integer, p_trace_id text DEFAULT NULL::text, p_project text DEFAULT NULL::text, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_max_payload_bytes integer DEFAULT 1048576, p_envelope jsonb DEFAULT NULL::jsonb) RETURNS TABLE(job_id bigint, created boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_tenant text;
    v_scope  text;
    v_now    timestamptz;
    v_limit  integer;
    v_id     bigint;
    v_proj   text;
    v_bound  boolean;
BEGIN
    PERFORM set_config('jobforge.tenant', coalesce(p_tenant, ''), true),
            set_config('jobforge.project', coalesce(p_project_scope, ''), true),
            set_config('jobforge.scope', '', true),
            set_config('jobforge.actor', coalesce(p_actor, ''), true),
            set_config('jobforge.reason', coalesce(p_reason, ''), true);
    -- The settings and the login's binding in one read; a login bound to tenants or projects
    -- goes through require_tenant and require_project_scope, which hold the rules and their
    -- messages (an unbound login may act for any tenant and project it names).
    SELECT CASE WHEN p_now IS NULL THEN now() END,
           least(coalesce(p_max_payload_bytes, s.max_payload_bytes), s.max_payload_bytes),
           l.login IS NOT NULL
    INTO v_now, v_limit, v_bound
    FROM jobforge.settings s LEFT JOIN jobforge.tenant_logins l ON l.login = session_user;
    IF v_bound OR coalesce(p_tenant, '') = '' THEN
        v_tenant := jobforge.require_tenant();
        v_scope := jobforge.require_project_scope();
    ELSE
        v_tenant := p_tenant;
        v_scope := nullif(p_project_scope, '');
    END IF;
    v_proj := coalesce(p_project, v_scope, 'default');
    IF v_now IS NULL  -- a caller's clock: enqueue_v1 decides whether it may
       OR coalesce(p_actor, '') <> '' OR coalesce(p_reason, '') <> ''  -- an audited enqueue
       OR p_type IS NULL OR p_type !~ '^[a-z0-9._-]+$' OR length(p_type) > 200
       OR p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object'
       OR octet_length(p_payload::text) > v_limit
       OR jsonb_path_exists(p_payload, 'strict $.**{65}')
       OR jsonb_path_exists(p_payload,
              'strict $.** ? (@ > 1.7976931348623157e308 || @ < -1.7976931348623157e308)')
       OR p_priority NOT BETWEEN 0 AND 32767 OR p_max_attempts NOT BETWEEN 1 AND 1000
       OR length(p_trace_id) > 256
       OR NOT isfinite(p_run_at)
       OR p_run_at NOT BETWEEN v_now - interval '100 years' AND v_now + interval '100 years'
       OR v_proj !~ '^[A-Za-z0-9._-]+$' OR length(v_proj) > 128 OR p_project <> v_scope
       OR length(p_idempotency_key) NOT BETWEEN 1 AND 255
       OR jsonb_typeof(p_envelope) <> 'object' OR octet_length(p_envelope::text) > 65536
       OR EXISTS (SELECT 1 FROM jobforge.runner_catalogue c
                  WHERE c.runner_id = p_type AND NOT c.enabled)
    THEN
        RETURN QUERY SELECT e.job_id, e.created FROM jobforge.enqueue_v1(
            ARRAY[p_type], ARRAY[p_payload],
            CASE WHEN p_idempotency_key IS NOT NULL THEN ARRAY[p_idempotency_key] END,
            ARRAY[p_priority], ARRAY[p_run_at], ARRAY[p_max_attempts], ARRAY[p_trace_id], p_now,
            p_max_payload_bytes, ARRAY[p_project], ARRAY[p_envelope]) e;
        RETURN;
    END IF;
    INSERT INTO jobforge.jobs AS j (tenant_id, project, type, payload, payload_hash, priority,
                                    run_at, max_attempts, idempotency_key, trace_id, created_at,
                                    updated_at, envelope)
    VALUES (v_tenant, v_proj, p_type, p_payload,
            'sha256:' || encode(sha256(convert_to(p_payload::text, 'UTF8')), 'hex'),
            coalesce(p_priority, 0), coalesce(p_run_at, v_now), coalesce(p_max_attempts, 3),
            p_idempotency_key, p_trace_id, v_now, v_now, p_envelope)
    ON CONFLICT (tenant_id, project, type, idempotency_key) WHERE idempotency_key IS NOT NULL
    DO NOTHING
    RETURNING j.id INTO v_id;
    IF v_id IS NULL THEN  -- the key is taken: enqueue_v1 answers the job or the conflict
        RETURN QUERY SELECT e.job_id, e.created FROM jobforge.enqueue_v1(
            ARRAY[p_type], ARRAY[p_payload], ARRAY[p_idempotency_key], ARRAY[p_priority],
            ARRAY[p_run_at], ARRAY[p_max_attempts], ARRAY[p_trace_id], p_now, p_max_payload_bytes,
            ARRAY[p_project], ARRAY[p_envelope]) e;
        RETURN;
    END IF;
    RETURN QUERY SELECT v_id, true;
END $_$;


--
-- Name: enqueue_v1(text[], jsonb[], text[], integer[], timestamp with time zone[], integer[], text[], timestamp with time zone, integer, text[], jsonb[]); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.enqueue_v1(p_types text[], p_payloads jsonb[], p_idempotency_keys text[] DEFAULT NULL::text[], p_priorities integer[] DEFAULT NULL::integer[], p_run_ats timestamp with time zone[] DEFAULT NULL::timestamp with time zone[], p_max_attempts integer[] DEFAULT NULL::integer[], p_trace_ids text[] DEFAULT NULL::text[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_max_payload_bytes integer DEFAULT 1048576, p_projects text[] DEFAULT NULL::text[], p_envelopes jsonb[] DEFAULT NULL::jsonb[]) RETURNS TABLE(ord integer, job_id bigint, created boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_tenant   text := jobforge.require_tenant();
    v_scope    text := jobforge.require_project_scope();
    v_now      timestamptz := jobforge.clock(p_now);
    v_n        integer := coalesce(cardinality(p_types), 0);
    v_seq      regclass := pg_get_serial_sequence('jobforge.jobs', 'id')::regclass;
    v_audited  boolean := coalesce(current_setting('jobforge.actor', true), '') <> ''
                          OR coalesce(current_setting('jobforge.reason', true), '') <> '';
    v_limit    integer;
    v_bad      record;
    v_inserted bigint[];
BEGIN
    IF v_n <> coalesce(cardinality(p_payloads), 0) THEN
        RAISE EXCEPTION 'enqueue: % types but % payloads', v_n, coalesce(cardinality(p_payloads), 0)
            USING ERRCODE = 'JF006';
    END IF;
    SELECT least(coalesce(p_max_payload_bytes, s.max_payload_bytes), s.max_payload_bytes)
    INTO v_limit FROM jobforge.settings s;
    SELECT u.i, u.t, u.p, p_priorities[u.i] AS prio, p_max_attempts[u.i] AS max_att,
           p_trace_ids[u.i] AS trace, p_run_ats[u.i] AS run_at,
           jobforge.json_problem(u.p) AS problem, p_projects[u.i] AS proj,
           p_envelopes[u.i] AS env INTO v_bad
    FROM unnest(p_types, p_payloads) WITH ORDINALITY AS u(t, p, i)
    WHERE u.p IS NULL OR jsonb_typeof(u.p) <> 'object' OR u.t IS NULL
       OR u.t !~ '^[a-z0-9._-]+$' OR length(u.t) > 200
       OR octet_length(u.p::text) > v_limit
       OR p_priorities[u.i] NOT BETWEEN 0 AND 32767 OR p_max_attempts[u.i] NOT BETWEEN 1 AND 1000
       OR length(p_trace_ids[u.i]) > 256
       OR NOT isfinite(p_run_ats[u.i])
       OR p_run_ats[u.i] NOT BETWEEN v_now - interval '100 years' AND v_now + interval '100 years'
       OR jobforge.json_problem(u.p) IS NOT NULL
       OR p_projects[u.i] !~ '^[A-Za-z0-9._-]+$' OR length(p_projects[u.i]) > 128
       OR p_projects[u.i] <> v_scope
       OR jsonb_typeof(p_envelopes[u.i]) <> 'object' OR octet_length(p_envelopes[u.i]::text) > 65536
    LIMIT 1;
    IF FOUND THEN
        IF v_bad.t IS NULL OR v_bad.t !~ '^[a-z0-9._-]+$' OR length(v_bad.t) > 200 THEN
            RAISE EXCEPTION 'job #%: type % is invalid: use 1-200 of [a-z0-9._-]', v_bad.i,
                coalesce(quote_literal(left(v_bad.t, 240)), 'null') USING ERRCODE = 'JF006';
        ELSIF v_bad.proj !~ '^[A-Za-z0-9._-]+$' OR length(v_bad.proj) > 128 THEN
            RAISE EXCEPTION 'job #%: project % is invalid: use 1-128 of [A-Za-z0-9._-]', v_bad.i,
                quote_literal(left(v_bad.proj, 160)) USING ERRCODE = 'JF006';
        ELSIF v_bad.proj <> v_scope THEN
            RAISE EXCEPTION 'job #%: project % is outside this session''s project %', v_bad.i,
                quote_literal(v_bad.proj), quote_literal(v_scope) USING ERRCODE = 'JF003';
        ELSIF jsonb_typeof(v_bad.env) <> 'object' OR octet_length(v_bad.env::text) > 65536 THEN
            RAISE EXCEPTION 'job #%: the envelope (timeout, signatures, token) must be a JSON object of at most 65536 bytes',
                v_bad.i USING ERRCODE = 'JF006';
        ELSIF v_bad.p IS NULL OR jsonb_typeof(v_bad.p) <> 'object' THEN
            RAISE EXCEPTION 'job #%: payload must be a JSON object, not %', v_bad.i,
                coalesce(jsonb_typeof(v_bad.p), 'null') USING ERRCODE = 'JF006';
        ELSIF v_bad.prio NOT BETWEEN 0 AND 32767 THEN
            RAISE EXCEPTION 'job #%: priority % is out of range 0-32767', v_bad.i, v_bad.prio
                USING ERRCODE = 'JF006';
        ELSIF v_bad.max_att NOT BETWEEN 1 AND 1000 THEN
            RAISE EXCEPTION 'job #%: max_attempts % is out of range 1-1000', v_bad.i, v_bad.max_att
                USING ERRCODE = 'JF006';
        ELSIF length(v_bad.trace) > 256 THEN
            RAISE EXCEPTION 'job #%: trace_id is % characters, over the limit of 256', v_bad.i,
                length(v_bad.trace) USING ERRCODE = 'JF006';
        ELSIF v_bad.run_at IS NOT NULL AND (NOT isfinite(v_bad.run_at)
                OR v_bad.run_at NOT BETWEEN v_now - interval '100 years' AND v_now + interval '100 years') THEN
            PERFORM jobforge.check_run_at(v_bad.run_at, v_now, 'job #' || v_bad.i);
        ELSIF octet_length(v_bad.p::text) > v_limit THEN
            RAISE EXCEPTION 'job #%: payload is % bytes, over the limit of %', v_bad.i,
                octet_length(v_bad.p::text), v_limit USING ERRCODE = 'JF005';
        ELSE
            RAISE EXCEPTION 'job #%: the payload cannot be stored: %', v_bad.i, v_bad.problem
                USING ERRCODE = 'JF006';
        END IF;
    END IF;

    -- A disabled runner of the catalogue cannot be requested, whichever producer asks. The
    -- first probe reads the (usually empty) partial index of disabled runners only, so a batch
    -- of types the catalogue does not disable costs one index probe, not a scan per job.
    IF EXISTS (SELECT 1 FROM jobforge.runner_catalogue c WHERE NOT c.enabled) THEN
        SELECT u.i, u.t INTO v_bad
        FROM unnest(p_types) WITH ORDINALITY AS u(t, i)
        JOIN jobforge.runner_catalogue c ON c.runner_id = u.t AND NOT c.enabled
        ORDER BY u.i LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'job #%: runner % is disabled (an operator enables it: jobforge runners enable %)',
                v_bad.i, v_bad.t, v_bad.t
                USING ERRCODE = 'JF010';
        END IF;
    END IF;

    IF p_idempotency_keys IS NULL THEN
        -- No keys, so no conflicts: ids are drawn in input order, so sorted they map to positions.
        WITH inserted AS (
            INSERT INTO jobforge.jobs AS j (tenant_id, project, type, payload, payload_hash, priority,
                                            run_at, max_attempts, trace_id, created_at, updated_at,
                                            envelope)
            SELECT v_tenant, coalesce(p_projects[u.i], v_scope, 'default'), u.t, u.p,
                   'sha256:' || encode(sha256(convert_to(u.p::text, 'UTF8')), 'hex'),
                   coalesce(p_priorities[u.i], 0), coalesce(p_run_ats[u.i], v_now),
                   coalesce(p_max_attempts[u.i], 3), p_trace_ids[u.i], v_now, v_now,
                   p_envelopes[u.i]
            FROM unnest(p_types, p_payloads) WITH ORDINALITY AS u(t, p, i)
            ORDER BY u.i
            RETURNING j.id, j.project
        ),
        events AS (
            INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at)
            SELECT id, v_tenant, project, 'created', v_now FROM inserted WHERE v_audited ORDER BY id
        )
        SELECT array_agg(id ORDER BY id) INTO v_inserted FROM inserted;
        RETURN QUERY SELECT k.i::integer, k.new_id, true
                     FROM unnest(v_inserted) WITH ORDINALITY AS k(new_id, i) ORDER BY k.i;
        RETURN;
    END IF;

    WITH input AS MATERIALIZED (
        SELECT u.i::integer AS i, nextval(v_seq) AS new_id, u.t, u.p,
               p_idempotency_keys[u.i] AS k, coalesce(p_priorities[u.i], 0) AS prio,
               coalesce(p_run_ats[u.i], v_now) AS run_at, coalesce(p_max_attempts[u.i], 3) AS max_att,
               p_trace_ids[u.i] AS trace, coalesce(p_projects[u.i], v_scope, 'default') AS proj,
               p_envelopes[u.i] AS env
        FROM unnest(p_types, p_payloads) WITH ORDINALITY AS u(t, p, i)
    ),
    inserted AS (
        INSERT INTO jobforge.jobs AS j (id, tenant_id, project, type, payload, payload_hash, priority,
                                        run_at, max_attempts, idempotency_key, trace_id, created_at,
                                        updated_at, envelope)
        OVERRIDING SYSTEM VALUE
        SELECT new_id, v_tenant, proj, t, p, 'sha256:' || encode(sha256(convert_to(p::text, 'UTF8')), 'hex'),
               prio, run_at, max_att, k, trace, v_now, v_now, env
        FROM input ORDER BY i
        ON CONFLICT (tenant_id, project, type, idempotency_key) WHERE idempotency_key IS NOT NULL
        DO NOTHING
        RETURNING j.id, j.project
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at)
        SELECT id, v_tenant, project, 'created', v_now FROM inserted WHERE v_audited ORDER BY id
    )
    SELECT array_agg(CASE WHEN ins.id IS NOT NULL THEN input.new_id END ORDER BY input.i)
    INTO v_inserted
    FROM input LEFT JOIN inserted ins ON ins.id = input.new_id;

    IF array_position(v_inserted, NULL) IS NULL THEN  -- all new: nothing to look up
        RETURN QUERY SELECT k.i::integer, k.new_id, true
                     FROM unnest(v_inserted) WITH ORDINALITY AS k(new_id, i) ORDER BY k.i;
        RETURN;
    END IF;

    -- A new statement, so a new snapshot: it sees jobs a concurrent enqueue committed meanwhile.
    SELECT k.key, j.id INTO v_bad
    FROM unnest(p_types, p_payloads, p_idempotency_keys, v_inserted) WITH ORDINALITY
         AS k(type, payload, key, new_id, i)
    JOIN jobforge.jobs j ON j.tenant_id = v_tenant AND j.type = k.type AND j.idempotency_key = k.key
                        AND j.project = coalesce(p_projects[k.i], v_scope, 'default')
    WHERE k.new_id IS NULL
      AND j.payload_hash <> 'sha256:' || encode(sha256(convert_to(k.payload::text, 'UTF8')), 'hex')
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'idempotency key % is already used by job % with a different payload',
            quote_literal(v_bad.key), v_bad.id
            USING ERRCODE = 'JF001',
                  DETAIL = json_build_object('key', v_bad.key, 'job_id', v_bad.id)::text;
    END IF;

    RETURN QUERY
    SELECT k.i::integer, coalesce(k.new_id, j.id), k.new_id IS NOT NULL
    FROM unnest(p_types, p_idempotency_keys, v_inserted) WITH ORDINALITY AS k(type, key, new_id, i)
    LEFT JOIN jobforge.jobs j
           ON k.new_id IS NULL AND j.tenant_id = v_tenant AND j.type = k.type AND j.idempotency_key = k.key
          AND j.project = coalesce(p_projects[k.i], v_scope, 'default')
    ORDER BY k.i;
END $_$;


--
-- Name: events; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.events (
    id bigint NOT NULL,
    tenant_id text NOT NULL,
    type text NOT NULL,
    source text NOT NULL,
    subject text,
    data jsonb NOT NULL,
    dedupe_key text,
    occurred_at timestamp with time zone NOT NULL,
    submitted_at timestamp with time zone NOT NULL,
    login text DEFAULT SESSION_USER NOT NULL,
    actor text DEFAULT NULLIF(current_setting('jobforge.actor'::text, true), ''::text),
    CONSTRAINT events_actor_check CHECK (((actor IS NULL) OR (((length(actor) >= 1) AND (length(actor) <= 200)) AND (actor !~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]'::text)))),
    CONSTRAINT events_data_check CHECK ((jsonb_typeof(data) = 'object'::text)),
    CONSTRAINT events_data_check1 CHECK ((octet_length((data)::text) <= 1048576)),
    CONSTRAINT events_dedupe_key_check CHECK ((((length(dedupe_key) >= 1) AND (length(dedupe_key) <= 200)) AND (dedupe_key !~ '[[:cntrl:]]'::text))),
    CONSTRAINT events_source_check CHECK ((((length(source) >= 1) AND (length(source) <= 500)) AND (source !~ '[[:cntrl:]]'::text))),
    CONSTRAINT events_subject_check CHECK ((((length(subject) >= 1) AND (length(subject) <= 500)) AND (subject !~ '[[:cntrl:]]'::text))),
    CONSTRAINT events_type_check CHECK ((type ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$'::text))
);

ALTER TABLE ONLY jobforge.events FORCE ROW LEVEL SECURITY;


--
-- Name: trigger_evaluations; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.trigger_evaluations (
    id bigint NOT NULL,
    tenant_id text NOT NULL,
    trigger_id bigint NOT NULL,
    event_id bigint NOT NULL,
    evaluated_at timestamp with time zone NOT NULL,
    outcome text NOT NULL,
    reason text,
    job_id bigint,
    job jsonb,
    detail text,
    CONSTRAINT trigger_evaluations_check CHECK (((outcome = 'skipped'::text) = (reason IS NOT NULL))),
    CONSTRAINT trigger_evaluations_detail_check CHECK ((length(detail) <= 1000)),
    CONSTRAINT trigger_evaluations_outcome_check CHECK ((outcome = ANY (ARRAY['fired'::text, 'dry_run'::text, 'skipped'::text]))),
    CONSTRAINT trigger_evaluations_reason_check CHECK ((reason = ANY (ARRAY['predicate'::text, 'cooldown'::text, 'hourly_cap'::text, 'dedupe'::text, 'paused'::text, 'mapping'::text, 'enqueue'::text, 'feature_off'::text])))
);

ALTER TABLE ONLY jobforge.trigger_evaluations FORCE ROW LEVEL SECURITY;


--
-- Name: evaluate_triggers(jobforge.events, timestamp with time zone, boolean); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.evaluate_triggers(p_event jobforge.events, p_now timestamp with time zone, p_force_dry boolean) RETURNS SETOF jobforge.trigger_evaluations
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_envelope jsonb := jobforge.event_envelope(p_event);
    v_enabled  boolean := jobforge.feature_enabled('triggers', p_event.tenant_id);
    v_trigger  jobforge.triggers;
    v_out      record;
    v_outcome  text;
    v_reason   text;
    v_detail   text;
    v_job_id   bigint;
    v_job      jsonb;
    v_created  boolean;
    v_actor    text := current_setting('jobforge.actor', true);
    v_cut      bigint;
    v_eval     jobforge.trigger_evaluations;
BEGIN
    -- by id, locked: concurrent submits take each trigger's cooldown and cap in turn, and two
    -- transactions lock the triggers they share in the same order (no deadlock)
    FOR v_trigger IN
        SELECT * FROM jobforge.triggers t
        WHERE t.tenant_id = p_event.tenant_id AND t.event_type = p_event.type
        ORDER BY t.id FOR UPDATE
    LOOP
        v_outcome := 'skipped';
        v_reason := NULL; v_detail := NULL; v_job_id := NULL; v_job := NULL;
        SELECT * INTO v_out FROM jobforge.trigger_outcome(v_trigger, v_envelope);
        IF NOT v_enabled THEN
            v_reason := 'feature_off';
            v_detail := format('the triggers feature is disabled for tenant %s (jobforge features enable triggers --tenant %s)',
                               p_event.tenant_id, p_event.tenant_id);
        ELSIF v_trigger.paused THEN
            v_reason := 'paused';
            v_detail := 'the trigger is paused (jobforge triggers resume ' || v_trigger.name || ')';
        ELSIF v_out.reason IS NOT NULL THEN
            v_reason := v_out.reason;
            v_detail := v_out.detail;
        ELSIF v_trigger.cooldown > interval '0' AND v_trigger.last_fired_at IS NOT NULL
              AND p_now < v_trigger.last_fired_at + v_trigger.cooldown THEN
            v_reason := 'cooldown';
            v_detail := format('fired at %s, cooldown %s', v_trigger.last_fired_at, v_trigger.cooldown);
        ELSIF v_trigger.max_per_hour IS NOT NULL AND (
                SELECT count(*) FROM jobforge.trigger_evaluations e
                WHERE e.trigger_id = v_trigger.id AND e.outcome IN ('fired', 'dry_run')
                  AND e.evaluated_at > p_now - interval '1 hour') >= v_trigger.max_per_hour THEN
            v_reason := 'hourly_cap';
            v_detail := format('fired %s times in the last hour, the most it may',
                               v_trigger.max_per_hour);
        ELSE
            v_job := jsonb_build_object('type', v_trigger.job_type, 'payload', v_out.input,
                                        'idempotency_key', v_out.idempotency_key,
                                        'priority', v_trigger.priority,
                                        'max_attempts', coalesce(v_trigger.max_attempts, 3));
            BEGIN
                PERFORM set_config('jobforge.actor', 'trigger:' || v_trigger.name, true);
                SELECT e.job_id, e.created INTO v_job_id, v_created
                FROM jobforge.enqueue_v1(
                    ARRAY[v_trigger.job_type], ARRAY[v_out.input], ARRAY[v_out.idempotency_key],
                    ARRAY[v_trigger.priority], NULL,
                    CASE WHEN v_trigger.max_attempts IS NULL THEN NULL
                         ELSE ARRAY[v_trigger.max_attempts] END,
                    NULL, p_now, NULL) e;
                PERFORM set_config('jobforge.actor', coalesce(v_actor, ''), true);
                IF NOT v_created THEN
                    v_reason := 'dedupe';
                    v_detail := format('job %s has the key %s already', v_job_id,
                                       v_out.idempotency_key);
                ELSIF v_trigger.dry_run OR p_force_dry THEN
                    -- checked by the real enqueue; undone with this subtransaction
                    RAISE EXCEPTION USING ERRCODE = 'JFDRY';
                ELSE
                    v_outcome := 'fired';
                END IF;
            EXCEPTION
                WHEN sqlstate 'JFDRY' THEN
                    v_outcome := 'dry_run';
                    v_job_id := NULL;
                WHEN sqlstate 'JF001' THEN  -- the key names a job with another payload
                    v_reason := 'dedupe';
                    v_detail := left(SQLERRM, 1000);
                    v_job_id := NULL;
                WHEN OTHERS THEN  -- the settings and the job go back with the subtransaction
                    v_reason := 'enqueue';
                    v_detail := left(SQLERRM, 1000);
                    v_job_id := NULL;
            END;
            IF v_outcome <> 'dry_run' THEN
                v_job := NULL;
            END IF;
        END IF;
        IF v_outcome IN ('fired', 'dry_run') AND NOT p_force_dry THEN
            UPDATE jobforge.triggers t SET last_fired_at = p_now WHERE t.id = v_trigger.id;
        END IF;
        INSERT INTO jobforge.trigger_evaluations AS e
            (tenant_id, trigger_id, event_id, evaluated_at, outcome, reason, job_id, job, detail)
        VALUES (p_event.tenant_id, v_trigger.id, p_event.id, p_now, v_outcome, v_reason, v_job_id,
                v_job, left(v_detail, 1000))
        RETURNING e.* INTO v_eval;
        RETURN NEXT v_eval;
        -- the log keeps a trigger's last 1,000 entries, and every entry of the last hour (the cap)
        SELECT e.id INTO v_cut FROM jobforge.trigger_evaluations e
        WHERE e.trigger_id = v_trigger.id ORDER BY e.id DESC OFFSET 1000 LIMIT 1;
        IF FOUND THEN
            DELETE FROM jobforge.trigger_evaluations e
            WHERE e.trigger_id = v_trigger.id AND e.id <= v_cut
              AND e.evaluated_at <= p_now - interval '1 hour';
        END IF;
    END LOOP;
END $$;


--
-- Name: event_envelope(jobforge.events); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.event_envelope(p_event jobforge.events) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT jsonb_build_object(
        'id', p_event.id, 'type', p_event.type, 'source', p_event.source,
        'subject', p_event.subject,
        'time', to_char(p_event.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'data', p_event.data)
$$;


--
-- Name: event_submit_v1(text, text, text, jsonb, text, timestamp with time zone, boolean, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.event_submit_v1(p_type text, p_source text, p_subject text, p_data jsonb, p_dedupe_key text DEFAULT NULL::text, p_occurred_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_dry_run boolean DEFAULT false, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(event jsonb, created boolean, evaluations jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_now     timestamptz := jobforge.clock(p_now);
    v_limit   integer;
    v_problem text;
    v_row     jobforge.events;
    v_evals   jsonb;
BEGIN
    PERFORM jobforge.require_feature('events', v_tenant);
    IF p_type IS NULL OR p_type !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$' THEN
        RAISE EXCEPTION 'event type % is invalid: use 1-200 of [A-Za-z0-9._-], starting with a letter or digit',
            coalesce(quote_literal(left(p_type, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_source IS NULL OR length(p_source) NOT BETWEEN 1 AND 500 OR p_source ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'event %: the source must be 1-500 printable characters', p_type
            USING ERRCODE = 'JF006';
    END IF;
    IF length(p_subject) NOT BETWEEN 1 AND 500 OR p_subject ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'event %: the subject must be 1-500 printable characters', p_type
            USING ERRCODE = 'JF006';
    END IF;
    IF length(p_dedupe_key) NOT BETWEEN 1 AND 200 OR p_dedupe_key ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'event %: the dedupe key must be 1-200 printable characters', p_type
            USING ERRCODE = 'JF006';
    END IF;
    IF p_data IS NULL OR jsonb_typeof(p_data) <> 'object' THEN
        RAISE EXCEPTION 'event %: the data must be a JSON object, not %', p_type,
            coalesce(jsonb_typeof(p_data), 'null') USING ERRCODE = 'JF006';
    END IF;
    SELECT s.max_payload_bytes INTO v_limit FROM jobforge.settings s;
    IF octet_length(p_data::text) > v_limit THEN
        RAISE EXCEPTION 'event %: the data is % bytes, over the limit of %', p_type,
            octet_length(p_data::text), v_limit USING ERRCODE = 'JF005';
    END IF;
    v_problem := jobforge.json_problem(p_data);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'event %: the data cannot be stored: %', p_type, v_problem
            USING ERRCODE = 'JF006';
    END IF;
    IF p_occurred_at IS NOT NULL AND (NOT isfinite(p_occurred_at)
            OR p_occurred_at NOT BETWEEN v_now - interval '100 years' AND v_now + interval '1 day') THEN
        RAISE EXCEPTION 'event %: time % is out of range: within 100 years before now and a day after',
            p_type, p_occurred_at USING ERRCODE = 'JF006';
    END IF;

    BEGIN
        INSERT INTO jobforge.events AS e (tenant_id, type, source, subject, data, dedupe_key,
                                          occurred_at, submitted_at)
        VALUES (v_tenant, p_type, p_source, p_subject, p_data, p_dedupe_key,
                coalesce(p_occurred_at, v_now), v_now)
        ON CONFLICT (tenant_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
        RETURNING e.* INTO v_row;
        IF v_row.id IS NULL THEN
            -- its key is taken (by a transaction that has committed: the insert waited for it)
            SELECT * INTO v_row FROM jobforge.events e
            WHERE e.tenant_id = v_tenant AND e.dedupe_key = p_dedupe_key;
            IF v_row.type <> p_type OR v_row.source <> p_source
               OR v_row.subject IS DISTINCT FROM p_subject OR v_row.data <> p_data THEN
                RAISE EXCEPTION 'dedupe key % is already used by event % with a different body',
                    quote_literal(p_dedupe_key), v_row.id
                    USING ERRCODE = 'JF001',
                          DETAIL = json_build_object('key', p_dedupe_key, 'event_id', v_row.id)::text;
            END IF;
            event := to_jsonb(v_row);
            created := false;
            evaluations := '[]'::jsonb;
        ELSE
            SELECT coalesce(jsonb_agg(to_jsonb(x) || jsonb_build_object('trigger', t.name)
                                      ORDER BY x.id), '[]'::jsonb) INTO v_evals
            FROM jobforge.evaluate_triggers(v_row, v_now, coalesce(p_dry_run, false)) AS x
            JOIN jobforge.triggers t ON t.id = x.trigger_id;
            event := to_jsonb(v_row);
            created := true;
            evaluations := v_evals;
        END IF;
        IF p_dry_run THEN
            RAISE EXCEPTION USING ERRCODE = 'JFDRY';  -- undo it all, answer what it did
        END IF;
    EXCEPTION WHEN sqlstate 'JFDRY' THEN
        NULL;
    END;
    RETURN NEXT;
END $_$;


--
-- Name: feature_enabled(text, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.feature_enabled(p_feature text, p_tenant text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT coalesce(
        (SELECT f.enabled FROM jobforge.features f
         WHERE f.feature OPERATOR(pg_catalog.=) p_feature AND f.tenant OPERATOR(pg_catalog.=) p_tenant),
        (SELECT f.enabled FROM jobforge.features f
         WHERE f.feature OPERATOR(pg_catalog.=) p_feature AND f.tenant OPERATOR(pg_catalog.=) '*'),
        false)
$$;


--
-- Name: finish_followups_v1(text, bigint[], uuid[], text[], jsonb[], jsonb[], timestamp with time zone, double precision, double precision, jsonb); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.finish_followups_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[], p_results jsonb[], p_errors jsonb[], p_now timestamp with time zone, p_backoff_base_s double precision, p_backoff_cap_s double precision, p_followups jsonb) RETURNS TABLE(job_id bigint, state text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_n        integer := coalesce(cardinality(p_job_ids), 0);
    v_now      timestamptz := jobforge.clock(p_now);
    v_limit    integer := (SELECT s.max_payload_bytes FROM jobforge.settings s);
    v_outcomes text[] := p_outcomes;
    v_errors   jsonb[] := coalesce(p_errors, array_fill(NULL::jsonb, ARRAY[v_n]));
    v_states   text[];
    v_bad      record;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_followups IS NULL OR jsonb_typeof(p_followups) <> 'array'
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_followups) e
                  WHERE CASE WHEN jsonb_typeof(e) <> 'object'
                                  OR jsonb_typeof(e -> 'job') IS DISTINCT FROM 'number' THEN true
                             ELSE (e ->> 'job')::numeric NOT BETWEEN 1 AND v_n
                                  OR (e ->> 'job')::numeric <> trunc((e ->> 'job')::numeric)
                        END) THEN
        RAISE EXCEPTION 'finish: follow-ups must be a JSON array of objects naming a job position 1-%', v_n
            USING ERRCODE = 'JF006';
    END IF;

    -- The first problem of each succeeded outcome's follow-ups turns the outcome into a failure
    -- (a retry when the runner is disabled), recorded as the parent's error.
    FOR v_bad IN
        WITH f AS (
            SELECT x.n, (x.e ->> 'job')::numeric::integer AS pos, x.e ->> 'type' AS t, x.e -> 'payload' AS p,
                   x.e ->> 'key' AS k, x.e -> 'priority' AS prio, x.e -> 'max_attempts' AS att
            FROM jsonb_array_elements(p_followups) WITH ORDINALITY AS x(e, n)
        ),
        judged AS (
            SELECT f.pos, f.n,
                   CASE
                       WHEN f.t IS NULL OR f.t !~ '^[a-z0-9._-]+$' OR length(f.t) > 200
                           THEN 'its type ' || coalesce(quote_literal(left(f.t, 240)), 'null')
                                || ' is invalid: use 1-200 of [a-z0-9._-]'
                       WHEN f.p IS NULL OR jsonb_typeof(f.p) <> 'object'
                           THEN 'its payload must be a JSON object'
                       WHEN f.k IS NULL OR length(f.k) NOT BETWEEN 1 AND 1000
                           THEN 'its idempotency key must be 1-1000 characters'
                       WHEN NOT jobforge.whole_number_between(f.prio, 0, 32767)
                           THEN 'its priority must be a whole number 0-32767'
                       WHEN NOT jobforge.whole_number_between(f.att, 1, 1000)
                           THEN 'its max_attempts must be a whole number 1-1000'
                       WHEN octet_length(f.p::text) > v_limit
                           THEN 'its payload is ' || octet_length(f.p::text)
                                || ' bytes, over the limit of ' || v_limit
                       WHEN jobforge.json_problem(f.p) IS NOT NULL
                           THEN 'its payload cannot be stored: ' || jobforge.json_problem(f.p)
                       WHEN EXISTS (SELECT 1 FROM jobforge.runner_catalogue c
                                    WHERE c.runner_id = f.t AND NOT c.enabled)
                           THEN 'runner ' || f.t || ' is disabled'
                       WHEN EXISTS (SELECT 1 FROM jobforge.jobs j
                                    WHERE j.tenant_id = pj.tenant_id AND j.project = pj.project
                                      AND j.type = f.t AND j.idempotency_key = f.k
                                      AND j.payload_hash <> 'sha256:' || encode(sha256(convert_to(f.p::text, 'UTF8')), 'hex'))
                           THEN 'its idempotency key ' || quote_literal(f.k)
                                || ' is already used by another job with a different payload'
                   END AS problem,
                   EXISTS (SELECT 1 FROM jobforge.runner_catalogue c
                           WHERE c.runner_id = f.t AND NOT c.enabled) AS disabled
            FROM f JOIN jobforge.jobs pj ON pj.id = p_job_ids[f.pos]
            WHERE v_outcomes[f.pos] = 'succeeded'
        )
        SELECT DISTINCT ON (j.pos) j.pos, j.n, j.problem, j.disabled
        FROM judged j WHERE j.problem IS NOT NULL ORDER BY j.pos, j.n
    LOOP
        v_outcomes[v_bad.pos] := CASE WHEN v_bad.disabled THEN 'retry' ELSE 'failed' END;
        v_errors[v_bad.pos] := jsonb_build_object(
            'kind', 'followup_rejected',
            'message', 'follow-up #' || v_bad.n || ' cannot be enqueued: ' || v_bad.problem);
    END LOOP;

    SELECT array_agg(f.state ORDER BY f.i) INTO v_states
    FROM jobforge.finish_v1(p_worker, p_job_ids, p_tokens, v_outcomes, p_results, v_errors, p_now,
                            p_backoff_base_s, p_backoff_cap_s) WITH ORDINALITY AS f(job_id, state, i);

    -- Only what finish_v1 recorded as succeeded (the lease held, the first entry of a job)
    -- enqueues its follow-ups; a key already taken (a finish retried after its commit) is skipped.
    WITH f AS (
        SELECT x.n, (x.e ->> 'job')::numeric::integer AS pos, x.e ->> 'type' AS t, x.e -> 'payload' AS p,
               x.e ->> 'key' AS k, (x.e ->> 'priority')::numeric::integer AS prio,
               (x.e ->> 'max_attempts')::numeric::integer AS att
        FROM jsonb_array_elements(p_followups) WITH ORDINALITY AS x(e, n)
        WHERE v_states[(x.e ->> 'job')::numeric::integer] = 'succeeded'
    ),
    inserted AS (
        INSERT INTO jobforge.jobs AS j (tenant_id, project, type, payload, payload_hash, priority,
                                        run_at, max_attempts, idempotency_key, trace_id, parent_id,
                                        created_at, updated_at)
        SELECT pj.tenant_id, pj.project, f.t, f.p,
               'sha256:' || encode(sha256(convert_to(f.p::text, 'UTF8')), 'hex'),
               coalesce(f.prio, 0), v_now, coalesce(f.att, 3), f.k, pj.trace_id, pj.id, v_now, v_now
        FROM f JOIN jobforge.jobs pj ON pj.id = p_job_ids[f.pos]
        ORDER BY f.n
        ON CONFLICT (tenant_id, project, type, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING j.id, j.tenant_id, j.parent_id
    )
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, data)
    SELECT i.id, i.tenant_id, 'created', v_now, jsonb_build_object('parent_id', i.parent_id)
    FROM inserted i ORDER BY i.id;

    RETURN QUERY
    SELECT p_job_ids[k.i]::bigint, k.state
    FROM unnest(v_states) WITH ORDINALITY AS k(state, i) ORDER BY k.i;
END $_$;


--
-- Name: finish_v1(text, bigint[], uuid[], text[], jsonb[], jsonb[], timestamp with time zone, double precision, double precision); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.finish_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[], p_results jsonb[] DEFAULT NULL::jsonb[], p_errors jsonb[] DEFAULT NULL::jsonb[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_backoff_base_s double precision DEFAULT 1, p_backoff_cap_s double precision DEFAULT 3600) RETURNS TABLE(job_id bigint, state text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    v_now   timestamptz := jobforge.clock(p_now);
    v_limit integer := (SELECT s.max_result_bytes FROM jobforge.settings s);
    v_audited boolean := coalesce(current_setting('jobforge.actor', true), '') <> ''
                         OR coalesce(current_setting('jobforge.reason', true), '') <> '';
BEGIN
    PERFORM jobforge.require_worker();
    IF EXISTS (SELECT 1 FROM unnest(p_outcomes) o WHERE o IS NULL OR o NOT IN ('succeeded', 'retry', 'failed')) THEN
        RAISE EXCEPTION 'finish: outcomes must be succeeded, retry or failed' USING ERRCODE = 'JF006';
    END IF;
    IF p_backoff_base_s IS NULL OR p_backoff_cap_s IS NULL OR NOT p_backoff_base_s >= 0
       OR NOT p_backoff_cap_s >= 0 OR p_backoff_cap_s > 31536000 OR p_backoff_base_s > 31536000 THEN
        RAISE EXCEPTION 'finish: backoff must be 0-31536000 s' USING ERRCODE = 'JF006';
    END IF;
    -- When limits exist, a finish frees room under a cap: wake the workers (LISTEN
    -- jobforge_jobs) whose claims came back empty because of it, instead of leaving them to
    -- their polling backoff while the worker that finished takes every turn.
    IF EXISTS (SELECT 1 FROM jobforge.queue_limits l WHERE l.max_running IS NOT NULL) THEN
        PERFORM pg_notify('jobforge_jobs', '');
    END IF;
    RETURN QUERY
    WITH raw AS (
        SELECT u.i, u.id, jobforge.lease_id(u.token) AS token, u.outcome,
               p_results[u.i] AS result, p_errors[u.i] AS err
        FROM unnest(p_job_ids, p_tokens, p_outcomes) WITH ORDINALITY AS u(id, token, outcome, i)
    ),
    checked AS (
        SELECT r.i, r.id, r.token, r.outcome, r.result, r.err,
               -- pg_column_size: the stored size, without serializing every result to text
               CASE WHEN r.outcome <> 'succeeded' OR r.result IS NULL THEN NULL
                    WHEN pg_column_size(r.result) > v_limit
                        THEN 'the result is ' || pg_column_size(r.result)
                             || ' bytes, over the limit of ' || v_limit
                    ELSE jobforge.json_problem(r.result)
               END AS bad_result
        FROM raw r
    ),
    input AS (
        SELECT c.i, c.id, c.token,
               CASE WHEN c.bad_result IS NULL THEN c.outcome ELSE 'failed' END AS outcome,
               CASE WHEN c.bad_result IS NULL THEN c.result END AS result,
               CASE WHEN c.bad_result IS NOT NULL
                        THEN jsonb_build_object('kind', 'result_rejected', 'message',
                                               'the handler''s result cannot be stored: ' || c.bad_result)
                    WHEN c.err IS NOT NULL AND (pg_column_size(c.err) > 16384
                                                OR jobforge.json_problem(c.err) IS NOT NULL)
                        THEN jsonb_build_object(
                                 'kind', left(coalesce(c.err ->> 'kind', 'error'), 100),
                                 'type', left(c.err ->> 'type', 200),
                                 'message', left(coalesce(c.err ->> 'message', ''), 4000),
                                 'truncated', true)
                    ELSE c.err END AS err,
               c.i = min(c.i) OVER (PARTITION BY c.id, c.token) AS first
        FROM checked c
    ),
    fenced AS MATERIALIZED (
        SELECT s.*,
               CASE WHEN s.next = 'retry_scheduled'
                    THEN v_now + jobforge.backoff(s.id, s.attempts, p_backoff_base_s, p_backoff_cap_s)
               END AS retry_at,
               -- the outcome event's id, drawn in job order whether it is stored or derived
               nextval('jobforge.job_events_id_seq'::regclass) AS event_id
        FROM (
            SELECT j.id, j.tenant_id, j.project, j.attempts, input.token, input.result, input.err,
                   CASE WHEN input.outcome = 'succeeded' THEN 'succeeded'
                        WHEN input.outcome = 'failed' THEN 'failed'
                        WHEN j.attempts >= j.max_attempts THEN 'dead'
                        ELSE 'retry_scheduled' END AS next
            -- One probe of the primary key per outcome, locked in id order. A join of jobs
            -- with the outcomes was planned as a nested loop over both (the planner guesses 10
            -- rows for an array it cannot see): 200 outcomes cost 40,000 comparisons. The lease
            -- is named without the status (jobs_lease_iff_running: a job holds a lease, token,
            -- holder and expiry, exactly while it runs): with `status = 'running'` in it, once
            -- ANALYZE had seen few running jobs, the planner read the partial index of running
            -- jobs (jobs_leased) from end to end for each outcome instead.
            FROM (SELECT * FROM input WHERE input.first ORDER BY input.id) input
            CROSS JOIN LATERAL (
                SELECT j.id, j.tenant_id, j.project, j.attempts, j.max_attempts
                FROM jobforge.jobs j
                WHERE j.id = input.id AND j.lease_token = input.token
                  AND j.lease_holder = p_worker AND j.lease_expires_at IS NOT NULL
                FOR UPDATE
            ) j
        ) s
    ),
    updated AS (
        UPDATE jobforge.jobs j
        SET status = (CASE f.next WHEN 'retry_scheduled' THEN 'queued' ELSE f.next END)::jobforge.job_status,
            lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL,
            run_at = coalesce(f.retry_at, j.run_at),
            finished_at = CASE WHEN f.next = 'retry_scheduled' THEN NULL ELSE v_now END,
            error = f.err, updated_at = v_now
        FROM fenced f WHERE j.id = f.id
    ),
    results AS (
        INSERT INTO jobforge.job_results (job_id, tenant_id, project, result, created_at)
        SELECT f.id, f.tenant_id, f.project, f.result, v_now
        FROM fenced f WHERE f.next = 'succeeded' AND f.result IS NOT NULL
        ON CONFLICT (job_id) DO UPDATE SET result = EXCLUDED.result, created_at = EXCLUDED.created_at
    ),
    -- The outcome's event is the attempt's row (job_event_log derives it, with the id drawn for
    -- it in `fenced` and a retry's new run_at as the stored event had it), unless the event says
    -- more than the row: an actor or a reason named for this transaction (the audit trail reads
    -- stored events), or a login other than the one that claimed the attempt (the row keeps
    -- one). Then it is stored, under the same id.
    attempts AS (
        UPDATE jobforge.job_attempts a
        SET finished_at = v_now, error = f.err,
            outcome = CASE f.next WHEN 'retry_scheduled' THEN 'retry' ELSE f.next END,
            finish_event_id = CASE WHEN NOT v_audited AND a.login = session_user
                                   THEN f.event_id END,
            finish_data = CASE WHEN NOT v_audited AND a.login = session_user
                                    AND f.next = 'retry_scheduled'
                               THEN jsonb_build_object('run_at', f.retry_at) END
        FROM fenced f WHERE a.lease_token = f.token
        RETURNING a.job_id, a.finish_event_id IS NOT NULL AS derived
    ),
    events AS (
        INSERT INTO jobforge.job_events (id, job_id, tenant_id, project, kind, at, attempt, worker,
                                         data)
        OVERRIDING SYSTEM VALUE
        SELECT f.event_id, f.id, f.tenant_id, f.project, f.next, v_now, f.attempts, p_worker,
               CASE WHEN f.next = 'retry_scheduled' THEN jsonb_build_object('run_at', f.retry_at)
                    WHEN f.err IS NOT NULL THEN jsonb_build_object('error', f.err) END
        FROM fenced f LEFT JOIN attempts u ON u.job_id = f.id
        WHERE NOT coalesce(u.derived, false)
        ORDER BY f.id
    )
    -- A job listed twice with one token is finished once: the first entry counts, a repeat is 'lost'.
    SELECT input.id,
           CASE WHEN input.first AND f.token = input.token THEN f.next ELSE 'lost' END
    FROM input LEFT JOIN fenced f ON f.id = input.id
    ORDER BY input.i;
END $$;


--
-- Name: heartbeat_v1(text, bigint[], uuid[], double precision, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.heartbeat_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_lease_seconds double precision DEFAULT 30, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(job_id bigint, state text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := jobforge.clock(p_now);
BEGIN
    PERFORM jobforge.require_worker();
    IF p_lease_seconds IS NULL OR NOT p_lease_seconds > 0 OR p_lease_seconds > 86400 THEN
        RAISE EXCEPTION 'heartbeat: the lease must be 0-86400 s' USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    WITH input AS (
        SELECT u.i, u.id, jobforge.lease_id(u.token) AS token
        FROM unnest(p_job_ids, p_tokens) WITH ORDINALITY AS u(id, token, i)
    ),
    extended AS (
        UPDATE jobforge.jobs j
        SET lease_expires_at = v_now + make_interval(secs => p_lease_seconds), heartbeat_at = v_now
        FROM input
        WHERE j.id = input.id AND j.lease_token = input.token AND j.lease_holder = p_worker
          AND j.lease_expires_at IS NOT NULL  -- running: jobs_lease_iff_running
        RETURNING j.id, j.lease_token
    )
    SELECT input.id,
           CASE WHEN EXISTS (SELECT 1 FROM extended e WHERE e.id = input.id AND e.lease_token = input.token)
                    THEN 'ok'
                WHEN j.status = 'canceled' AND a.lease_token IS NOT NULL THEN 'canceled'
                ELSE 'lost' END
    FROM input
    LEFT JOIN jobforge.jobs j ON j.id = input.id
    LEFT JOIN jobforge.job_attempts a ON a.lease_token = input.token AND a.job_id = input.id
    ORDER BY input.i;
END $$;


--
-- Name: hold_for_feature(text, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.hold_for_feature(p_feature text, p_tenant text) RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    UPDATE jobforge.schedules s
    SET held = NOT jobforge.feature_enabled('schedules', s.tenant_id)
    WHERE p_feature OPERATOR(pg_catalog.=) 'schedules'
      AND (p_tenant OPERATOR(pg_catalog.=) '*' OR s.tenant_id OPERATOR(pg_catalog.=) p_tenant)
      AND s.held IS DISTINCT FROM NOT jobforge.feature_enabled('schedules', s.tenant_id)
$$;


--
-- Name: jitter(bigint, integer); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.jitter(p_job_id bigint, p_attempt integer) RETURNS double precision
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT ('x' || substr(md5(p_job_id::text || ':' || p_attempt::text), 1, 8))::bit(32)::bigint
           / 4294967296.0
$$;


--
-- Name: jobs_check_transition(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.jobs_check_transition() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM jobforge.job_transitions
        WHERE from_status = OLD.status AND to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'job % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'JF002';
    END IF;
    RETURN NEW;
END $$;


--
-- Name: jobs_delete_children(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.jobs_delete_children() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_events   bigint;
    v_attempts bigint;
    v_results  bigint;
    v_runs     bigint;
BEGIN
    DELETE FROM jobforge.job_events e USING gone WHERE e.job_id = gone.id;
    GET DIAGNOSTICS v_events = ROW_COUNT;
    DELETE FROM jobforge.job_attempts a USING gone WHERE a.job_id = gone.id;
    GET DIAGNOSTICS v_attempts = ROW_COUNT;
    DELETE FROM jobforge.job_results r USING gone WHERE r.job_id = gone.id;
    GET DIAGNOSTICS v_results = ROW_COUNT;
    DELETE FROM jobforge.job_runs r USING gone WHERE r.job_id = gone.id;
    GET DIAGNOSTICS v_runs = ROW_COUNT;
    PERFORM set_config('jobforge.deleted_children',
                       concat_ws(',', v_events, v_attempts, v_results, v_runs), true);
    RETURN NULL;
END $$;


--
-- Name: json_problem(jsonb); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.json_problem(p_value jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    SELECT CASE
        WHEN p_value IS NULL THEN NULL
        WHEN pg_catalog.jsonb_path_exists(p_value, 'strict $.**{65}')
            THEN 'it is nested deeper than 64 levels'
        WHEN pg_catalog.jsonb_path_exists(
                 p_value, 'strict $.** ? (@ > 1.7976931348623157e308 || @ < -1.7976931348623157e308)')
            THEN 'it holds a number outside the range of a double (1.8e308)'
    END
$_$;


--
-- Name: known_features(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.known_features() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT ARRAY['events', 'schedules', 'triggers']
$$;


--
-- Name: lease_id(uuid); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.lease_id(p_token uuid) RETURNS uuid
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
    SELECT pg_catalog.encode(
               pg_catalog.substr(pg_catalog.sha256(pg_catalog.uuid_send(p_token)), 1, 16), 'hex'
           )::pg_catalog.uuid
$$;


--
-- Name: notify_jobs(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.notify_jobs() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM pg_notify('jobforge_jobs', '');
    RETURN NULL;
END $$;


--
-- Name: progress_v1(text, bigint, uuid, real, text, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.progress_v1(p_worker text, p_job_id bigint, p_token uuid, p_pct real, p_message text DEFAULT NULL::text, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_now     timestamptz := jobforge.clock(p_now);
    v_message text := left(p_message, 2000);
    v_job     jobforge.jobs;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_pct IS NULL OR NOT p_pct BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'progress: % is not a percentage 0-100', p_pct USING ERRCODE = 'JF006';
    END IF;
    UPDATE jobforge.jobs SET progress_pct = p_pct, progress_message = v_message, updated_at = v_now
    WHERE id = p_job_id AND lease_token = jobforge.lease_id(p_token) AND lease_holder = p_worker
      AND lease_expires_at IS NOT NULL  -- running: jobs_lease_iff_running
    RETURNING * INTO v_job;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker, data)
    VALUES (p_job_id, v_job.tenant_id, 'progress', v_now, v_job.attempts, p_worker,
            jsonb_build_object('pct', p_pct, 'message', v_message));
    RETURN true;
END $$;


--
-- Name: prune_artifacts_v1(text, interval, integer, boolean, timestamp with time zone, text, text, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.prune_artifacts_v1(p_tenant text DEFAULT NULL::text, p_grace interval DEFAULT '01:00:00'::interval, p_batch integer DEFAULT 1000, p_dry_run boolean DEFAULT false, p_after_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_after_tenant text DEFAULT NULL::text, p_after_sha text DEFAULT NULL::text, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(blobs bigint, bytes bigint, after_at timestamp with time zone, after_tenant text, after_sha text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_now    timestamptz := jobforge.clock(p_now);
    v_cutoff timestamptz;
    v_n      bigint;
    v_ctids  tid[];
    v_blobs  bigint;
    v_bytes  bigint;
    v_at     timestamptz;
    v_tenant text;
    v_sha    text;
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'prune: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_grace IS NULL OR NOT (p_grace >= interval '0' AND p_grace <= interval '100 years') THEN
        RAISE EXCEPTION 'prune: grace % is out of range 0-100 years', p_grace
            USING ERRCODE = 'JF006';
    END IF;
    IF p_tenant IS NOT NULL AND (p_tenant !~ '^[A-Za-z0-9._:-]+$' OR length(p_tenant) > 128) THEN
        RAISE EXCEPTION 'prune: tenant % is not a valid tenant id',
            quote_literal(left(p_tenant, 130)) USING ERRCODE = 'JF006';
    END IF;
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 50000 THEN
        RAISE EXCEPTION 'prune: batch % is out of range 1-50000', p_batch USING ERRCODE = 'JF006';
    END IF;
    v_cutoff := v_now - p_grace;

    -- The window (locked unless dry), and which of it no reference holds.
    IF p_dry_run THEN
        SELECT count(*), coalesce(array_agg(w.ctid) FILTER (WHERE w.orphan), '{}'),
               count(*) FILTER (WHERE w.orphan), coalesce(sum(w.size) FILTER (WHERE w.orphan), 0),
               (array_agg(w.touched_at ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1],
               (array_agg(w.tenant_id ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1],
               (array_agg(w.sha256 ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1]
        INTO v_n, v_ctids, v_blobs, v_bytes, v_at, v_tenant, v_sha
        FROM (
            SELECT b.ctid, b.tenant_id, b.sha256, b.size, b.touched_at,
                   NOT EXISTS (SELECT 1 FROM jobforge.artifact_refs r
                               WHERE r.tenant_id = b.tenant_id AND r.sha256 = b.sha256) AS orphan
            FROM jobforge.artifact_blobs b
            WHERE b.touched_at < v_cutoff AND (p_tenant IS NULL OR b.tenant_id = p_tenant)
              AND (b.touched_at, b.tenant_id, b.sha256)
                  > (coalesce(p_after_at, '-infinity'), coalesce(p_after_tenant, ''),
                     coalesce(p_after_sha, ''))
            ORDER BY b.touched_at, b.tenant_id, b.sha256
            LIMIT p_batch
        ) w;
    ELSE
        SELECT count(*), coalesce(array_agg(w.ctid) FILTER (WHERE w.orphan), '{}'),
               count(*) FILTER (WHERE w.orphan), coalesce(sum(w.size) FILTER (WHERE w.orphan), 0),
               (array_agg(w.touched_at ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1],
               (array_agg(w.tenant_id ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1],
               (array_agg(w.sha256 ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1]
        INTO v_n, v_ctids, v_blobs, v_bytes, v_at, v_tenant, v_sha
        FROM (
            SELECT l.ctid, l.tenant_id, l.sha256, l.size, l.touched_at,
                   NOT EXISTS (SELECT 1 FROM jobforge.artifact_refs r
                               WHERE r.tenant_id = l.tenant_id AND r.sha256 = l.sha256) AS orphan
            FROM (
                SELECT b.ctid, b.tenant_id, b.sha256, b.size, b.touched_at
                FROM jobforge.artifact_blobs b
                WHERE b.touched_at < v_cutoff AND (p_tenant IS NULL OR b.tenant_id = p_tenant)
                  AND (b.touched_at, b.tenant_id, b.sha256)
                      > (coalesce(p_after_at, '-infinity'), coalesce(p_after_tenant, ''),
                         coalesce(p_after_sha, ''))
                ORDER BY b.touched_at, b.tenant_id, b.sha256
                LIMIT p_batch
                FOR UPDATE SKIP LOCKED
            ) l
        ) w;
        IF cardinality(v_ctids) > 0 THEN
            -- by ctid: the rows are locked. A reference written since this statement's snapshot
            -- makes the delete fail on its foreign key: the grace (from the last store of the
            -- blob) makes that a run stalled for longer than the grace between storing its
            -- blobs and recording itself.
            DELETE FROM jobforge.artifact_blobs b WHERE b.ctid = ANY (v_ctids);
        END IF;
    END IF;
    IF v_n < p_batch THEN  -- the window was not full: nothing is left after it
        RETURN QUERY SELECT v_blobs, v_bytes, NULL::timestamptz, NULL::text, NULL::text;
    ELSE
        RETURN QUERY SELECT v_blobs, v_bytes, v_at, v_tenant, v_sha;
    END IF;
END $_$;


--
-- Name: prune_batch(interval, jobforge.job_status[], text, text[], boolean, boolean, integer, text, timestamp with time zone, bigint, timestamp with time zone, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.prune_batch(p_older_than interval, p_statuses jobforge.job_status[], p_tenant text, p_types text[], p_runs_only boolean, p_dry_run boolean, p_batch integer, p_after_type text, p_after_at timestamp with time zone, p_after_id bigint, p_now timestamp with time zone, p_project text DEFAULT NULL::text) RETURNS TABLE(jobs bigint, events bigint, attempts bigint, results bigint, runs bigint, after_type text, after_at timestamp with time zone, after_id bigint)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_default  interval;
    v_keep     interval;
    v_cutoff   timestamptz;
    v_left     integer := p_batch;
    v_type     text := p_after_type;
    v_at       timestamptz := coalesce(p_after_at, '-infinity');
    v_id       bigint := coalesce(p_after_id, 0);
    v_ids      bigint[] := '{}';
    v_n        integer;
    v_last_at  timestamptz;
    v_last_id  bigint;
    v_doomed   bigint[];
    v_ctids    tid[];
    v_children bigint[];
    v_jobs     bigint := 0;
    v_events   bigint := 0;
    v_attempts bigint := 0;
    v_results  bigint := 0;
    v_runs     bigint := 0;
BEGIN
    SELECT r.keep INTO v_default FROM jobforge.retention r WHERE r.type = '*';
    IF v_type IS NULL THEN  -- from the start: the first type with finished jobs
        SELECT min(j.type) INTO v_type FROM jobforge.jobs j
        WHERE j.finished_at IS NOT NULL AND (p_types IS NULL OR j.type = ANY (p_types));
    END IF;

    -- The window: up to p_batch candidates after the cursor, type by type.
    WHILE v_type IS NOT NULL LOOP
        IF p_older_than IS NOT NULL THEN
            v_keep := p_older_than;
        ELSE
            SELECT r.keep INTO v_keep FROM jobforge.retention r WHERE r.type = v_type;
            IF NOT FOUND THEN
                v_keep := v_default;
            END IF;
        END IF;
        IF v_keep IS NOT NULL THEN  -- NULL: this type is kept forever
            v_cutoff := p_now - v_keep;
            -- The window, locked (SKIP LOCKED: a row another transaction holds is left for a
            -- later pass); those of it that match are the doomed. A job rescheduled since this
            -- statement's snapshot is checked again under the lock, and is queued (no
            -- finished_at) or finished again after the cut-off: not in the window.
            IF p_dry_run THEN
                SELECT coalesce(array_agg(w.id ORDER BY w.finished_at, w.id), '{}'),
                       max(w.finished_at),
                       coalesce(array_agg(w.id) FILTER (WHERE w.status = ANY (p_statuses)
                           AND (p_tenant IS NULL OR w.tenant_id = p_tenant)
                           AND (p_project IS NULL OR w.project = p_project)), '{}')
                INTO v_ids, v_last_at, v_doomed
                FROM (
                    SELECT j.id, j.finished_at, j.status, j.tenant_id, j.project FROM jobforge.jobs j
                    WHERE j.type = v_type AND j.finished_at IS NOT NULL AND j.finished_at < v_cutoff
                      AND (j.finished_at, j.id) > (v_at, v_id)
                    ORDER BY j.finished_at, j.id
                    LIMIT v_left
                ) w;
            ELSE
                SELECT coalesce(array_agg(w.id ORDER BY w.finished_at, w.id), '{}'),
                       max(w.finished_at),
                       coalesce(array_agg(w.id) FILTER (WHERE w.status = ANY (p_statuses)
                           AND (p_tenant IS NULL OR w.tenant_id = p_tenant)
                           AND (p_project IS NULL OR w.project = p_project)), '{}'),
                       coalesce(array_agg(w.ctid) FILTER (WHERE w.status = ANY (p_statuses)
                           AND (p_tenant IS NULL OR w.tenant_id = p_tenant)
                           AND (p_project IS NULL OR w.project = p_project)), '{}')
                INTO v_ids, v_last_at, v_doomed, v_ctids
                FROM (
                    SELECT j.id, j.finished_at, j.status, j.tenant_id, j.project, j.ctid
                    FROM jobforge.jobs j
                    WHERE j.type = v_type AND j.finished_at IS NOT NULL AND j.finished_at < v_cutoff
                      AND (j.finished_at, j.id) > (v_at, v_id)
                    ORDER BY j.finished_at, j.id
                    LIMIT v_left
                    FOR UPDATE SKIP LOCKED
                ) w;
            END IF;
            v_n := cardinality(v_ids);
            IF v_n > 0 THEN
                v_last_id := v_ids[v_n];  -- the cursor: (v_last_at, v_last_id), the window's last
                IF cardinality(v_doomed) > 0 THEN
                    IF p_dry_run THEN
                        IF NOT p_runs_only THEN
                            v_jobs := v_jobs + cardinality(v_doomed);
                            v_events := v_events + (SELECT count(*) FROM jobforge.job_events e
                                                    WHERE e.job_id = ANY (v_doomed));
                            v_attempts := v_attempts + (SELECT count(*) FROM jobforge.job_attempts a
                                                        WHERE a.job_id = ANY (v_doomed));
                            v_results := v_results + (SELECT count(*) FROM jobforge.job_results r
                                                      WHERE r.job_id = ANY (v_doomed));
                        END IF;
                        v_runs := v_runs + (SELECT count(*) FROM jobforge.job_runs r
                                            WHERE r.job_id = ANY (v_doomed));
                    ELSIF p_runs_only THEN
                        DELETE FROM jobforge.job_runs r WHERE r.job_id = ANY (v_doomed);
                        GET DIAGNOSTICS v_n = ROW_COUNT;
                        v_runs := v_runs + v_n;
                    ELSE
                        PERFORM set_config('jobforge.deleted_children', '', true);
                        -- by ctid: the rows are locked, so where they are does not change
                        DELETE FROM jobforge.jobs j WHERE j.ctid = ANY (v_ctids);
                        GET DIAGNOSTICS v_n = ROW_COUNT;
                        v_jobs := v_jobs + v_n;
                        v_children := string_to_array(
                            nullif(current_setting('jobforge.deleted_children', true), ''), ','
                        )::bigint[];
                        v_events := v_events + coalesce(v_children[1], 0);
                        v_attempts := v_attempts + coalesce(v_children[2], 0);
                        v_results := v_results + coalesce(v_children[3], 0);
                        v_runs := v_runs + coalesce(v_children[4], 0);
                    END IF;
                END IF;

                v_left := v_left - cardinality(v_ids);
                IF v_left <= 0 THEN  -- the window is full: the next batch goes on from here
                    RETURN QUERY SELECT v_jobs, v_events, v_attempts, v_results, v_runs,
                                        v_type, v_last_at, v_last_id;
                    RETURN;
                END IF;
            END IF;
        END IF;
        -- The next type with finished jobs: one probe of jobs_finished.
        SELECT min(j.type) INTO v_type FROM jobforge.jobs j
        WHERE j.finished_at IS NOT NULL AND j.type > v_type
          AND (p_types IS NULL OR j.type = ANY (p_types));
        v_at := '-infinity';
        v_id := 0;
    END LOOP;
    RETURN QUERY SELECT v_jobs, v_events, v_attempts, v_results, v_runs,
                        NULL::text, NULL::timestamptz, NULL::bigint;
END $$;


--
-- Name: prune_pass_v1(text, double precision, integer, double precision, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.prune_pass_v1(p_worker text, p_every_s double precision, p_batch integer DEFAULT 1000, p_hold_s double precision DEFAULT 60, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(jobs bigint, events bigint, attempts bigint, results bigint, runs bigint, more boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_now  timestamptz := jobforge.clock(p_now);
    v_pass jobforge.prune_pass;
    v_done record;
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'prune: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_worker IS NULL OR length(p_worker) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'prune: the worker name must be 1-200 characters' USING ERRCODE = 'JF006';
    END IF;
    IF p_every_s IS NULL OR NOT (p_every_s > 0 AND p_every_s <= 31536000)
       OR p_hold_s IS NULL OR NOT (p_hold_s > 0 AND p_hold_s <= 86400) THEN
        RAISE EXCEPTION 'prune: every_s must be 0-31536000 s and hold_s 0-86400 s'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 50000 THEN
        RAISE EXCEPTION 'prune: batch % is out of range 1-50000', p_batch USING ERRCODE = 'JF006';
    END IF;

    SELECT * INTO v_pass FROM jobforge.prune_pass FOR UPDATE SKIP LOCKED;
    IF NOT FOUND  -- another worker's batch is running
       OR (v_pass.holder IS DISTINCT FROM p_worker AND v_pass.held_until > v_now)  -- its pass
       OR (v_pass.after_type IS NULL AND v_pass.holder IS NULL
           AND v_pass.started_at > v_now - make_interval(secs => p_every_s)) THEN  -- not due
        RETURN QUERY SELECT 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, false;
        RETURN;
    END IF;
    IF v_pass.holder IS NULL AND v_pass.after_type IS NULL THEN  -- a new pass
        v_pass.started_at := v_now;
        v_pass.jobs := 0; v_pass.events := 0; v_pass.attempts := 0; v_pass.results := 0;
        v_pass.runs := 0;
    END IF;

    SELECT * INTO v_done FROM jobforge.prune_batch(
        NULL, ARRAY['succeeded', 'failed', 'dead', 'canceled']::jobforge.job_status[], NULL, NULL,
        false, false, p_batch, v_pass.after_type, v_pass.after_at, v_pass.after_id, v_now);

    UPDATE jobforge.prune_pass p SET
        holder = CASE WHEN v_done.after_type IS NULL THEN NULL ELSE p_worker END,
        held_until = CASE WHEN v_done.after_type IS NULL THEN NULL
                          ELSE v_now + make_interval(secs => p_hold_s) END,
        after_type = v_done.after_type, after_at = v_done.after_at, after_id = v_done.after_id,
        started_at = v_pass.started_at,
        finished_at = CASE WHEN v_done.after_type IS NULL THEN v_now ELSE p.finished_at END,
        jobs = v_pass.jobs + v_done.jobs, events = v_pass.events + v_done.events,
        attempts = v_pass.attempts + v_done.attempts, results = v_pass.results + v_done.results,
        runs = v_pass.runs + v_done.runs;
    RETURN QUERY SELECT v_done.jobs, v_done.events, v_done.attempts, v_done.results, v_done.runs,
                        v_done.after_type IS NOT NULL;
END $$;


--
-- Name: prune_token_uses_v1(integer, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.prune_token_uses_v1(p_batch integer DEFAULT 1000, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now timestamptz := jobforge.clock(p_now);
    v_n   integer;
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN  -- else row-level security would hide every row
        RAISE EXCEPTION 'prune: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 50000 THEN
        RAISE EXCEPTION 'prune: the batch must be 1-50000' USING ERRCODE = 'JF006';
    END IF;
    -- Oldest first, skipping rows another worker's prune (or a use being recorded) holds.
    WITH gone AS (
        DELETE FROM jobforge.token_uses u
        WHERE u.ctid = ANY (ARRAY(
            SELECT x.ctid FROM jobforge.token_uses x
            WHERE x.expires_at < v_now - interval '1 day 1 hour'
              AND x.expires_at < x.used_at + interval '9 years'  -- else: names no expiry
            ORDER BY x.expires_at
            LIMIT p_batch
            FOR UPDATE SKIP LOCKED
        ))
        RETURNING 1
    )
    SELECT count(*) INTO v_n FROM gone;
    RETURN v_n;
END $$;


--
-- Name: prune_v1(interval, text[], text, text[], boolean, boolean, integer, text, timestamp with time zone, bigint, timestamp with time zone, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.prune_v1(p_older_than interval DEFAULT NULL::interval, p_statuses text[] DEFAULT NULL::text[], p_tenant text DEFAULT NULL::text, p_types text[] DEFAULT NULL::text[], p_runs_only boolean DEFAULT false, p_dry_run boolean DEFAULT false, p_batch integer DEFAULT 1000, p_after_type text DEFAULT NULL::text, p_after_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_after_id bigint DEFAULT NULL::bigint, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_project text DEFAULT NULL::text) RETURNS TABLE(jobs bigint, events bigint, attempts bigint, results bigint, runs bigint, after_type text, after_at timestamp with time zone, after_id bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := jobforge.clock(p_now);
    v_statuses jobforge.job_status[];
    v_bad      text;
    v_scope    text := jobforge.require_project_scope();
    v_project  text := coalesce(p_project, v_scope);
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'prune: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_older_than IS NOT NULL
       AND NOT (p_older_than >= interval '0' AND p_older_than <= interval '100 years') THEN
        RAISE EXCEPTION 'prune: older_than % is out of range 0-100 years', p_older_than
            USING ERRCODE = 'JF006';
    END IF;
    SELECT s INTO v_bad FROM unnest(p_statuses) AS s
    WHERE s IS NULL OR s NOT IN ('succeeded', 'failed', 'dead', 'canceled') LIMIT 1;
    IF FOUND OR cardinality(p_statuses) = 0 THEN
        RAISE EXCEPTION
            'prune: status % is not a finished state: use succeeded, failed, dead or canceled',
            coalesce(quote_literal(left(v_bad, 40)), 'null') USING ERRCODE = 'JF006';
    END IF;
    v_statuses := coalesce(p_statuses, ARRAY['succeeded', 'failed', 'dead', 'canceled'])
                  ::jobforge.job_status[];
    IF p_tenant IS NOT NULL AND (p_tenant !~ '^[A-Za-z0-9._:-]+$' OR length(p_tenant) > 128) THEN
        RAISE EXCEPTION 'prune: tenant % is not a valid tenant id',
            quote_literal(left(p_tenant, 130)) USING ERRCODE = 'JF006';
    END IF;
    IF p_project IS NOT NULL AND (p_project !~ '^[A-Za-z0-9._-]+$' OR length(p_project) > 128) THEN
        RAISE EXCEPTION 'prune: project % is not a valid project name',
            quote_literal(left(p_project, 130)) USING ERRCODE = 'JF006';
    END IF;
    IF p_project <> v_scope THEN
        RAISE EXCEPTION 'prune: project % is outside this session''s project %',
            quote_literal(p_project), quote_literal(v_scope) USING ERRCODE = 'JF003';
    END IF;
    SELECT t INTO v_bad FROM unnest(p_types) AS t
    WHERE t IS NULL OR t !~ '^[a-z0-9._-]+$' OR length(t) > 200 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'prune: type % is not a valid job type',
            coalesce(quote_literal(left(v_bad, 200)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 50000 THEN
        RAISE EXCEPTION 'prune: batch % is out of range 1-50000', p_batch USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY SELECT * FROM jobforge.prune_batch(
        p_older_than, v_statuses, p_tenant, p_types, coalesce(p_runs_only, false),
        coalesce(p_dry_run, false), p_batch, p_after_type, p_after_at, p_after_id, v_now, v_project);
END $_$;


--
-- Name: reap_v1(integer, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.reap_v1(p_limit integer DEFAULT 1000, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := jobforge.clock(p_now);
    v_n   integer;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'reap: limit must be 1-100000' USING ERRCODE = 'JF006';
    END IF;
    WITH expired AS MATERIALIZED (
        SELECT j.id, j.tenant_id, j.attempts, j.lease_holder, j.lease_token,
               j.attempts >= j.max_attempts AS exhausted
        FROM jobforge.jobs j
        WHERE j.status = 'running' AND j.lease_expires_at <= v_now
        ORDER BY j.lease_expires_at, j.id  -- ties broken the same way every time
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ),
    closed AS (
        UPDATE jobforge.job_attempts a SET finished_at = v_now, outcome = 'lease_expired'
        FROM expired e WHERE a.lease_token = e.lease_token
    ),
    updated AS (
        UPDATE jobforge.jobs j
        SET status = CASE WHEN e.exhausted THEN 'dead' ELSE 'queued' END::jobforge.job_status,
            lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL, updated_at = v_now,
            run_at = CASE WHEN e.exhausted THEN j.run_at ELSE v_now END,
            finished_at = CASE WHEN e.exhausted THEN v_now END,
            error = CASE WHEN e.exhausted THEN jsonb_build_object('kind', 'lease_expired', 'message',
                         'the worker stopped heartbeating and no attempts are left') END
        FROM expired e WHERE j.id = e.id
    ),
    logged AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker)
        SELECT x.id, x.tenant_id, x.kind, v_now, x.attempts, x.worker
        FROM (
            SELECT e.id, e.tenant_id, 'lease_expired' AS kind, e.attempts, e.lease_holder AS worker, 0 AS n
            FROM expired e
            UNION ALL
            SELECT e.id, e.tenant_id, 'dead', e.attempts, NULL, 1 FROM expired e WHERE e.exhausted
        ) x ORDER BY x.id, x.n
    )
    SELECT count(*) INTO v_n FROM expired;
    RETURN v_n;
END $$;


--
-- Name: record_run_v1(text, bigint, uuid, text, text, text, text, text, text, jsonb, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.record_run_v1(p_worker text, p_job_id bigint, p_token uuid, p_runner_id text, p_runner_version text, p_status text, p_input_sha256 text, p_output_sha256 text, p_trace_sha256 text, p_record jsonb, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_now     timestamptz := jobforge.clock(p_now);
    v_token   uuid := jobforge.lease_id(p_token);
    v_limit   integer := (SELECT s.max_record_bytes FROM jobforge.settings s);
    v_attempt jobforge.job_attempts;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_runner_id IS NULL OR p_runner_id !~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)*$' OR length(p_runner_id) > 200 THEN
        RAISE EXCEPTION 'record_run: runner id % is invalid', quote_literal(left(p_runner_id, 240))
            USING ERRCODE = 'JF006';
    END IF;
    IF octet_length(p_record::text) > v_limit THEN
        RAISE EXCEPTION 'record_run: the record is % bytes, over the limit of %',
            octet_length(p_record::text), v_limit USING ERRCODE = 'JF005';
    END IF;
    SELECT a.* INTO v_attempt FROM jobforge.job_attempts a
    WHERE a.lease_token = v_token AND a.job_id = p_job_id AND a.worker = p_worker;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO jobforge.job_runs (job_id, tenant_id, attempt, lease_token, runner_id,
                                   runner_version, status, input_sha256, output_sha256,
                                   trace_sha256, record, recorded_at)
    VALUES (p_job_id, v_attempt.tenant_id, v_attempt.attempt, v_token, p_runner_id,
            p_runner_version, p_status, p_input_sha256, p_output_sha256, p_trace_sha256,
            p_record, v_now)
    ON CONFLICT (lease_token) DO NOTHING;
    RETURN FOUND;
END $_$;


--
-- Name: record_run_v2(text, bigint, uuid, text, text, text, text, text, text, jsonb, text[], text[], bigint[], bytea[], timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.record_run_v2(p_worker text, p_job_id bigint, p_token uuid, p_runner_id text, p_runner_version text, p_status text, p_input_sha256 text, p_output_sha256 text, p_trace_sha256 text, p_record jsonb, p_names text[], p_shas text[], p_sizes bigint[], p_datas bytea[] DEFAULT NULL::bytea[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_now    timestamptz := jobforge.clock(p_now);
    v_token  uuid := jobforge.lease_id(p_token);
    v_tenant text;
    v_bad    text;
BEGIN
    PERFORM jobforge.require_worker();
    IF cardinality(p_names) IS DISTINCT FROM cardinality(p_shas)
       OR cardinality(p_names) IS DISTINCT FROM cardinality(p_sizes)
       OR (p_datas IS NOT NULL AND cardinality(p_datas) IS DISTINCT FROM cardinality(p_names)) THEN
        RAISE EXCEPTION 'record_run: % artifact names, % hashes, % sizes and % contents',
            cardinality(p_names), cardinality(p_shas), cardinality(p_sizes), cardinality(p_datas)
            USING ERRCODE = 'JF006';
    END IF;
    SELECT n INTO v_bad FROM unnest(p_names) AS n
    WHERE n IS NULL OR NOT (n = '@logs.jsonl' OR (n ~ '^[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,199}$'
        AND n !~ '(^|/)\.{1,2}(/|$)' AND n !~ '//' AND n !~ '/$'))
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'record_run: artifact name % is invalid',
            coalesce(quote_literal(left(v_bad, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF (SELECT count(DISTINCT n) FROM unnest(p_names) AS n) <> coalesce(cardinality(p_names), 0)
    THEN
        RAISE EXCEPTION 'record_run: an artifact name is given twice' USING ERRCODE = 'JF006';
    END IF;
    SELECT a.name INTO v_bad
    FROM unnest(p_names, p_shas, p_sizes, p_datas) AS a(name, sha256, size, data)
    WHERE a.data IS NOT NULL AND (
        octet_length(a.data) > 1048576 OR octet_length(a.data) IS DISTINCT FROM a.size
        OR a.sha256 IS DISTINCT FROM 'sha256:' || encode(sha256(a.data), 'hex'))
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'record_run: the bytes of artifact % are not of its sha256 and size, or '
            'more than one chunk', coalesce(quote_literal(left(v_bad, 240)), 'null')
            USING ERRCODE = 'JF006';
    END IF;
    v_tenant := jobforge.artifact_fence(p_worker, p_job_id, p_token);
    IF NOT jobforge.record_run_v1(p_worker, p_job_id, p_token, p_runner_id, p_runner_version,
                                  p_status, p_input_sha256, p_output_sha256, p_trace_sha256,
                                  p_record, p_now) THEN
        RETURN false;
    END IF;
    IF p_datas IS NOT NULL THEN  -- the small ones, hashed above: stored (or found stored) here
        INSERT INTO jobforge.artifact_blobs AS b (tenant_id, sha256, size, chunks, complete,
                                                  created_at, touched_at)
        SELECT DISTINCT ON (a.sha256) v_tenant, a.sha256, octet_length(a.data),
               (octet_length(a.data) + 1048575) / 1048576, true, v_now, v_now
        FROM unnest(p_shas, p_datas) AS a(sha256, data)
        WHERE a.data IS NOT NULL
        ORDER BY a.sha256
        ON CONFLICT (tenant_id, sha256) DO UPDATE
        SET touched_at = EXCLUDED.touched_at, size = EXCLUDED.size, chunks = EXCLUDED.chunks,
            complete = true;
        INSERT INTO jobforge.artifact_chunks AS c (tenant_id, sha256, seq, data)
        SELECT DISTINCT ON (a.sha256) v_tenant, a.sha256, 0, a.data
        FROM unnest(p_shas, p_datas) AS a(sha256, data)
        WHERE octet_length(a.data) > 0
        ORDER BY a.sha256
        ON CONFLICT (tenant_id, sha256, seq) DO UPDATE SET data = EXCLUDED.data
        WHERE c.data IS DISTINCT FROM EXCLUDED.data;  -- bytes just hashed win over any others
    END IF;
    SELECT a.name INTO v_bad
    FROM unnest(p_names, p_shas, p_sizes) AS a(name, sha256, size)
    WHERE NOT EXISTS (SELECT 1 FROM jobforge.artifact_blobs b
                      WHERE b.tenant_id = v_tenant AND b.sha256 = a.sha256
                        AND b.size = a.size AND b.complete)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'record_run: artifact % is not stored complete with that hash and size',
            coalesce(quote_literal(left(v_bad, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    INSERT INTO jobforge.artifact_refs (tenant_id, lease_token, name, sha256, size)
    SELECT v_tenant, v_token, a.name, a.sha256, a.size
    FROM unnest(p_names, p_shas, p_sizes) AS a(name, sha256, size);
    RETURN true;
END $_$;


--
-- Name: release_v1(text, bigint[], uuid[], timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.release_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(job_id bigint, state text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := jobforge.clock(p_now);
BEGIN
    PERFORM jobforge.require_worker();
    RETURN QUERY
    WITH input AS (
        SELECT u.i, u.id, jobforge.lease_id(u.token) AS token,
               u.i = min(u.i) OVER (PARTITION BY u.id, u.token) AS first
        FROM unnest(p_job_ids, p_tokens) WITH ORDINALITY AS u(id, token, i)
    ),
    fenced AS MATERIALIZED (
        SELECT j.id, j.tenant_id, j.attempts, input.token
        FROM (SELECT * FROM input WHERE input.first ORDER BY input.id) input
        CROSS JOIN LATERAL (
            SELECT j.id, j.tenant_id, j.attempts FROM jobforge.jobs j
            WHERE j.id = input.id AND j.lease_token = input.token AND j.lease_holder = p_worker
              AND j.lease_expires_at IS NOT NULL  -- running: jobs_lease_iff_running
            FOR UPDATE
        ) j
    ),
    updated AS (
        UPDATE jobforge.jobs j
        SET status = 'queued', attempts = j.attempts - 1, run_at = v_now,
            lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL, updated_at = v_now
        FROM fenced f WHERE j.id = f.id
    ),
    attempts AS (
        UPDATE jobforge.job_attempts a SET finished_at = v_now, outcome = 'released'
        FROM fenced f WHERE a.lease_token = f.token
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker)
        SELECT f.id, f.tenant_id, 'released', v_now, f.attempts, p_worker FROM fenced f ORDER BY f.id
    )
    SELECT input.id, CASE WHEN input.first AND f.token = input.token THEN 'released' ELSE 'lost' END
    FROM input LEFT JOIN fenced f ON f.id = input.id
    ORDER BY input.i;
END $$;


--
-- Name: require_feature(text, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.require_feature(p_feature text, p_tenant text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF NOT p_feature = ANY (jobforge.known_features()) THEN
        RAISE EXCEPTION 'unknown feature %: known features are %', quote_literal(left(p_feature, 60)),
            array_to_string(jobforge.known_features(), ', ') USING ERRCODE = 'JF006';
    END IF;
    IF NOT jobforge.feature_enabled(p_feature, p_tenant) THEN
        RAISE EXCEPTION 'feature ''%'' is disabled for tenant % (jobforge features enable % --tenant %)',
            p_feature, p_tenant, p_feature, p_tenant USING ERRCODE = 'JF007';
    END IF;
END $$;


--
-- Name: require_project_scope(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.require_project_scope() RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_asked    text := nullif(current_setting('jobforge.project', true), '');
    v_projects text[];
BEGIN
    SELECT l.projects INTO v_projects FROM jobforge.tenant_logins l WHERE l.login = session_user;
    IF v_projects IS NULL THEN
        RETURN v_asked;
    END IF;
    IF v_asked IS NULL THEN
        RAISE EXCEPTION 'login % is bound to projects (jobforge.tenant_logins): name one (jobforge.project)',
            session_user USING ERRCODE = 'JF003';
    END IF;
    IF NOT coalesce(v_asked = ANY (v_projects), false) THEN
        RAISE EXCEPTION 'login % may not act for project % (jobforge.tenant_logins)',
            session_user, quote_literal(left(v_asked, 130)) USING ERRCODE = 'JF003';
    END IF;
    RETURN v_asked;
END $$;


--
-- Name: require_tenant(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.require_tenant() RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_asked   text := nullif(current_setting('jobforge.tenant', true), '');
    v_tenants text[];
BEGIN
    IF v_asked IS NULL THEN
        RAISE EXCEPTION 'no tenant is set for this transaction (jobforge.tenant)'
            USING ERRCODE = 'JF003';
    END IF;
    SELECT l.tenants INTO v_tenants FROM jobforge.tenant_logins l WHERE l.login = session_user;
    IF FOUND AND NOT coalesce(v_asked = ANY (v_tenants), false) THEN
        RAISE EXCEPTION 'login % may not act for tenant % (jobforge.tenant_logins)',
            session_user, quote_literal(left(v_asked, 130)) USING ERRCODE = 'JF003';
    END IF;
    RETURN v_asked;
END $$;


--
-- Name: require_whole_tenant_login(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.require_whole_tenant_login() RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM jobforge.tenant_logins l
               WHERE l.login = session_user AND l.projects IS NOT NULL) THEN
        RAISE EXCEPTION 'login % is bound to projects (jobforge.tenant_logins): a connector is the '
            'whole tenant''s, set or removed by a login bound to no project', session_user
            USING ERRCODE = 'JF003';
    END IF;
END $$;


--
-- Name: require_worker(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.require_worker() RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF NOT pg_has_role(session_user, 'jobforge_worker', 'MEMBER') THEN
        RAISE EXCEPTION 'role % may not act as a jobforge worker (grant jobforge_worker)', session_user
            USING ERRCODE = '42501';
    END IF;
END $$;


--
-- Name: reschedule_v1(bigint, boolean, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.reschedule_v1(p_job_id bigint, p_reset_attempts boolean DEFAULT false, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS jobforge.job_status
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_project text := jobforge.require_project_scope();
    v_now    timestamptz := jobforge.clock(p_now);
    v_job    jobforge.jobs;
BEGIN
    PERFORM jobforge.check_run_at(p_run_at, v_now, 'reschedule');
    SELECT * INTO v_job FROM jobforge.jobs WHERE id = p_job_id AND tenant_id = v_tenant
      AND project = coalesce(v_project, project) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % not found', p_job_id USING ERRCODE = 'JF004';
    END IF;
    IF v_job.status NOT IN ('failed', 'dead', 'canceled') THEN
        RAISE EXCEPTION 'job % %: only failed, dead or canceled jobs can be rescheduled',
            p_job_id, jobforge.state_phrase(v_job.status) USING ERRCODE = 'JF002';
    END IF;
    IF NOT coalesce(p_reset_attempts, false) AND v_job.attempts >= v_job.max_attempts THEN
        RAISE EXCEPTION 'job % has used %: reschedule it with reset_attempts', p_job_id,
            CASE WHEN v_job.max_attempts = 1 THEN 'its 1 attempt'
                 ELSE 'all ' || v_job.max_attempts || ' attempts' END USING ERRCODE = 'JF002';
    END IF;
    UPDATE jobforge.jobs
    SET status = 'queued', finished_at = NULL, error = NULL, updated_at = v_now,
        run_at = coalesce(p_run_at, v_now),
        attempts = CASE WHEN p_reset_attempts THEN 0 ELSE attempts END
    WHERE id = p_job_id;
    INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, data)
    VALUES (p_job_id, v_tenant, v_job.project, 'rescheduled', v_now,
            jsonb_build_object('from', v_job.status, 'reset_attempts', coalesce(p_reset_attempts, false)));
    RETURN 'queued';
END $$;


--
-- Name: schedules; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.schedules (
    id bigint NOT NULL,
    tenant_id text NOT NULL,
    name text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL,
    type text NOT NULL,
    input jsonb NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    max_attempts integer,
    missed text DEFAULT 'latest'::text NOT NULL,
    catch_up integer DEFAULT 10 NOT NULL,
    grace interval DEFAULT '00:01:00'::interval NOT NULL,
    dry_run boolean DEFAULT false NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    held boolean DEFAULT false NOT NULL,
    broken text,
    anchor timestamp with time zone NOT NULL,
    next_slot timestamp with time zone,
    last_slot timestamp with time zone,
    last_fired_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    login text DEFAULT SESSION_USER NOT NULL,
    actor text DEFAULT NULLIF(current_setting('jobforge.actor'::text, true), ''::text),
    CONSTRAINT schedules_actor_check CHECK (((actor IS NULL) OR (((length(actor) >= 1) AND (length(actor) <= 200)) AND (actor !~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]'::text)))),
    CONSTRAINT schedules_broken_check CHECK ((length(broken) <= 500)),
    CONSTRAINT schedules_catch_up_check CHECK (((catch_up >= 1) AND (catch_up <= 1000))),
    CONSTRAINT schedules_cron_check CHECK ((((length(cron) >= 1) AND (length(cron) <= 200)) AND (cron !~ '[[:cntrl:]]'::text))),
    CONSTRAINT schedules_grace_check CHECK (((grace >= '00:00:00'::interval) AND (grace <= '1 day'::interval))),
    CONSTRAINT schedules_input_check CHECK ((jsonb_typeof(input) = 'object'::text)),
    CONSTRAINT schedules_input_check1 CHECK ((octet_length((input)::text) <= 1048576)),
    CONSTRAINT schedules_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 1000))),
    CONSTRAINT schedules_missed_check CHECK ((missed = ANY (ARRAY['latest'::text, 'all'::text, 'skip'::text]))),
    CONSTRAINT schedules_name_check CHECK ((name ~ '^[a-z0-9][a-z0-9._-]{0,99}$'::text)),
    CONSTRAINT schedules_priority_check CHECK (((priority >= 0) AND (priority <= 32767))),
    CONSTRAINT schedules_timezone_check CHECK (((length(timezone) >= 1) AND (length(timezone) <= 64))),
    CONSTRAINT schedules_type_check CHECK (((type ~ '^[a-z0-9._-]+$'::text) AND (length(type) <= 200)))
);

ALTER TABLE ONLY jobforge.schedules FORCE ROW LEVEL SECURITY;


--
-- Name: schedule_add_v1(text, text, text, text, jsonb, integer, integer, text, integer, interval, boolean, boolean, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.schedule_add_v1(p_name text, p_cron text, p_timezone text, p_type text, p_input jsonb, p_priority integer DEFAULT 0, p_max_attempts integer DEFAULT NULL::integer, p_missed text DEFAULT 'latest'::text, p_catch_up integer DEFAULT 10, p_grace interval DEFAULT '00:01:00'::interval, p_dry_run boolean DEFAULT false, p_paused boolean DEFAULT false, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF jobforge.schedules
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_now     timestamptz := jobforge.clock(p_now);
    v_limit   integer;
    v_problem text;
BEGIN
    PERFORM jobforge.require_feature('schedules', v_tenant);
    IF p_name IS NULL OR p_name !~ '^[a-z0-9][a-z0-9._-]{0,99}$' THEN
        RAISE EXCEPTION 'schedule name % is invalid: use 1-100 of [a-z0-9._-], starting with a letter or digit',
            coalesce(quote_literal(left(p_name, 120)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_cron IS NULL OR length(p_cron) NOT BETWEEN 1 AND 200 OR p_cron ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'schedule %: the cron expression must be 1-200 printable characters',
            p_name USING ERRCODE = 'JF006';
    END IF;
    IF p_timezone IS NULL OR length(p_timezone) NOT BETWEEN 1 AND 64
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = p_timezone) THEN
        RAISE EXCEPTION 'schedule %: unknown time zone % (an IANA name such as Europe/Paris or UTC)',
            p_name, coalesce(quote_literal(left(p_timezone, 70)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_type IS NULL OR p_type !~ '^[a-z0-9._-]+$' OR length(p_type) > 200 THEN
        RAISE EXCEPTION 'schedule %: job type % is invalid: use 1-200 of [a-z0-9._-]', p_name,
            coalesce(quote_literal(left(p_type, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_input IS NULL OR jsonb_typeof(p_input) <> 'object' THEN
        RAISE EXCEPTION 'schedule %: the input must be a JSON object, not %', p_name,
            coalesce(jsonb_typeof(p_input), 'null') USING ERRCODE = 'JF006';
    END IF;
    SELECT s.max_payload_bytes INTO v_limit FROM jobforge.settings s;
    IF octet_length(p_input::text) > v_limit THEN
        RAISE EXCEPTION 'schedule %: the input is % bytes, over the limit of %', p_name,
            octet_length(p_input::text), v_limit USING ERRCODE = 'JF005';
    END IF;
    v_problem := jobforge.json_problem(p_input);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'schedule %: the input cannot be stored: %', p_name, v_problem
            USING ERRCODE = 'JF006';
    END IF;
    IF p_priority IS NULL OR p_priority NOT BETWEEN 0 AND 32767 THEN
        RAISE EXCEPTION 'schedule %: priority % is out of range 0-32767', p_name,
            coalesce(p_priority::text, 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'schedule %: max_attempts % is out of range 1-1000', p_name, p_max_attempts
            USING ERRCODE = 'JF006';
    END IF;
    IF p_missed IS NULL OR p_missed NOT IN ('latest', 'all', 'skip') THEN
        RAISE EXCEPTION 'schedule %: missed-slot policy % is unknown: use latest, all or skip',
            p_name, coalesce(quote_literal(left(p_missed, 40)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_catch_up IS NULL OR p_catch_up NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'schedule %: catch_up % is out of range 1-1000', p_name,
            coalesce(p_catch_up::text, 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_grace IS NULL OR NOT (p_grace >= interval '0' AND p_grace <= interval '1 day') THEN
        RAISE EXCEPTION 'schedule %: grace % is out of range 0 s to 1 day', p_name,
            coalesce(p_grace::text, 'null') USING ERRCODE = 'JF006';
    END IF;
    -- a bound on what one tenant makes every worker do (each schedule may fire every minute)
    IF (SELECT count(*) FROM jobforge.schedules s WHERE s.tenant_id = v_tenant) >= 1000 THEN
        RAISE EXCEPTION 'schedule %: tenant % has 1000 schedules already, the most it may have',
            p_name, v_tenant USING ERRCODE = 'JF006';
    END IF;
    IF EXISTS (SELECT 1 FROM jobforge.schedules s WHERE s.tenant_id = v_tenant AND s.name = p_name) THEN
        RAISE EXCEPTION 'schedule % already exists for tenant % (remove it first: jobforge schedules rm %)',
            quote_literal(p_name), v_tenant, p_name USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    INSERT INTO jobforge.schedules AS s (tenant_id, name, cron, timezone, type, input, priority,
                                         max_attempts, missed, catch_up, grace, dry_run, paused,
                                         anchor, created_at, updated_at)
    VALUES (v_tenant, p_name, p_cron, p_timezone, p_type, p_input, p_priority, p_max_attempts,
            p_missed, p_catch_up, p_grace, coalesce(p_dry_run, false), coalesce(p_paused, false),
            v_now, v_now, v_now)
    RETURNING s.*;
EXCEPTION WHEN unique_violation THEN  -- a concurrent add of the same name won
    RAISE EXCEPTION 'schedule % already exists for tenant % (remove it first: jobforge schedules rm %)',
        quote_literal(p_name), v_tenant, p_name USING ERRCODE = 'JF006';
END $_$;


--
-- Name: schedule_fire_v1(jsonb, text, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.schedule_fire_v1(p_plans jsonb, p_worker text, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(schedule_id bigint, tenant_id text, name text, slot timestamp with time zone, outcome text, job_id bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := jobforge.clock(p_now);
    v_plan     jsonb;
    v_row      jobforge.schedules;
    v_slots    timestamptz[];
    v_slot     timestamptz;
    v_next     timestamptz;
    v_key      text;
    v_job      record;
    v_tenant   text := current_setting('jobforge.tenant', true);
    v_actor    text := current_setting('jobforge.actor', true);
    v_skip     jsonb;
    v_cut      bigint;
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'schedules: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_plans IS NULL OR jsonb_typeof(p_plans) <> 'array' OR jsonb_array_length(p_plans) > 10000 THEN
        RAISE EXCEPTION 'schedules: the plans must be a JSON array of at most 10000'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_worker IS NULL OR length(p_worker) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'schedules: the worker name must be 1-200 characters' USING ERRCODE = 'JF006';
    END IF;
    FOR v_plan IN SELECT e FROM jsonb_array_elements(p_plans) AS e LOOP
        -- the row, if this transaction holds it (or can take it at once) and it is as planned
        SELECT * INTO v_row FROM jobforge.schedules s
        WHERE s.id = (v_plan->>'id')::bigint FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND OR v_row.paused
            OR v_row.next_slot IS DISTINCT FROM (v_plan->>'expected')::timestamptz;

        IF v_plan->>'error' IS NOT NULL THEN
            INSERT INTO jobforge.schedule_firings AS f
                (tenant_id, schedule_id, slot, fired_at, outcome, detail, worker)
            VALUES (v_row.tenant_id, v_row.id, NULL, v_now, 'failed',
                    left('paused: ' || (v_plan->>'error'), 1000), p_worker);
            UPDATE jobforge.schedules s
            SET paused = true, broken = left(v_plan->>'error', 500), next_slot = NULL,
                updated_at = v_now
            WHERE s.id = v_row.id;
            RETURN QUERY SELECT v_row.id, v_row.tenant_id, v_row.name, NULL::timestamptz,
                                'failed'::text, NULL::bigint;
            CONTINUE;
        END IF;

        SELECT coalesce(array_agg(x::timestamptz ORDER BY x::timestamptz), '{}')
        INTO v_slots FROM jsonb_array_elements_text(coalesce(v_plan->'fire', '[]')) AS x;
        v_next := (v_plan->>'next')::timestamptz;
        IF v_next IS NULL OR v_next <= v_now OR NOT isfinite(v_next)
           OR v_next > v_now + interval '100 years' OR cardinality(v_slots) > 2500
           OR v_slots[cardinality(v_slots)] > v_now OR v_slots[1] <= v_row.anchor
           OR v_slots[1] <= v_row.last_slot
           OR jsonb_array_length(coalesce(v_plan->'skips', '[]')) > 101 THEN
            -- a worker's plan this schedule cannot take: paused, with why, and the pass goes
            -- on with the others (raising would stall every schedule of the pass, each pass)
            INSERT INTO jobforge.schedule_firings AS f
                (tenant_id, schedule_id, slot, fired_at, outcome, detail, worker)
            VALUES (v_row.tenant_id, v_row.id, NULL, v_now, 'failed',
                    left(format('paused: the worker''s plan is out of bounds (%s slots from %s '
                                'to %s, next %s)', cardinality(v_slots), v_slots[1],
                                v_slots[cardinality(v_slots)], v_next), 1000), p_worker);
            UPDATE jobforge.schedules s
            SET paused = true, broken = 'the worker''s plan was out of bounds (jobforge '
                                        'schedules firings)', next_slot = NULL, updated_at = v_now
            WHERE s.id = v_row.id;
            RETURN QUERY SELECT v_row.id, v_row.tenant_id, v_row.name, NULL::timestamptz,
                                'failed'::text, NULL::bigint;
            CONTINUE;
        END IF;

        FOR v_skip IN SELECT e FROM jsonb_array_elements(coalesce(v_plan->'skips', '[]')) AS e LOOP
            INSERT INTO jobforge.schedule_firings AS f
                (tenant_id, schedule_id, slot, fired_at, outcome, detail, worker)
            VALUES (v_row.tenant_id, v_row.id, (v_skip->>'slot')::timestamptz, v_now, 'skipped',
                    left(v_skip->>'detail', 1000), p_worker);
        END LOOP;

        FOREACH v_slot IN ARRAY v_slots LOOP
            v_key := 'schedule:' || v_row.name || ':'
                     || to_char(v_slot AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
            IF v_row.dry_run THEN
                INSERT INTO jobforge.schedule_firings AS f
                    (tenant_id, schedule_id, slot, fired_at, outcome, job, worker)
                VALUES (v_row.tenant_id, v_row.id, v_slot, v_now, 'dry_run',
                        jsonb_build_object('type', v_row.type, 'payload', v_row.input,
                                           'priority', v_row.priority,
                                           'max_attempts', coalesce(v_row.max_attempts, 3),
                                           'run_at', v_slot, 'idempotency_key', v_key),
                        p_worker);
                RETURN QUERY SELECT v_row.id, v_row.tenant_id, v_row.name, v_slot,
                                    'dry_run'::text, NULL::bigint;
                CONTINUE;
            END IF;
            BEGIN
                PERFORM set_config('jobforge.tenant', v_row.tenant_id, true);
                PERFORM set_config('jobforge.actor', 'schedule:' || v_row.name, true);
                SELECT e.job_id, e.created INTO v_job
                FROM jobforge.enqueue_v1(
                    ARRAY[v_row.type], ARRAY[v_row.input], ARRAY[v_key], ARRAY[v_row.priority],
                    ARRAY[v_slot],
                    CASE WHEN v_row.max_attempts IS NULL THEN NULL ELSE ARRAY[v_row.max_attempts] END,
                    NULL, p_now, NULL) e;
                PERFORM set_config('jobforge.tenant', coalesce(v_tenant, ''), true);
                PERFORM set_config('jobforge.actor', coalesce(v_actor, ''), true);
                INSERT INTO jobforge.schedule_firings AS f
                    (tenant_id, schedule_id, slot, fired_at, outcome, job_id, worker)
                VALUES (v_row.tenant_id, v_row.id, v_slot, v_now,
                        CASE WHEN v_job.created THEN 'enqueued' ELSE 'existing' END, v_job.job_id,
                        p_worker);
                RETURN QUERY SELECT v_row.id, v_row.tenant_id, v_row.name, v_slot,
                                    CASE WHEN v_job.created THEN 'enqueued' ELSE 'existing' END,
                                    v_job.job_id;
            EXCEPTION WHEN OTHERS THEN  -- the settings go back with the subtransaction
                INSERT INTO jobforge.schedule_firings AS f
                    (tenant_id, schedule_id, slot, fired_at, outcome, detail, worker)
                VALUES (v_row.tenant_id, v_row.id, v_slot, v_now, 'failed', left(SQLERRM, 1000),
                        p_worker);
                RETURN QUERY SELECT v_row.id, v_row.tenant_id, v_row.name, v_slot,
                                    'failed'::text, NULL::bigint;
            END;
        END LOOP;

        UPDATE jobforge.schedules s
        SET next_slot = v_next,
            last_slot = coalesce(v_slots[cardinality(v_slots)], s.last_slot),
            last_fired_at = CASE WHEN cardinality(v_slots) > 0 THEN v_now ELSE s.last_fired_at END
        WHERE s.id = v_row.id;

        -- the log keeps the schedule's last 1,000 entries
        SELECT f.id INTO v_cut FROM jobforge.schedule_firings f
        WHERE f.schedule_id = v_row.id ORDER BY f.id DESC OFFSET 1000 LIMIT 1;
        IF FOUND THEN
            DELETE FROM jobforge.schedule_firings f
            WHERE f.schedule_id = v_row.id AND f.id <= v_cut;
        END IF;
    END LOOP;
END $$;


--
-- Name: schedule_locked(text, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.schedule_locked(p_tenant text, p_name text) RETURNS jobforge.schedules
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_row jobforge.schedules;
BEGIN
    SELECT * INTO v_row FROM jobforge.schedules s
    WHERE s.tenant_id = p_tenant AND s.name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schedule % not found for tenant %',
            coalesce(quote_literal(left(p_name, 120)), 'null'), p_tenant USING ERRCODE = 'JF004';
    END IF;
    RETURN v_row;
END $$;


--
-- Name: schedule_pause_v1(text, boolean, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.schedule_pause_v1(p_name text, p_paused boolean, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF jobforge.schedules
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_now    timestamptz := jobforge.clock(p_now);
    v_row    jobforge.schedules;
BEGIN
    IF p_paused IS NULL THEN
        RAISE EXCEPTION 'schedules: paused must be true or false' USING ERRCODE = 'JF006';
    END IF;
    IF NOT p_paused THEN
        PERFORM jobforge.require_feature('schedules', v_tenant);
    END IF;
    v_row := jobforge.schedule_locked(v_tenant, p_name);
    IF p_paused THEN
        RETURN QUERY UPDATE jobforge.schedules s
                     SET paused = true, updated_at = v_now, login = DEFAULT, actor = DEFAULT
                     WHERE s.id = v_row.id RETURNING s.*;
    ELSIF v_row.paused THEN
        RETURN QUERY UPDATE jobforge.schedules s
                     SET paused = false, held = false, broken = NULL, anchor = v_now,
                         next_slot = NULL, updated_at = v_now, login = DEFAULT, actor = DEFAULT
                     WHERE s.id = v_row.id RETURNING s.*;
    ELSE  -- running already: nothing changes (its slots are not reset)
        RETURN QUERY SELECT v_row.*;
    END IF;
END $$;


--
-- Name: schedule_remove_v1(text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.schedule_remove_v1(p_name text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_row    jobforge.schedules;
BEGIN
    v_row := jobforge.schedule_locked(v_tenant, p_name);
    DELETE FROM jobforge.schedules s WHERE s.id = v_row.id;
    RETURN v_row.id;
END $$;


--
-- Name: schedules_due_v1(integer, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.schedules_due_v1(p_limit integer DEFAULT 100, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(id bigint, tenant_id text, name text, cron text, timezone text, missed text, catch_up integer, grace interval, anchor timestamp with time zone, next_slot timestamp with time zone, last_slot timestamp with time zone, now timestamp with time zone)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := jobforge.clock(p_now);
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'schedules: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'schedules: limit % is out of range 1-10000', p_limit USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    SELECT s.id, s.tenant_id, s.name, s.cron, s.timezone, s.missed, s.catch_up, s.grace, s.anchor,
           s.next_slot, s.last_slot, v_now
    FROM jobforge.schedules s
    WHERE NOT s.paused AND NOT s.held AND (s.next_slot IS NULL OR s.next_slot <= v_now)
      AND jobforge.feature_enabled('schedules', s.tenant_id)  -- a row added as it was turned off
    ORDER BY s.next_slot NULLS FIRST
    LIMIT p_limit
    FOR UPDATE OF s SKIP LOCKED;
END $$;


--
-- Name: features; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.features (
    feature text NOT NULL,
    tenant text NOT NULL,
    enabled boolean NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    login text DEFAULT SESSION_USER NOT NULL,
    actor text DEFAULT NULLIF(current_setting('jobforge.actor'::text, true), ''::text),
    CONSTRAINT features_actor_check CHECK (((actor IS NULL) OR (((length(actor) >= 1) AND (length(actor) <= 200)) AND (actor !~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]'::text)))),
    CONSTRAINT features_feature_check CHECK ((feature = ANY (jobforge.known_features()))),
    CONSTRAINT features_tenant_check CHECK (((tenant = '*'::text) OR ((tenant ~ '^[A-Za-z0-9._:-]+$'::text) AND (length(tenant) <= 128))))
);

ALTER TABLE ONLY jobforge.features FORCE ROW LEVEL SECURITY;


--
-- Name: set_feature_v1(text, text, boolean, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.set_feature_v1(p_feature text, p_tenant text, p_enabled boolean, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF jobforge.features
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_now timestamptz := jobforge.clock(p_now);
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'features: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_feature IS NULL OR NOT p_feature = ANY (jobforge.known_features()) THEN
        RAISE EXCEPTION 'unknown feature %: known features are %',
            coalesce(quote_literal(left(p_feature, 60)), 'null'),
            array_to_string(jobforge.known_features(), ', ') USING ERRCODE = 'JF006';
    END IF;
    IF p_tenant IS NULL
       OR (p_tenant <> '*' AND (p_tenant !~ '^[A-Za-z0-9._:-]+$' OR length(p_tenant) > 128)) THEN
        RAISE EXCEPTION 'features: tenant % is not a valid tenant id',
            coalesce(quote_literal(left(p_tenant, 130)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_enabled IS NULL THEN
        RAISE EXCEPTION 'features: enabled must be true or false' USING ERRCODE = 'JF006';
    END IF;
    INSERT INTO jobforge.features AS f (feature, tenant, enabled, updated_at)
    VALUES (p_feature, p_tenant, p_enabled, v_now)
    ON CONFLICT (feature, tenant) DO UPDATE
        SET enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at,
            login = EXCLUDED.login, actor = EXCLUDED.actor;
    PERFORM jobforge.hold_for_feature(p_feature, p_tenant);
    RETURN QUERY SELECT * FROM jobforge.features f
                 WHERE f.feature = p_feature AND f.tenant = p_tenant;
END $_$;


--
-- Name: queue_limits; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.queue_limits (
    scope text NOT NULL,
    key text NOT NULL,
    max_running integer,
    rate_per_s double precision,
    burst double precision,
    tokens double precision,
    refilled_at timestamp with time zone,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT queue_limits_bucket CHECK ((((rate_per_s IS NULL) = (burst IS NULL)) AND ((rate_per_s IS NULL) = (tokens IS NULL)) AND ((rate_per_s IS NULL) = (refilled_at IS NULL)))),
    CONSTRAINT queue_limits_burst_check CHECK (((burst >= (1)::double precision) AND (burst <= (1000000)::double precision))),
    CONSTRAINT queue_limits_key_check CHECK (((length(key) >= 1) AND (length(key) <= 200))),
    CONSTRAINT queue_limits_max_running_check CHECK (((max_running >= 1) AND (max_running <= 1000000))),
    CONSTRAINT queue_limits_rate_per_s_check CHECK (((rate_per_s >= (0.000001)::double precision) AND (rate_per_s <= (1000000)::double precision))),
    CONSTRAINT queue_limits_rate_per_type CHECK (((rate_per_s IS NULL) OR (scope = 'type'::text))),
    CONSTRAINT queue_limits_scope_check CHECK ((scope = ANY (ARRAY['type'::text, 'tenant'::text]))),
    CONSTRAINT queue_limits_something CHECK (((max_running IS NOT NULL) OR (rate_per_s IS NOT NULL)))
);


--
-- Name: set_limit_v1(text, text, integer, double precision, double precision, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.set_limit_v1(p_scope text, p_key text, p_max_running integer DEFAULT NULL::integer, p_rate_per_s double precision DEFAULT NULL::double precision, p_burst double precision DEFAULT NULL::double precision, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF jobforge.queue_limits
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_now   timestamptz := jobforge.clock(p_now);
    v_burst double precision := coalesce(p_burst, greatest(1, p_rate_per_s));
BEGIN
    PERFORM jobforge.require_worker();
    IF p_scope IS NULL OR p_scope NOT IN ('type', 'tenant') THEN
        RAISE EXCEPTION 'limit scope % is unknown: use type or tenant',
            coalesce(quote_literal(left(p_scope, 40)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_key IS NULL OR (p_scope = 'type' AND (p_key !~ '^[a-z0-9._-]+$' OR length(p_key) > 200))
       OR (p_scope = 'tenant' AND p_key !~ '^[A-Za-z0-9._:-]{1,128}$') THEN
        RAISE EXCEPTION 'limit key % is not a valid %', coalesce(quote_literal(left(p_key, 240)), 'null'),
            CASE p_scope WHEN 'type' THEN 'job type' ELSE 'tenant id' END USING ERRCODE = 'JF006';
    END IF;
    IF p_max_running IS NULL AND p_rate_per_s IS NULL THEN
        RAISE EXCEPTION 'a limit needs max_running or rate_per_s' USING ERRCODE = 'JF006';
    END IF;
    IF p_max_running IS NOT NULL AND p_max_running NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'max_running % is out of range 1-1000000', p_max_running USING ERRCODE = 'JF006';
    END IF;
    IF p_rate_per_s IS NOT NULL AND p_scope <> 'type' THEN
        RAISE EXCEPTION 'rate limits are per job type, not per %', p_scope USING ERRCODE = 'JF006';
    END IF;
    IF p_rate_per_s IS NOT NULL AND NOT (p_rate_per_s >= 0.000001 AND p_rate_per_s <= 1000000) THEN
        RAISE EXCEPTION 'rate_per_s % is out of range 0.000001-1000000', p_rate_per_s
            USING ERRCODE = 'JF006';
    END IF;
    IF p_burst IS NOT NULL AND p_rate_per_s IS NULL THEN
        RAISE EXCEPTION 'burst needs rate_per_s' USING ERRCODE = 'JF006';
    END IF;
    IF p_rate_per_s IS NOT NULL AND NOT (v_burst >= 1 AND v_burst <= 1000000) THEN
        RAISE EXCEPTION 'burst % is out of range 1-1000000', v_burst USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    INSERT INTO jobforge.queue_limits AS l
        (scope, key, max_running, rate_per_s, burst, tokens, refilled_at, updated_at)
    VALUES (p_scope, p_key, p_max_running, p_rate_per_s,
            CASE WHEN p_rate_per_s IS NOT NULL THEN v_burst END,
            CASE WHEN p_rate_per_s IS NOT NULL THEN v_burst END,
            CASE WHEN p_rate_per_s IS NOT NULL THEN v_now END, v_now)
    ON CONFLICT (scope, key) DO UPDATE
    SET max_running = EXCLUDED.max_running, rate_per_s = EXCLUDED.rate_per_s,
        burst = EXCLUDED.burst,
        tokens = CASE WHEN EXCLUDED.rate_per_s IS NULL THEN NULL
                      ELSE least(coalesce(l.tokens, EXCLUDED.tokens), EXCLUDED.burst) END,
        refilled_at = CASE WHEN EXCLUDED.rate_per_s IS NULL THEN NULL
                           ELSE coalesce(l.refilled_at, EXCLUDED.refilled_at) END,
        updated_at = EXCLUDED.updated_at
    RETURNING l.*;
END $_$;


--
-- Name: retention; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.retention (
    type text NOT NULL,
    keep interval,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT retention_keep_check CHECK (((keep >= '00:00:00'::interval) AND (keep <= '100 years'::interval))),
    CONSTRAINT retention_type_check CHECK (((type = '*'::text) OR ((type ~ '^[a-z0-9._-]+$'::text) AND (length(type) <= 200))))
);


--
-- Name: set_retention_v1(text, interval, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.set_retention_v1(p_type text, p_keep interval, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF jobforge.retention
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_now timestamptz := jobforge.clock(p_now);
BEGIN
    PERFORM jobforge.require_worker();
    IF p_type IS NULL
       OR (p_type <> '*' AND (p_type !~ '^[a-z0-9._-]+$' OR length(p_type) > 200)) THEN
        RAISE EXCEPTION 'retention: % is not a valid job type',
            coalesce(quote_literal(left(p_type, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_keep IS NOT NULL AND NOT (p_keep >= interval '0' AND p_keep <= interval '100 years') THEN
        RAISE EXCEPTION 'retention: keep % is out of range 0-100 years', p_keep
            USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    INSERT INTO jobforge.retention AS r (type, keep, updated_at) VALUES (p_type, p_keep, v_now)
    ON CONFLICT (type) DO UPDATE SET keep = EXCLUDED.keep, updated_at = EXCLUDED.updated_at
    RETURNING r.*;
END $_$;


--
-- Name: signing_key_add_v1(text, bytea, text, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.signing_key_add_v1(p_key_id text, p_public_key bytea, p_owner text, p_valid_from timestamp with time zone DEFAULT NULL::timestamp with time zone, p_valid_until timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_from   timestamptz := coalesce(p_valid_from, now());
    v_old    jobforge.signing_keys;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_key_id IS NULL OR p_key_id !~ '^[A-Za-z0-9._:-]{1,128}$' THEN
        RAISE EXCEPTION 'key id % is invalid: use 1-128 of [A-Za-z0-9._:-]',
            coalesce(quote_literal(left(p_key_id, 140)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_public_key IS NULL OR octet_length(p_public_key) <> 32 THEN
        RAISE EXCEPTION 'key %: an ed25519 public key is 32 bytes, not %', p_key_id,
            coalesce(octet_length(p_public_key), 0) USING ERRCODE = 'JF006';
    END IF;
    IF p_owner IS NULL OR length(p_owner) NOT BETWEEN 1 AND 200 OR p_owner ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'key %: the owner must be 1-200 printable characters', p_key_id
            USING ERRCODE = 'JF006';
    END IF;
    IF NOT isfinite(v_from) OR (p_valid_until IS NOT NULL
                                AND (NOT isfinite(p_valid_until) OR p_valid_until <= v_from)) THEN
        RAISE EXCEPTION 'key %: valid_until must be a finite time after valid_from', p_key_id
            USING ERRCODE = 'JF006';
    END IF;
    SELECT * INTO v_old FROM jobforge.signing_keys k
    WHERE k.tenant_id = v_tenant AND (k.key_id = p_key_id OR k.public_key = p_public_key)
    ORDER BY k.key_id = p_key_id DESC LIMIT 1;
    IF FOUND THEN
        IF v_old.key_id = p_key_id AND v_old.public_key = p_public_key THEN
            RETURN 'unchanged';
        END IF;
        IF v_old.key_id = p_key_id THEN
            RAISE EXCEPTION 'key id % already names another public key of tenant %: a key id is never reused',
                p_key_id, v_tenant USING ERRCODE = 'JF012';
        END IF;
        RAISE EXCEPTION 'this public key is already registered for tenant % as %', v_tenant,
            v_old.key_id USING ERRCODE = 'JF012';
    END IF;
    INSERT INTO jobforge.signing_keys (tenant_id, key_id, public_key, owner, valid_from,
                                       valid_until, created_at)
    VALUES (v_tenant, p_key_id, p_public_key, p_owner, v_from, p_valid_until, now());
    RETURN 'added';
END $_$;


--
-- Name: signing_key_revoke_v1(text, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.signing_key_revoke_v1(p_key_id text, p_reason text DEFAULT NULL::text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_old    jobforge.signing_keys;
BEGIN
    PERFORM jobforge.require_worker();
    IF length(p_reason) > 500 OR p_reason ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'key %: the reason must be at most 500 printable characters',
            left(p_key_id, 140) USING ERRCODE = 'JF006';
    END IF;
    SELECT * INTO v_old FROM jobforge.signing_keys k
    WHERE k.tenant_id = v_tenant AND k.key_id = p_key_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no signing key % for tenant %',
            coalesce(quote_literal(left(p_key_id, 140)), 'null'), v_tenant USING ERRCODE = 'JF004';
    END IF;
    IF v_old.revoked_at IS NOT NULL THEN
        RETURN false;
    END IF;
    UPDATE jobforge.signing_keys k SET revoked_at = now(), revoked_reason = p_reason
    WHERE k.tenant_id = v_tenant AND k.key_id = p_key_id;
    RETURN true;
END $$;


--
-- Name: signing_key_rotate_v1(text, text, bytea, text, interval); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.signing_key_rotate_v1(p_old_key_id text, p_new_key_id text, p_public_key bytea, p_owner text, p_overlap interval DEFAULT '1 day'::interval) RETURNS timestamp with time zone
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_old    jobforge.signing_keys;
    v_until  timestamptz;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_overlap IS NULL OR p_overlap < interval '0' OR p_overlap > interval '366 days' THEN
        RAISE EXCEPTION 'rotate: the overlap must be between 0 and 366 days' USING ERRCODE = 'JF006';
    END IF;
    SELECT * INTO v_old FROM jobforge.signing_keys k
    WHERE k.tenant_id = v_tenant AND k.key_id = p_old_key_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no signing key % for tenant %',
            coalesce(quote_literal(left(p_old_key_id, 140)), 'null'), v_tenant USING ERRCODE = 'JF004';
    END IF;
    IF v_old.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'key % of tenant % is revoked: add a new key instead of rotating it',
            p_old_key_id, v_tenant USING ERRCODE = 'JF012';
    END IF;
    PERFORM jobforge.signing_key_add_v1(p_new_key_id, p_public_key, coalesce(p_owner, v_old.owner));
    v_until := least(coalesce(v_old.valid_until, 'infinity'), now() + p_overlap);
    IF v_until <= v_old.valid_from THEN
        v_until := v_old.valid_from + interval '1 microsecond';
    END IF;
    UPDATE jobforge.signing_keys k SET valid_until = v_until
    WHERE k.tenant_id = v_tenant AND k.key_id = p_old_key_id;
    RETURN v_until;
END $$;


--
-- Name: state_phrase(jobforge.job_status, boolean); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.state_phrase(p_status jobforge.job_status, p_already boolean DEFAULT false) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT CASE WHEN p_status IN ('succeeded', 'failed') THEN 'has ' ELSE 'is ' END
           || CASE WHEN p_already THEN 'already ' ELSE '' END || p_status::text
$$;


--
-- Name: stats_v1(boolean, double precision, double precision, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.stats_v1(p_succeeded boolean DEFAULT true, p_expiring_s double precision DEFAULT 10, p_recent_s double precision DEFAULT 86400, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(tenant_id text, type text, state text, jobs bigint, earliest_run_at timestamp with time zone, expiring bigint, expired bigint, recent bigint)
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


--
-- Name: token_consume_v1(text, bigint, uuid, text, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.token_consume_v1(p_worker text, p_job_id bigint, p_token uuid, p_jti text, p_expires_at timestamp with time zone) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_job  jobforge.jobs;
    v_used jobforge.token_uses;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_jti IS NULL OR length(p_jti) NOT BETWEEN 1 AND 200 OR p_jti ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'a token jti must be 1-200 printable characters' USING ERRCODE = 'JF006';
    END IF;
    IF p_expires_at IS NULL OR NOT isfinite(p_expires_at) THEN
        RAISE EXCEPTION 'a token''s expiry must be a finite time' USING ERRCODE = 'JF006';
    END IF;
    SELECT * INTO v_job FROM jobforge.jobs j
    WHERE j.id = p_job_id AND j.lease_holder = p_worker
      AND j.lease_token = jobforge.lease_id(p_token)
      AND j.lease_expires_at IS NOT NULL;  -- running: jobs_lease_iff_running
    IF NOT FOUND THEN
        RETURN 'lost';
    END IF;
    INSERT INTO jobforge.token_uses (tenant_id, jti, job_id, used_at, expires_at)
    VALUES (v_job.tenant_id, p_jti, p_job_id, now(), p_expires_at)
    ON CONFLICT (tenant_id, jti) DO NOTHING;
    IF FOUND THEN
        RETURN 'ok';
    END IF;
    SELECT * INTO v_used FROM jobforge.token_uses u
    WHERE u.tenant_id = v_job.tenant_id AND u.jti = p_jti;
    IF v_used.job_id = p_job_id THEN
        RETURN 'ok';
    END IF;
    RAISE EXCEPTION 'token % was already used by job % of this tenant: a policy token is used once',
        quote_literal(p_jti), v_used.job_id USING ERRCODE = 'JF013';
END $$;


--
-- Name: triggers; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.triggers (
    id bigint NOT NULL,
    tenant_id text NOT NULL,
    name text NOT NULL,
    event_type text NOT NULL,
    predicates jsonb DEFAULT '[]'::jsonb NOT NULL,
    job_type text NOT NULL,
    input jsonb NOT NULL,
    dedupe text,
    cooldown interval DEFAULT '00:00:00'::interval NOT NULL,
    max_per_hour integer,
    priority integer DEFAULT 0 NOT NULL,
    max_attempts integer,
    dry_run boolean DEFAULT false NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    last_fired_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    login text DEFAULT SESSION_USER NOT NULL,
    actor text DEFAULT NULLIF(current_setting('jobforge.actor'::text, true), ''::text),
    CONSTRAINT triggers_actor_check CHECK (((actor IS NULL) OR (((length(actor) >= 1) AND (length(actor) <= 200)) AND (actor !~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]'::text)))),
    CONSTRAINT triggers_check CHECK (((octet_length((input)::text) <= 1048576) AND (octet_length((predicates)::text) <= 65536))),
    CONSTRAINT triggers_cooldown_check CHECK (((cooldown >= '00:00:00'::interval) AND (cooldown <= '1 day'::interval))),
    CONSTRAINT triggers_dedupe_check CHECK ((dedupe ~ '^\$\.[^[:cntrl:]]{1,200}$'::text)),
    CONSTRAINT triggers_event_type_check CHECK ((event_type ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$'::text)),
    CONSTRAINT triggers_input_check CHECK ((jsonb_typeof(input) = 'object'::text)),
    CONSTRAINT triggers_job_type_check CHECK (((job_type ~ '^[a-z0-9._-]+$'::text) AND (length(job_type) <= 200))),
    CONSTRAINT triggers_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 1000))),
    CONSTRAINT triggers_max_per_hour_check CHECK (((max_per_hour >= 1) AND (max_per_hour <= 1000))),
    CONSTRAINT triggers_name_check CHECK ((name ~ '^[a-z0-9][a-z0-9._-]{0,99}$'::text)),
    CONSTRAINT triggers_predicates_check CHECK ((jsonb_typeof(predicates) = 'array'::text)),
    CONSTRAINT triggers_priority_check CHECK (((priority >= 0) AND (priority <= 32767)))
);

ALTER TABLE ONLY jobforge.triggers FORCE ROW LEVEL SECURITY;


--
-- Name: trigger_add_v1(text, text, jsonb, text, jsonb, text, interval, integer, boolean, boolean, integer, integer, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.trigger_add_v1(p_name text, p_event_type text, p_predicates jsonb, p_job_type text, p_input jsonb, p_dedupe text DEFAULT NULL::text, p_cooldown interval DEFAULT '00:00:00'::interval, p_max_per_hour integer DEFAULT NULL::integer, p_dry_run boolean DEFAULT false, p_paused boolean DEFAULT false, p_priority integer DEFAULT 0, p_max_attempts integer DEFAULT NULL::integer, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF jobforge.triggers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_now     timestamptz := jobforge.clock(p_now);
    v_limit   integer;
    v_problem text;
BEGIN
    PERFORM jobforge.require_feature('triggers', v_tenant);
    IF p_name IS NULL OR p_name !~ '^[a-z0-9][a-z0-9._-]{0,99}$' THEN
        RAISE EXCEPTION 'trigger name % is invalid: use 1-100 of [a-z0-9._-], starting with a letter or digit',
            coalesce(quote_literal(left(p_name, 120)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_event_type IS NULL OR p_event_type !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$' THEN
        RAISE EXCEPTION 'trigger %: event type % is invalid: use 1-200 of [A-Za-z0-9._-]', p_name,
            coalesce(quote_literal(left(p_event_type, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    v_problem := jobforge.trigger_predicates_problem(coalesce(p_predicates, '[]'));
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'trigger %: %', p_name, v_problem USING ERRCODE = 'JF006';
    END IF;
    IF p_job_type IS NULL OR p_job_type !~ '^[a-z0-9._-]+$' OR length(p_job_type) > 200 THEN
        RAISE EXCEPTION 'trigger %: job type % is invalid: use 1-200 of [a-z0-9._-]', p_name,
            coalesce(quote_literal(left(p_job_type, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_input IS NULL OR jsonb_typeof(p_input) <> 'object' THEN
        RAISE EXCEPTION 'trigger %: the input template must be a JSON object, not %', p_name,
            coalesce(jsonb_typeof(p_input), 'null') USING ERRCODE = 'JF006';
    END IF;
    SELECT s.max_payload_bytes INTO v_limit FROM jobforge.settings s;
    IF octet_length(p_input::text) > v_limit THEN
        RAISE EXCEPTION 'trigger %: the input template is % bytes, over the limit of %', p_name,
            octet_length(p_input::text), v_limit USING ERRCODE = 'JF005';
    END IF;
    v_problem := jobforge.json_problem(p_input);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'trigger %: the input template cannot be stored: %', p_name, v_problem
            USING ERRCODE = 'JF006';
    END IF;
    -- every "$." string of the template must name an event field: checked on an empty event
    BEGIN
        PERFORM jobforge.trigger_render(p_input, jsonb_build_object(
            'id', 0, 'type', '', 'source', '', 'subject', '', 'time', '', 'data', '{}'::jsonb));
    EXCEPTION WHEN sqlstate 'JF006' THEN
        IF SQLERRM LIKE '%is not an event field%' THEN
            RAISE EXCEPTION 'trigger %: %', p_name, SQLERRM USING ERRCODE = 'JF006';
        END IF;
    END;
    IF p_dedupe IS NOT NULL THEN
        IF p_dedupe !~ '^\$\.[^[:cntrl:]]{1,200}$' THEN
            RAISE EXCEPTION 'trigger %: the dedupe path % must be an event field such as $.data.order_id',
                p_name, quote_literal(left(p_dedupe, 120)) USING ERRCODE = 'JF006';
        END IF;
        BEGIN
            PERFORM jobforge.trigger_value(p_dedupe, jsonb_build_object(
                'id', 0, 'type', '', 'source', '', 'subject', '', 'time', '', 'data', '{}'::jsonb));
        EXCEPTION WHEN sqlstate 'JF006' THEN
            IF SQLERRM LIKE '%is not an event field%' THEN
                RAISE EXCEPTION 'trigger %: dedupe %', p_name, SQLERRM USING ERRCODE = 'JF006';
            END IF;
        END;
    END IF;
    IF p_cooldown IS NULL OR NOT (p_cooldown >= interval '0' AND p_cooldown <= interval '1 day') THEN
        RAISE EXCEPTION 'trigger %: cooldown % is out of range 0 s to 1 day', p_name,
            coalesce(p_cooldown::text, 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_max_per_hour NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'trigger %: max per hour % is out of range 1-1000', p_name, p_max_per_hour
            USING ERRCODE = 'JF006';
    END IF;
    IF p_priority IS NULL OR p_priority NOT BETWEEN 0 AND 32767 THEN
        RAISE EXCEPTION 'trigger %: priority % is out of range 0-32767', p_name,
            coalesce(p_priority::text, 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'trigger %: max_attempts % is out of range 1-1000', p_name, p_max_attempts
            USING ERRCODE = 'JF006';
    END IF;
    -- a bound on what one tenant makes every submit evaluate
    IF (SELECT count(*) FROM jobforge.triggers t WHERE t.tenant_id = v_tenant) >= 1000 THEN
        RAISE EXCEPTION 'trigger %: tenant % has 1000 triggers already, the most it may have',
            p_name, v_tenant USING ERRCODE = 'JF006';
    END IF;
    IF EXISTS (SELECT 1 FROM jobforge.triggers t WHERE t.tenant_id = v_tenant AND t.name = p_name) THEN
        RAISE EXCEPTION 'trigger % already exists for tenant % (remove it first: jobforge triggers rm %)',
            quote_literal(p_name), v_tenant, p_name USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    INSERT INTO jobforge.triggers AS t (tenant_id, name, event_type, predicates, job_type, input,
                                        dedupe, cooldown, max_per_hour, priority,
                                        max_attempts, dry_run, paused, created_at, updated_at)
    VALUES (v_tenant, p_name, p_event_type, coalesce(p_predicates, '[]'), p_job_type, p_input,
            p_dedupe, p_cooldown, p_max_per_hour, p_priority, p_max_attempts,
            coalesce(p_dry_run, false), coalesce(p_paused, false), v_now, v_now)
    RETURNING t.*;
EXCEPTION WHEN unique_violation THEN  -- a concurrent add of the same name won
    RAISE EXCEPTION 'trigger % already exists for tenant % (remove it first: jobforge triggers rm %)',
        quote_literal(p_name), v_tenant, p_name USING ERRCODE = 'JF006';
END $_$;


--
-- Name: trigger_locked(text, text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.trigger_locked(p_tenant text, p_name text) RETURNS jobforge.triggers
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_row jobforge.triggers;
BEGIN
    SELECT * INTO v_row FROM jobforge.triggers t
    WHERE t.tenant_id = p_tenant AND t.name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trigger % not found for tenant %',
            coalesce(quote_literal(left(p_name, 120)), 'null'), p_tenant USING ERRCODE = 'JF004';
    END IF;
    RETURN v_row;
END $$;


--
-- Name: trigger_match(jsonb, jsonb); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.trigger_match(p_predicates jsonb, p_data jsonb) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_p     jsonb;
    v_op    text;
    v_want  jsonb;
    v_got   jsonb;
    v_ok    boolean;
BEGIN
    FOR v_p IN SELECT e FROM jsonb_array_elements(coalesce(p_predicates, '[]')) AS e LOOP
        v_op := v_p->>'op';
        v_want := v_p->'value';
        v_got := p_data #> string_to_array(v_p->>'path', '.');
        v_ok := CASE v_op
            WHEN 'eq' THEN v_got IS NOT NULL AND v_got = v_want
            WHEN 'ne' THEN v_got IS NULL OR v_got <> v_want
            WHEN 'in' THEN v_got IS NOT NULL AND EXISTS (
                SELECT 1 FROM jsonb_array_elements(v_want) AS w WHERE w = v_got)
            WHEN 'exists' THEN (v_got IS NOT NULL) = (v_want = 'true'::jsonb)
            ELSE v_got IS NOT NULL AND jsonb_typeof(v_got) = 'number' AND CASE v_op
                WHEN 'gt' THEN v_got::text::numeric > v_want::text::numeric
                WHEN 'ge' THEN v_got::text::numeric >= v_want::text::numeric
                WHEN 'lt' THEN v_got::text::numeric < v_want::text::numeric
                WHEN 'le' THEN v_got::text::numeric <= v_want::text::numeric
            END
        END;
        IF NOT coalesce(v_ok, false) THEN
            RETURN left(format('%s %s %s is false (data.%s is %s)', v_p->>'path', v_op,
                               v_want::text, v_p->>'path', coalesce(v_got::text, 'absent')), 1000);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;


--
-- Name: trigger_outcome(jobforge.triggers, jsonb); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.trigger_outcome(p_trigger jobforge.triggers, p_event jsonb, OUT reason text, OUT detail text, OUT input jsonb, OUT idempotency_key text) RETURNS record
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_key jsonb;
BEGIN
    detail := jobforge.trigger_match(p_trigger.predicates, coalesce(p_event->'data', '{}'));
    IF detail IS NOT NULL THEN
        reason := 'predicate';
        RETURN;
    END IF;
    BEGIN
        input := jobforge.trigger_render(p_trigger.input, p_event);
        IF p_trigger.dedupe IS NULL THEN
            v_key := p_event->'id';
        ELSE
            v_key := jobforge.trigger_value(p_trigger.dedupe, p_event);
        END IF;
    EXCEPTION WHEN sqlstate 'JF006' THEN
        reason := 'mapping';
        detail := left(SQLERRM, 1000);
        input := NULL;
        RETURN;
    END;
    IF v_key IS NOT NULL AND v_key <> 'null'::jsonb THEN
        idempotency_key := left('trigger:' || p_trigger.name || ':'
                                || CASE jsonb_typeof(v_key) WHEN 'string' THEN v_key #>> '{}'
                                   ELSE v_key::text END, 255);
    END IF;
END $$;


--
-- Name: trigger_pause_v1(text, boolean, timestamp with time zone); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.trigger_pause_v1(p_name text, p_paused boolean, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF jobforge.triggers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_now    timestamptz := jobforge.clock(p_now);
    v_row    jobforge.triggers;
BEGIN
    IF p_paused IS NULL THEN
        RAISE EXCEPTION 'triggers: paused must be true or false' USING ERRCODE = 'JF006';
    END IF;
    IF NOT p_paused THEN
        PERFORM jobforge.require_feature('triggers', v_tenant);
    END IF;
    v_row := jobforge.trigger_locked(v_tenant, p_name);
    RETURN QUERY UPDATE jobforge.triggers t
                 SET paused = p_paused, updated_at = v_now, login = DEFAULT, actor = DEFAULT
                 WHERE t.id = v_row.id RETURNING t.*;
END $$;


--
-- Name: trigger_predicates_problem(jsonb); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.trigger_predicates_problem(p_predicates jsonb) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    v_p  jsonb;
    v_i  integer := 0;
    v_op text;
BEGIN
    IF p_predicates IS NULL OR jsonb_typeof(p_predicates) <> 'array' THEN
        RETURN 'the predicates must be a JSON array';
    END IF;
    IF jsonb_array_length(p_predicates) > 20 THEN
        RETURN format('%s predicates, over the limit of 20', jsonb_array_length(p_predicates));
    END IF;
    FOR v_p IN SELECT e FROM jsonb_array_elements(p_predicates) AS e LOOP
        v_i := v_i + 1;
        IF jsonb_typeof(v_p) <> 'object' OR NOT v_p ?& ARRAY['path', 'op']
           OR EXISTS (SELECT 1 FROM jsonb_object_keys(v_p) k WHERE k NOT IN ('path', 'op', 'value')) THEN
            RETURN format('predicate #%s must be an object {path, op, value}', v_i);
        END IF;
        IF jsonb_typeof(v_p->'path') <> 'string'
           OR (v_p->>'path') !~ '^[^.[:cntrl:]]{1,100}(\.[^.[:cntrl:]]{1,100}){0,31}$' THEN
            RETURN format('predicate #%s: the path must be dotted keys into the data, e.g. order.total',
                          v_i);
        END IF;
        v_op := CASE WHEN jsonb_typeof(v_p->'op') = 'string' THEN v_p->>'op' END;
        IF v_op IS NULL OR v_op NOT IN ('eq', 'ne', 'in', 'exists', 'gt', 'ge', 'lt', 'le') THEN
            RETURN format('predicate #%s: op %s is unknown: use eq, ne, in, exists, gt, ge, lt or le',
                          v_i, left(coalesce((v_p->'op')::text, 'null'), 40));
        END IF;
        IF NOT v_p ? 'value' THEN
            RETURN format('predicate #%s: %s needs a value', v_i, v_op);
        ELSIF v_op = 'in' AND jsonb_typeof(v_p->'value') <> 'array' THEN
            RETURN format('predicate #%s: in needs a JSON array of values', v_i);
        ELSIF v_op = 'exists' AND jsonb_typeof(v_p->'value') <> 'boolean' THEN
            RETURN format('predicate #%s: exists needs true or false', v_i);
        ELSIF v_op IN ('gt', 'ge', 'lt', 'le') AND jsonb_typeof(v_p->'value') <> 'number' THEN
            RETURN format('predicate #%s: %s compares numbers: its value must be a number', v_i, v_op);
        END IF;
    END LOOP;
    RETURN NULL;
END $_$;


--
-- Name: trigger_remove_v1(text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.trigger_remove_v1(p_name text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_row    jobforge.triggers;
BEGIN
    v_row := jobforge.trigger_locked(v_tenant, p_name);
    DELETE FROM jobforge.triggers t WHERE t.id = v_row.id;
    RETURN v_row.id;
END $$;


--
-- Name: trigger_render(jsonb, jsonb); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.trigger_render(p_template jsonb, p_event jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    v_text text;
BEGIN
    CASE jsonb_typeof(p_template)
    WHEN 'object' THEN
        RETURN coalesce((SELECT jsonb_object_agg(e.key, jobforge.trigger_render(e.value, p_event))
                         FROM jsonb_each(p_template) AS e), '{}'::jsonb);
    WHEN 'array' THEN
        RETURN coalesce((SELECT jsonb_agg(jobforge.trigger_render(e.value, p_event) ORDER BY e.i)
                         FROM jsonb_array_elements(p_template) WITH ORDINALITY AS e(value, i)),
                        '[]'::jsonb);
    WHEN 'string' THEN
        v_text := p_template #>> '{}';
        IF left(v_text, 2) = repeat(chr(36), 2) THEN  -- "$" twice: an escaped "$"
            RETURN to_jsonb(substr(v_text, 2));
        ELSIF v_text LIKE '$.%' THEN
            RETURN jobforge.trigger_value(v_text, p_event);
        END IF;
        RETURN p_template;
    ELSE
        RETURN p_template;
    END CASE;
END $_$;


--
-- Name: trigger_test_v1(text, jsonb); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.trigger_test_v1(p_name text, p_event jsonb) RETURNS TABLE(matched boolean, reason text, detail text, job_type text, input jsonb, idempotency_key text, dry_run boolean, paused boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_trigger jobforge.triggers;
    v_out     record;
BEGIN
    PERFORM jobforge.require_feature('triggers', v_tenant);
    SELECT * INTO v_trigger FROM jobforge.triggers t
    WHERE t.tenant_id = v_tenant AND t.name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trigger % not found for tenant %',
            coalesce(quote_literal(left(p_name, 120)), 'null'), v_tenant USING ERRCODE = 'JF004';
    END IF;
    IF p_event IS NULL OR jsonb_typeof(p_event) <> 'object'
       OR jsonb_typeof(coalesce(p_event->'data', '{}')) <> 'object' THEN
        RAISE EXCEPTION 'triggers test: the event must be a JSON object whose data is an object'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_event->>'type' IS DISTINCT FROM v_trigger.event_type THEN
        RETURN QUERY SELECT false, 'type'::text,
            format('the event''s type %s is not %s', coalesce(p_event->>'type', 'null'),
                   v_trigger.event_type),
            v_trigger.job_type, NULL::jsonb, NULL::text, v_trigger.dry_run, v_trigger.paused;
        RETURN;
    END IF;
    SELECT * INTO v_out FROM jobforge.trigger_outcome(
        v_trigger, jsonb_build_object('data', '{}'::jsonb) || p_event);
    RETURN QUERY SELECT v_out.reason IS DISTINCT FROM 'predicate', v_out.reason, v_out.detail,
                        v_trigger.job_type, v_out.input, v_out.idempotency_key,
                        v_trigger.dry_run, v_trigger.paused;
END $$;


--
-- Name: trigger_value(text, jsonb); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.trigger_value(p_path text, p_event jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    v_keys text[] := string_to_array(substr(p_path, 3), '.');
    v_got  jsonb;
BEGIN
    IF v_keys[1] NOT IN ('id', 'type', 'source', 'subject', 'time', 'data')
       OR (v_keys[1] <> 'data' AND cardinality(v_keys) > 1) OR '' = ANY (v_keys) THEN
        RAISE EXCEPTION 'mapping: % is not an event field: use $.id, $.type, $.source, $.subject, $.time, $.data or $.data.<keys>',
            left(p_path, 120) USING ERRCODE = 'JF006';
    END IF;
    v_got := p_event #> v_keys;
    IF v_got IS NULL OR v_got = 'null'::jsonb AND v_keys[1] <> 'data' THEN
        RAISE EXCEPTION 'mapping: the event has no % (%)', left(p_path, 120),
            CASE WHEN v_keys[1] = 'data' THEN 'absent from its data' ELSE 'not set' END
            USING ERRCODE = 'JF006';
    END IF;
    RETURN v_got;
END $_$;


--
-- Name: version_core(text); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.version_core(p_version text) RETURNS integer[]
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT string_to_array(substring(p_version FROM '^(\d{1,9}\.\d{1,9}\.\d{1,9})'), '.')::integer[]
$$;


--
-- Name: whole_number_between(jsonb, integer, integer); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.whole_number_between(p_value jsonb, p_lo integer, p_hi integer) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT CASE WHEN p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN true
                WHEN jsonb_typeof(p_value) <> 'number' THEN false
                ELSE (p_value::text)::numeric BETWEEN p_lo AND p_hi
                     AND (p_value::text)::numeric = trunc((p_value::text)::numeric)
           END
$$;


--
-- Name: worker_scope(); Type: FUNCTION; Schema: jobforge; Owner: -
--

CREATE FUNCTION jobforge.worker_scope() RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT coalesce(pg_catalog.current_setting('jobforge.scope', true), '')
               OPERATOR(pg_catalog.=) 'worker'
       AND pg_catalog.pg_has_role(session_user, 'jobforge_worker', 'MEMBER')
$$;


--
-- Name: artifact_blobs; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.artifact_blobs (
    tenant_id text NOT NULL,
    sha256 text NOT NULL,
    size bigint NOT NULL,
    chunks integer NOT NULL,
    complete boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone NOT NULL,
    touched_at timestamp with time zone NOT NULL,
    CONSTRAINT artifact_blobs_chunks CHECK ((chunks = ((size + 1048575) / 1048576))),
    CONSTRAINT artifact_blobs_sha256_check CHECK ((sha256 ~ '^sha256:[0-9a-f]{64}$'::text)),
    CONSTRAINT artifact_blobs_size_check CHECK (((size >= 0) AND (size <= '1099511627776'::bigint))),
    CONSTRAINT artifact_blobs_tenant_id_check CHECK ((tenant_id ~ '^[A-Za-z0-9._:-]{1,128}$'::text))
);

ALTER TABLE ONLY jobforge.artifact_blobs FORCE ROW LEVEL SECURITY;


--
-- Name: artifact_chunks; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.artifact_chunks (
    tenant_id text NOT NULL,
    sha256 text NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT artifact_chunks_data_check CHECK (((octet_length(data) >= 1) AND (octet_length(data) <= 1048576))),
    CONSTRAINT artifact_chunks_seq_check CHECK ((seq >= 0))
);

ALTER TABLE ONLY jobforge.artifact_chunks FORCE ROW LEVEL SECURITY;


--
-- Name: artifact_refs; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.artifact_refs (
    tenant_id text NOT NULL,
    lease_token uuid NOT NULL,
    name text NOT NULL,
    sha256 text NOT NULL,
    size bigint NOT NULL,
    CONSTRAINT artifact_refs_name_check CHECK (((name = '@logs.jsonl'::text) OR ((name ~ '^[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,199}$'::text) AND (name !~ '(^|/)\.{1,2}(/|$)'::text) AND (name !~ '//'::text) AND (name !~ '/$'::text))))
);

ALTER TABLE ONLY jobforge.artifact_refs FORCE ROW LEVEL SECURITY;


--
-- Name: connector_configs; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.connector_configs (
    tenant_id text NOT NULL,
    name text NOT NULL,
    config jsonb NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT connector_configs_config_check CHECK ((jsonb_typeof(config) = 'object'::text)),
    CONSTRAINT connector_configs_name_check CHECK ((name ~ '^[a-z0-9._-]{1,128}$'::text))
);

ALTER TABLE ONLY jobforge.connector_configs FORCE ROW LEVEL SECURITY;


--
-- Name: events_id_seq; Type: SEQUENCE; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME jobforge.events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: job_attempts; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.job_attempts (
    id bigint NOT NULL,
    job_id bigint NOT NULL,
    tenant_id text NOT NULL,
    attempt integer NOT NULL,
    worker text NOT NULL,
    lease_token uuid NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    outcome text,
    error jsonb,
    stops_by timestamp with time zone,
    project text NOT NULL,
    claim_event_id bigint,
    finish_event_id bigint,
    finish_data jsonb,
    login text DEFAULT SESSION_USER,
    CONSTRAINT job_attempts_attempt_check CHECK ((attempt >= 1)),
    CONSTRAINT job_attempts_check CHECK (((finished_at IS NULL) = (outcome IS NULL))),
    CONSTRAINT job_attempts_outcome_check CHECK ((outcome = ANY (ARRAY['succeeded'::text, 'failed'::text, 'retry'::text, 'dead'::text, 'canceled'::text, 'lease_expired'::text, 'released'::text])))
)
WITH (fillfactor='70');

ALTER TABLE ONLY jobforge.job_attempts FORCE ROW LEVEL SECURITY;


--
-- Name: job_attempts_id_seq; Type: SEQUENCE; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_attempts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME jobforge.job_attempts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: job_events; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.job_events (
    id bigint NOT NULL,
    job_id bigint NOT NULL,
    tenant_id text NOT NULL,
    kind text NOT NULL,
    at timestamp with time zone NOT NULL,
    attempt integer,
    worker text,
    data jsonb,
    login text DEFAULT SESSION_USER,
    actor text DEFAULT NULLIF(current_setting('jobforge.actor'::text, true), ''::text),
    reason text DEFAULT NULLIF(current_setting('jobforge.reason'::text, true), ''::text),
    project text NOT NULL,
    CONSTRAINT job_events_actor_shape CHECK (((actor IS NULL) OR (((length(actor) >= 1) AND (length(actor) <= 200)) AND (actor !~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]'::text)))),
    CONSTRAINT job_events_kind_check CHECK ((kind = ANY (ARRAY['created'::text, 'claimed'::text, 'progress'::text, 'retry_scheduled'::text, 'succeeded'::text, 'failed'::text, 'dead'::text, 'canceled'::text, 'lease_expired'::text, 'rescheduled'::text, 'released'::text, 'cancel_acknowledged'::text]))),
    CONSTRAINT job_events_reason_shape CHECK (((reason IS NULL) OR (((length(reason) >= 1) AND (length(reason) <= 1000)) AND (reason !~ '[\x01-\x08\x0b-\x1f\x7f]'::text))))
);

ALTER TABLE ONLY jobforge.job_events FORCE ROW LEVEL SECURITY;


--
-- Name: job_event_log; Type: VIEW; Schema: jobforge; Owner: -
--

CREATE VIEW jobforge.job_event_log WITH (security_invoker='true') AS
 SELECT e.id,
    e.job_id,
    e.tenant_id,
    e.project,
    e.kind,
    e.at,
    e.attempt,
    e.worker,
    e.data,
    e.login,
    e.actor,
    e.reason
   FROM jobforge.job_events e
UNION ALL
 SELECT (0)::bigint AS id,
    j.id AS job_id,
    j.tenant_id,
    j.project,
    'created'::text AS kind,
    j.created_at AS at,
    NULL::integer AS attempt,
    NULL::text AS worker,
        CASE
            WHEN (j.parent_id IS NOT NULL) THEN jsonb_build_object('parent_id', j.parent_id)
            ELSE NULL::jsonb
        END AS data,
    NULL::text AS login,
    NULL::text AS actor,
    NULL::text AS reason
   FROM jobforge.jobs j
  WHERE (NOT (EXISTS ( SELECT 1
           FROM jobforge.job_events c
          WHERE ((c.job_id = j.id) AND (c.kind = 'created'::text)))))
UNION ALL
 SELECT a.claim_event_id AS id,
    a.job_id,
    a.tenant_id,
    a.project,
    'claimed'::text AS kind,
    a.started_at AS at,
    a.attempt,
    a.worker,
    NULL::jsonb AS data,
    a.login,
    NULL::text AS actor,
    NULL::text AS reason
   FROM jobforge.job_attempts a
  WHERE (a.claim_event_id IS NOT NULL)
UNION ALL
 SELECT a.finish_event_id AS id,
    a.job_id,
    a.tenant_id,
    a.project,
        CASE a.outcome
            WHEN 'retry'::text THEN 'retry_scheduled'::text
            ELSE a.outcome
        END AS kind,
    a.finished_at AS at,
    a.attempt,
    a.worker,
    COALESCE(a.finish_data,
        CASE
            WHEN (a.error IS NOT NULL) THEN jsonb_build_object('error', a.error)
            ELSE NULL::jsonb
        END) AS data,
    a.login,
    NULL::text AS actor,
    NULL::text AS reason
   FROM jobforge.job_attempts a
  WHERE (a.finish_event_id IS NOT NULL);


--
-- Name: job_events_id_seq; Type: SEQUENCE; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME jobforge.job_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: job_results; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.job_results (
    job_id bigint NOT NULL,
    tenant_id text NOT NULL,
    result jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    project text NOT NULL
);

ALTER TABLE ONLY jobforge.job_results FORCE ROW LEVEL SECURITY;


--
-- Name: job_runs; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.job_runs (
    id bigint NOT NULL,
    job_id bigint NOT NULL,
    tenant_id text NOT NULL,
    attempt integer NOT NULL,
    lease_token uuid NOT NULL,
    runner_id text NOT NULL,
    runner_version text NOT NULL,
    status text NOT NULL,
    input_sha256 text,
    output_sha256 text,
    trace_sha256 text,
    record jsonb NOT NULL,
    recorded_at timestamp with time zone NOT NULL,
    project text NOT NULL,
    CONSTRAINT job_runs_attempt_check CHECK ((attempt >= 1)),
    CONSTRAINT job_runs_input_sha256_check CHECK (((input_sha256 ~ '^sha256:[0-9a-f]+$'::text) AND (length(input_sha256) = 71))),
    CONSTRAINT job_runs_output_sha256_check CHECK (((output_sha256 ~ '^sha256:[0-9a-f]+$'::text) AND (length(output_sha256) = 71))),
    CONSTRAINT job_runs_record_check CHECK (((record ->> 'format'::text) = 'jobforge.run/1'::text)),
    CONSTRAINT job_runs_status_check CHECK ((status = ANY (ARRAY['succeeded'::text, 'failed'::text, 'retry'::text, 'invalid_input'::text, 'contract_violation'::text, 'timeout'::text, 'canceled'::text, 'lease_lost'::text, 'shutdown'::text]))),
    CONSTRAINT job_runs_trace_sha256_check CHECK (((trace_sha256 ~ '^sha256:[0-9a-f]+$'::text) AND (length(trace_sha256) = 71)))
);

ALTER TABLE ONLY jobforge.job_runs FORCE ROW LEVEL SECURITY;


--
-- Name: job_runs_id_seq; Type: SEQUENCE; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_runs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME jobforge.job_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: job_transitions; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.job_transitions (
    from_status jobforge.job_status NOT NULL,
    to_status jobforge.job_status NOT NULL
);


--
-- Name: jobs_id_seq; Type: SEQUENCE; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.jobs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME jobforge.jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: prune_pass; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.prune_pass (
    singleton boolean DEFAULT true NOT NULL,
    holder text,
    held_until timestamp with time zone,
    after_type text,
    after_at timestamp with time zone,
    after_id bigint,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    jobs bigint DEFAULT 0 NOT NULL,
    events bigint DEFAULT 0 NOT NULL,
    attempts bigint DEFAULT 0 NOT NULL,
    results bigint DEFAULT 0 NOT NULL,
    runs bigint DEFAULT 0 NOT NULL,
    CONSTRAINT prune_pass_singleton_check CHECK (singleton)
);


--
-- Name: runner_catalogue; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.runner_catalogue (
    runner_id text NOT NULL,
    version text NOT NULL,
    input_schema jsonb NOT NULL,
    output_schema jsonb NOT NULL,
    contract_sha256 text NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    synced_at timestamp with time zone NOT NULL,
    synced_by text NOT NULL,
    synced_actor text,
    changed_at timestamp with time zone,
    changed_by text,
    changed_actor text,
    max_attempts integer,
    CONSTRAINT runner_catalogue_contract_sha256_check CHECK ((contract_sha256 ~ '^sha256:[0-9a-f]{64}$'::text)),
    CONSTRAINT runner_catalogue_input_schema_check CHECK (((jsonb_typeof(input_schema) = 'object'::text) AND (octet_length((input_schema)::text) <= 1048576))),
    CONSTRAINT runner_catalogue_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 1000))),
    CONSTRAINT runner_catalogue_output_schema_check CHECK (((jsonb_typeof(output_schema) = 'object'::text) AND (octet_length((output_schema)::text) <= 1048576))),
    CONSTRAINT runner_catalogue_runner_id_check CHECK (((runner_id ~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)*$'::text) AND (length(runner_id) <= 200))),
    CONSTRAINT runner_catalogue_version_check CHECK (((version ~ '^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$'::text) AND (length(version) <= 100)))
);

ALTER TABLE ONLY jobforge.runner_catalogue FORCE ROW LEVEL SECURITY;


--
-- Name: schedule_firings; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.schedule_firings (
    id bigint NOT NULL,
    tenant_id text NOT NULL,
    schedule_id bigint NOT NULL,
    slot timestamp with time zone,
    fired_at timestamp with time zone NOT NULL,
    outcome text NOT NULL,
    job_id bigint,
    job jsonb,
    detail text,
    worker text,
    CONSTRAINT schedule_firings_detail_check CHECK ((length(detail) <= 1000)),
    CONSTRAINT schedule_firings_outcome_check CHECK ((outcome = ANY (ARRAY['enqueued'::text, 'existing'::text, 'dry_run'::text, 'skipped'::text, 'failed'::text]))),
    CONSTRAINT schedule_firings_worker_check CHECK ((length(worker) <= 200))
);

ALTER TABLE ONLY jobforge.schedule_firings FORCE ROW LEVEL SECURITY;


--
-- Name: schedule_firings_id_seq; Type: SEQUENCE; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.schedule_firings ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME jobforge.schedule_firings_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: schedules_id_seq; Type: SEQUENCE; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.schedules ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME jobforge.schedules_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: schema_info; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.schema_info (
    singleton boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT schema_info_singleton_check CHECK (singleton)
);


--
-- Name: schema_migrations; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT schema_migrations_checksum_check CHECK ((checksum ~ '^sha256:[0-9a-f]{64}$'::text)),
    CONSTRAINT schema_migrations_version_check CHECK ((version > 0))
);


--
-- Name: settings; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.settings (
    singleton boolean DEFAULT true NOT NULL,
    caller_clock boolean DEFAULT false NOT NULL,
    max_payload_bytes integer DEFAULT 1048576 NOT NULL,
    max_result_bytes integer DEFAULT 1048576 NOT NULL,
    max_record_bytes integer DEFAULT 16777216 NOT NULL,
    CONSTRAINT settings_max_payload_bytes_check CHECK (((max_payload_bytes >= 2) AND (max_payload_bytes <= 67108864))),
    CONSTRAINT settings_max_record_bytes_check CHECK (((max_record_bytes >= 1024) AND (max_record_bytes <= 268435456))),
    CONSTRAINT settings_max_result_bytes_check CHECK (((max_result_bytes >= 4) AND (max_result_bytes <= 67108864))),
    CONSTRAINT settings_singleton_check CHECK (singleton)
);


--
-- Name: signing_keys; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.signing_keys (
    tenant_id text NOT NULL,
    key_id text NOT NULL,
    algorithm text DEFAULT 'ed25519'::text NOT NULL,
    public_key bytea NOT NULL,
    owner text NOT NULL,
    valid_from timestamp with time zone NOT NULL,
    valid_until timestamp with time zone,
    revoked_at timestamp with time zone,
    revoked_reason text,
    created_at timestamp with time zone NOT NULL,
    created_by text DEFAULT SESSION_USER NOT NULL,
    CONSTRAINT signing_keys_algorithm_check CHECK ((algorithm = 'ed25519'::text)),
    CONSTRAINT signing_keys_check CHECK (((valid_until IS NULL) OR (valid_until > valid_from))),
    CONSTRAINT signing_keys_key_id_check CHECK ((key_id ~ '^[A-Za-z0-9._:-]{1,128}$'::text)),
    CONSTRAINT signing_keys_owner_check CHECK ((((length(owner) >= 1) AND (length(owner) <= 200)) AND (owner !~ '[[:cntrl:]]'::text))),
    CONSTRAINT signing_keys_public_key_check CHECK ((octet_length(public_key) = 32)),
    CONSTRAINT signing_keys_revoked_reason_check CHECK (((length(revoked_reason) <= 500) AND (revoked_reason !~ '[[:cntrl:]]'::text))),
    CONSTRAINT signing_keys_tenant_id_check CHECK ((tenant_id ~ '^[A-Za-z0-9._:-]{1,128}$'::text))
);

ALTER TABLE ONLY jobforge.signing_keys FORCE ROW LEVEL SECURITY;


--
-- Name: tenant_logins; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.tenant_logins (
    login name NOT NULL,
    tenants text[] NOT NULL,
    projects text[],
    CONSTRAINT tenant_logins_projects_check CHECK (((projects IS NULL) OR ((cardinality(projects) >= 1) AND (array_position(projects, NULL::text) IS NULL) AND (NOT (''::text = ANY (projects)))))),
    CONSTRAINT tenant_logins_tenants_check CHECK ((cardinality(tenants) >= 1))
);


--
-- Name: token_uses; Type: TABLE; Schema: jobforge; Owner: -
--

CREATE TABLE jobforge.token_uses (
    tenant_id text NOT NULL,
    jti text NOT NULL,
    job_id bigint NOT NULL,
    used_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT token_uses_jti_check CHECK ((((length(jti) >= 1) AND (length(jti) <= 200)) AND (jti !~ '[[:cntrl:]]'::text)))
);

ALTER TABLE ONLY jobforge.token_uses FORCE ROW LEVEL SECURITY;


--
-- Name: trigger_evaluations_id_seq; Type: SEQUENCE; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.trigger_evaluations ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME jobforge.trigger_evaluations_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: triggers_id_seq; Type: SEQUENCE; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.triggers ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME jobforge.triggers_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: artifact_blobs artifact_blobs_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.artifact_blobs
    ADD CONSTRAINT artifact_blobs_pkey PRIMARY KEY (tenant_id, sha256);


--
-- Name: artifact_chunks artifact_chunks_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.artifact_chunks
    ADD CONSTRAINT artifact_chunks_pkey PRIMARY KEY (tenant_id, sha256, seq);


--
-- Name: artifact_refs artifact_refs_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.artifact_refs
    ADD CONSTRAINT artifact_refs_pkey PRIMARY KEY (lease_token, name);


--
-- Name: connector_configs connector_configs_loadable; Type: CHECK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.connector_configs
    ADD CONSTRAINT connector_configs_loadable CHECK ((jobforge.json_problem(config) IS NULL)) NOT VALID;


--
-- Name: connector_configs connector_configs_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.connector_configs
    ADD CONSTRAINT connector_configs_pkey PRIMARY KEY (tenant_id, name);


--
-- Name: connector_configs connector_configs_size; Type: CHECK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.connector_configs
    ADD CONSTRAINT connector_configs_size CHECK ((octet_length((config)::text) <= 65536)) NOT VALID;


--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);


--
-- Name: features features_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.features
    ADD CONSTRAINT features_pkey PRIMARY KEY (feature, tenant);


--
-- Name: job_attempts job_attempts_lease_token_key; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.job_attempts
    ADD CONSTRAINT job_attempts_lease_token_key UNIQUE (lease_token);


--
-- Name: job_events job_events_data_size; Type: CHECK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_events
    ADD CONSTRAINT job_events_data_size CHECK ((octet_length((data)::text) <= 131072)) NOT VALID;


--
-- Name: job_results job_results_loadable; Type: CHECK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_results
    ADD CONSTRAINT job_results_loadable CHECK ((jobforge.json_problem(result) IS NULL)) NOT VALID;


--
-- Name: job_results job_results_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.job_results
    ADD CONSTRAINT job_results_pkey PRIMARY KEY (job_id);


--
-- Name: job_results job_results_size; Type: CHECK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_results
    ADD CONSTRAINT job_results_size CHECK ((octet_length((result)::text) <= 67108864)) NOT VALID;


--
-- Name: job_runs job_runs_lease_token_key; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.job_runs
    ADD CONSTRAINT job_runs_lease_token_key UNIQUE (lease_token);


--
-- Name: job_runs job_runs_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.job_runs
    ADD CONSTRAINT job_runs_pkey PRIMARY KEY (id);


--
-- Name: job_runs job_runs_record_loadable; Type: CHECK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_runs
    ADD CONSTRAINT job_runs_record_loadable CHECK ((jobforge.json_problem(record) IS NULL)) NOT VALID;


--
-- Name: job_runs job_runs_runner_id_shape; Type: CHECK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_runs
    ADD CONSTRAINT job_runs_runner_id_shape CHECK (((runner_id ~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)*$'::text) AND (length(runner_id) <= 200))) NOT VALID;


--
-- Name: job_runs job_runs_runner_version_size; Type: CHECK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_runs
    ADD CONSTRAINT job_runs_runner_version_size CHECK (((length(runner_version) >= 1) AND (length(runner_version) <= 100))) NOT VALID;


--
-- Name: job_transitions job_transitions_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.job_transitions
    ADD CONSTRAINT job_transitions_pkey PRIMARY KEY (from_status, to_status);


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);


--
-- Name: prune_pass prune_pass_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.prune_pass
    ADD CONSTRAINT prune_pass_pkey PRIMARY KEY (singleton);


--
-- Name: queue_limits queue_limits_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.queue_limits
    ADD CONSTRAINT queue_limits_pkey PRIMARY KEY (scope, key);


--
-- Name: retention retention_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.retention
    ADD CONSTRAINT retention_pkey PRIMARY KEY (type);


--
-- Name: runner_catalogue runner_catalogue_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.runner_catalogue
    ADD CONSTRAINT runner_catalogue_pkey PRIMARY KEY (runner_id);


--
-- Name: schedule_firings schedule_firings_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.schedule_firings
    ADD CONSTRAINT schedule_firings_pkey PRIMARY KEY (id);


--
-- Name: schedules schedules_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (id);


--
-- Name: schedules schedules_tenant_id_name_key; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.schedules
    ADD CONSTRAINT schedules_tenant_id_name_key UNIQUE (tenant_id, name);


--
-- Name: schema_info schema_info_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.schema_info
    ADD CONSTRAINT schema_info_pkey PRIMARY KEY (singleton);


--
-- Name: schema_migrations schema_migrations_name_key; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.schema_migrations
    ADD CONSTRAINT schema_migrations_name_key UNIQUE (name);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: settings settings_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.settings
    ADD CONSTRAINT settings_pkey PRIMARY KEY (singleton);


--
-- Name: signing_keys signing_keys_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.signing_keys
    ADD CONSTRAINT signing_keys_pkey PRIMARY KEY (tenant_id, key_id);


--
-- Name: signing_keys signing_keys_tenant_id_public_key_key; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.signing_keys
    ADD CONSTRAINT signing_keys_tenant_id_public_key_key UNIQUE (tenant_id, public_key);


--
-- Name: tenant_logins tenant_logins_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.tenant_logins
    ADD CONSTRAINT tenant_logins_pkey PRIMARY KEY (login);


--
-- Name: token_uses token_uses_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.token_uses
    ADD CONSTRAINT token_uses_pkey PRIMARY KEY (tenant_id, jti);


--
-- Name: trigger_evaluations trigger_evaluations_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.trigger_evaluations
    ADD CONSTRAINT trigger_evaluations_pkey PRIMARY KEY (id);


--
-- Name: triggers triggers_pkey; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.triggers
    ADD CONSTRAINT triggers_pkey PRIMARY KEY (id);


--
-- Name: triggers triggers_tenant_id_name_key; Type: CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.triggers
    ADD CONSTRAINT triggers_tenant_id_name_key UNIQUE (tenant_id, name);


--
-- Name: artifact_blobs_by_touch; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX artifact_blobs_by_touch ON jobforge.artifact_blobs USING btree (touched_at, tenant_id, sha256);


--
-- Name: artifact_refs_by_blob; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX artifact_refs_by_blob ON jobforge.artifact_refs USING btree (tenant_id, sha256);


--
-- Name: events_by_tenant; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX events_by_tenant ON jobforge.events USING btree (tenant_id, id);


--
-- Name: events_by_type; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX events_by_type ON jobforge.events USING btree (tenant_id, type, id);


--
-- Name: events_dedupe; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE UNIQUE INDEX events_dedupe ON jobforge.events USING btree (tenant_id, dedupe_key) WHERE (dedupe_key IS NOT NULL);


--
-- Name: job_attempts_by_job; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE UNIQUE INDEX job_attempts_by_job ON jobforge.job_attempts USING btree (job_id, id);


--
-- Name: job_attempts_stopping; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX job_attempts_stopping ON jobforge.job_attempts USING btree (stops_by) WHERE (stops_by IS NOT NULL);


--
-- Name: job_events_audit; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX job_events_audit ON jobforge.job_events USING btree (tenant_id, at, id) WHERE (actor IS NOT NULL);


--
-- Name: job_events_by_job; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE UNIQUE INDEX job_events_by_job ON jobforge.job_events USING btree (job_id, id);


--
-- Name: job_runs_by_job; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX job_runs_by_job ON jobforge.job_runs USING btree (job_id, id);


--
-- Name: job_runs_by_runner; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX job_runs_by_runner ON jobforge.job_runs USING btree (tenant_id, runner_id, id);


--
-- Name: jobs_by_tenant; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX jobs_by_tenant ON jobforge.jobs USING btree (tenant_id, id);


--
-- Name: jobs_by_trace; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX jobs_by_trace ON jobforge.jobs USING btree (tenant_id, trace_id, id) WHERE (trace_id IS NOT NULL);


--
-- Name: jobs_fair; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX jobs_fair ON jobforge.jobs USING btree (tenant_id, priority, run_at, id) WHERE (status = 'queued'::jobforge.job_status);


--
-- Name: jobs_finished; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX jobs_finished ON jobforge.jobs USING btree (type, finished_at, id) WHERE (finished_at IS NOT NULL);


--
-- Name: jobs_finished_by_tenant; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX jobs_finished_by_tenant ON jobforge.jobs USING btree (tenant_id, finished_at) INCLUDE (status, type, project) WHERE (finished_at IS NOT NULL);


--
-- Name: jobs_idempotency; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE UNIQUE INDEX jobs_idempotency ON jobforge.jobs USING btree (tenant_id, project, type, idempotency_key) WHERE (idempotency_key IS NOT NULL);


--
-- Name: jobs_leased; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX jobs_leased ON jobforge.jobs USING btree (lease_expires_at) WHERE (status = 'running'::jobforge.job_status);


--
-- Name: jobs_running_by_tenant; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX jobs_running_by_tenant ON jobforge.jobs USING btree (tenant_id) WHERE (status = 'running'::jobforge.job_status);


--
-- Name: jobs_settled; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX jobs_settled ON jobforge.jobs USING btree (tenant_id, status, type, finished_at) WHERE (status = ANY (ARRAY['failed'::jobforge.job_status, 'dead'::jobforge.job_status, 'canceled'::jobforge.job_status]));


--
-- Name: runner_catalogue_disabled; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX runner_catalogue_disabled ON jobforge.runner_catalogue USING btree (runner_id) WHERE (NOT enabled);


--
-- Name: schedule_firings_by_schedule; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX schedule_firings_by_schedule ON jobforge.schedule_firings USING btree (schedule_id, id);


--
-- Name: schedules_due; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX schedules_due ON jobforge.schedules USING btree (next_slot NULLS FIRST) WHERE ((NOT paused) AND (NOT held));


--
-- Name: token_uses_expiry; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX token_uses_expiry ON jobforge.token_uses USING btree (expires_at);


--
-- Name: trigger_evaluations_by_event; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX trigger_evaluations_by_event ON jobforge.trigger_evaluations USING btree (event_id);


--
-- Name: trigger_evaluations_by_trigger; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX trigger_evaluations_by_trigger ON jobforge.trigger_evaluations USING btree (trigger_id, id);


--
-- Name: trigger_evaluations_fired; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX trigger_evaluations_fired ON jobforge.trigger_evaluations USING btree (trigger_id, evaluated_at) WHERE (outcome = ANY (ARRAY['fired'::text, 'dry_run'::text]));


--
-- Name: triggers_by_type; Type: INDEX; Schema: jobforge; Owner: -
--

CREATE INDEX triggers_by_type ON jobforge.triggers USING btree (tenant_id, event_type);


--
-- Name: job_attempts job_attempts_project; Type: TRIGGER; Schema: jobforge; Owner: -
--

CREATE TRIGGER job_attempts_project BEFORE INSERT ON jobforge.job_attempts FOR EACH ROW WHEN ((new.project IS NULL)) EXECUTE FUNCTION jobforge.child_project();


--
-- Name: job_events job_events_project; Type: TRIGGER; Schema: jobforge; Owner: -
--

CREATE TRIGGER job_events_project BEFORE INSERT ON jobforge.job_events FOR EACH ROW WHEN ((new.project IS NULL)) EXECUTE FUNCTION jobforge.child_project();


--
-- Name: job_results job_results_project; Type: TRIGGER; Schema: jobforge; Owner: -
--

CREATE TRIGGER job_results_project BEFORE INSERT ON jobforge.job_results FOR EACH ROW WHEN ((new.project IS NULL)) EXECUTE FUNCTION jobforge.child_project();


--
-- Name: job_runs job_runs_project; Type: TRIGGER; Schema: jobforge; Owner: -
--

CREATE TRIGGER job_runs_project BEFORE INSERT ON jobforge.job_runs FOR EACH ROW WHEN ((new.project IS NULL)) EXECUTE FUNCTION jobforge.child_project();


--
-- Name: jobs jobs_delete_children; Type: TRIGGER; Schema: jobforge; Owner: -
--

CREATE TRIGGER jobs_delete_children AFTER DELETE ON jobforge.jobs REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION jobforge.jobs_delete_children();


--
-- Name: jobs jobs_notify_insert; Type: TRIGGER; Schema: jobforge; Owner: -
--

CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobforge.jobs FOR EACH STATEMENT EXECUTE FUNCTION jobforge.notify_jobs();


--
-- Name: jobs jobs_notify_requeue; Type: TRIGGER; Schema: jobforge; Owner: -
--

CREATE TRIGGER jobs_notify_requeue AFTER UPDATE OF status ON jobforge.jobs FOR EACH ROW WHEN (((old.status <> 'queued'::jobforge.job_status) AND (new.status = 'queued'::jobforge.job_status) AND (new.run_at <= now()))) EXECUTE FUNCTION jobforge.notify_jobs();


--
-- Name: jobs jobs_transition; Type: TRIGGER; Schema: jobforge; Owner: -
--

CREATE TRIGGER jobs_transition BEFORE UPDATE OF status ON jobforge.jobs FOR EACH ROW WHEN (((old.status IS DISTINCT FROM new.status) AND (NOT (((old.status = 'queued'::jobforge.job_status) AND (new.status = 'running'::jobforge.job_status)) OR ((old.status = 'queued'::jobforge.job_status) AND (new.status = 'canceled'::jobforge.job_status)) OR ((old.status = 'running'::jobforge.job_status) AND (new.status = 'queued'::jobforge.job_status)) OR ((old.status = 'running'::jobforge.job_status) AND (new.status = 'running'::jobforge.job_status)) OR ((old.status = 'running'::jobforge.job_status) AND (new.status = 'succeeded'::jobforge.job_status)) OR ((old.status = 'running'::jobforge.job_status) AND (new.status = 'failed'::jobforge.job_status)) OR ((old.status = 'running'::jobforge.job_status) AND (new.status = 'dead'::jobforge.job_status)) OR ((old.status = 'running'::jobforge.job_status) AND (new.status = 'canceled'::jobforge.job_status)) OR ((old.status = 'failed'::jobforge.job_status) AND (new.status = 'queued'::jobforge.job_status)) OR ((old.status = 'dead'::jobforge.job_status) AND (new.status = 'queued'::jobforge.job_status)) OR ((old.status = 'canceled'::jobforge.job_status) AND (new.status = 'queued'::jobforge.job_status)))))) EXECUTE FUNCTION jobforge.jobs_check_transition();


--
-- Name: artifact_chunks artifact_chunks_tenant_id_sha256_fkey; Type: FK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.artifact_chunks
    ADD CONSTRAINT artifact_chunks_tenant_id_sha256_fkey FOREIGN KEY (tenant_id, sha256) REFERENCES jobforge.artifact_blobs(tenant_id, sha256) ON DELETE CASCADE;


--
-- Name: artifact_refs artifact_refs_lease_token_fkey; Type: FK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.artifact_refs
    ADD CONSTRAINT artifact_refs_lease_token_fkey FOREIGN KEY (lease_token) REFERENCES jobforge.job_runs(lease_token) ON DELETE CASCADE;


--
-- Name: artifact_refs artifact_refs_tenant_id_sha256_fkey; Type: FK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.artifact_refs
    ADD CONSTRAINT artifact_refs_tenant_id_sha256_fkey FOREIGN KEY (tenant_id, sha256) REFERENCES jobforge.artifact_blobs(tenant_id, sha256);


--
-- Name: schedule_firings schedule_firings_schedule_id_fkey; Type: FK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.schedule_firings
    ADD CONSTRAINT schedule_firings_schedule_id_fkey FOREIGN KEY (schedule_id) REFERENCES jobforge.schedules(id) ON DELETE CASCADE;


--
-- Name: trigger_evaluations trigger_evaluations_event_id_fkey; Type: FK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.trigger_evaluations
    ADD CONSTRAINT trigger_evaluations_event_id_fkey FOREIGN KEY (event_id) REFERENCES jobforge.events(id) ON DELETE CASCADE;


--
-- Name: trigger_evaluations trigger_evaluations_trigger_id_fkey; Type: FK CONSTRAINT; Schema: jobforge; Owner: -
--

ALTER TABLE ONLY jobforge.trigger_evaluations
    ADD CONSTRAINT trigger_evaluations_trigger_id_fkey FOREIGN KEY (trigger_id) REFERENCES jobforge.triggers(id) ON DELETE CASCADE;


--
-- Name: artifact_blobs; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.artifact_blobs ENABLE ROW LEVEL SECURITY;

--
-- Name: artifact_chunks; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.artifact_chunks ENABLE ROW LEVEL SECURITY;

--
-- Name: artifact_refs; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.artifact_refs ENABLE ROW LEVEL SECURITY;

--
-- Name: connector_configs; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.connector_configs ENABLE ROW LEVEL SECURITY;

--
-- Name: events; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.events ENABLE ROW LEVEL SECURITY;

--
-- Name: features; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.features ENABLE ROW LEVEL SECURITY;

--
-- Name: job_attempts; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_attempts ENABLE ROW LEVEL SECURITY;

--
-- Name: job_events; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_events ENABLE ROW LEVEL SECURITY;

--
-- Name: job_results; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_results ENABLE ROW LEVEL SECURITY;

--
-- Name: job_runs; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.job_runs ENABLE ROW LEVEL SECURITY;

--
-- Name: jobs; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.jobs ENABLE ROW LEVEL SECURITY;

--
-- Name: runner_catalogue operator_writes; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY operator_writes ON jobforge.runner_catalogue USING (pg_has_role(SESSION_USER, 'jobforge_worker'::name, 'MEMBER'::text)) WITH CHECK (pg_has_role(SESSION_USER, 'jobforge_worker'::name, 'MEMBER'::text));


--
-- Name: tenant_logins own_row; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY own_row ON jobforge.tenant_logins FOR SELECT USING ((login = SESSION_USER));


--
-- Name: runner_catalogue readable; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY readable ON jobforge.runner_catalogue FOR SELECT USING (true);


--
-- Name: runner_catalogue; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.runner_catalogue ENABLE ROW LEVEL SECURITY;

--
-- Name: schedule_firings; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.schedule_firings ENABLE ROW LEVEL SECURITY;

--
-- Name: schedules; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.schedules ENABLE ROW LEVEL SECURITY;

--
-- Name: features scoped; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY scoped ON jobforge.features USING (((tenant = '*'::text) OR (tenant = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (( SELECT jobforge.worker_scope() AS worker_scope));


--
-- Name: signing_keys; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.signing_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: artifact_blobs tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.artifact_blobs USING (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)));


--
-- Name: artifact_chunks tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.artifact_chunks USING (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)));


--
-- Name: artifact_refs tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.artifact_refs USING (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)));


--
-- Name: connector_configs tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.connector_configs USING (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)));


--
-- Name: events tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.events USING (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)));


--
-- Name: job_attempts tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.job_attempts USING ((((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)) AND (project = COALESCE(( SELECT jobforge.current_project() AS current_project), project)))) WITH CHECK ((((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)) AND (project = COALESCE(( SELECT jobforge.current_project() AS current_project), project))));


--
-- Name: job_events tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.job_events USING ((((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)) AND (project = COALESCE(( SELECT jobforge.current_project() AS current_project), project)))) WITH CHECK ((((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)) AND (project = COALESCE(( SELECT jobforge.current_project() AS current_project), project))));


--
-- Name: job_results tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.job_results USING ((((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)) AND (project = COALESCE(( SELECT jobforge.current_project() AS current_project), project)))) WITH CHECK ((((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)) AND (project = COALESCE(( SELECT jobforge.current_project() AS current_project), project))));


--
-- Name: job_runs tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.job_runs USING ((((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)) AND (project = COALESCE(( SELECT jobforge.current_project() AS current_project), project)))) WITH CHECK ((((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)) AND (project = COALESCE(( SELECT jobforge.current_project() AS current_project), project))));


--
-- Name: jobs tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.jobs USING (((((tenant_id)::text = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)) AND ((project)::text = COALESCE(( SELECT jobforge.current_project() AS current_project), (project)::text)))) WITH CHECK (((((tenant_id)::text = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)) AND ((project)::text = COALESCE(( SELECT jobforge.current_project() AS current_project), (project)::text))));


--
-- Name: schedule_firings tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.schedule_firings USING (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)));


--
-- Name: schedules tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.schedules USING (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)));


--
-- Name: signing_keys tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.signing_keys USING (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)));


--
-- Name: token_uses tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.token_uses USING (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)));


--
-- Name: trigger_evaluations tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.trigger_evaluations USING (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)));


--
-- Name: triggers tenant_isolation; Type: POLICY; Schema: jobforge; Owner: -
--

CREATE POLICY tenant_isolation ON jobforge.triggers USING (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope))) WITH CHECK (((tenant_id = ( SELECT jobforge.current_tenant() AS current_tenant)) OR ( SELECT jobforge.worker_scope() AS worker_scope)));


--
-- Name: tenant_logins; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.tenant_logins ENABLE ROW LEVEL SECURITY;

--
-- Name: token_uses; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.token_uses ENABLE ROW LEVEL SECURITY;

--
-- Name: trigger_evaluations; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.trigger_evaluations ENABLE ROW LEVEL SECURITY;

--
-- Name: triggers; Type: ROW SECURITY; Schema: jobforge; Owner: -
--

ALTER TABLE jobforge.triggers ENABLE ROW LEVEL SECURITY;

--
-- Name: SCHEMA jobforge; Type: ACL; Schema: -; Owner: -
--

GRANT USAGE ON SCHEMA jobforge TO jobforge_app;
GRANT USAGE ON SCHEMA jobforge TO jobforge_worker;


--
-- Name: TYPE envelope; Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON TYPE jobforge.envelope FROM PUBLIC;


--
-- Name: TYPE idempotency_key; Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON TYPE jobforge.idempotency_key FROM PUBLIC;


--
-- Name: TYPE job_type; Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON TYPE jobforge.job_type FROM PUBLIC;


--
-- Name: TYPE payload; Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON TYPE jobforge.payload FROM PUBLIC;


--
-- Name: TYPE payload_hash; Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON TYPE jobforge.payload_hash FROM PUBLIC;


--
-- Name: TYPE project_name; Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON TYPE jobforge.project_name FROM PUBLIC;


--
-- Name: TYPE tenant_id; Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON TYPE jobforge.tenant_id FROM PUBLIC;


--
-- Name: FUNCTION acknowledge_cancel_v1(p_worker text, p_job_id bigint, p_token uuid, p_data jsonb, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.acknowledge_cancel_v1(p_worker text, p_job_id bigint, p_token uuid, p_data jsonb, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.acknowledge_cancel_v1(p_worker text, p_job_id bigint, p_token uuid, p_data jsonb, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION artifact_begin_v1(p_worker text, p_job_id bigint, p_token uuid, p_tenant text, p_sha256 text, p_size bigint, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.artifact_begin_v1(p_worker text, p_job_id bigint, p_token uuid, p_tenant text, p_sha256 text, p_size bigint, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.artifact_begin_v1(p_worker text, p_job_id bigint, p_token uuid, p_tenant text, p_sha256 text, p_size bigint, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION artifact_chunk_v1(p_worker text, p_job_id bigint, p_token uuid, p_sha256 text, p_seq integer, p_data bytea); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.artifact_chunk_v1(p_worker text, p_job_id bigint, p_token uuid, p_sha256 text, p_seq integer, p_data bytea) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.artifact_chunk_v1(p_worker text, p_job_id bigint, p_token uuid, p_sha256 text, p_seq integer, p_data bytea) TO jobforge_worker;


--
-- Name: FUNCTION artifact_fence(p_worker text, p_job_id bigint, p_token uuid); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.artifact_fence(p_worker text, p_job_id bigint, p_token uuid) FROM PUBLIC;


--
-- Name: FUNCTION artifact_finish_v1(p_worker text, p_job_id bigint, p_token uuid, p_sha256 text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.artifact_finish_v1(p_worker text, p_job_id bigint, p_token uuid, p_sha256 text) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.artifact_finish_v1(p_worker text, p_job_id bigint, p_token uuid, p_sha256 text) TO jobforge_worker;


--
-- Name: FUNCTION artifact_put_v1(p_worker text, p_job_id bigint, p_token uuid, p_tenant text, p_sha256 text, p_data bytea, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.artifact_put_v1(p_worker text, p_job_id bigint, p_token uuid, p_tenant text, p_sha256 text, p_data bytea, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.artifact_put_v1(p_worker text, p_job_id bigint, p_token uuid, p_tenant text, p_sha256 text, p_data bytea, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION backoff(p_job_id bigint, p_attempt integer, p_base_s double precision, p_cap_s double precision); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.backoff(p_job_id bigint, p_attempt integer, p_base_s double precision, p_cap_s double precision) FROM PUBLIC;


--
-- Name: FUNCTION bulk_cancel_v1(p_statuses text[], p_types text[], p_since timestamp with time zone, p_after_id bigint, p_limit integer, p_dry_run boolean, p_ids bigint[], p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.bulk_cancel_v1(p_statuses text[], p_types text[], p_since timestamp with time zone, p_after_id bigint, p_limit integer, p_dry_run boolean, p_ids bigint[], p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.bulk_cancel_v1(p_statuses text[], p_types text[], p_since timestamp with time zone, p_after_id bigint, p_limit integer, p_dry_run boolean, p_ids bigint[], p_now timestamp with time zone) TO jobforge_app;


--
-- Name: FUNCTION bulk_check(p_action text, p_limit integer, p_since timestamp with time zone, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.bulk_check(p_action text, p_limit integer, p_since timestamp with time zone, p_now timestamp with time zone) FROM PUBLIC;


--
-- Name: FUNCTION bulk_retry_v1(p_statuses text[], p_types text[], p_since timestamp with time zone, p_reset_attempts boolean, p_after_id bigint, p_limit integer, p_dry_run boolean, p_ids bigint[], p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.bulk_retry_v1(p_statuses text[], p_types text[], p_since timestamp with time zone, p_reset_attempts boolean, p_after_id bigint, p_limit integer, p_dry_run boolean, p_ids bigint[], p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.bulk_retry_v1(p_statuses text[], p_types text[], p_since timestamp with time zone, p_reset_attempts boolean, p_after_id bigint, p_limit integer, p_dry_run boolean, p_ids bigint[], p_now timestamp with time zone) TO jobforge_app;


--
-- Name: FUNCTION bulk_statuses(p_action text, p_statuses text[], p_allowed text[]); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.bulk_statuses(p_action text, p_statuses text[], p_allowed text[]) FROM PUBLIC;


--
-- Name: FUNCTION cancel_v1(p_job_id bigint, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.cancel_v1(p_job_id bigint, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.cancel_v1(p_job_id bigint, p_now timestamp with time zone) TO jobforge_app;


--
-- Name: FUNCTION catalogue_enable_v1(p_runner_id text, p_enabled boolean); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.catalogue_enable_v1(p_runner_id text, p_enabled boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.catalogue_enable_v1(p_runner_id text, p_enabled boolean) TO jobforge_worker;


--
-- Name: FUNCTION catalogue_sync_v1(p_runner_id text, p_version text, p_input_schema jsonb, p_output_schema jsonb, p_contract_sha256 text, p_force boolean); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.catalogue_sync_v1(p_runner_id text, p_version text, p_input_schema jsonb, p_output_schema jsonb, p_contract_sha256 text, p_force boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.catalogue_sync_v1(p_runner_id text, p_version text, p_input_schema jsonb, p_output_schema jsonb, p_contract_sha256 text, p_force boolean) TO jobforge_worker;


--
-- Name: FUNCTION catalogue_sync_v2(p_runner_id text, p_version text, p_input_schema jsonb, p_output_schema jsonb, p_contract_sha256 text, p_force boolean, p_max_attempts integer); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.catalogue_sync_v2(p_runner_id text, p_version text, p_input_schema jsonb, p_output_schema jsonb, p_contract_sha256 text, p_force boolean, p_max_attempts integer) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.catalogue_sync_v2(p_runner_id text, p_version text, p_input_schema jsonb, p_output_schema jsonb, p_contract_sha256 text, p_force boolean, p_max_attempts integer) TO jobforge_worker;


--
-- Name: FUNCTION check_run_at(p_run_at timestamp with time zone, p_now timestamp with time zone, p_what text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.check_run_at(p_run_at timestamp with time zone, p_now timestamp with time zone, p_what text) FROM PUBLIC;


--
-- Name: FUNCTION child_project(); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.child_project() FROM PUBLIC;


--
-- Name: TABLE jobs; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.jobs TO jobforge_app;
GRANT SELECT ON TABLE jobforge.jobs TO jobforge_worker;


--
-- Name: FUNCTION claim_tenant_v1(p_tenant text, p_worker text, p_limit integer, p_types text[], p_lease_seconds double precision, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.claim_tenant_v1(p_tenant text, p_worker text, p_limit integer, p_types text[], p_lease_seconds double precision, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.claim_tenant_v1(p_tenant text, p_worker text, p_limit integer, p_types text[], p_lease_seconds double precision, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION claim_v1(p_worker text, p_limit integer, p_types text[], p_lease_seconds double precision, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.claim_v1(p_worker text, p_limit integer, p_types text[], p_lease_seconds double precision, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.claim_v1(p_worker text, p_limit integer, p_types text[], p_lease_seconds double precision, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION clear_feature_v1(p_feature text, p_tenant text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.clear_feature_v1(p_feature text, p_tenant text) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.clear_feature_v1(p_feature text, p_tenant text) TO jobforge_worker;


--
-- Name: FUNCTION clear_limit_v1(p_scope text, p_key text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.clear_limit_v1(p_scope text, p_key text) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.clear_limit_v1(p_scope text, p_key text) TO jobforge_worker;


--
-- Name: FUNCTION clear_retention_v1(p_type text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.clear_retention_v1(p_type text) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.clear_retention_v1(p_type text) TO jobforge_worker;


--
-- Name: FUNCTION clock(p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.clock(p_now timestamp with time zone) FROM PUBLIC;


--
-- Name: FUNCTION connector_remove_v1(p_name text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.connector_remove_v1(p_name text) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.connector_remove_v1(p_name text) TO jobforge_app;


--
-- Name: FUNCTION connector_set_v1(p_name text, p_config jsonb); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.connector_set_v1(p_name text, p_config jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.connector_set_v1(p_name text, p_config jsonb) TO jobforge_app;


--
-- Name: FUNCTION current_project(); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.current_project() FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.current_project() TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.current_project() TO jobforge_worker;


--
-- Name: FUNCTION current_tenant(); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.current_tenant() FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.current_tenant() TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.current_tenant() TO jobforge_worker;


--
-- Name: FUNCTION enqueue_one_v1(p_tenant text, p_project_scope text, p_actor text, p_reason text, p_type text, p_payload jsonb, p_idempotency_key text, p_priority integer, p_run_at timestamp with time zone, p_max_attempts integer, p_trace_id text, p_project text, p_now timestamp with time zone, p_max_payload_bytes integer, p_envelope jsonb); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.enqueue_one_v1(p_tenant text, p_project_scope text, p_actor text, p_reason text, p_type text, p_payload jsonb, p_idempotency_key text, p_priority integer, p_run_at timestamp with time zone, p_max_attempts integer, p_trace_id text, p_project text, p_now timestamp with time zone, p_max_payload_bytes integer, p_envelope jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.enqueue_one_v1(p_tenant text, p_project_scope text, p_actor text, p_reason text, p_type text, p_payload jsonb, p_idempotency_key text, p_priority integer, p_run_at timestamp with time zone, p_max_attempts integer, p_trace_id text, p_project text, p_now timestamp with time zone, p_max_payload_bytes integer, p_envelope jsonb) TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.enqueue_one_v1(p_tenant text, p_project_scope text, p_actor text, p_reason text, p_type text, p_payload jsonb, p_idempotency_key text, p_priority integer, p_run_at timestamp with time zone, p_max_attempts integer, p_trace_id text, p_project text, p_now timestamp with time zone, p_max_payload_bytes integer, p_envelope jsonb) TO jobforge_worker;


--
-- Name: FUNCTION enqueue_v1(p_types text[], p_payloads jsonb[], p_idempotency_keys text[], p_priorities integer[], p_run_ats timestamp with time zone[], p_max_attempts integer[], p_trace_ids text[], p_now timestamp with time zone, p_max_payload_bytes integer, p_projects text[], p_envelopes jsonb[]); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.enqueue_v1(p_types text[], p_payloads jsonb[], p_idempotency_keys text[], p_priorities integer[], p_run_ats timestamp with time zone[], p_max_attempts integer[], p_trace_ids text[], p_now timestamp with time zone, p_max_payload_bytes integer, p_projects text[], p_envelopes jsonb[]) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.enqueue_v1(p_types text[], p_payloads jsonb[], p_idempotency_keys text[], p_priorities integer[], p_run_ats timestamp with time zone[], p_max_attempts integer[], p_trace_ids text[], p_now timestamp with time zone, p_max_payload_bytes integer, p_projects text[], p_envelopes jsonb[]) TO jobforge_app;


--
-- Name: TABLE events; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.events TO jobforge_app;
GRANT SELECT ON TABLE jobforge.events TO jobforge_worker;


--
-- Name: TABLE trigger_evaluations; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.trigger_evaluations TO jobforge_app;
GRANT SELECT ON TABLE jobforge.trigger_evaluations TO jobforge_worker;


--
-- Name: FUNCTION evaluate_triggers(p_event jobforge.events, p_now timestamp with time zone, p_force_dry boolean); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.evaluate_triggers(p_event jobforge.events, p_now timestamp with time zone, p_force_dry boolean) FROM PUBLIC;


--
-- Name: FUNCTION event_envelope(p_event jobforge.events); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.event_envelope(p_event jobforge.events) FROM PUBLIC;


--
-- Name: FUNCTION event_submit_v1(p_type text, p_source text, p_subject text, p_data jsonb, p_dedupe_key text, p_occurred_at timestamp with time zone, p_dry_run boolean, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.event_submit_v1(p_type text, p_source text, p_subject text, p_data jsonb, p_dedupe_key text, p_occurred_at timestamp with time zone, p_dry_run boolean, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.event_submit_v1(p_type text, p_source text, p_subject text, p_data jsonb, p_dedupe_key text, p_occurred_at timestamp with time zone, p_dry_run boolean, p_now timestamp with time zone) TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.event_submit_v1(p_type text, p_source text, p_subject text, p_data jsonb, p_dedupe_key text, p_occurred_at timestamp with time zone, p_dry_run boolean, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION feature_enabled(p_feature text, p_tenant text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.feature_enabled(p_feature text, p_tenant text) FROM PUBLIC;


--
-- Name: FUNCTION finish_followups_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[], p_results jsonb[], p_errors jsonb[], p_now timestamp with time zone, p_backoff_base_s double precision, p_backoff_cap_s double precision, p_followups jsonb); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.finish_followups_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[], p_results jsonb[], p_errors jsonb[], p_now timestamp with time zone, p_backoff_base_s double precision, p_backoff_cap_s double precision, p_followups jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.finish_followups_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[], p_results jsonb[], p_errors jsonb[], p_now timestamp with time zone, p_backoff_base_s double precision, p_backoff_cap_s double precision, p_followups jsonb) TO jobforge_worker;


--
-- Name: FUNCTION finish_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[], p_results jsonb[], p_errors jsonb[], p_now timestamp with time zone, p_backoff_base_s double precision, p_backoff_cap_s double precision); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.finish_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[], p_results jsonb[], p_errors jsonb[], p_now timestamp with time zone, p_backoff_base_s double precision, p_backoff_cap_s double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.finish_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[], p_results jsonb[], p_errors jsonb[], p_now timestamp with time zone, p_backoff_base_s double precision, p_backoff_cap_s double precision) TO jobforge_worker;


--
-- Name: FUNCTION heartbeat_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_lease_seconds double precision, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.heartbeat_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_lease_seconds double precision, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.heartbeat_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_lease_seconds double precision, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION hold_for_feature(p_feature text, p_tenant text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.hold_for_feature(p_feature text, p_tenant text) FROM PUBLIC;


--
-- Name: FUNCTION jitter(p_job_id bigint, p_attempt integer); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.jitter(p_job_id bigint, p_attempt integer) FROM PUBLIC;


--
-- Name: FUNCTION jobs_check_transition(); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.jobs_check_transition() FROM PUBLIC;


--
-- Name: FUNCTION json_problem(p_value jsonb); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.json_problem(p_value jsonb) FROM PUBLIC;


--
-- Name: FUNCTION known_features(); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.known_features() FROM PUBLIC;


--
-- Name: FUNCTION lease_id(p_token uuid); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.lease_id(p_token uuid) FROM PUBLIC;


--
-- Name: FUNCTION progress_v1(p_worker text, p_job_id bigint, p_token uuid, p_pct real, p_message text, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.progress_v1(p_worker text, p_job_id bigint, p_token uuid, p_pct real, p_message text, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.progress_v1(p_worker text, p_job_id bigint, p_token uuid, p_pct real, p_message text, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION prune_artifacts_v1(p_tenant text, p_grace interval, p_batch integer, p_dry_run boolean, p_after_at timestamp with time zone, p_after_tenant text, p_after_sha text, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.prune_artifacts_v1(p_tenant text, p_grace interval, p_batch integer, p_dry_run boolean, p_after_at timestamp with time zone, p_after_tenant text, p_after_sha text, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.prune_artifacts_v1(p_tenant text, p_grace interval, p_batch integer, p_dry_run boolean, p_after_at timestamp with time zone, p_after_tenant text, p_after_sha text, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION prune_batch(p_older_than interval, p_statuses jobforge.job_status[], p_tenant text, p_types text[], p_runs_only boolean, p_dry_run boolean, p_batch integer, p_after_type text, p_after_at timestamp with time zone, p_after_id bigint, p_now timestamp with time zone, p_project text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.prune_batch(p_older_than interval, p_statuses jobforge.job_status[], p_tenant text, p_types text[], p_runs_only boolean, p_dry_run boolean, p_batch integer, p_after_type text, p_after_at timestamp with time zone, p_after_id bigint, p_now timestamp with time zone, p_project text) FROM PUBLIC;


--
-- Name: FUNCTION prune_pass_v1(p_worker text, p_every_s double precision, p_batch integer, p_hold_s double precision, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.prune_pass_v1(p_worker text, p_every_s double precision, p_batch integer, p_hold_s double precision, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.prune_pass_v1(p_worker text, p_every_s double precision, p_batch integer, p_hold_s double precision, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION prune_token_uses_v1(p_batch integer, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.prune_token_uses_v1(p_batch integer, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.prune_token_uses_v1(p_batch integer, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION prune_v1(p_older_than interval, p_statuses text[], p_tenant text, p_types text[], p_runs_only boolean, p_dry_run boolean, p_batch integer, p_after_type text, p_after_at timestamp with time zone, p_after_id bigint, p_now timestamp with time zone, p_project text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.prune_v1(p_older_than interval, p_statuses text[], p_tenant text, p_types text[], p_runs_only boolean, p_dry_run boolean, p_batch integer, p_after_type text, p_after_at timestamp with time zone, p_after_id bigint, p_now timestamp with time zone, p_project text) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.prune_v1(p_older_than interval, p_statuses text[], p_tenant text, p_types text[], p_runs_only boolean, p_dry_run boolean, p_batch integer, p_after_type text, p_after_at timestamp with time zone, p_after_id bigint, p_now timestamp with time zone, p_project text) TO jobforge_worker;


--
-- Name: FUNCTION reap_v1(p_limit integer, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.reap_v1(p_limit integer, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.reap_v1(p_limit integer, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION record_run_v1(p_worker text, p_job_id bigint, p_token uuid, p_runner_id text, p_runner_version text, p_status text, p_input_sha256 text, p_output_sha256 text, p_trace_sha256 text, p_record jsonb, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.record_run_v1(p_worker text, p_job_id bigint, p_token uuid, p_runner_id text, p_runner_version text, p_status text, p_input_sha256 text, p_output_sha256 text, p_trace_sha256 text, p_record jsonb, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.record_run_v1(p_worker text, p_job_id bigint, p_token uuid, p_runner_id text, p_runner_version text, p_status text, p_input_sha256 text, p_output_sha256 text, p_trace_sha256 text, p_record jsonb, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION record_run_v2(p_worker text, p_job_id bigint, p_token uuid, p_runner_id text, p_runner_version text, p_status text, p_input_sha256 text, p_output_sha256 text, p_trace_sha256 text, p_record jsonb, p_names text[], p_shas text[], p_sizes bigint[], p_datas bytea[], p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.record_run_v2(p_worker text, p_job_id bigint, p_token uuid, p_runner_id text, p_runner_version text, p_status text, p_input_sha256 text, p_output_sha256 text, p_trace_sha256 text, p_record jsonb, p_names text[], p_shas text[], p_sizes bigint[], p_datas bytea[], p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.record_run_v2(p_worker text, p_job_id bigint, p_token uuid, p_runner_id text, p_runner_version text, p_status text, p_input_sha256 text, p_output_sha256 text, p_trace_sha256 text, p_record jsonb, p_names text[], p_shas text[], p_sizes bigint[], p_datas bytea[], p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION release_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.release_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.release_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION require_feature(p_feature text, p_tenant text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.require_feature(p_feature text, p_tenant text) FROM PUBLIC;


--
-- Name: FUNCTION require_project_scope(); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.require_project_scope() FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.require_project_scope() TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.require_project_scope() TO jobforge_worker;


--
-- Name: FUNCTION require_tenant(); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.require_tenant() FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.require_tenant() TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.require_tenant() TO jobforge_worker;


--
-- Name: FUNCTION require_whole_tenant_login(); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.require_whole_tenant_login() FROM PUBLIC;


--
-- Name: FUNCTION require_worker(); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.require_worker() FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.require_worker() TO jobforge_worker;


--
-- Name: FUNCTION reschedule_v1(p_job_id bigint, p_reset_attempts boolean, p_run_at timestamp with time zone, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.reschedule_v1(p_job_id bigint, p_reset_attempts boolean, p_run_at timestamp with time zone, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.reschedule_v1(p_job_id bigint, p_reset_attempts boolean, p_run_at timestamp with time zone, p_now timestamp with time zone) TO jobforge_app;


--
-- Name: TABLE schedules; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.schedules TO jobforge_app;
GRANT SELECT ON TABLE jobforge.schedules TO jobforge_worker;


--
-- Name: FUNCTION schedule_add_v1(p_name text, p_cron text, p_timezone text, p_type text, p_input jsonb, p_priority integer, p_max_attempts integer, p_missed text, p_catch_up integer, p_grace interval, p_dry_run boolean, p_paused boolean, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.schedule_add_v1(p_name text, p_cron text, p_timezone text, p_type text, p_input jsonb, p_priority integer, p_max_attempts integer, p_missed text, p_catch_up integer, p_grace interval, p_dry_run boolean, p_paused boolean, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.schedule_add_v1(p_name text, p_cron text, p_timezone text, p_type text, p_input jsonb, p_priority integer, p_max_attempts integer, p_missed text, p_catch_up integer, p_grace interval, p_dry_run boolean, p_paused boolean, p_now timestamp with time zone) TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.schedule_add_v1(p_name text, p_cron text, p_timezone text, p_type text, p_input jsonb, p_priority integer, p_max_attempts integer, p_missed text, p_catch_up integer, p_grace interval, p_dry_run boolean, p_paused boolean, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION schedule_fire_v1(p_plans jsonb, p_worker text, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.schedule_fire_v1(p_plans jsonb, p_worker text, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.schedule_fire_v1(p_plans jsonb, p_worker text, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION schedule_locked(p_tenant text, p_name text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.schedule_locked(p_tenant text, p_name text) FROM PUBLIC;


--
-- Name: FUNCTION schedule_pause_v1(p_name text, p_paused boolean, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.schedule_pause_v1(p_name text, p_paused boolean, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.schedule_pause_v1(p_name text, p_paused boolean, p_now timestamp with time zone) TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.schedule_pause_v1(p_name text, p_paused boolean, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION schedule_remove_v1(p_name text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.schedule_remove_v1(p_name text) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.schedule_remove_v1(p_name text) TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.schedule_remove_v1(p_name text) TO jobforge_worker;


--
-- Name: FUNCTION schedules_due_v1(p_limit integer, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.schedules_due_v1(p_limit integer, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.schedules_due_v1(p_limit integer, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: TABLE features; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.features TO jobforge_worker;


--
-- Name: FUNCTION set_feature_v1(p_feature text, p_tenant text, p_enabled boolean, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.set_feature_v1(p_feature text, p_tenant text, p_enabled boolean, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.set_feature_v1(p_feature text, p_tenant text, p_enabled boolean, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: TABLE queue_limits; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.queue_limits TO jobforge_worker;


--
-- Name: FUNCTION set_limit_v1(p_scope text, p_key text, p_max_running integer, p_rate_per_s double precision, p_burst double precision, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.set_limit_v1(p_scope text, p_key text, p_max_running integer, p_rate_per_s double precision, p_burst double precision, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.set_limit_v1(p_scope text, p_key text, p_max_running integer, p_rate_per_s double precision, p_burst double precision, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: TABLE retention; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.retention TO jobforge_worker;


--
-- Name: FUNCTION set_retention_v1(p_type text, p_keep interval, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.set_retention_v1(p_type text, p_keep interval, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.set_retention_v1(p_type text, p_keep interval, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION signing_key_add_v1(p_key_id text, p_public_key bytea, p_owner text, p_valid_from timestamp with time zone, p_valid_until timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.signing_key_add_v1(p_key_id text, p_public_key bytea, p_owner text, p_valid_from timestamp with time zone, p_valid_until timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.signing_key_add_v1(p_key_id text, p_public_key bytea, p_owner text, p_valid_from timestamp with time zone, p_valid_until timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION signing_key_revoke_v1(p_key_id text, p_reason text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.signing_key_revoke_v1(p_key_id text, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.signing_key_revoke_v1(p_key_id text, p_reason text) TO jobforge_worker;


--
-- Name: FUNCTION signing_key_rotate_v1(p_old_key_id text, p_new_key_id text, p_public_key bytea, p_owner text, p_overlap interval); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.signing_key_rotate_v1(p_old_key_id text, p_new_key_id text, p_public_key bytea, p_owner text, p_overlap interval) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.signing_key_rotate_v1(p_old_key_id text, p_new_key_id text, p_public_key bytea, p_owner text, p_overlap interval) TO jobforge_worker;


--
-- Name: FUNCTION state_phrase(p_status jobforge.job_status, p_already boolean); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.state_phrase(p_status jobforge.job_status, p_already boolean) FROM PUBLIC;


--
-- Name: FUNCTION stats_v1(p_succeeded boolean, p_expiring_s double precision, p_recent_s double precision, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.stats_v1(p_succeeded boolean, p_expiring_s double precision, p_recent_s double precision, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.stats_v1(p_succeeded boolean, p_expiring_s double precision, p_recent_s double precision, p_now timestamp with time zone) TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.stats_v1(p_succeeded boolean, p_expiring_s double precision, p_recent_s double precision, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION token_consume_v1(p_worker text, p_job_id bigint, p_token uuid, p_jti text, p_expires_at timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.token_consume_v1(p_worker text, p_job_id bigint, p_token uuid, p_jti text, p_expires_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.token_consume_v1(p_worker text, p_job_id bigint, p_token uuid, p_jti text, p_expires_at timestamp with time zone) TO jobforge_worker;


--
-- Name: TABLE triggers; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.triggers TO jobforge_app;
GRANT SELECT ON TABLE jobforge.triggers TO jobforge_worker;


--
-- Name: FUNCTION trigger_add_v1(p_name text, p_event_type text, p_predicates jsonb, p_job_type text, p_input jsonb, p_dedupe text, p_cooldown interval, p_max_per_hour integer, p_dry_run boolean, p_paused boolean, p_priority integer, p_max_attempts integer, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.trigger_add_v1(p_name text, p_event_type text, p_predicates jsonb, p_job_type text, p_input jsonb, p_dedupe text, p_cooldown interval, p_max_per_hour integer, p_dry_run boolean, p_paused boolean, p_priority integer, p_max_attempts integer, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.trigger_add_v1(p_name text, p_event_type text, p_predicates jsonb, p_job_type text, p_input jsonb, p_dedupe text, p_cooldown interval, p_max_per_hour integer, p_dry_run boolean, p_paused boolean, p_priority integer, p_max_attempts integer, p_now timestamp with time zone) TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.trigger_add_v1(p_name text, p_event_type text, p_predicates jsonb, p_job_type text, p_input jsonb, p_dedupe text, p_cooldown interval, p_max_per_hour integer, p_dry_run boolean, p_paused boolean, p_priority integer, p_max_attempts integer, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION trigger_locked(p_tenant text, p_name text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.trigger_locked(p_tenant text, p_name text) FROM PUBLIC;


--
-- Name: FUNCTION trigger_match(p_predicates jsonb, p_data jsonb); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.trigger_match(p_predicates jsonb, p_data jsonb) FROM PUBLIC;


--
-- Name: FUNCTION trigger_outcome(p_trigger jobforge.triggers, p_event jsonb, OUT reason text, OUT detail text, OUT input jsonb, OUT idempotency_key text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.trigger_outcome(p_trigger jobforge.triggers, p_event jsonb, OUT reason text, OUT detail text, OUT input jsonb, OUT idempotency_key text) FROM PUBLIC;


--
-- Name: FUNCTION trigger_pause_v1(p_name text, p_paused boolean, p_now timestamp with time zone); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.trigger_pause_v1(p_name text, p_paused boolean, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.trigger_pause_v1(p_name text, p_paused boolean, p_now timestamp with time zone) TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.trigger_pause_v1(p_name text, p_paused boolean, p_now timestamp with time zone) TO jobforge_worker;


--
-- Name: FUNCTION trigger_predicates_problem(p_predicates jsonb); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.trigger_predicates_problem(p_predicates jsonb) FROM PUBLIC;


--
-- Name: FUNCTION trigger_remove_v1(p_name text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.trigger_remove_v1(p_name text) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.trigger_remove_v1(p_name text) TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.trigger_remove_v1(p_name text) TO jobforge_worker;


--
-- Name: FUNCTION trigger_render(p_template jsonb, p_event jsonb); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.trigger_render(p_template jsonb, p_event jsonb) FROM PUBLIC;


--
-- Name: FUNCTION trigger_test_v1(p_name text, p_event jsonb); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.trigger_test_v1(p_name text, p_event jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.trigger_test_v1(p_name text, p_event jsonb) TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.trigger_test_v1(p_name text, p_event jsonb) TO jobforge_worker;


--
-- Name: FUNCTION trigger_value(p_path text, p_event jsonb); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.trigger_value(p_path text, p_event jsonb) FROM PUBLIC;


--
-- Name: FUNCTION version_core(p_version text); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.version_core(p_version text) FROM PUBLIC;


--
-- Name: FUNCTION whole_number_between(p_value jsonb, p_lo integer, p_hi integer); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.whole_number_between(p_value jsonb, p_lo integer, p_hi integer) FROM PUBLIC;


--
-- Name: FUNCTION worker_scope(); Type: ACL; Schema: jobforge; Owner: -
--

REVOKE ALL ON FUNCTION jobforge.worker_scope() FROM PUBLIC;
GRANT ALL ON FUNCTION jobforge.worker_scope() TO jobforge_app;
GRANT ALL ON FUNCTION jobforge.worker_scope() TO jobforge_worker;


--
-- Name: TABLE artifact_blobs; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.artifact_blobs TO jobforge_app;
GRANT SELECT ON TABLE jobforge.artifact_blobs TO jobforge_worker;


--
-- Name: TABLE artifact_chunks; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.artifact_chunks TO jobforge_app;
GRANT SELECT ON TABLE jobforge.artifact_chunks TO jobforge_worker;


--
-- Name: TABLE artifact_refs; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.artifact_refs TO jobforge_app;
GRANT SELECT ON TABLE jobforge.artifact_refs TO jobforge_worker;


--
-- Name: TABLE connector_configs; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.connector_configs TO jobforge_app;
GRANT SELECT ON TABLE jobforge.connector_configs TO jobforge_worker;


--
-- Name: TABLE job_attempts; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.job_attempts TO jobforge_app;
GRANT SELECT ON TABLE jobforge.job_attempts TO jobforge_worker;


--
-- Name: TABLE job_events; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.job_events TO jobforge_app;
GRANT SELECT ON TABLE jobforge.job_events TO jobforge_worker;


--
-- Name: TABLE job_event_log; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.job_event_log TO jobforge_app;
GRANT SELECT ON TABLE jobforge.job_event_log TO jobforge_worker;


--
-- Name: TABLE job_results; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.job_results TO jobforge_app;
GRANT SELECT ON TABLE jobforge.job_results TO jobforge_worker;


--
-- Name: TABLE job_runs; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.job_runs TO jobforge_app;
GRANT SELECT ON TABLE jobforge.job_runs TO jobforge_worker;


--
-- Name: TABLE prune_pass; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.prune_pass TO jobforge_worker;


--
-- Name: TABLE runner_catalogue; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.runner_catalogue TO jobforge_app;
GRANT SELECT ON TABLE jobforge.runner_catalogue TO jobforge_worker;


--
-- Name: TABLE schedule_firings; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.schedule_firings TO jobforge_app;
GRANT SELECT ON TABLE jobforge.schedule_firings TO jobforge_worker;


--
-- Name: TABLE schema_migrations; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.schema_migrations TO jobforge_app;
GRANT SELECT ON TABLE jobforge.schema_migrations TO jobforge_worker;


--
-- Name: TABLE signing_keys; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.signing_keys TO jobforge_app;
GRANT SELECT ON TABLE jobforge.signing_keys TO jobforge_worker;


--
-- Name: TABLE tenant_logins; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.tenant_logins TO jobforge_app;
GRANT SELECT ON TABLE jobforge.tenant_logins TO jobforge_worker;


--
-- Name: TABLE token_uses; Type: ACL; Schema: jobforge; Owner: -
--

GRANT SELECT ON TABLE jobforge.token_uses TO jobforge_app;
GRANT SELECT ON TABLE jobforge.token_uses TO jobforge_worker;
