-- Projects ([6/10]): a job's project can be set, filtered on, and walled off by row-level
-- security beside the tenant.
--
-- * The session's project scope is the transaction setting jobforge.project, set beside the
--   tenant (jobforge's clients: QueueClient(project=...), the CLI's --project). Unset, the
--   session sees every project of its tenant, as before. Set, every row of jobs and of their
--   children (attempts, results, events, run records) outside that project is invisible and
--   unwritable (USING and WITH CHECK). connector_configs, queue limits and retention are the
--   tenant's (or the database's) settings, not rows of a project, and are left as they are.
-- * A login can be bound to projects (jobforge.tenant_logins.projects): a bound login that asks
--   for another project, or for none, gets the scope '' that matches no project (fail closed;
--   the functions that write refuse it in one line). NULL: any project, as before.
-- * The children carry the job's project, so their policies compare a column with the scope
--   (one initplan per statement), never look the job up row by row. The claim, finish and
--   enqueue write it themselves (the hot paths pay nothing more); a trigger fills it from the
--   job for every other writer (cancel, reschedule, progress, release, reap, run records, and
--   any function added later) when it is left out. Existing children are backfilled.
-- * Idempotency keys are per (tenant, project, type): with a project wall, a key shared across
--   projects would tell a project-B session that a project-A job exists (and hand back its id)
--   when it enqueued with the same key. The old unique index (tenant, type, key) was stricter
--   than the new one, so every existing row is valid under it.
-- * The SECURITY DEFINER functions a tenant's client calls (enqueue, cancel, reschedule, bulk
--   retry and cancel, stats), and an operator's prune, filter on the scope themselves, as they filter on the tenant: they
--   run as the owner, whom row-level security does not bind when it is a superuser.
--   The worker's calls (claim, heartbeat, finish, ...) stay across tenants and projects.

ALTER TABLE jobforge.tenant_logins
    ADD COLUMN projects text[] CHECK (projects IS NULL OR (
        cardinality(projects) >= 1 AND array_position(projects, NULL) IS NULL
        AND NOT ('' = ANY (projects))));

-- The session's project scope: NULL for every project; '' (no project has that name) for a
-- login bound to projects that asked for another one or for none. One look-up of the login's row.
CREATE FUNCTION jobforge.current_project() RETURNS text
LANGUAGE sql STABLE AS $$
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

-- The scope for functions that write: the project, or NULL for every project; a login refused
-- its scope is told why in one line.
CREATE FUNCTION jobforge.require_project_scope() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_project text := jobforge.current_project();
    v_asked   text := nullif(current_setting('jobforge.project', true), '');
BEGIN
    IF v_project = '' AND v_asked IS NULL THEN
        RAISE EXCEPTION 'login % is bound to projects (jobforge.tenant_logins): name one (jobforge.project)',
            session_user USING ERRCODE = 'JF003';
    END IF;
    IF v_project = '' THEN
        RAISE EXCEPTION 'login % may not act for project % (jobforge.tenant_logins)',
            session_user, quote_literal(left(v_asked, 130)) USING ERRCODE = 'JF003';
    END IF;
    RETURN v_project;
END $$;

-- The children's project. ADD COLUMN ... DEFAULT is a catalog change (no rewrite); every job was
-- in project 'default' until now (it could not be set), and the rows of any job that is not are
-- corrected below. Without a default afterwards, a writer that leaves the project out gets the
-- job's from the trigger, and NOT NULL catches a job it cannot see.
ALTER TABLE jobforge.job_attempts ADD COLUMN project text NOT NULL DEFAULT 'default';
ALTER TABLE jobforge.job_results ADD COLUMN project text NOT NULL DEFAULT 'default';
ALTER TABLE jobforge.job_events ADD COLUMN project text NOT NULL DEFAULT 'default';
ALTER TABLE jobforge.job_runs ADD COLUMN project text NOT NULL DEFAULT 'default';

