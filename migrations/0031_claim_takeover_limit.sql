-- [5/10] A claim takes over at most so many expired leases (claim_v2's p_takeover_limit), so a
-- killed worker's jobs are spread over the claims that follow instead of landing, all of them,
-- at the back of one worker's queue of jobs claimed ahead.
--
-- Why: under the chaos benchmark (4 workers, one killed with SIGKILL every 5 s, leases of 10 s)
-- a killed worker strands the ~200 jobs it held. Their leases run out together, ~10 s after
-- their claim, which is ~0.5 s before the kill after next; the first claim then took all of
-- them over into one worker, behind its own jobs, and with one chance in four that worker was
-- the next one killed. Each stranding costs an attempt (a lease that ran out is an attempt, as
-- the state machine holds), so about one run in three ended with a block of jobs dead after
-- three strandings. With the takeover limited (the worker asks for a quarter of its slots) and
-- the jobs taken over run first (the worker puts jobs on a second attempt or later at the front
-- of its queue), a block is done within a few jobs' time of its takeover; what no claim takes
-- over meanwhile is requeued by the reaper, where it holds no lease.
--
-- claim_v2 is claim_v1 (0026) with the new argument (NULL: up to p_limit, claim_v1's rule);
-- claim_v1 now calls it, so the two cannot drift apart.

CREATE FUNCTION jobforge.claim_v2(p_worker text, p_limit integer, p_types text[] DEFAULT NULL::text[], p_lease_seconds double precision DEFAULT 30, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_takeover_limit integer DEFAULT NULL) RETURNS SETOF jobforge.jobs
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
    IF p_takeover_limit < 0 THEN
        RAISE EXCEPTION 'claim: the takeover limit must be 0 or more' USING ERRCODE = 'JF006';
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
        LIMIT least(p_limit, coalesce(p_takeover_limit, p_limit))
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
    -- The rows as the caller gets them, the lease's secret in place of its stored digest
    -- (lease_id), column by column: a composite row rebuilt through jsonb cost ~3 us a job.
    claimed AS (
        UPDATE jobforge.jobs j
        SET status = 'running', attempts = j.attempts + 1, lease_token = jobforge.lease_id(p.secret),
            lease_holder = p_worker, lease_expires_at = v_now + v_lease, heartbeat_at = v_now,
            updated_at = v_now, error = NULL
        FROM picked p
        WHERE j.id = p.id
        RETURNING
            j.id, j.tenant_id, j.project, j.type, j.payload, j.payload_hash, j.status,
            j.priority, j.run_at, j.attempts, j.max_attempts, p.secret AS lease_token,
            j.lease_holder, j.lease_expires_at, j.heartbeat_at, j.idempotency_key, j.error,
            j.trace_id, j.progress_pct, j.progress_message, j.created_at, j.updated_at,
            j.finished_at, j.parent_id, j.envelope, j.lease_token AS lease_id
    ),
    attempts AS (
        INSERT INTO jobforge.job_attempts (job_id, tenant_id, project, attempt, worker, lease_token,
                                           started_at)
        SELECT c.id, c.tenant_id, c.project, c.attempts, p_worker, c.lease_id, v_now
        FROM claimed c
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, attempt, worker)
        SELECT c.id, c.tenant_id, c.project, 'claimed', v_now, c.attempts, p_worker
        FROM claimed c ORDER BY c.id
    )
    SELECT
        c.id, c.tenant_id, c.project, c.type, c.payload, c.payload_hash, c.status, c.priority,
        c.run_at, c.attempts, c.max_attempts, c.lease_token, c.lease_holder, c.lease_expires_at,
        c.heartbeat_at, c.idempotency_key, c.error, c.trace_id, c.progress_pct,
        c.progress_message, c.created_at, c.updated_at, c.finished_at, c.parent_id, c.envelope
    FROM claimed c
    ORDER BY c.priority, c.run_at, c.id;
END $$;

REVOKE ALL ON FUNCTION jobforge.claim_v2(text, integer, text[], double precision, timestamptz, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobforge.claim_v2(text, integer, text[], double precision, timestamptz,
    integer) TO jobforge_worker;

CREATE OR REPLACE FUNCTION jobforge.claim_v1(p_worker text, p_limit integer, p_types text[] DEFAULT NULL::text[], p_lease_seconds double precision DEFAULT 30, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF jobforge.jobs
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    RETURN QUERY SELECT * FROM jobforge.claim_v2(p_worker, p_limit, p_types, p_lease_seconds, p_now, NULL);
END $$;
