-- [5/10] The event log's `claimed` and outcome events, from the attempts that hold them.
--
-- Every job wrote three rows for one attempt: the attempt, its `claimed` event and its outcome
-- event, each with the same job, attempt, worker, times and login. The two events were ~6% of a
-- one-process drain of no-op jobs (measured by dropping them), and two thirds of every
-- finished job's rows in job_events. claim_v1 and finish_v1 (0026's, with only this changed)
-- now write the attempt alone, with the ids the events would have had (drawn from the events'
-- sequence where the events drew theirs, so the log keeps its order) and the login that claimed
-- it, and job_event_log derives the two events from it, as it derives a plain `created` from the
-- job's row (0025):
--
-- * `claimed`: at the attempt's start, its number, worker and login, no data;
-- * the outcome (`succeeded`, `failed`, `dead`, or `retry_scheduled` for a retry): at its end,
--   with the data the stored event had (a retry's new run_at, kept as written; otherwise the
--   attempt's error, as {"error": ...}).
--
-- An event that says more than the attempt's row is stored as before: a claim or a finish whose
-- transaction names an actor or a reason (the audit trail reads the stored events and their
-- actor), and an outcome written by another login than the claim's. Attempts made before this
-- migration, and those of claim_tenant_v1 (an agent's claim, which stores its `claimed`), carry
-- no `claimed` id; the lease's expiry, cancel and release store their events as before; nothing
-- is derived and stored twice. finish_followups_v1 goes through finish_v1.

ALTER TABLE jobforge.job_attempts
    ADD COLUMN claim_event_id bigint,
    ADD COLUMN finish_event_id bigint,
    ADD COLUMN finish_data jsonb,
    ADD COLUMN login text;
-- Set by whoever inserts the attempt from now on; NULL on the attempts made before (whose
-- events are stored, with their login).
ALTER TABLE jobforge.job_attempts ALTER COLUMN login SET DEFAULT session_user;

-- 0026's finish_v1; the outcome's event is the attempt's.
CREATE OR REPLACE FUNCTION jobforge.finish_v1(p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[], p_results jsonb[] DEFAULT NULL::jsonb[], p_errors jsonb[] DEFAULT NULL::jsonb[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_backoff_base_s double precision DEFAULT 1, p_backoff_cap_s double precision DEFAULT 3600) RETURNS TABLE(job_id bigint, state text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    v_now   timestamptz := jobforge.clock(p_now);
    v_limit integer := (SELECT s.max_result_bytes FROM jobforge.settings s);
    v_audited boolean := coalesce(current_setting('jobforge.actor', true), '') <> ''
                         OR coalesce(current_setting('jobforge.reason', true), '') <> '';
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
               END AS retry_at,
               -- the outcome event's id, drawn in job order whether it is stored or derived
               nextval('jobforge.job_events_id_seq'::regclass) AS event_id
        FROM (
            SELECT j.id, j.tenant_id, j.project, j.attempts, input.token, input.result, input.err,
                   CASE WHEN input.outcome = 'succeeded' THEN 'succeeded'
                        WHEN input.outcome = 'failed' THEN 'failed'
                        WHEN j.attempts >= j.max_attempts THEN 'dead'
                        ELSE 'retry_scheduled' END AS next
            -- One probe of the primary key per outcome, locked in id order. A join of jobs
            -- with the outcomes was planned as a nested loop over both (the planner guesses 10
            -- rows for an array it cannot see): 200 outcomes cost 40,000 comparisons. The lease
            -- is named without the status (jobs_lease_iff_running: a job holds a lease, token,
            -- holder and expiry, exactly while it runs): with `status = 'running'` in it, once
            -- ANALYZE had seen few running jobs, the planner read the partial index of running
            -- jobs (jobs_leased) from end to end for each outcome instead.
            FROM (SELECT * FROM input WHERE input.first ORDER BY input.id) input
            CROSS JOIN LATERAL (
                SELECT j.id, j.tenant_id, j.project, j.attempts, j.max_attempts
                FROM jobforge.jobs j
                WHERE j.id = input.id AND j.lease_token = input.token
                  AND j.lease_holder = p_worker AND j.lease_expires_at IS NOT NULL
                FOR UPDATE
            ) j
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
    -- The outcome's event is the attempt's row (job_event_log derives it, with the id drawn for
    -- it in `fenced` and a retry's new run_at as the stored event had it), unless the event says
    -- more than the row: an actor or a reason named for this transaction (the audit trail reads
    -- stored events), or a login other than the one that claimed the attempt (the row keeps
    -- one). Then it is stored, under the same id.
    attempts AS (
        UPDATE jobforge.job_attempts a
        SET finished_at = v_now, error = f.err,
            outcome = CASE f.next WHEN 'retry_scheduled' THEN 'retry' ELSE f.next END,
            finish_event_id = CASE WHEN NOT v_audited AND a.login = session_user
                                   THEN f.event_id END,
            finish_data = CASE WHEN NOT v_audited AND a.login = session_user
                                    AND f.next = 'retry_scheduled'
                               THEN jsonb_build_object('run_at', f.retry_at) END
        FROM fenced f WHERE a.lease_token = f.token
        RETURNING a.job_id, a.finish_event_id IS NOT NULL AS derived
    ),
    events AS (
        INSERT INTO jobforge.job_events (id, job_id, tenant_id, project, kind, at, attempt, worker,
                                         data)
        OVERRIDING SYSTEM VALUE
        SELECT f.event_id, f.id, f.tenant_id, f.project, f.next, v_now, f.attempts, p_worker,
               CASE WHEN f.next = 'retry_scheduled' THEN jsonb_build_object('run_at', f.retry_at)
                    WHEN f.err IS NOT NULL THEN jsonb_build_object('error', f.err) END
        FROM fenced f LEFT JOIN attempts u ON u.job_id = f.id
        WHERE NOT coalesce(u.derived, false)
        ORDER BY f.id
    )
    -- A job listed twice with one token is finished once: the first entry counts, a repeat is 'lost'.
    SELECT input.id,
           CASE WHEN input.first AND f.token = input.token THEN f.next ELSE 'lost' END
    FROM input LEFT JOIN fenced f ON f.id = input.id
    ORDER BY input.i;
END $$;

-- 0026's claim_v1; the `claimed` event is the attempt's.
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
    v_audited      boolean := coalesce(current_setting('jobforge.actor', true), '') <> ''
                              OR coalesce(current_setting('jobforge.reason', true), '') <> '';
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
    -- The `claimed` event is the attempt's row (job_event_log derives it, the login the
    -- attempt's), its id drawn from the events' sequence in the order the stored events took
    -- theirs; a claim that names an actor or a reason stores its events, for the audit trail.
    attempts AS (
        INSERT INTO jobforge.job_attempts (job_id, tenant_id, project, attempt, worker, lease_token,
                                           started_at, claim_event_id)
        SELECT c.id, c.tenant_id, c.project, c.attempts, p_worker, c.lease_id, v_now,
               CASE WHEN NOT v_audited THEN nextval('jobforge.job_events_id_seq'::regclass) END
        FROM (SELECT * FROM claimed ORDER BY claimed.id) c
    ),
    events AS (
        INSERT INTO jobforge.job_events (job_id, tenant_id, project, kind, at, attempt, worker)
        SELECT c.id, c.tenant_id, c.project, 'claimed', v_now, c.attempts, p_worker
        FROM claimed c WHERE v_audited ORDER BY c.id
    )
    SELECT
        c.id, c.tenant_id, c.project, c.type, c.payload, c.payload_hash, c.status, c.priority,
        c.run_at, c.attempts, c.max_attempts, c.lease_token, c.lease_holder, c.lease_expires_at,
        c.heartbeat_at, c.idempotency_key, c.error, c.trace_id, c.progress_pct,
        c.progress_message, c.created_at, c.updated_at, c.finished_at, c.parent_id, c.envelope
    FROM claimed c
    ORDER BY c.priority, c.run_at, c.id;
END $$;

-- The log as its readers see it: the stored events, the `created` event derived from the job's
-- row where none is stored (0025), and the attempts' `claimed` and outcome events. The caller's
-- row-level security binds all three tables (security_invoker).
CREATE OR REPLACE VIEW jobforge.job_event_log WITH (security_invoker = true) AS
SELECT e.id, e.job_id, e.tenant_id, e.project, e.kind, e.at, e.attempt, e.worker, e.data,
       e.login, e.actor, e.reason
FROM jobforge.job_events e
UNION ALL
SELECT 0::bigint, j.id, j.tenant_id, j.project, 'created'::text, j.created_at, NULL::integer,
       NULL::text, CASE WHEN j.parent_id IS NOT NULL THEN jsonb_build_object('parent_id', j.parent_id) END,
       NULL::text, NULL::text, NULL::text
FROM jobforge.jobs j
WHERE NOT EXISTS (SELECT 1 FROM jobforge.job_events c WHERE c.job_id = j.id AND c.kind = 'created')
UNION ALL
SELECT a.claim_event_id, a.job_id, a.tenant_id, a.project, 'claimed'::text, a.started_at,
       a.attempt, a.worker, NULL::jsonb, a.login, NULL::text, NULL::text
FROM jobforge.job_attempts a
WHERE a.claim_event_id IS NOT NULL
UNION ALL
SELECT a.finish_event_id, a.job_id, a.tenant_id, a.project,
       CASE a.outcome WHEN 'retry' THEN 'retry_scheduled' ELSE a.outcome END, a.finished_at,
       a.attempt, a.worker,
       coalesce(a.finish_data, CASE WHEN a.error IS NOT NULL THEN jsonb_build_object('error', a.error) END),
       a.login, NULL::text, NULL::text
FROM jobforge.job_attempts a
WHERE a.finish_event_id IS NOT NULL;
