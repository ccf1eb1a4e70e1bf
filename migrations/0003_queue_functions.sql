-- The queue's functions. Tenant-scoped ones act on the session's tenant only and say "not found"
-- for another tenant's job (never a leak); worker ones require membership of jobforge_worker.
-- Every worker-side write is fenced on (job, worker, lease token): a late or duplicate call
-- changes nothing and reports the job as lost. Versioned names allow add-new/drop-old upgrades.

-- Enqueue a batch; returns, per input position, the job id and whether this call created it.
-- Same idempotency key and same payload: the existing job. Same key, other payload: JF001, and
-- nothing of the batch is written.
CREATE FUNCTION jobforge.enqueue_v1(
    p_types             text[],
    p_payloads          jsonb[],
    p_idempotency_keys  text[] DEFAULT NULL,
    p_priorities        integer[] DEFAULT NULL,
    p_run_ats           timestamptz[] DEFAULT NULL,
    p_max_attempts      integer[] DEFAULT NULL,
    p_trace_ids         text[] DEFAULT NULL,
    p_now               timestamptz DEFAULT NULL,
    p_max_payload_bytes integer DEFAULT 1048576
) RETURNS TABLE (ord integer, job_id bigint, created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant   text := jobforge.require_tenant();
    v_now      timestamptz := coalesce(p_now, now());
    v_n        integer := coalesce(cardinality(p_types), 0);
    v_bad      record;
    v_inserted bigint[];
BEGIN
    IF v_n <> coalesce(cardinality(p_payloads), 0) THEN
        RAISE EXCEPTION 'enqueue: % types but % payloads', v_n, coalesce(cardinality(p_payloads), 0)
            USING ERRCODE = 'JF006';
    END IF;
    SELECT u.i, u.t, u.p, p_priorities[u.i] AS prio, p_max_attempts[u.i] AS max_att INTO v_bad
    FROM unnest(p_types, p_payloads) WITH ORDINALITY AS u(t, p, i)
    WHERE u.p IS NULL OR jsonb_typeof(u.p) <> 'object' OR u.t IS NULL
       OR u.t !~ '^[a-z0-9._-]{1,200}$' OR octet_length(u.p::text) > p_max_payload_bytes
       OR p_priorities[u.i] NOT BETWEEN 0 AND 32767 OR p_max_attempts[u.i] NOT BETWEEN 1 AND 1000
    LIMIT 1;
    IF FOUND THEN
        IF v_bad.t IS NULL OR v_bad.t !~ '^[a-z0-9._-]{1,200}$' THEN
            RAISE EXCEPTION 'job #%: type % is invalid: use 1-200 of [a-z0-9._-]', v_bad.i,
                coalesce(quote_literal(v_bad.t), 'null') USING ERRCODE = 'JF006';
        ELSIF v_bad.p IS NULL OR jsonb_typeof(v_bad.p) <> 'object' THEN
            RAISE EXCEPTION 'job #%: payload must be a JSON object, not %', v_bad.i,
                coalesce(jsonb_typeof(v_bad.p), 'null') USING ERRCODE = 'JF006';
        ELSIF v_bad.prio NOT BETWEEN 0 AND 32767 THEN
            RAISE EXCEPTION 'job #%: priority % is out of range 0-32767', v_bad.i, v_bad.prio
                USING ERRCODE = 'JF006';
        ELSIF v_bad.max_att NOT BETWEEN 1 AND 1000 THEN
            RAISE EXCEPTION 'job #%: max_attempts % is out of range 1-1000', v_bad.i, v_bad.max_att
                USING ERRCODE = 'JF006';
        ELSE
            RAISE EXCEPTION 'job #%: payload is % bytes, over the limit of %', v_bad.i,
                octet_length(v_bad.p::text), p_max_payload_bytes USING ERRCODE = 'JF005';
        END IF;
    END IF;

    WITH input AS (
        SELECT u.i::integer AS i,
               nextval(pg_get_serial_sequence('jobforge.jobs', 'id')) AS new_id,
               u.t, u.p, p_idempotency_keys[u.i] AS k,
               coalesce(p_priorities[u.i], 0) AS prio,
               coalesce(p_run_ats[u.i], v_now) AS run_at,
               coalesce(p_max_attempts[u.i], 3) AS max_att,
               p_trace_ids[u.i] AS trace
        FROM unnest(p_types, p_payloads) WITH ORDINALITY AS u(t, p, i)
    ),
    inserted AS (
        INSERT INTO jobforge.jobs AS j (id, tenant_id, type, payload, payload_hash, priority, run_at,
                                        max_attempts, idempotency_key, trace_id, created_at, updated_at)
        OVERRIDING SYSTEM VALUE
        SELECT new_id, v_tenant, t, p, 'sha256:' || encode(sha256(convert_to(p::text, 'UTF8')), 'hex'),
               prio, run_at, max_att, k, trace, v_now, v_now
        FROM input ORDER BY i
        ON CONFLICT ON CONSTRAINT jobs_idempotency DO NOTHING
        RETURNING j.id
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at)
        SELECT id, v_tenant, 'created', v_now FROM inserted
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
    FROM unnest(p_types, p_payloads, p_idempotency_keys, v_inserted) AS k(type, payload, key, new_id)
    JOIN jobforge.jobs j ON j.tenant_id = v_tenant AND j.type = k.type AND j.idempotency_key = k.key
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
    ORDER BY k.i;
END $$;

-- Claim up to p_limit jobs for p_worker: first running jobs whose lease expired (taken over, or
-- dead when no attempts are left), then queued jobs due by p_now, by priority (0 first), run_at,
-- id. SKIP LOCKED: concurrent claimers never wait for each other and never share a job.
CREATE FUNCTION jobforge.claim_v1(
    p_worker        text,
    p_limit         integer,
    p_types         text[] DEFAULT NULL,
    p_lease_seconds double precision DEFAULT 30,
    p_now           timestamptz DEFAULT NULL
) RETURNS SETOF jobforge.jobs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := coalesce(p_now, now());
    v_lease    interval := make_interval(secs => p_lease_seconds);
    v_takeover bigint[];
    v_dead     bigint[];
BEGIN
    PERFORM jobforge.require_worker();
    IF p_limit IS NULL OR p_limit < 1 OR p_lease_seconds IS NULL OR p_lease_seconds <= 0 THEN
        RAISE EXCEPTION 'claim: limit and lease must be positive' USING ERRCODE = 'JF006';
    END IF;

    -- Expired leases: close the old attempt, log lease_expired; dead when nothing is left.
    WITH expired AS (
        SELECT j.id, j.tenant_id, j.attempts, j.lease_holder, j.lease_token,
               j.attempts >= j.max_attempts AS exhausted
        FROM jobforge.jobs j
        WHERE j.status = 'running' AND j.lease_expires_at <= v_now
          AND (p_types IS NULL OR j.type = ANY (p_types))
        ORDER BY j.lease_expires_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ),
    closed AS (
        UPDATE jobforge.job_attempts a SET finished_at = v_now, outcome = 'lease_expired'
        FROM expired e WHERE a.lease_token = e.lease_token
    ),
    logged AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker)
        SELECT e.id, e.tenant_id, 'lease_expired', v_now, e.attempts, e.lease_holder
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
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt)
    SELECT j.id, j.tenant_id, 'dead', v_now, j.attempts
    FROM jobforge.jobs j WHERE j.id = ANY (coalesce(v_dead, '{}')) ORDER BY j.id;

    RETURN QUERY
    WITH takeover AS (
        SELECT unnest(coalesce(v_takeover, '{}')) AS id
    ),
    fresh AS (
        SELECT j.id FROM jobforge.jobs j
        WHERE j.status = 'queued' AND j.run_at <= v_now
          AND (p_types IS NULL OR j.type = ANY (p_types))
        ORDER BY j.priority, j.run_at, j.id
        LIMIT greatest(p_limit - (SELECT count(*) FROM takeover), 0)
        FOR UPDATE SKIP LOCKED
    ),
    picked AS (
        SELECT id FROM takeover UNION ALL SELECT id FROM fresh
    ),
    claimed AS (
        UPDATE jobforge.jobs j
        SET status = 'running', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
            lease_holder = p_worker, lease_expires_at = v_now + v_lease, heartbeat_at = v_now,
            updated_at = v_now, error = NULL
        FROM picked WHERE j.id = picked.id
        RETURNING j.*
    ),
    attempts AS (
        INSERT INTO jobforge.job_attempts (job_id, tenant_id, attempt, worker, lease_token, started_at)
        SELECT c.id, c.tenant_id, c.attempts, p_worker, c.lease_token, v_now FROM claimed c
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker)
        SELECT c.id, c.tenant_id, 'claimed', v_now, c.attempts, p_worker FROM claimed c ORDER BY c.id
    )
    SELECT * FROM claimed ORDER BY priority, run_at, id;
