-- Holding the walls against a hostile tenant or worker login ([2/10]):
--
-- * A lease token is a per-claim secret. The claim hands it to the claimer only; the tables keep
--   jobforge.lease_id(secret), a one-way digest, so a worker login that reads `jobs` or
--   `job_attempts` cannot finish, heartbeat, release, record or acknowledge another worker's
--   attempt with what it read. Every worker-side function digests the token it is given.
-- * Time comes from the database. A caller's clock (p_now) is accepted only where the owner
--   turned `jobforge.settings.caller_clock` on (jobforge's throwaway test databases do, so tests
--   can freeze time); otherwise it is refused. Times a caller gives (run_at) must be finite and
--   within a century of now: psycopg cannot load 0044-03-15 BC or -infinity, and a row nobody
--   can load stalled every claim that returned it.
-- * JSON a caller stores is bounded in depth and in number range (Python cannot load a payload
--   nested 5,000 deep, or an integer of 5,000 digits), and every text a caller stores has a
--   length limit. The payload limit is the database's; a caller may only lower it.
-- * A login can be bound to tenants (jobforge.tenant_logins): a bound login that sets another
--   tenant gets no tenant at all, so it sees and changes nothing (row-level security fails
--   closed). Unbound logins (one app role serving every tenant) choose their tenant as before.
-- * reap_v1 expires stale leases of every job type, so a job whose worker died does not stay
--   `running` until a worker of the same type happens to claim.
-- * Batched worker calls answer in input order and per (job, token): a worker holding an old and
--   a new lease of the same job (its own expired lease, re-claimed) gets an answer for each.

CREATE TABLE jobforge.settings (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    caller_clock      boolean NOT NULL DEFAULT false,
    max_payload_bytes integer NOT NULL DEFAULT 1048576 CHECK (max_payload_bytes BETWEEN 2 AND 67108864),
    max_result_bytes  integer NOT NULL DEFAULT 1048576 CHECK (max_result_bytes BETWEEN 4 AND 67108864),
    max_record_bytes  integer NOT NULL DEFAULT 16777216 CHECK (max_record_bytes BETWEEN 1024 AND 268435456)
);
INSERT INTO jobforge.settings DEFAULT VALUES;
REVOKE ALL ON jobforge.settings FROM PUBLIC;

-- Logins bound to tenants. A login listed here may act only for the tenants it lists; one not
-- listed may set any tenant (a shared application role). Each login reads only its own row.
CREATE TABLE jobforge.tenant_logins (
    login   name PRIMARY KEY,
    tenants text[] NOT NULL CHECK (cardinality(tenants) >= 1)
);
-- Not forced: the owner manages the table (current_tenant() names session_user itself, so the
-- owner's SECURITY DEFINER functions still look up the caller's row only).
ALTER TABLE jobforge.tenant_logins ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_row ON jobforge.tenant_logins FOR SELECT
    USING (login OPERATOR(pg_catalog.=) session_user);
REVOKE ALL ON jobforge.tenant_logins FROM PUBLIC;
GRANT SELECT ON jobforge.tenant_logins TO jobforge_app, jobforge_worker;

-- The session's tenant (0007), now refused to a bound login for a tenant it is not bound to.
CREATE OR REPLACE FUNCTION jobforge.current_tenant() RETURNS text
LANGUAGE sql STABLE AS $$
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

CREATE OR REPLACE FUNCTION jobforge.require_tenant() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_tenant text := jobforge.current_tenant();
    v_asked  text := nullif(current_setting('jobforge.tenant', true), '');
BEGIN
    IF v_tenant IS NULL AND v_asked IS NOT NULL THEN
        RAISE EXCEPTION 'login % may not act for tenant % (jobforge.tenant_logins)',
            session_user, quote_literal(left(v_asked, 130)) USING ERRCODE = 'JF003';
    END IF;
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant is set for this transaction (jobforge.tenant)'
            USING ERRCODE = 'JF003';
    END IF;
    RETURN v_tenant;
END $$;

-- What the tables keep of a lease token: the first 16 bytes of its SHA-256, as a uuid.
CREATE FUNCTION jobforge.lease_id(p_token uuid) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.encode(
               pg_catalog.substr(pg_catalog.sha256(pg_catalog.uuid_send(p_token)), 1, 16), 'hex'
           )::uuid
$$;

