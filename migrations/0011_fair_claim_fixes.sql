-- The fair claim of 0010, held under pressure ([5/10], after an attacker's review of 0010).
--
-- 1. A claim locks only what it keeps. 0010 locked up to a share of due jobs of EVERY tenant with
--    queued jobs and kept only `limit` of them, so a claim with many tenants waiting held locks on
--    rows it then dropped (concurrent claims found them locked and came back short or empty) and
--    cost one locking scan per tenant. Now at most `limit` tenants are chosen first (by the
--    priority of their most urgent due job, ties in a random order: each tenant has the same
--    chance of a turn whatever its backlog), and only those tenants' jobs are locked, a share at
--    a time (see 3).
-- 2. The share is divided among tenants that have DUE jobs of the types asked for (not every
--    tenant with a queued job of any type or time), leaving out tenants and types at their cap.
-- 3. Room a tenant leaves (fewer due jobs than its share) goes round again: the tenants that had
--    their whole share take a new share of what is left, and so on (a few rounds at most). 0010
--    refilled in the global (priority, run_at, id) order, so a tenant that back-dated its run_at
--    took all the leftover room.
-- 4. A canceled job's handler keeps running until its worker hears of the cancel and stops it:
--    cancel_v1 now keeps, on the attempt, the time by which that handler must have stopped (the
--    lease it held: `stops_by`, cleared when the worker acknowledges the cancel). Caps count those
--    handlers as running, so cancel + reschedule cannot run more than max_running at once.
-- 5. Limits rely on READ COMMITTED (each statement sees the claims committed before it, once the
--    limit rows are locked): a claim that would apply limits in a REPEATABLE READ or SERIALIZABLE
--    transaction (a login or database default) refuses in one line instead of over-running a cap.
--    jobforge's clients open every transaction as READ COMMITTED explicitly.
-- 6. Caps trim the picks BEFORE anything is locked beyond them: a type or tenant whose room is
--    used up leaves the rounds, and the room goes to others.
-- 7. A rate is at least 0.000001 jobs/s (one job in 11.6 days): smaller values (down to 5e-324)
--    were accepted and made the bucket's arithmetic meaningless.
-- 8. The claimed rows come back through one jsonb_populate_record per row (a LATERAL call), not
--    one per column as `(f(x)).*` expands to: 27 of the claim's ~100 µs per job.
-- The single-tenant claim without limits (the common case, and every benchmark) locks in one
-- index scan, as 0008 did; it pays two index probes to find that there is one tenant.

ALTER TABLE jobforge.job_attempts ADD COLUMN stops_by timestamptz;
CREATE INDEX job_attempts_stopping ON jobforge.job_attempts (stops_by) WHERE stops_by IS NOT NULL;

UPDATE jobforge.queue_limits SET rate_per_s = 0.000001 WHERE rate_per_s < 0.000001;
ALTER TABLE jobforge.queue_limits DROP CONSTRAINT queue_limits_rate_per_s_check;
ALTER TABLE jobforge.queue_limits ADD CONSTRAINT queue_limits_rate_per_s_check
    CHECK (rate_per_s >= 0.000001 AND rate_per_s <= 1000000);

-- One pick of the claim's rounds: which job, whose, of what type, in which round, and the order
-- within the round (priority, then the tenant's turn, then run_at and id).
CREATE TYPE jobforge.claim_pick AS (
    id bigint, tenant_id text, type text, round integer, priority integer, turn integer,
    run_at timestamptz
);

CREATE OR REPLACE FUNCTION jobforge.set_limit_v1(
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
    IF p_rate_per_s IS NOT NULL AND NOT (p_rate_per_s >= 0.000001 AND p_rate_per_s <= 1000000) THEN
        RAISE EXCEPTION 'rate_per_s % is out of range 0.000001-1000000', p_rate_per_s
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

-- Cancel (0008): a running job's attempt keeps, in stops_by, the end of the lease its handler
-- held; until then (or until the worker acknowledges the cancel) the handler counts as running.
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
        UPDATE jobforge.job_attempts
        SET finished_at = v_now, outcome = 'canceled',
            stops_by = CASE WHEN v_job.lease_expires_at > v_now THEN v_job.lease_expires_at END
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

-- Acknowledge a cancel (0008): the handler has stopped, so it no longer counts as running.
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
    UPDATE jobforge.job_attempts a SET stops_by = NULL WHERE a.lease_token = v_attempt.lease_token;
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker, data)
    VALUES (p_job_id, v_attempt.tenant_id, 'cancel_acknowledged', v_now, v_attempt.attempt,
            p_worker, v_data);
    RETURN true;
END $$;

-- Claim (0010): same signature, checks, takeover and events; see the top of this file.
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
        WHERE t.tenant_id IS NOT NULL AND t.tenant_id <> ALL (v_no_tenants)
          AND EXISTS (
              SELECT 1 FROM jobforge.jobs j
              WHERE j.tenant_id = t.tenant_id AND j.status = 'queued' AND j.run_at <= v_now
                AND (p_types IS NULL OR j.type = ANY (p_types)) AND j.type <> ALL (v_no_types)
          );

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
        INSERT INTO jobforge.job_attempts (job_id, tenant_id, attempt, worker, lease_token, started_at)
        SELECT (c.jrow).id, (c.jrow).tenant_id, (c.jrow).attempts, p_worker, (c.jrow).lease_token, v_now
        FROM claimed c
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, attempt, worker)
        SELECT (c.jrow).id, (c.jrow).tenant_id, 'claimed', v_now, (c.jrow).attempts, p_worker
        FROM claimed c ORDER BY (c.jrow).id
    )
    SELECT r.*
    FROM claimed c
    CROSS JOIN LATERAL jsonb_populate_record(c.jrow, jsonb_build_object('lease_token', c.secret)) r
    ORDER BY r.priority, r.run_at, r.id;
