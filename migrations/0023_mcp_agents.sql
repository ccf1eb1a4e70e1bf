-- Agents over MCP ([9/10]): a claim held to one tenant, and a session's jobs found by their
-- correlation id.
--
-- `jobforge mcp` serves one tenant per connection (bound by its configuration or bearer token,
-- never by a tool argument). An agent acting as a worker claims through it, but claim_v1 takes
-- the due jobs of every tenant in turn: served to a tenant's agent it would hand it another
-- tenant's jobs and their lease tokens. claim_tenant_v1 is the same claim held to one tenant:
-- its due jobs, most urgent first (priority, run_at, id), locked SKIP LOCKED, each a new attempt
-- with a fresh lease whose secret only the caller sees, logged 'claimed' with the transaction's
-- actor (migrations/0014). Heartbeat, finish and release stay the worker's own functions, fenced
-- on that secret: a tenant's agent never holds another tenant's. Like claim_v1 it is for members
-- of jobforge_worker (the MCP server's login); the tenant is the server's, passed explicitly.
--
-- What it leaves to the workers: expired leases are taken over by claim_v1 and reap_v1 (an
-- agent's claim does not bury or revive another worker's attempt), and queue limits
-- (migrations/0013) are enforced by claim_v1's shared accounting: while a limit applies to the
-- tenant or to a type the claim may take, the claim is refused (JF017) rather than run around
-- the cap.
--
-- The correlation id of a session is the job's trace_id (settable at enqueue, kept on the job):
-- an agent resuming a session asks for that id's unfinished jobs, by tenant, through the index
-- below.

CREATE INDEX jobs_by_trace ON jobforge.jobs (tenant_id, trace_id, id) WHERE trace_id IS NOT NULL;

CREATE FUNCTION jobforge.claim_tenant_v1(
    p_tenant text,
    p_worker text,
    p_limit integer,
    p_types text[] DEFAULT NULL,
    p_lease_seconds double precision DEFAULT 30,
    p_now timestamptz DEFAULT NULL
) RETURNS SETOF jobforge.jobs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
    IF v_bound AND NOT p_tenant = ANY (v_tenants) THEN
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
END $$;

REVOKE ALL ON FUNCTION
    jobforge.claim_tenant_v1(text, text, integer, text[], double precision, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    jobforge.claim_tenant_v1(text, text, integer, text[], double precision, timestamptz)
    TO jobforge_worker;