END $$;

-- Extend the leases of many running jobs at once. Per job: 'ok', 'canceled' (stop working on
-- it), or 'lost' (not ours any more).
CREATE FUNCTION jobforge.heartbeat_v1(
    p_worker text, p_job_ids bigint[], p_tokens uuid[],
    p_lease_seconds double precision DEFAULT 30, p_now timestamptz DEFAULT NULL
) RETURNS TABLE (job_id bigint, state text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, now());
BEGIN
    PERFORM jobforge.require_worker();
    RETURN QUERY
    WITH input AS (SELECT * FROM unnest(p_job_ids, p_tokens) AS u(id, token)),
    extended AS (
        UPDATE jobforge.jobs j
        SET lease_expires_at = v_now + make_interval(secs => p_lease_seconds), heartbeat_at = v_now
        FROM input
        WHERE j.id = input.id AND j.status = 'running' AND j.lease_token = input.token
          AND j.lease_holder = p_worker
        RETURNING j.id
    )
    SELECT input.id,
           CASE WHEN e.id IS NOT NULL THEN 'ok'
                WHEN j.status = 'canceled' AND a.lease_token IS NOT NULL THEN 'canceled'
                ELSE 'lost' END
    FROM input
    LEFT JOIN extended e ON e.id = input.id
    LEFT JOIN jobforge.jobs j ON j.id = input.id
    LEFT JOIN jobforge.job_attempts a ON a.lease_token = input.token AND a.job_id = input.id
    ORDER BY input.id;