END $$;

-- The transition check (0002, 0004) ran a PL/pgSQL trigger, and a lookup in job_transitions, on
-- every status change: two per job (~18 us of the ~165 us a job costs the database from claim to
-- finish). The legal moves now sit in the trigger's WHEN clause, built here from job_transitions
-- (still the one list of legal moves), so the function runs only for an illegal move, to refuse
-- it. A change to job_transitions must rebuild the trigger the same way.
DO $$
DECLARE
    v_legal text;
BEGIN
    SELECT string_agg(format('(%L, %L)', t.from_status, t.to_status), ', '
                      ORDER BY t.from_status, t.to_status)
    INTO v_legal FROM jobforge.job_transitions t;
    DROP TRIGGER jobs_transition ON jobforge.jobs;
    EXECUTE format(
        'CREATE TRIGGER jobs_transition BEFORE UPDATE OF status ON jobforge.jobs FOR EACH ROW '
        'WHEN (OLD.status IS DISTINCT FROM NEW.status AND (OLD.status::text, NEW.status::text) '
        'NOT IN (%s)) EXECUTE FUNCTION jobforge.jobs_check_transition()', v_legal);
END $$;

-- json_problem (0008) ran with its own search_path, which keeps PostgreSQL from inlining it: every
-- statement that called it planned its body anew (~30 us), twice for a one-job enqueue (~60 of
-- its ~180 us). Its body names every function with its schema and uses no operator, so it is
-- now inlined into the statements that call it (like current_tenant and worker_scope, whose
-- bodies are held to the same rule by tests/integration/test_planted_functions.py).
CREATE OR REPLACE FUNCTION jobforge.json_problem(p_value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_value IS NULL THEN NULL
        WHEN pg_catalog.jsonb_path_exists(p_value, 'strict $.**{65}')
            THEN 'it is nested deeper than 64 levels'
        WHEN pg_catalog.jsonb_path_exists(
                 p_value, 'strict $.** ? (@ > 1.7976931348623157e308 || @ < -1.7976931348623157e308)')
            THEN 'it holds a number outside the range of a double (1.8e308)'
    END
$$;
ALTER FUNCTION jobforge.json_problem(jsonb) RESET ALL;
