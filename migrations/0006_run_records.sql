-- Run records ([4/7]): one per attempt of a runner, written by the recorder middleware of the
-- worker that held the attempt. The record itself is JSON (format jobforge.run/1, see
-- jobforge/runtime/record.py for which bytes each hash covers); the hashes and the status are
-- columns too, for queries and for the drift and replay tools.

CREATE TABLE jobforge.job_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id         bigint NOT NULL,
    tenant_id      text NOT NULL,
    attempt        integer NOT NULL CHECK (attempt >= 1),
    lease_token    uuid NOT NULL UNIQUE,
    runner_id      text NOT NULL,
    runner_version text NOT NULL,
    status         text NOT NULL CHECK (status IN (
        'succeeded', 'failed', 'retry', 'invalid_input', 'contract_violation', 'timeout',
        'canceled', 'lease_lost', 'shutdown'
    )),
    input_sha256   text CHECK (input_sha256 ~ '^sha256:[0-9a-f]+$' AND length(input_sha256) = 71),
    output_sha256  text CHECK (output_sha256 ~ '^sha256:[0-9a-f]+$' AND length(output_sha256) = 71),
    trace_sha256   text CHECK (trace_sha256 ~ '^sha256:[0-9a-f]+$' AND length(trace_sha256) = 71),
    record         jsonb NOT NULL CHECK (record ->> 'format' = 'jobforge.run/1'),
    recorded_at    timestamptz NOT NULL
);
CREATE INDEX job_runs_by_job ON jobforge.job_runs (job_id, id);
CREATE INDEX job_runs_by_runner ON jobforge.job_runs (tenant_id, runner_id, id);

ALTER TABLE jobforge.job_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobforge.job_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON jobforge.job_runs
    USING (tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope()))
    WITH CHECK (tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope()));

-- Deleting jobs deletes their run records too (as for events, attempts and results in 0004).
CREATE OR REPLACE FUNCTION jobforge.jobs_delete_children() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM jobforge.job_events e USING gone WHERE e.job_id = gone.id;
    DELETE FROM jobforge.job_attempts a USING gone WHERE a.job_id = gone.id;
    DELETE FROM jobforge.job_results r USING gone WHERE r.job_id = gone.id;
    DELETE FROM jobforge.job_runs r USING gone WHERE r.job_id = gone.id;
    RETURN NULL;
END $$;

-- Write the record of one attempt. Fenced on the attempt: only the worker that held the lease
-- token may write it, once, whatever became of the job since (a canceled or taken-over attempt
-- still gets its record). False when the attempt is not this worker's or already recorded.
CREATE FUNCTION jobforge.record_run_v1(
    p_worker text, p_job_id bigint, p_token uuid, p_runner_id text, p_runner_version text,
    p_status text, p_input_sha256 text, p_output_sha256 text, p_trace_sha256 text,
    p_record jsonb, p_now timestamptz DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_attempt jobforge.job_attempts;
BEGIN
    PERFORM jobforge.require_worker();
    SELECT a.* INTO v_attempt FROM jobforge.job_attempts a
    WHERE a.lease_token = p_token AND a.job_id = p_job_id AND a.worker = p_worker;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO jobforge.job_runs (job_id, tenant_id, attempt, lease_token, runner_id,
                                   runner_version, status, input_sha256, output_sha256,
                                   trace_sha256, record, recorded_at)
    VALUES (p_job_id, v_attempt.tenant_id, v_attempt.attempt, p_token, p_runner_id,
            p_runner_version, p_status, p_input_sha256, p_output_sha256, p_trace_sha256,
            p_record, coalesce(p_now, now()))
    ON CONFLICT (lease_token) DO NOTHING;
    RETURN FOUND;
END $$;

REVOKE ALL ON FUNCTION jobforge.record_run_v1(text, bigint, uuid, text, text, text, text, text,
    text, jsonb, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobforge.record_run_v1(text, bigint, uuid, text, text, text, text,
    text, text, jsonb, timestamptz) TO jobforge_worker;
GRANT SELECT ON jobforge.job_runs TO jobforge_app, jobforge_worker;