-- Row-level security is forced on the owner too; the backfill must see every tenant's rows.
ALTER TABLE jobforge.jobs NO FORCE ROW LEVEL SECURITY;
ALTER TABLE jobforge.job_attempts NO FORCE ROW LEVEL SECURITY;
ALTER TABLE jobforge.job_results NO FORCE ROW LEVEL SECURITY;
ALTER TABLE jobforge.job_events NO FORCE ROW LEVEL SECURITY;
ALTER TABLE jobforge.job_runs NO FORCE ROW LEVEL SECURITY;
UPDATE jobforge.job_attempts c SET project = j.project
FROM jobforge.jobs j WHERE j.id = c.job_id AND j.project <> 'default';
UPDATE jobforge.job_results c SET project = j.project
FROM jobforge.jobs j WHERE j.id = c.job_id AND j.project <> 'default';
UPDATE jobforge.job_events c SET project = j.project
FROM jobforge.jobs j WHERE j.id = c.job_id AND j.project <> 'default';
UPDATE jobforge.job_runs c SET project = j.project
FROM jobforge.jobs j WHERE j.id = c.job_id AND j.project <> 'default';
ALTER TABLE jobforge.jobs FORCE ROW LEVEL SECURITY;
ALTER TABLE jobforge.job_attempts FORCE ROW LEVEL SECURITY;
ALTER TABLE jobforge.job_results FORCE ROW LEVEL SECURITY;
ALTER TABLE jobforge.job_events FORCE ROW LEVEL SECURITY;
ALTER TABLE jobforge.job_runs FORCE ROW LEVEL SECURITY;

ALTER TABLE jobforge.job_attempts ALTER COLUMN project DROP DEFAULT;
ALTER TABLE jobforge.job_results ALTER COLUMN project DROP DEFAULT;
ALTER TABLE jobforge.job_events ALTER COLUMN project DROP DEFAULT;
ALTER TABLE jobforge.job_runs ALTER COLUMN project DROP DEFAULT;

CREATE FUNCTION jobforge.child_project() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT j.project INTO NEW.project FROM jobforge.jobs j WHERE j.id = NEW.job_id;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION jobforge.child_project() FROM PUBLIC;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['job_attempts', 'job_results', 'job_events', 'job_runs'] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE INSERT ON jobforge.%I FOR EACH ROW '
            'WHEN (NEW.project IS NULL) EXECUTE FUNCTION jobforge.child_project()',
            t || '_project', t);
    END LOOP;
END $$;

-- The wall: the tenant's (or the worker scope's) rows, and of them the scope's project. The scope
-- is one initplan per statement: coalesce(NULL, project) = project holds for every row.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['jobs', 'job_attempts', 'job_results', 'job_events', 'job_runs'] LOOP
        EXECUTE format('DROP POLICY tenant_isolation ON jobforge.%I', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON jobforge.%I '
            'USING ((tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope())) '
            '       AND project = coalesce((SELECT jobforge.current_project()), project)) '
            'WITH CHECK ((tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope())) '
            '            AND project = coalesce((SELECT jobforge.current_project()), project))',
            t
        );
    END LOOP;
END $$;

