-- Fairness and limits in the claim ([5/10]).
--
-- Tenant fairness. The claim (0008) took due jobs in (priority, run_at, id) order across every
-- tenant, so a tenant that queued 100,000 jobs made every other tenant wait behind them. Now the
-- claim's `limit` is shared among the tenants with due jobs:
--   1. the tenants with queued jobs are found by a skip scan of jobs_fair (one index probe per
--      tenant, not a scan of the backlog);
--   2. each takes up to ceil(room / tenants) of its own due jobs, in its own (priority, run_at,
--      id) order, locked FOR UPDATE SKIP LOCKED, so concurrent claimers still take disjoint rows;
--   3. the picks are served in rounds: every tenant's first job, then every tenant's second, and
--      so on; within a round the more urgent priority goes first, and tenants of equal priority
--      in a random order, so when more tenants wait than one claim takes, each has the same
--      chance of a turn however long its backlog;
--   4. when some tenants have fewer due jobs than their share, the tenants that had their whole
--      share fill the rest of the room in (priority, run_at, id) order, so a claim never takes
--      less than it used to.
-- Priority therefore orders a tenant's own jobs, and breaks ties between tenants within a round;
-- it does not let one tenant's urgent backlog take another tenant's turn.
-- One tenant with due jobs (the common case, and the benchmark) costs two more index probes.
-- Expired leases are taken over first, as before, without regard to fairness: they were claimed
-- fairly once already.
--
-- Limits. jobforge.queue_limits holds, per job type or per tenant, a cap on running jobs
-- (max_running) and, per job type, a token bucket (rate_per_s tokens a second, holding at most
-- burst). When the table is empty the claim does no more than the fairness above. Otherwise it
-- locks the limit rows that concern it (in key order: no deadlock), so claims that may touch a
-- limit take turns; counts the running jobs of each limited type and tenant (jobs_leased: only
-- running rows are read); refills each bucket by the time elapsed since its last claim; leaves
-- out types and tenants that have no room; and takes no more of each than its room allows. A job
-- whose tenant is at its cap still counts toward its type's allowance in that claim, so a claim
-- may take fewer jobs than it could, never more. Takeovers of expired leases take no tokens (the
-- job paid at its first claim) but count as running.
--
-- Who sets limits: operators, through jobforge.set_limit_v1 / clear_limit_v1, which require a
-- member of jobforge_worker (like every worker-side function). A tenant's app login may neither
-- set nor read limits: a tenant that could lift its own cap would defeat it, and the caps of
-- other tenants are not its business.

CREATE INDEX jobs_fair ON jobforge.jobs (tenant_id, priority, run_at, id) WHERE status = 'queued';
-- The claim no longer reads queued jobs in the global (priority, run_at, id) order, so that
-- index goes: every enqueue keeps writing one index of queued jobs, not two.
DROP INDEX jobforge.jobs_claimable;

CREATE TABLE jobforge.queue_limits (
    scope       text NOT NULL CHECK (scope IN ('type', 'tenant')),
    key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    max_running integer CHECK (max_running BETWEEN 1 AND 1000000),
    rate_per_s  double precision CHECK (rate_per_s > 0 AND rate_per_s <= 1000000),
    burst       double precision CHECK (burst >= 1 AND burst <= 1000000),
    tokens      double precision,
    refilled_at timestamptz,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key),
    CONSTRAINT queue_limits_something CHECK (max_running IS NOT NULL OR rate_per_s IS NOT NULL),
    CONSTRAINT queue_limits_rate_per_type CHECK (rate_per_s IS NULL OR scope = 'type'),
    CONSTRAINT queue_limits_bucket CHECK (
        (rate_per_s IS NULL) = (burst IS NULL) AND (rate_per_s IS NULL) = (tokens IS NULL)
        AND (rate_per_s IS NULL) = (refilled_at IS NULL)
    )
);
REVOKE ALL ON jobforge.queue_limits FROM PUBLIC;
GRANT SELECT ON jobforge.queue_limits TO jobforge_worker;

