-- Messages a new user read as broken English: "job 1 is succeeded", "job 1 is already failed",
-- "has used all 1 attempts". A job's state in a sentence is its own phrase (`state_phrase`):
-- it has succeeded or failed, it is queued, running, dead or canceled. cancel_v1 and
-- reschedule_v1 are 0016's with these messages, and nothing else changed.

CREATE FUNCTION jobforge.state_phrase(p_status jobforge.job_status, p_already boolean DEFAULT false)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN p_status IN ('succeeded', 'failed') THEN 'has ' ELSE 'is ' END
           || CASE WHEN p_already THEN 'already ' ELSE '' END || p_status::text
$$;

REVOKE ALL ON FUNCTION jobforge.state_phrase(jobforge.job_status, boolean) FROM PUBLIC;


CREATE OR REPLACE FUNCTION jobforge.cancel_v1(p_job_id bigint, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS jobforge.job_status
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


CREATE OR REPLACE FUNCTION jobforge.reschedule_v1(p_job_id bigint, p_reset_attempts boolean DEFAULT false, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS jobforge.job_status
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
