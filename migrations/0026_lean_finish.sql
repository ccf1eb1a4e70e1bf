-- [5/10] A lean finish: what a job costs the database between its claim and its outcome.
--
-- Measured by claiming 150 jobs and finishing them in a loop on one connection (20,000 no-op
-- jobs, fsync on), the database spent ~105 us a job: ~38 in claim_v1, ~66 in finish_v1.
--
-- * finish_v1 joined the jobs table with its outcomes, an array the planner cannot see into: it
--   guessed 10 outcomes and one job and planned a nested loop over both, so a batch of 200
--   compared 40,000 pairs (8 of its 9 ms). Each outcome now probes its job by primary key.
-- * Its update of job_attempts was cached as a generic plan while the table was small: a hash
--   join over a sequential scan of every attempt ever made, growing with the table until an
--   ANALYZE replanned it. The finish looks rows up by key only; sequential scans are off for it
--   (the one-row settings and queue_limits tables still scan, there being nothing else).
-- * The transition trigger's WHEN clause compared statuses as text: two enum-to-text
--   conversions per legal move, evaluated on every status change. It now compares the enum
--   values themselves; the moves are still built from job_transitions.
-- * An attempt's row is updated once, when it ends; with full pages that update could not stay
--   on its page (a HOT update) and wrote its three index entries again. job_attempts leaves
--   room on new pages now.
--
-- After: ~79 us a job (claim ~39, finish ~40), same loop; a one-process worker drain of 20,000
-- no-op jobs went from ~7,700 to ~10,300 jobs/s.

CREATE OR REPLACE FUNCTION jobforge.finish_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[], p_results jsonb[] DEFAULT NULL::jsonb[], p_errors jsonb[] DEFAULT NULL::jsonb[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_backoff_base_s double precision DEFAULT 1, p_backoff_cap_s double precision DEFAULT 3600) RETURNS TABLE(job_id bigint, state text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    v_now   timestamptz := jobforge.clock(p_now);
    v_limit integer := (SELECT s.max_result_bytes FROM jobforge.settings s);
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
               END AS retry_at
        FROM (
            SELECT j.id, j.tenant_id, j.project, j.attempts, input.token, input.result, input.err,
                   CASE WHEN input.outcome = 'succeeded' THEN 'succeeded'
                        WHEN input.outcome = 'failed' THEN 'failed'
                        WHEN j.attempts >= j.max_attempts THEN 'dead'
                        ELSE 'retry_scheduled' END AS next
            -- One probe of the primary key per outcome, locked in id order. A join of jobs
            -- with the outcomes was planned as a nested loop over both (the planner guesses 10
            -- rows for an array it cannot see): 200 outcomes cost 40,000 comparisons.
            FROM (SELECT * FROM input WHERE input.first ORDER BY input.id) input
            CROSS JOIN LATERAL (
                SELECT j.id, j.tenant_id, j.project, j.attempts, j.max_attempts
                FROM jobforge.jobs j
                WHERE j.id = input.id AND j.status = 'running' AND j.lease_token = input.token
                  AND j.lease_holder = p_worker
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
    attempts AS (
        UPDATE jobforge.job_attempts a
        SET finished_at = v_now, error = f.err,
            outcome = CASE f.next WHEN 'retry_scheduled' THEN 'retry' ELSE f.next END
        FROM fenced f WHERE a.lease_token = f.token
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, attempt, worker, data)
        SELECT f.id, f.tenant_id, f.project, f.next, v_now, f.attempts, p_worker,
               CASE WHEN f.next = 'retry_scheduled' THEN jsonb_build_object('run_at', f.retry_at)
                    WHEN f.err IS NOT NULL THEN jsonb_build_object('error', f.err) END
        FROM fenced f ORDER BY f.id
    )
    -- A job listed twice with one token is finished once: the first entry counts, a repeat is 'lost'.
    SELECT input.id,
           CASE WHEN input.first AND f.token = input.token THEN f.next ELSE 'lost' END
    FROM input LEFT JOIN fenced f ON f.id = input.id
    ORDER BY input.i;
END $$;

-- The legal moves in the trigger's WHEN clause (0011), as enum comparisons.
DO $$
DECLARE
    v_legal text;
BEGIN
    SELECT string_agg(format('(OLD.status = %L AND NEW.status = %L)', t.from_status, t.to_status),
                      ' OR ' ORDER BY t.from_status, t.to_status)
    INTO v_legal FROM jobforge.job_transitions t;
    DROP TRIGGER jobs_transition ON jobforge.jobs;
    EXECUTE format(
        'CREATE TRIGGER jobs_transition BEFORE UPDATE OF status ON jobforge.jobs FOR EACH ROW '
        'WHEN (OLD.status IS DISTINCT FROM NEW.status AND NOT (%s)) '
        'EXECUTE FUNCTION jobforge.jobs_check_transition()', v_legal);
END $$;

ALTER TABLE jobforge.job_attempts SET (fillfactor = 70);