-- Idempotency keys per (tenant, project, type).
CREATE UNIQUE INDEX jobs_idempotency_project ON jobforge.jobs (tenant_id, project, type, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX jobforge.jobs_idempotency;
ALTER INDEX jobforge.jobs_idempotency_project RENAME TO jobs_idempotency;

-- Enqueue (0008's, plus: each job's project, p_projects; NULL takes the session's scope, else
-- 'default'; a project outside the session's scope is refused).
DROP FUNCTION jobforge.enqueue_v1(text[], jsonb[], text[], integer[], timestamptz[], integer[],
                                  text[], timestamptz, integer);
CREATE FUNCTION jobforge.enqueue_v1(p_types text[], p_payloads jsonb[], p_idempotency_keys text[] DEFAULT NULL::text[], p_priorities integer[] DEFAULT NULL::integer[], p_run_ats timestamp with time zone[] DEFAULT NULL::timestamp with time zone[], p_max_attempts integer[] DEFAULT NULL::integer[], p_trace_ids text[] DEFAULT NULL::text[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_max_payload_bytes integer DEFAULT 1048576, p_projects text[] DEFAULT NULL::text[]) RETURNS TABLE(ord integer, job_id bigint, created boolean)
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
           jobforge.json_problem(u.p) AS problem, p_projects[u.i] AS proj INTO v_bad
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

    IF p_idempotency_keys IS NULL THEN
        -- No keys, so no conflicts: ids are drawn in input order, so sorted they map to positions.
        WITH inserted AS (
            INSERT INTO jobforge.jobs AS j (tenant_id, project, type, payload, payload_hash, priority,
                                            run_at, max_attempts, trace_id, created_at, updated_at)
            SELECT v_tenant, coalesce(p_projects[u.i], v_scope, 'default'), u.t, u.p,
                   'sha256:' || encode(sha256(convert_to(u.p::text, 'UTF8')), 'hex'),
                   coalesce(p_priorities[u.i], 0), coalesce(p_run_ats[u.i], v_now),
                   coalesce(p_max_attempts[u.i], 3), p_trace_ids[u.i], v_now, v_now
            FROM unnest(p_types, p_payloads) WITH ORDINALITY AS u(t, p, i)
            ORDER BY u.i
            RETURNING j.id, j.project
        ),
        events AS (
            INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at)
            SELECT id, v_tenant, project, 'created', v_now FROM inserted ORDER BY id
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
               p_trace_ids[u.i] AS trace, coalesce(p_projects[u.i], v_scope, 'default') AS proj
        FROM unnest(p_types, p_payloads) WITH ORDINALITY AS u(t, p, i)
    ),
    inserted AS (
        INSERT INTO jobforge.jobs AS j (id, tenant_id, project, type, payload, payload_hash, priority,
                                        run_at, max_attempts, idempotency_key, trace_id, created_at,
                                        updated_at)
        OVERRIDING SYSTEM VALUE
        SELECT new_id, v_tenant, proj, t, p, 'sha256:' || encode(sha256(convert_to(p::text, 'UTF8')), 'hex'),
               prio, run_at, max_att, k, trace, v_now, v_now
        FROM input ORDER BY i
        ON CONFLICT (tenant_id, project, type, idempotency_key) WHERE idempotency_key IS NOT NULL
        DO NOTHING
        RETURNING j.id, j.project
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at)
        SELECT id, v_tenant, project, 'created', v_now FROM inserted ORDER BY id
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


CREATE OR REPLACE FUNCTION jobforge.claim_v1(p_worker text, p_limit integer, p_types text[] DEFAULT NULL::text[], p_lease_seconds double precision DEFAULT 30, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF jobforge.jobs
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
    claimed AS (
        UPDATE jobforge.jobs j
        SET status = 'running', attempts = j.attempts + 1, lease_token = jobforge.lease_id(p.secret),
            lease_holder = p_worker, lease_expires_at = v_now + v_lease, heartbeat_at = v_now,
            updated_at = v_now, error = NULL
        FROM picked p
        WHERE j.id = p.id
        RETURNING j AS jrow, p.secret
    ),
    attempts AS (
        INSERT INTO jobforge.job_attempts (job_id, tenant_id, project, attempt, worker, lease_token,
                                           started_at)
        SELECT (c.jrow).id, (c.jrow).tenant_id, (c.jrow).project, (c.jrow).attempts, p_worker, (c.jrow).lease_token, v_now
        FROM claimed c
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, attempt, worker)
        SELECT (c.jrow).id, (c.jrow).tenant_id, (c.jrow).project, 'claimed', v_now, (c.jrow).attempts, p_worker
        FROM claimed c ORDER BY (c.jrow).id
    )
    SELECT r.*
    FROM claimed c
    CROSS JOIN LATERAL jsonb_populate_record(c.jrow, jsonb_build_object('lease_token', c.secret)) r
    ORDER BY r.priority, r.run_at, r.id;
END $$;


CREATE OR REPLACE FUNCTION jobforge.finish_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[], p_results jsonb[] DEFAULT NULL::jsonb[], p_errors jsonb[] DEFAULT NULL::jsonb[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_backoff_base_s double precision DEFAULT 1, p_backoff_cap_s double precision DEFAULT 3600) RETURNS TABLE(job_id bigint, state text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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
            FROM jobforge.jobs j JOIN input ON j.id = input.id AND input.first
            WHERE j.id = ANY (p_job_ids) AND j.status = 'running' AND j.lease_token = input.token
              AND j.lease_holder = p_worker
            FOR UPDATE OF j
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
        RAISE EXCEPTION 'job % is already %: only queued or running jobs can be canceled',
            p_job_id, v_job.status USING ERRCODE = 'JF002';
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
        RAISE EXCEPTION 'job % is %: only failed, dead or canceled jobs can be rescheduled',
            p_job_id, v_job.status USING ERRCODE = 'JF002';
    END IF;
    IF NOT coalesce(p_reset_attempts, false) AND v_job.attempts >= v_job.max_attempts THEN
        RAISE EXCEPTION 'job % has used all % attempts: reschedule it with reset_attempts',
            p_job_id, v_job.max_attempts USING ERRCODE = 'JF002';
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


CREATE OR REPLACE FUNCTION jobforge.bulk_retry_v1(p_statuses text[] DEFAULT NULL::text[], p_types text[] DEFAULT NULL::text[], p_since timestamp with time zone DEFAULT NULL::timestamp with time zone, p_reset_attempts boolean DEFAULT false, p_after_id bigint DEFAULT 0, p_limit integer DEFAULT 1000, p_dry_run boolean DEFAULT false, p_ids bigint[] DEFAULT NULL::bigint[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(matched bigint, changed bigint, skipped bigint, busy_ids bigint[], last_id bigint)
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


CREATE OR REPLACE FUNCTION jobforge.bulk_cancel_v1(p_statuses text[] DEFAULT NULL::text[], p_types text[] DEFAULT NULL::text[], p_since timestamp with time zone DEFAULT NULL::timestamp with time zone, p_after_id bigint DEFAULT 0, p_limit integer DEFAULT 1000, p_dry_run boolean DEFAULT false, p_ids bigint[] DEFAULT NULL::bigint[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(matched bigint, changed bigint, skipped bigint, busy_ids bigint[], last_id bigint)
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
BEGIN
    PERFORM jobforge.bulk_check('cancel', p_limit, p_since, v_now);
    IF coalesce(p_dry_run, false) THEN
        RETURN QUERY
        SELECT count(*), 0::bigint, 0::bigint, '{}'::bigint[], NULL::bigint
        FROM jobforge.jobs j
        WHERE j.tenant_id = v_tenant AND j.project = coalesce(v_project, j.project)
          AND j.status = ANY (v_statuses)
          AND j.id > coalesce(p_after_id, 0) AND (p_ids IS NULL OR j.id = ANY (p_ids))
          AND (p_types IS NULL OR j.type = ANY (p_types))
          AND (p_since IS NULL OR j.created_at >= p_since);
        RETURN;
    END IF;
    RETURN QUERY
    WITH candidates AS MATERIALIZED (
        SELECT j.id FROM jobforge.jobs j
        WHERE j.tenant_id = v_tenant AND j.project = coalesce(v_project, j.project)
          AND j.status = ANY (v_statuses)
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
    SELECT q.tenant_id, q.type,
           CASE WHEN q.run_at <= v_now THEN 'due'
                WHEN q.attempts > 0 THEN 'retry_scheduled' ELSE 'scheduled' END AS state,
           count(*), min(q.run_at), NULL::bigint, NULL::bigint, NULL::bigint
    FROM jobforge.jobs q
    WHERE q.status = 'queued' AND (v_tenant IS NULL OR q.tenant_id = v_tenant)
      AND q.project = coalesce(v_project, q.project)
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT r.tenant_id, r.type, 'running', count(*), NULL,
           count(*) FILTER (WHERE r.lease_expires_at <= v_soon),
           count(*) FILTER (WHERE r.lease_expires_at <= v_now), NULL
    FROM jobforge.jobs r
    WHERE r.status = 'running' AND (v_tenant IS NULL OR r.tenant_id = v_tenant)
      AND r.project = coalesce(v_project, r.project)
    GROUP BY 1, 2
    UNION ALL
    SELECT s.tenant_id, s.type, s.status::text, count(*), NULL, NULL, NULL,
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
        SELECT d.tenant_id, d.type, 'succeeded', count(*), NULL::timestamptz, NULL::bigint,
               NULL::bigint, NULL::bigint
        FROM jobforge.jobs d
        WHERE d.status = 'succeeded' AND (v_tenant IS NULL OR d.tenant_id = v_tenant)
      AND d.project = coalesce(v_project, d.project)
        GROUP BY 1, 2
        ORDER BY 1, 2;
    END IF;
END $$;

-- Prune (0012's, plus: of one project, p_project, or of the session's project scope; a project
-- outside the scope is refused). The workers' prune pass calls prune_batch without a project.
DROP FUNCTION jobforge.prune_v1(interval, text[], text, text[], boolean, boolean, integer, text,
                                timestamptz, bigint, timestamptz);
DROP FUNCTION jobforge.prune_batch(interval, jobforge.job_status[], text, text[], boolean, boolean,
                                   integer, text, timestamptz, bigint, timestamptz);
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

REVOKE ALL ON FUNCTION
    jobforge.enqueue_v1(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[],
                        timestamptz, integer, text[]),
    jobforge.current_project(), jobforge.require_project_scope(),
    jobforge.prune_batch(interval, jobforge.job_status[], text, text[], boolean, boolean, integer,
                         text, timestamptz, bigint, timestamptz, text),
    jobforge.prune_v1(interval, text[], text, text[], boolean, boolean, integer, text, timestamptz,
                      bigint, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    jobforge.prune_v1(interval, text[], text, text[], boolean, boolean, integer, text, timestamptz,
                      bigint, timestamptz, text) TO jobforge_worker;
GRANT EXECUTE ON FUNCTION
    jobforge.enqueue_v1(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[],
                        timestamptz, integer, text[])
    TO jobforge_app;
GRANT EXECUTE ON FUNCTION jobforge.current_project(), jobforge.require_project_scope()
    TO jobforge_app, jobforge_worker;