-- Set (or replace) the limits of one type or tenant. A bucket starts full; changing the rate or
-- burst of an existing bucket keeps its tokens (capped to the new burst).
CREATE FUNCTION jobforge.set_limit_v1(
    p_scope text, p_key text, p_max_running integer DEFAULT NULL,
    p_rate_per_s double precision DEFAULT NULL, p_burst double precision DEFAULT NULL,
    p_now timestamptz DEFAULT NULL
) RETURNS SETOF jobforge.queue_limits
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now   timestamptz := jobforge.clock(p_now);
    v_burst double precision := coalesce(p_burst, greatest(1, p_rate_per_s));
BEGIN
    PERFORM jobforge.require_worker();
    IF p_scope IS NULL OR p_scope NOT IN ('type', 'tenant') THEN
        RAISE EXCEPTION 'limit scope % is unknown: use type or tenant',
            coalesce(quote_literal(left(p_scope, 40)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_key IS NULL OR (p_scope = 'type' AND (p_key !~ '^[a-z0-9._-]+$' OR length(p_key) > 200))
       OR (p_scope = 'tenant' AND p_key !~ '^[A-Za-z0-9._:-]{1,128}$') THEN
        RAISE EXCEPTION 'limit key % is not a valid %', coalesce(quote_literal(left(p_key, 240)), 'null'),
            CASE p_scope WHEN 'type' THEN 'job type' ELSE 'tenant id' END USING ERRCODE = 'JF006';
    END IF;
    IF p_max_running IS NULL AND p_rate_per_s IS NULL THEN
        RAISE EXCEPTION 'a limit needs max_running or rate_per_s' USING ERRCODE = 'JF006';
    END IF;
    IF p_max_running IS NOT NULL AND p_max_running NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'max_running % is out of range 1-1000000', p_max_running USING ERRCODE = 'JF006';
    END IF;
    IF p_rate_per_s IS NOT NULL AND p_scope <> 'type' THEN
        RAISE EXCEPTION 'rate limits are per job type, not per %', p_scope USING ERRCODE = 'JF006';
    END IF;
    IF p_rate_per_s IS NOT NULL AND NOT (p_rate_per_s > 0 AND p_rate_per_s <= 1000000) THEN
        RAISE EXCEPTION 'rate_per_s % is out of range: above 0, at most 1000000', p_rate_per_s
            USING ERRCODE = 'JF006';
    END IF;
    IF p_burst IS NOT NULL AND p_rate_per_s IS NULL THEN
        RAISE EXCEPTION 'burst needs rate_per_s' USING ERRCODE = 'JF006';
    END IF;
    IF p_rate_per_s IS NOT NULL AND NOT (v_burst >= 1 AND v_burst <= 1000000) THEN
        RAISE EXCEPTION 'burst % is out of range 1-1000000', v_burst USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    INSERT INTO jobforge.queue_limits AS l
        (scope, key, max_running, rate_per_s, burst, tokens, refilled_at, updated_at)
    VALUES (p_scope, p_key, p_max_running, p_rate_per_s,
            CASE WHEN p_rate_per_s IS NOT NULL THEN v_burst END,
            CASE WHEN p_rate_per_s IS NOT NULL THEN v_burst END,
            CASE WHEN p_rate_per_s IS NOT NULL THEN v_now END, v_now)
    ON CONFLICT (scope, key) DO UPDATE
    SET max_running = EXCLUDED.max_running, rate_per_s = EXCLUDED.rate_per_s,
        burst = EXCLUDED.burst,
        tokens = CASE WHEN EXCLUDED.rate_per_s IS NULL THEN NULL
                      ELSE least(coalesce(l.tokens, EXCLUDED.tokens), EXCLUDED.burst) END,
        refilled_at = CASE WHEN EXCLUDED.rate_per_s IS NULL THEN NULL
                           ELSE coalesce(l.refilled_at, EXCLUDED.refilled_at) END,
        updated_at = EXCLUDED.updated_at
    RETURNING l.*;
END $$;

-- Clear the limits of one type or tenant; true when there were any.
CREATE FUNCTION jobforge.clear_limit_v1(p_scope text, p_key text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM jobforge.require_worker();
    IF p_scope IS NULL OR p_scope NOT IN ('type', 'tenant') THEN
        RAISE EXCEPTION 'limit scope % is unknown: use type or tenant',
            coalesce(quote_literal(left(p_scope, 40)), 'null') USING ERRCODE = 'JF006';
    END IF;
    DELETE FROM jobforge.queue_limits l WHERE l.scope = p_scope AND l.key = p_key;
    RETURN FOUND;
END $$;

-- Claim (0008): same signature, checks, takeover and events; the fresh jobs are picked fairly
-- across tenants and within the limits (see the top of this file).
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
    v_now          timestamptz := jobforge.clock(p_now);
    v_lease        interval;
    v_takeover     bigint[];
    v_dead         bigint[];
    v_fresh        bigint[];
    v_room         integer;
    v_tenants      text[];
    v_share        integer;
    v_need         integer;
    v_full         text[];
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
    v_limited := v_room > 0 AND EXISTS (SELECT 1 FROM jobforge.queue_limits);
    IF v_limited THEN
        -- Claims that may touch a limit take turns on its row until they commit, so the running
        -- counts below (a new statement, a new snapshot) include every earlier claim's jobs.
        PERFORM 1 FROM jobforge.queue_limits l
        WHERE l.scope = 'tenant' OR p_types IS NULL OR l.key = ANY (p_types)
        ORDER BY l.scope, l.key
        FOR UPDATE;
        SELECT coalesce(array_agg(l.key ORDER BY l.key), '{}'),
               coalesce(array_agg(greatest(0, least(
                   coalesce(l.max_running - r.n, 2147483647),
                   coalesce(floor(least(l.burst, l.tokens + l.rate_per_s
                       * greatest(0, extract(epoch FROM v_now - l.refilled_at))))::bigint, 2147483647)
               ))::integer ORDER BY l.key), '{}')
        INTO v_type_keys, v_type_room
        FROM jobforge.queue_limits l
        LEFT JOIN LATERAL (
            SELECT count(*) AS n FROM jobforge.jobs j
            WHERE j.status = 'running' AND j.type = l.key
        ) r ON l.max_running IS NOT NULL
        WHERE l.scope = 'type' AND (p_types IS NULL OR l.key = ANY (p_types));
        SELECT coalesce(array_agg(l.key ORDER BY l.key), '{}'),
               coalesce(array_agg(greatest(0, l.max_running - r.n)::integer ORDER BY l.key), '{}')
        INTO v_tenant_keys, v_tenant_room
        FROM jobforge.queue_limits l
        CROSS JOIN LATERAL (
            SELECT count(*) AS n FROM jobforge.jobs j
            WHERE j.status = 'running' AND j.tenant_id = l.key
        ) r
        WHERE l.scope = 'tenant';
        SELECT coalesce(array_agg(k.key) FILTER (WHERE k.room = 0), '{}') INTO v_no_types
        FROM unnest(v_type_keys, v_type_room) AS k(key, room);
        SELECT coalesce(array_agg(k.key) FILTER (WHERE k.room = 0), '{}') INTO v_no_tenants
        FROM unnest(v_tenant_keys, v_tenant_room) AS k(key, room);
    END IF;

    IF v_room > 0 THEN
        -- The tenants with queued jobs: a skip scan of jobs_fair, one probe per tenant.
        WITH RECURSIVE t AS (
            (SELECT j.tenant_id FROM jobforge.jobs j
             WHERE j.status = 'queued' ORDER BY j.tenant_id LIMIT 1)
            UNION ALL
            SELECT (SELECT j.tenant_id FROM jobforge.jobs j
                    WHERE j.status = 'queued' AND j.tenant_id > t.tenant_id
                    ORDER BY j.tenant_id LIMIT 1)
            FROM t WHERE t.tenant_id IS NOT NULL
        )
        SELECT array_agg(t.tenant_id) INTO v_tenants
        FROM t WHERE t.tenant_id IS NOT NULL AND t.tenant_id <> ALL (v_no_tenants);
        v_share := ceil(v_room::numeric / greatest(coalesce(cardinality(v_tenants), 0), 1));

        -- Each tenant's share, in rounds: its first job, then its second, ...
        SELECT array_agg(f.id ORDER BY f.round, f.priority, f.turn, f.run_at, f.id) INTO v_fresh
        FROM (
            SELECT c.id, c.priority, c.run_at, c.round, random() AS turn
            FROM unnest(v_tenants) AS tn(tenant_id)
            CROSS JOIN LATERAL (
                SELECT s.id, s.priority, s.run_at, row_number() OVER () AS round
                FROM (
                    SELECT j.id, j.priority, j.run_at FROM jobforge.jobs j
                    WHERE j.tenant_id = tn.tenant_id AND j.status = 'queued' AND j.run_at <= v_now
                      AND (p_types IS NULL OR j.type = ANY (p_types))
                      AND j.type <> ALL (v_no_types)
                    ORDER BY j.priority, j.run_at, j.id
                    LIMIT v_share
                    FOR UPDATE SKIP LOCKED
                ) s
            ) c
        ) f;

        -- Tenants with less than their share leave room: the tenants that had their whole share
        -- may have more, so each offers up to the room left and the best of those fill it.
        v_need := v_room - coalesce(cardinality(v_fresh), 0);
        IF v_need > 0 AND cardinality(v_tenants) > 1 THEN
            SELECT array_agg(j.tenant_id) INTO v_full FROM (
                SELECT j.tenant_id FROM jobforge.jobs j WHERE j.id = ANY (v_fresh)
                GROUP BY j.tenant_id HAVING count(*) >= v_share
            ) j;
            v_fresh := coalesce(v_fresh, '{}') || ARRAY(
                SELECT c.id
                FROM unnest(v_full) AS tn(tenant_id)
                CROSS JOIN LATERAL (
                    SELECT j.id, j.priority, j.run_at FROM jobforge.jobs j
                    WHERE j.tenant_id = tn.tenant_id AND j.status = 'queued' AND j.run_at <= v_now
                      AND (p_types IS NULL OR j.type = ANY (p_types))
                      AND j.type <> ALL (v_no_types) AND j.id <> ALL (v_fresh)
                    ORDER BY j.priority, j.run_at, j.id
                    LIMIT v_need
                    FOR UPDATE SKIP LOCKED
                ) c
                ORDER BY c.priority, c.run_at, c.id
                LIMIT v_need
            );
        END IF;

        -- Keep no more than the room, and within each limit's room (in the order picked).
        IF v_limited THEN
            SELECT array_agg(x.id ORDER BY x.pos) INTO v_fresh
            FROM (
                SELECT p.id, p.pos,
                       row_number() OVER (PARTITION BY j.type ORDER BY p.pos) AS nth_of_type,
                       row_number() OVER (PARTITION BY j.tenant_id ORDER BY p.pos) AS nth_of_tenant,
                       j.type, j.tenant_id
                FROM unnest(v_fresh) WITH ORDINALITY AS p(id, pos)
                JOIN jobforge.jobs j ON j.id = p.id
            ) x
            WHERE x.pos <= v_room
              AND x.nth_of_type <= coalesce(v_type_room[array_position(v_type_keys, x.type)], 2147483647)
              AND x.nth_of_tenant <= coalesce(v_tenant_room[array_position(v_tenant_keys, x.tenant_id)],
                                              2147483647);
            -- Buckets: refilled to now, less the jobs of their type just taken.
            UPDATE jobforge.queue_limits l
            SET tokens = least(l.burst, l.tokens + l.rate_per_s
                               * greatest(0, extract(epoch FROM v_now - l.refilled_at)))
                         - (SELECT count(*) FROM jobforge.jobs j
                            WHERE j.id = ANY (coalesce(v_fresh, '{}')) AND j.type = l.key),
                refilled_at = greatest(l.refilled_at, v_now)
            WHERE l.scope = 'type' AND l.rate_per_s IS NOT NULL AND l.key = ANY (v_type_keys);
        ELSIF cardinality(v_fresh) > v_room THEN
            v_fresh := v_fresh[1:v_room];
        END IF;
    END IF;
    IF v_takeover IS NULL AND (v_fresh IS NULL OR cardinality(v_fresh) = 0) THEN
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

REVOKE ALL ON FUNCTION
    jobforge.set_limit_v1(text, text, integer, double precision, double precision, timestamptz),
    jobforge.clear_limit_v1(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    jobforge.set_limit_v1(text, text, integer, double precision, double precision, timestamptz),
    jobforge.clear_limit_v1(text, text) TO jobforge_worker;
