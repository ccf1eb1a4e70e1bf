-- The queue core: jobs, attempts, results, the ordered event log, connector configs, the state
-- machine (mirrors jobforge/states.py), tenant isolation, and the functions every caller uses.
-- Time comes from p_now when a caller passes one (tests control the clock), else now().
-- Errors carry SQLSTATEs of class JF so the Python client maps them to typed exceptions:
--   JF001 idempotency conflict  JF002 illegal transition  JF003 tenant required
--   JF004 job not found         JF005 payload too large   JF006 invalid argument

CREATE TYPE jobforge.job_status AS ENUM ('queued', 'running', 'succeeded', 'failed', 'dead', 'canceled');

CREATE TABLE jobforge.job_transitions (
    from_status jobforge.job_status NOT NULL,
    to_status   jobforge.job_status NOT NULL,
    PRIMARY KEY (from_status, to_status)
);

INSERT INTO jobforge.job_transitions VALUES
    ('queued', 'running'), ('queued', 'canceled'),
    ('running', 'running'), ('running', 'succeeded'), ('running', 'failed'),
    ('running', 'queued'), ('running', 'dead'), ('running', 'canceled'),
    ('failed', 'queued'), ('dead', 'queued'), ('canceled', 'queued');

-- The session's tenant, set per transaction: SELECT set_config('jobforge.tenant', $1, true).
-- Unset or empty means none, and none matches no row (row-level security fails closed).
CREATE FUNCTION jobforge.current_tenant() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting('jobforge.tenant', true), '') $$;

-- Cross-tenant access for workers: the session asks for it and its login role is a member of
-- jobforge_worker. The role check uses session_user, so a SECURITY DEFINER call cannot fake it.
CREATE FUNCTION jobforge.worker_scope() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('jobforge.scope', true), '') = 'worker'
       AND pg_has_role(session_user, 'jobforge_worker', 'MEMBER')
$$;

-- Roles are server-wide while the migration lock is per database: two databases migrating at
-- once may both find a role missing, so losing that race is not an error.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['jobforge_app', 'jobforge_worker'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION jobforge.require_tenant() RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_tenant text := jobforge.current_tenant();
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant is set for this transaction (jobforge.tenant)'
            USING ERRCODE = 'JF003';
    END IF;
    RETURN v_tenant;
END $$;

CREATE FUNCTION jobforge.require_worker() RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT pg_has_role(session_user, 'jobforge_worker', 'MEMBER') THEN
        RAISE EXCEPTION 'role % may not act as a jobforge worker (grant jobforge_worker)', session_user
            USING ERRCODE = '42501';
    END IF;
END $$;

CREATE TABLE jobforge.jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
    project          text NOT NULL DEFAULT 'default' CHECK (project ~ '^[A-Za-z0-9._-]{1,128}$'),
    type             text NOT NULL CHECK (type ~ '^[a-z0-9._-]{1,200}$'),
    payload          jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    payload_hash     text NOT NULL CHECK (payload_hash ~ '^sha256:[0-9a-f]{64}$'),
    status           jobforge.job_status NOT NULL DEFAULT 'queued',
    priority         integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 32767),
    run_at           timestamptz NOT NULL,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 1000),
    lease_token      uuid,
    lease_holder     text,
    lease_expires_at timestamptz,
    heartbeat_at     timestamptz,
    idempotency_key  text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    error            jsonb,
    trace_id         text,
    progress_pct     real CHECK (progress_pct BETWEEN 0 AND 100),
    progress_message text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    CONSTRAINT jobs_lease_iff_running CHECK (
        (status = 'running')
        = (lease_token IS NOT NULL AND lease_holder IS NOT NULL AND lease_expires_at IS NOT NULL)
    ),
    CONSTRAINT jobs_finished_iff_terminal CHECK (
        (status IN ('succeeded', 'failed', 'dead', 'canceled')) = (finished_at IS NOT NULL)
    ),
    CONSTRAINT jobs_attempts_within_max CHECK (attempts <= max_attempts),
    CONSTRAINT jobs_idempotency UNIQUE (tenant_id, type, idempotency_key)
);

CREATE INDEX jobs_claimable ON jobforge.jobs (priority, run_at, id) WHERE status = 'queued';
CREATE INDEX jobs_leased ON jobforge.jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_by_tenant ON jobforge.jobs (tenant_id, id);

CREATE FUNCTION jobforge.jobs_check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER jobs_transition BEFORE UPDATE OF status ON jobforge.jobs
    FOR EACH ROW EXECUTE FUNCTION jobforge.jobs_check_transition();

-- One row per attempt, with its own worker, lease, start, end and outcome.
CREATE TABLE jobforge.job_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      bigint NOT NULL REFERENCES jobforge.jobs (id) ON DELETE CASCADE,
    tenant_id   text NOT NULL,
    attempt     integer NOT NULL CHECK (attempt >= 1),
    worker      text NOT NULL,
    lease_token uuid NOT NULL UNIQUE,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    outcome     text CHECK (outcome IN ('succeeded', 'failed', 'retry', 'dead', 'canceled', 'lease_expired')),
    error       jsonb,
    CHECK ((finished_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX job_attempts_by_job ON jobforge.job_attempts (job_id, id);

CREATE TABLE jobforge.job_results (
    job_id     bigint PRIMARY KEY REFERENCES jobforge.jobs (id) ON DELETE CASCADE,
    tenant_id  text NOT NULL,
    result     jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

-- The ordered log of every state change (and progress), per job in id order.
CREATE TABLE jobforge.job_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    bigint NOT NULL REFERENCES jobforge.jobs (id) ON DELETE CASCADE,
    tenant_id text NOT NULL,
    kind      text NOT NULL CHECK (kind IN (
        'created', 'claimed', 'progress', 'retry_scheduled', 'succeeded', 'failed', 'dead',
        'canceled', 'lease_expired', 'rescheduled'
    )),
    at        timestamptz NOT NULL,
    attempt   integer,
    worker    text,
    data      jsonb
);
CREATE INDEX job_events_by_job ON jobforge.job_events (job_id, id);

CREATE TABLE jobforge.connector_configs (
    tenant_id  text NOT NULL,
    name       text NOT NULL CHECK (name ~ '^[a-z0-9._-]{1,128}$'),
    config     jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Row-level security on every tenant table, forced for the owner too; fails closed.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['jobs', 'job_attempts', 'job_results', 'job_events', 'connector_configs'] LOOP
        EXECUTE format('ALTER TABLE jobforge.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE jobforge.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON jobforge.%I '
            'USING (tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope())) '
            'WITH CHECK (tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope()))',
            t
        );
    END LOOP;
END $$;

-- Deterministic jitter in [0, 1) from the job and attempt: retries are reproducible.
CREATE FUNCTION jobforge.jitter(p_job_id bigint, p_attempt integer) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || substr(md5(p_job_id::text || ':' || p_attempt::text), 1, 8))::bit(32)::bigint
           / 4294967296.0
$$;

-- Capped exponential backoff: base * 2^(attempt-1), capped, then scaled into [50%, 100%] by jitter.
CREATE FUNCTION jobforge.backoff(
    p_job_id bigint, p_attempt integer, p_base_s double precision, p_cap_s double precision
) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
    SELECT make_interval(secs => least(p_cap_s, p_base_s * power(2, greatest(p_attempt - 1, 0)))
                                 * (0.5 + 0.5 * jobforge.jitter(p_job_id, p_attempt)))
$$;