END $$;

-- Finish many jobs in one round trip. p_outcomes per job: 'succeeded' (p_results holds the result),
-- 'retry' (back to queued after backoff, or dead when attempts are exhausted), 'failed'
-- (non-retryable). Returns per job 'succeeded' | 'retry_scheduled' | 'failed' | 'dead' | 'lost'.
CREATE FUNCTION jobforge.finish_v1(
    p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[],
    p_results jsonb[] DEFAULT NULL, p_errors jsonb[] DEFAULT NULL,
    p_now timestamptz DEFAULT NULL,
    p_backoff_base_s double precision DEFAULT 1, p_backoff_cap_s double precision DEFAULT 3600
) RETURNS TABLE (job_id bigint, state text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, now());
BEGIN
    PERFORM jobforge.require_worker();
    IF EXISTS (SELECT 1 FROM unnest(p_outcomes) o WHERE o IS NULL OR o NOT IN ('succeeded', 'retry', 'failed')) THEN
        RAISE EXCEPTION 'finish: outcomes must be succeeded, retry or failed' USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    WITH input AS (
        SELECT u.id, u.token, u.outcome, p_results[u.i] AS result, p_errors[u.i] AS err
        FROM unnest(p_job_ids, p_tokens, p_outcomes) WITH ORDINALITY AS u(id, token, outcome, i)
    ),
    fenced AS (
        SELECT j.id, j.tenant_id, j.attempts, j.max_attempts, input.token, input.outcome,
               input.result, input.err,
               CASE WHEN input.outcome = 'succeeded' THEN 'succeeded'
                    WHEN input.outcome = 'failed' THEN 'failed'
                    WHEN j.attempts >= j.max_attempts THEN 'dead'
                    ELSE 'retry_scheduled' END AS next
        FROM input JOIN jobforge.jobs j
          ON j.id = input.id AND j.status = 'running' AND j.lease_token = input.token
         AND j.lease_holder = p_worker
        FOR UPDATE OF j
    ),
    updated AS (
        UPDATE jobforge.jobs j
        SET status = (CASE f.next WHEN 'retry_scheduled' THEN 'queued' ELSE f.next END)::jobforge.job_status,
            lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL,
            run_at = CASE WHEN f.next = 'retry_scheduled'
                          THEN v_now + jobforge.backoff(j.id, j.attempts, p_backoff_base_s, p_backoff_cap_s)
                          ELSE j.run_at END,
            finished_at = CASE WHEN f.next = 'retry_scheduled' THEN NULL ELSE v_now END,
            error = f.err, updated_at = v_now
        FROM fenced f WHERE j.id = f.id
        RETURNING j.id, j.run_at
    ),
    results AS (
        INSERT INTO jobforge.job_results (job_id, tenant_id, result, created_at)
        SELECT f.id, f.tenant_id, coalesce(f.result, 'null'::jsonb), v_now
        FROM fenced f WHERE f.next = 'succeeded'
        ON CONFLICT (job_id) DO UPDATE SET result = EXCLUDED.result, created_at = EXCLUDED.created_at
    ),
    attempts AS (
        UPDATE jobforge.job_attempts a
        SET finished_at = v_now, error = f.err,
            outcome = CASE f.next WHEN 'retry_scheduled' THEN 'retry' ELSE f.next END
        FROM fenced f WHERE a.lease_token = f.token
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker, data)
        SELECT f.id, f.tenant_id, f.next, v_now, f.attempts, p_worker,
               CASE WHEN f.next = 'retry_scheduled' THEN jsonb_build_object('run_at', u.run_at)
                    WHEN f.err IS NOT NULL THEN jsonb_build_object('error', f.err) END
        FROM fenced f JOIN updated u ON u.id = f.id ORDER BY f.id
    )
    SELECT input.id, coalesce(f.next, 'lost') FROM input LEFT JOIN fenced f ON f.id = input.id;
