-- What the worker runtime ([3/7]) needs from the database: a wake-up on new work, the release of
-- leases at shutdown, and a record of how a canceled job's handler took the cancellation.

-- New event kinds and attempt outcomes.
ALTER TABLE jobforge.job_events DROP CONSTRAINT job_events_kind_check;
ALTER TABLE jobforge.job_events ADD CONSTRAINT job_events_kind_check CHECK (kind IN (
    'created', 'claimed', 'progress', 'retry_scheduled', 'succeeded', 'failed', 'dead',
    'canceled', 'lease_expired', 'rescheduled', 'released', 'cancel_acknowledged'
));
ALTER TABLE jobforge.job_attempts DROP CONSTRAINT job_attempts_outcome_check;
ALTER TABLE jobforge.job_attempts ADD CONSTRAINT job_attempts_outcome_check CHECK (outcome IN (
    'succeeded', 'failed', 'retry', 'dead', 'canceled', 'lease_expired', 'released'
));

-- Wake-up: workers LISTEN on jobforge_jobs. One notification per inserting statement (Postgres
-- folds identical notifications of a transaction into one), and one when a job becomes due again
-- at once (reschedule, or a lease released at shutdown). Retries with backoff are found by the
-- workers' polling when they fall due.
CREATE FUNCTION jobforge.notify_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('jobforge_jobs', '');
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobforge.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobforge.notify_jobs();
CREATE TRIGGER jobs_notify_requeue AFTER UPDATE OF status ON jobforge.jobs
    FOR EACH ROW WHEN (OLD.status <> 'queued' AND NEW.status = 'queued' AND NEW.run_at <= now())
    EXECUTE FUNCTION jobforge.notify_jobs();

-- Release leases at graceful shutdown: running -> queued, due now, without consuming the attempt
-- (attempts goes back down by one; the attempt row stays, closed as 'released'). Fenced like
-- every worker write. Returns per job 'released' or 'lost'.
CREATE FUNCTION jobforge.release_v1(
    p_worker text, p_job_ids bigint[], p_tokens uuid[], p_now timestamptz DEFAULT NULL
) RETURNS TABLE (job_id bigint, state text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, now());
BEGIN
    PERFORM jobforge.require_worker();
    RETURN QUERY
    WITH input AS (
        SELECT DISTINCT ON (u.id) u.id, u.token
        FROM unnest(p_job_ids, p_tokens) WITH ORDINALITY AS u(id, token, i)
        ORDER BY u.id, u.i
    ),
    fenced AS MATERIALIZED (
        SELECT j.id, j.tenant_id, j.attempts, input.token
        FROM jobforge.jobs j JOIN input ON j.id = input.id
        WHERE j.id = ANY (p_job_ids) AND j.status = 'running' AND j.lease_token = input.token
          AND j.lease_holder = p_worker
        FOR UPDATE OF j
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
    SELECT input.id, CASE WHEN f.id IS NULL THEN 'lost' ELSE 'released' END
    FROM input LEFT JOIN fenced f ON f.id = input.id;
END $$;

-- Record how the handler of a job canceled while running took it (p_data: compensation outcome).
-- Allowed once, and only to the worker whose attempt the cancellation closed. False otherwise.
CREATE FUNCTION jobforge.acknowledge_cancel_v1(
    p_worker text, p_job_id bigint, p_token uuid, p_data jsonb, p_now timestamptz DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_attempt jobforge.job_attempts;
BEGIN
    PERFORM jobforge.require_worker();
    SELECT a.* INTO v_attempt FROM jobforge.job_attempts a
    JOIN jobforge.jobs j ON j.id = a.job_id AND j.status = 'canceled'
    WHERE a.lease_token = p_token AND a.job_id = p_job_id AND a.worker = p_worker
      AND a.outcome = 'canceled'
    FOR UPDATE OF a;
    IF NOT FOUND OR EXISTS (
        SELECT 1 FROM jobforge.job_events e
        WHERE e.job_id = p_job_id AND e.kind = 'cancel_acknowledged' AND e.attempt = v_attempt.attempt
    ) THEN
        RETURN false;
    END IF;
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker, data)
    VALUES (p_job_id, v_attempt.tenant_id, 'cancel_acknowledged', coalesce(p_now, now()),
            v_attempt.attempt, p_worker, p_data);
    RETURN true;
END $$;

REVOKE ALL ON FUNCTION jobforge.release_v1(text, bigint[], uuid[], timestamptz),
    jobforge.acknowledge_cancel_v1(text, bigint, uuid, jsonb, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobforge.release_v1(text, bigint[], uuid[], timestamptz),
    jobforge.acknowledge_cancel_v1(text, bigint, uuid, jsonb, timestamptz) TO jobforge_worker;