-- Why a JSON value may not be stored (NULL when it may): Python's json module, which every
-- reader of the queue uses, gives up past ~1,000 levels and on integers over 4,300 digits.
CREATE FUNCTION jobforge.json_problem(p_value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN p_value IS NULL THEN NULL
        WHEN pg_catalog.jsonb_path_exists(p_value, 'strict $.**{65}')
            THEN 'it is nested deeper than 64 levels'
        WHEN pg_catalog.jsonb_path_exists(
                 p_value, 'strict $.** ? (@ > 1.7976931348623157e308 || @ < -1.7976931348623157e308)')
            THEN 'it holds a number outside the range of a double (1.8e308)'
    END
$$;

-- The transaction's time: the database's clock, or the caller's where the owner allows it.
CREATE FUNCTION jobforge.clock(p_now timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- A caller's run_at: finite and within a century either side of now.
CREATE FUNCTION jobforge.check_run_at(p_run_at timestamptz, p_now timestamptz, p_what text)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_run_at IS NOT NULL AND (NOT isfinite(p_run_at)
            OR p_run_at < p_now - interval '100 years' OR p_run_at > p_now + interval '100 years') THEN
        RAISE EXCEPTION '%: run_at % is out of range: it must be within 100 years of now', p_what, p_run_at
            USING ERRCODE = 'JF006';
    END IF;
    RETURN p_run_at;
END $$;

-- Tables written only by these functions are bounded by them. Tables that are only inserted into,
-- or that the app role writes itself, also bound each new row with a CHECK (NOT VALID: a row
-- stored before this migration is left alone). `jobs` and `job_attempts` get none: the claim and
-- finish update every row they touch, and a CHECK there would make an old poison row stall every
-- claim instead of being quarantined (jobforge/queue/calls.py).
ALTER TABLE jobforge.job_events
    ADD CONSTRAINT job_events_data_size CHECK (octet_length(data::text) <= 131072) NOT VALID;
ALTER TABLE jobforge.job_results
    ADD CONSTRAINT job_results_loadable CHECK (jobforge.json_problem(result) IS NULL) NOT VALID,
    ADD CONSTRAINT job_results_size CHECK (octet_length(result::text) <= 67108864) NOT VALID;
ALTER TABLE jobforge.job_runs
    ADD CONSTRAINT job_runs_runner_id_shape CHECK (
        runner_id ~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)*$' AND length(runner_id) <= 200
    ) NOT VALID,
    ADD CONSTRAINT job_runs_runner_version_size CHECK (length(runner_version) BETWEEN 1 AND 100) NOT VALID,
    ADD CONSTRAINT job_runs_record_loadable CHECK (jobforge.json_problem(record) IS NULL) NOT VALID;
ALTER TABLE jobforge.connector_configs
    ADD CONSTRAINT connector_configs_size CHECK (octet_length(config::text) <= 65536) NOT VALID,
    ADD CONSTRAINT connector_configs_loadable CHECK (jobforge.json_problem(config) IS NULL) NOT VALID;

-- Enqueue (0004's plan, plus: the database's clock, bounded run_at, trace ids and JSON, and a
-- payload limit the caller can lower but not lift).
CREATE OR REPLACE FUNCTION jobforge.enqueue_v1(
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
           jobforge.json_problem(u.p) AS problem INTO v_bad
    FROM unnest(p_types, p_payloads) WITH ORDINALITY AS u(t, p, i)
    WHERE u.p IS NULL OR jsonb_typeof(u.p) <> 'object' OR u.t IS NULL
       OR u.t !~ '^[a-z0-9._-]+$' OR length(u.t) > 200
       OR octet_length(u.p::text) > v_limit
       OR p_priorities[u.i] NOT BETWEEN 0 AND 32767 OR p_max_attempts[u.i] NOT BETWEEN 1 AND 1000
       OR length(p_trace_ids[u.i]) > 256
       OR NOT isfinite(p_run_ats[u.i])
       OR p_run_ats[u.i] NOT BETWEEN v_now - interval '100 years' AND v_now + interval '100 years'
       OR jobforge.json_problem(u.p) IS NOT NULL
    LIMIT 1;
    IF FOUND THEN
        IF v_bad.t IS NULL OR v_bad.t !~ '^[a-z0-9._-]+$' OR length(v_bad.t) > 200 THEN
            RAISE EXCEPTION 'job #%: type % is invalid: use 1-200 of [a-z0-9._-]', v_bad.i,
                coalesce(quote_literal(left(v_bad.t, 240)), 'null') USING ERRCODE = 'JF006';
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
            INSERT INTO jobforge.jobs AS j (tenant_id, type, payload, payload_hash, priority, run_at,
                                            max_attempts, trace_id, created_at, updated_at)
            SELECT v_tenant, u.t, u.p,
                   'sha256:' || encode(sha256(convert_to(u.p::text, 'UTF8')), 'hex'),
                   coalesce(p_priorities[u.i], 0), coalesce(p_run_ats[u.i], v_now),
                   coalesce(p_max_attempts[u.i], 3), p_trace_ids[u.i], v_now, v_now
            FROM unnest(p_types, p_payloads) WITH ORDINALITY AS u(t, p, i)
            ORDER BY u.i
            RETURNING j.id
        ),
        events AS (
            INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at)
            SELECT id, v_tenant, 'created', v_now FROM inserted ORDER BY id
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
        ON CONFLICT (tenant_id, type, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING j.id
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at)
        SELECT id, v_tenant, 'created', v_now FROM inserted ORDER BY id
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

-- Claim (0004's plan): each claimed row gets a fresh secret; the table keeps its digest and the
-- claimer gets the secret in the row's lease_token.
CREATE OR REPLACE FUNCTION jobforge.claim_v1(
    p_worker        text,
    p_limit         integer,
    p_types         text[] DEFAULT NULL,
    p_lease_seconds double precision DEFAULT 30,
    p_now           timestamptz DEFAULT NULL
) RETURNS SETOF jobforge.jobs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := jobforge.clock(p_now);
    v_lease    interval;
    v_takeover bigint[];
    v_dead     bigint[];
    v_fresh    bigint[];
    v_room     integer;
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
        SELECT j.id, j.tenant_id, j.attempts, j.lease_holder, j.lease_token,
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
    IF v_dead IS NOT NULL THEN
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt)
        SELECT j.id, j.tenant_id, 'dead', v_now, j.attempts
        FROM jobforge.jobs j WHERE j.id = ANY (v_dead) ORDER BY j.id;
    END IF;

    v_room := p_limit - coalesce(cardinality(v_takeover), 0);
    IF v_room > 0 THEN
        SELECT array_agg(f.id) INTO v_fresh FROM (
            SELECT j.id FROM jobforge.jobs j
            WHERE j.status = 'queued' AND j.run_at <= v_now
              AND (p_types IS NULL OR j.type = ANY (p_types))
            ORDER BY j.priority, j.run_at, j.id
            LIMIT v_room
            FOR UPDATE SKIP LOCKED
        ) f;
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
        INSERT INTO jobforge.job_attempts (job_id, tenant_id, attempt, worker, lease_token, started_at)
        SELECT (c.jrow).id, (c.jrow).tenant_id, (c.jrow).attempts, p_worker, (c.jrow).lease_token, v_now
        FROM claimed c
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker)
        SELECT (c.jrow).id, (c.jrow).tenant_id, 'claimed', v_now, (c.jrow).attempts, p_worker
        FROM claimed c ORDER BY (c.jrow).id
    )
    SELECT (jsonb_populate_record(c.jrow, jsonb_build_object('lease_token', c.secret))).*
    FROM claimed c ORDER BY (c.jrow).priority, (c.jrow).run_at, (c.jrow).id;