END $$;

-- Cancel the session tenant's job (queued or running). Final: the running worker learns at its
-- next heartbeat and its completion is rejected. Canceling a canceled job is a no-op.
CREATE FUNCTION jobforge.cancel_v1(p_job_id bigint, p_now timestamptz DEFAULT NULL)
RETURNS jobforge.job_status
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_now    timestamptz := coalesce(p_now, now());
    v_job    jobforge.jobs;
BEGIN
    SELECT * INTO v_job FROM jobforge.jobs WHERE id = p_job_id AND tenant_id = v_tenant FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % not found', p_job_id USING ERRCODE = 'JF004';
    END IF;
    IF v_job.status = 'canceled' THEN
        RETURN v_job.status;
    END IF;
    IF v_job.status NOT IN ('queued', 'running') THEN
        RAISE EXCEPTION 'job % is already %: only queued or running jobs can be canceled',
            p_job_id, v_job.status USING ERRCODE = 'JF002';
    END IF;
    IF v_job.status = 'running' THEN
        UPDATE jobforge.job_attempts SET finished_at = v_now, outcome = 'canceled'
        WHERE lease_token = v_job.lease_token;
    END IF;
    UPDATE jobforge.jobs
    SET status = 'canceled', lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL,
        finished_at = v_now, updated_at = v_now
    WHERE id = p_job_id;
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt)
    VALUES (p_job_id, v_tenant, 'canceled', v_now, nullif(v_job.attempts, 0));
    RETURN 'canceled';
END $$;

