-- [5/10] A lean enqueue: one statement for one job, no event row for a plain `created`, and the
-- tenant checks without the SQL-function trap.
--
-- Measured with pgbench (one client, prepared, fsync on) before this migration: a bare INSERT
-- into jobforge.jobs took ~160 us a transaction, enqueue_v1 of one job ~700 us through the client.
-- Where the rest went:
--
-- * require_tenant() and require_project_scope() called the SQL functions current_tenant() and
--   current_project(). A SQL-language function called from PL/pgSQL is planned anew in every
--   transaction (its plan lives in the caller's per-transaction expression state): ~100 us a
--   transaction for the two, in every tenant-scoped function. Both now read tenant_logins
--   themselves (the same rules, and the same messages; current_tenant() and current_project()
--   stay as they are for the policies, where they are inlined).
-- * BEGIN, the scope's set_config and COMMIT around the call: ~140 us even in one pipeline.
--   enqueue_one_v1 takes the scope as arguments and sets it itself, so one job is one
--   statement in its own implicit transaction.
-- * The `created` event: one more row and two index entries per job, ~17% of a batch enqueue.
--   A job's creation is its row (created_at); the event log shows it as the event `created`
--   with id 0 (`job_event_log`), so it is written only when it says more than the row: when
--   the enqueue carries an actor or a reason (the audit trail needs the login and the actor),
--   and from the writers that add data (schedules, triggers, follow-ups keep theirs).

-- The session's tenant, refused to a bound login for a tenant it is not bound to (0008's rules).
CREATE OR REPLACE FUNCTION jobforge.require_tenant() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- The scope for functions that write: the project, or NULL for every project (0016's rules).
CREATE OR REPLACE FUNCTION jobforge.require_project_scope() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- Enqueue (0021's, with each job's envelope), writing the `created` event only when the
-- transaction names an actor or a reason: otherwise job_event_log derives it from the row.
CREATE OR REPLACE FUNCTION jobforge.enqueue_v1(p_types text[], p_payloads jsonb[], p_idempotency_keys text[] DEFAULT NULL::text[], p_priorities integer[] DEFAULT NULL::integer[], p_run_ats timestamp with time zone[] DEFAULT NULL::timestamp with time zone[], p_max_attempts integer[] DEFAULT NULL::integer[], p_trace_ids text[] DEFAULT NULL::text[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_max_payload_bytes integer DEFAULT 1048576, p_projects text[] DEFAULT NULL::text[], p_envelopes jsonb[] DEFAULT NULL::jsonb[]) RETURNS TABLE(ord integer, job_id bigint, created boolean)
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

-- One job, in one statement: the caller's scope (tenant, project scope, actor, reason) travels
-- as arguments and is set here for this transaction alone, exactly as the client's session_scope
-- would set it, so a client in autocommit sends one message and waits once. The checks are the
-- tenant binding's (require_tenant, require_project_scope) and a fast test of the job; a job the
-- fast test doubts, a disabled runner and an idempotency key already used all go through
-- enqueue_v1, which says what is wrong in its words or answers the existing job, so the rules and
-- their messages live in one place.
CREATE FUNCTION jobforge.enqueue_one_v1(
    p_tenant text, p_project_scope text, p_actor text, p_reason text,
    p_type text, p_payload jsonb, p_idempotency_key text DEFAULT NULL,
    p_priority integer DEFAULT NULL, p_run_at timestamptz DEFAULT NULL,
    p_max_attempts integer DEFAULT NULL, p_trace_id text DEFAULT NULL, p_project text DEFAULT NULL,
    p_now timestamptz DEFAULT NULL, p_max_payload_bytes integer DEFAULT 1048576,
    p_envelope jsonb DEFAULT NULL
) RETURNS TABLE (job_id bigint, created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
END $$;

REVOKE ALL ON FUNCTION jobforge.enqueue_one_v1(text, text, text, text, text, jsonb, text, integer,
    timestamptz, integer, text, text, timestamptz, integer, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobforge.enqueue_one_v1(text, text, text, text, text, jsonb, text,
    integer, timestamptz, integer, text, text, timestamptz, integer, jsonb)
    TO jobforge_app, jobforge_worker;

-- A job's event log as its readers see it: the stored events, and the job's `created` event
-- derived from its row (id 0, so it sorts first) where none is stored. The caller's row-level
-- security binds both tables (security_invoker).
CREATE VIEW jobforge.job_event_log WITH (security_invoker = true) AS
SELECT e.id, e.job_id, e.tenant_id, e.project, e.kind, e.at, e.attempt, e.worker, e.data,
       e.login, e.actor, e.reason
FROM jobforge.job_events e
UNION ALL
SELECT 0::bigint, j.id, j.tenant_id, j.project, 'created'::text, j.created_at, NULL::integer,
       NULL::text, CASE WHEN j.parent_id IS NOT NULL THEN jsonb_build_object('parent_id', j.parent_id) END,
       NULL::text, NULL::text, NULL::text
FROM jobforge.jobs j
WHERE NOT EXISTS (SELECT 1 FROM jobforge.job_events c WHERE c.job_id = j.id AND c.kind = 'created');

REVOKE ALL ON jobforge.job_event_log FROM PUBLIC;
GRANT SELECT ON jobforge.job_event_log TO jobforge_app, jobforge_worker;

-- The lease token's digest, inlined into the statements that call it (claim, finish, heartbeat
-- and every fenced write): with its own search_path PostgreSQL could not inline it, and each call
-- went through the SQL-function executor, ~8 us a row of every claim and finish. Its body names
-- every function and the type with their schema and uses no operator, the rule the functions
-- the policies inline follow (tests/integration/test_planted_functions.py).
CREATE OR REPLACE FUNCTION jobforge.lease_id(p_token uuid) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT pg_catalog.encode(
               pg_catalog.substr(pg_catalog.sha256(pg_catalog.uuid_send(p_token)), 1, 16), 'hex'
           )::pg_catalog.uuid
$$;
ALTER FUNCTION jobforge.lease_id(uuid) RESET ALL;


-- An agent's claim (0023's) with two changes from a review from the attacker's side: a job that
-- carries signatures or a policy token (jobs.envelope, 0021) is never handed to an agent (only a
-- worker verifies them before anything runs; an agent that completed one would forge its
-- success), and a NULL in the login's tenant list refuses, as require_tenant does.
CREATE OR REPLACE FUNCTION jobforge.claim_tenant_v1(
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
END $$;