END $$;

-- Expire the stale leases of every type (the claim takes over only its own types'): the job goes
-- back to the queue, or dead when no attempts are left. Returns how many were expired.
CREATE FUNCTION jobforge.reap_v1(p_limit integer DEFAULT 1000, p_now timestamptz DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- Heartbeat: answers per input position, in input order; a stale token of a job whose newer
-- lease is in the same call is 'lost', the newer one 'ok'.
CREATE OR REPLACE FUNCTION jobforge.heartbeat_v1(
    p_worker text, p_job_ids bigint[], p_tokens uuid[],
    p_lease_seconds double precision DEFAULT 30, p_now timestamptz DEFAULT NULL
) RETURNS TABLE (job_id bigint, state text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
        WHERE j.id = input.id AND j.status = 'running' AND j.lease_token = input.token
          AND j.lease_holder = p_worker
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

-- Finish (0004's plan): tokens digested; a job listed twice with the same token is finished
-- once; a result too large or not loadable fails the job instead of the whole batch; an error
-- too large is cut down to its kind and message.
CREATE OR REPLACE FUNCTION jobforge.finish_v1(
    p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[],
    p_results jsonb[] DEFAULT NULL, p_errors jsonb[] DEFAULT NULL,
    p_now timestamptz DEFAULT NULL,
    p_backoff_base_s double precision DEFAULT 1, p_backoff_cap_s double precision DEFAULT 3600
) RETURNS TABLE (job_id bigint, state text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
            SELECT j.id, j.tenant_id, j.attempts, input.token, input.result, input.err,
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
        INSERT INTO jobforge.job_results (job_id, tenant_id, result, created_at)
        SELECT f.id, f.tenant_id, f.result, v_now
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
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker, data)
        SELECT f.id, f.tenant_id, f.next, v_now, f.attempts, p_worker,
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

-- Release (0005): tokens digested, answers in input order and per (job, token).
CREATE OR REPLACE FUNCTION jobforge.release_v1(
    p_worker text, p_job_ids bigint[], p_tokens uuid[], p_now timestamptz DEFAULT NULL
) RETURNS TABLE (job_id bigint, state text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
        FROM jobforge.jobs j JOIN input ON j.id = input.id AND input.first
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
    SELECT input.id, CASE WHEN input.first AND f.token = input.token THEN 'released' ELSE 'lost' END
    FROM input LEFT JOIN fenced f ON f.id = input.id
    ORDER BY input.i;
END $$;

-- Progress (0003): token digested; the message is cut to 2,000 characters.
CREATE OR REPLACE FUNCTION jobforge.progress_v1(
    p_worker text, p_job_id bigint, p_token uuid, p_pct real, p_message text DEFAULT NULL,
    p_now timestamptz DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
    WHERE id = p_job_id AND status = 'running' AND lease_token = jobforge.lease_id(p_token)
      AND lease_holder = p_worker
    RETURNING * INTO v_job;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker, data)
    VALUES (p_job_id, v_job.tenant_id, 'progress', v_now, v_job.attempts, p_worker,
            jsonb_build_object('pct', p_pct, 'message', v_message));
    RETURN true;
END $$;

-- Acknowledge a cancellation (0005): token digested; the data is bounded like an error.
CREATE OR REPLACE FUNCTION jobforge.acknowledge_cancel_v1(
    p_worker text, p_job_id bigint, p_token uuid, p_data jsonb, p_now timestamptz DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker, data)
    VALUES (p_job_id, v_attempt.tenant_id, 'cancel_acknowledged', v_now, v_attempt.attempt,
            p_worker, v_data);
    RETURN true;
END $$;

-- Record a run (0006): only the holder of the attempt's secret may, once; the runner id has the
-- declared shape (it becomes a folder name on export) and the record a size limit.
CREATE OR REPLACE FUNCTION jobforge.record_run_v1(
    p_worker text, p_job_id bigint, p_token uuid, p_runner_id text, p_runner_version text,
    p_status text, p_input_sha256 text, p_output_sha256 text, p_trace_sha256 text,
    p_record jsonb, p_now timestamptz DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
END $$;

-- Cancel and reschedule (0003): the database's clock; a bounded run_at.
CREATE OR REPLACE FUNCTION jobforge.cancel_v1(p_job_id bigint, p_now timestamptz DEFAULT NULL)
RETURNS jobforge.job_status
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_now    timestamptz := jobforge.clock(p_now);
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

CREATE OR REPLACE FUNCTION jobforge.reschedule_v1(
    p_job_id bigint, p_reset_attempts boolean DEFAULT false,
    p_run_at timestamptz DEFAULT NULL, p_now timestamptz DEFAULT NULL
) RETURNS jobforge.job_status
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_now    timestamptz := jobforge.clock(p_now);
    v_job    jobforge.jobs;
BEGIN
    PERFORM jobforge.check_run_at(p_run_at, v_now, 'reschedule');
    SELECT * INTO v_job FROM jobforge.jobs WHERE id = p_job_id AND tenant_id = v_tenant FOR UPDATE;
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
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, data)
    VALUES (p_job_id, v_tenant, 'rescheduled', v_now,
            jsonb_build_object('from', v_job.status, 'reset_attempts', coalesce(p_reset_attempts, false)));
    RETURN 'queued';
END $$;

REVOKE ALL ON FUNCTION jobforge.lease_id(uuid), jobforge.json_problem(jsonb),
    jobforge.clock(timestamptz), jobforge.check_run_at(timestamptz, timestamptz, text),
    jobforge.reap_v1(integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobforge.reap_v1(integer, timestamptz) TO jobforge_worker;