-- Put a failed, dead or canceled job of the session's tenant back in the queue. Attempts are
-- reset only when asked; a job with no attempts left cannot be rescheduled without the reset.
CREATE FUNCTION jobforge.reschedule_v1(
    p_job_id bigint, p_reset_attempts boolean DEFAULT false,
    p_run_at timestamptz DEFAULT NULL, p_now timestamptz DEFAULT NULL
) RETURNS jobforge.job_status
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_now    timestamptz := coalesce(p_now, now());
    v_job    jobforge.jobs;
BEGIN
    SELECT * INTO v_job FROM jobforge.jobs WHERE id = p_job_id AND tenant_id = v_tenant FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % not found', p_job_id USING ERRCODE = 'JF004';
    END IF;
    IF v_job.status NOT IN ('failed', 'dead', 'canceled') THEN
        RAISE EXCEPTION 'job % is %: only failed, dead or canceled jobs can be rescheduled',
            p_job_id, v_job.status USING ERRCODE = 'JF002';
    END IF;
    IF NOT p_reset_attempts AND v_job.attempts >= v_job.max_attempts THEN
        RAISE EXCEPTION 'job % has used all % attempts: reschedule it with reset_attempts',
            p_job_id, v_job.max_attempts USING ERRCODE = 'JF002';
    END IF;
    UPDATE jobforge.jobs
    SET status = 'queued', finished_at = NULL, error = NULL, updated_at = v_now,
        run_at = coalesce(p_run_at, v_now),
        attempts = CASE WHEN p_reset_attempts THEN 0 ELSE attempts END
    WHERE id = p_job_id;
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, data)
    VALUES (p_job_id, v_tenant, 'rescheduled', v_now,
            jsonb_build_object('from', v_job.status, 'reset_attempts', p_reset_attempts));
    RETURN 'queued';
END $$;

-- Record progress of a running job; fenced like every worker write. False when the lease is lost.
CREATE FUNCTION jobforge.progress_v1(
    p_worker text, p_job_id bigint, p_token uuid, p_pct real, p_message text DEFAULT NULL,
    p_now timestamptz DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, now());
    v_job jobforge.jobs;
BEGIN
    PERFORM jobforge.require_worker();
    UPDATE jobforge.jobs SET progress_pct = p_pct, progress_message = p_message, updated_at = v_now
    WHERE id = p_job_id AND status = 'running' AND lease_token = p_token AND lease_holder = p_worker
    RETURNING * INTO v_job;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker, data)
    VALUES (p_job_id, v_job.tenant_id, 'progress', v_now, v_job.attempts, p_worker,
            jsonb_build_object('pct', p_pct, 'message', p_message));
    RETURN true;
END $$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA jobforge FROM PUBLIC;
GRANT USAGE ON SCHEMA jobforge TO jobforge_app, jobforge_worker;
GRANT SELECT ON jobforge.jobs, jobforge.job_attempts, jobforge.job_results, jobforge.job_events,
    jobforge.connector_configs TO jobforge_app, jobforge_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobforge.connector_configs TO jobforge_app;
GRANT EXECUTE ON FUNCTION jobforge.current_tenant(), jobforge.worker_scope(),
    jobforge.require_tenant() TO jobforge_app, jobforge_worker;
GRANT EXECUTE ON FUNCTION
    jobforge.enqueue_v1(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], timestamptz, integer),
    jobforge.cancel_v1(bigint, timestamptz),
    jobforge.reschedule_v1(bigint, boolean, timestamptz, timestamptz)
    TO jobforge_app;
GRANT EXECUTE ON FUNCTION
    jobforge.require_worker(),
    jobforge.claim_v1(text, integer, text[], double precision, timestamptz),
    jobforge.heartbeat_v1(text, bigint[], uuid[], double precision, timestamptz),
    jobforge.finish_v1(text, bigint[], uuid[], text[], jsonb[], jsonb[], timestamptz, double precision, double precision),
    jobforge.progress_v1(text, bigint, uuid, real, text, timestamptz)
    TO jobforge_worker;
