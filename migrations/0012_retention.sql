-- Retention ([6/10]): finished jobs, with their events, attempts, results and run records, are
-- deleted once they are older than a retention period, in small batches that never touch a
-- queued or running job and never hold a lock for long.
--
-- What may go: jobs in a terminal state (succeeded, failed, dead, canceled; the states with a
-- finished_at, jobs_finished_iff_terminal) that finished before the cut-off. A job scheduled for
-- a retry is `queued` with no finished_at, so it is never a candidate; a terminal job that is
-- rescheduled while a prune looks at it is left alone (a batch locks its rows, and a row changed
-- since the batch's snapshot is checked again under the lock). Deleting a job deletes its
-- events, attempts, results and run records through the statement trigger jobs_delete_children
-- (0004, 0006), which now also counts what it deleted, so a prune reports exactly what went.
--
-- The cut-off: `now - older_than` when the caller gives one, else per job type from
-- jobforge.retention (a row for the type, else the default row '*'; a NULL keep is "keep
-- forever"). On a new database the default row starts at 30 days: the tables no longer grow
-- without bound unless an operator says so (`jobforge retention set --default forever`). A
-- database that already holds jobs when this migration runs starts at "forever" instead: an
-- upgrade never deletes history nobody chose to delete; the operator sets a retention to start.
--
-- Batches: a prune walks the finished jobs type by type, in (finished_at, id) order, through
-- jobs_finished. A batch locks up to `batch` candidates after the cursor the previous batch
-- returned, skipping rows another transaction holds (FOR UPDATE SKIP LOCKED: left for a later
-- pass, never waited for), deletes those that match (status, tenant; the types are walked), the
-- rows by ctid, commits, and returns the cursor where it stopped (NULL when nothing is left).
-- Each batch is its own short transaction: the claim and finish paths, which
-- lock queued and running rows, never wait for it; a crash loses only the batch under way; the
-- work of a whole prune is linear in what it walks, whatever filters it has (a batch never
-- walks again what an earlier one passed). A dry run walks the same way and counts instead.
--
-- Who prunes: an operator (a superuser or a member of jobforge_worker) through prune_v1, across
-- tenants or for one; workers through prune_pass_v1, one worker at a time (below). A tenant's
-- app login may neither prune nor read or change the retention settings: retention is the
-- operator's, and a tenant that could prune could erase another tenant's history.
--
-- Idempotency keys: a pruned job's key is free again (the unique index holds only rows that
-- exist), so enqueueing the same (tenant, type, key) after a prune creates a new job.

-- The terminal jobs of each type by finish time: what a prune walks. Partial, so queued and
-- running rows are not in it; every finish writes one more index entry.
CREATE INDEX jobs_finished ON jobforge.jobs (type, finished_at, id) WHERE finished_at IS NOT NULL;

-- Retention per job type; the row '*' is the default for every type without its own. A NULL
-- keep keeps the type's finished jobs forever.
CREATE TABLE jobforge.retention (
    type       text PRIMARY KEY CHECK (
        type = '*' OR (type ~ '^[a-z0-9._-]+$' AND length(type) <= 200)
    ),
    keep       interval CHECK (keep >= interval '0' AND keep <= interval '100 years'),
    updated_at timestamptz NOT NULL
);
INSERT INTO jobforge.retention (type, keep, updated_at)
VALUES ('*', CASE WHEN EXISTS (SELECT 1 FROM jobforge.jobs) THEN NULL ELSE interval '30 days' END,
        now());
REVOKE ALL ON jobforge.retention FROM PUBLIC;
GRANT SELECT ON jobforge.retention TO jobforge_worker;

-- The workers' periodic prune: one pass at a time across every worker, at most one pass started
-- per interval. The worker that holds the pass (holder, until held_until) runs its batches from
-- the cursor stored here; a pass whose worker died is taken over where it stopped once its hold
-- has lapsed. The totals of the pass under way (or of the last one) are kept for operators.
CREATE TABLE jobforge.prune_pass (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    holder      text,
    held_until  timestamptz,
    after_type  text,
    after_at    timestamptz,
    after_id    bigint,
    started_at  timestamptz,
    finished_at timestamptz,
    jobs        bigint NOT NULL DEFAULT 0,
    events      bigint NOT NULL DEFAULT 0,
    attempts    bigint NOT NULL DEFAULT 0,
    results     bigint NOT NULL DEFAULT 0,
    runs        bigint NOT NULL DEFAULT 0
);
INSERT INTO jobforge.prune_pass DEFAULT VALUES;
REVOKE ALL ON jobforge.prune_pass FROM PUBLIC;
GRANT SELECT ON jobforge.prune_pass TO jobforge_worker;

-- The cascade (0006), now counting what it deleted into the transaction's setting
-- jobforge.deleted_children ('events,attempts,results,runs'), which a prune reads back.
CREATE OR REPLACE FUNCTION jobforge.jobs_delete_children() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_events   bigint;
    v_attempts bigint;
    v_results  bigint;
    v_runs     bigint;
BEGIN
    DELETE FROM jobforge.job_events e USING gone WHERE e.job_id = gone.id;
    GET DIAGNOSTICS v_events = ROW_COUNT;
    DELETE FROM jobforge.job_attempts a USING gone WHERE a.job_id = gone.id;
    GET DIAGNOSTICS v_attempts = ROW_COUNT;
    DELETE FROM jobforge.job_results r USING gone WHERE r.job_id = gone.id;
    GET DIAGNOSTICS v_results = ROW_COUNT;
    DELETE FROM jobforge.job_runs r USING gone WHERE r.job_id = gone.id;
    GET DIAGNOSTICS v_runs = ROW_COUNT;
    PERFORM set_config('jobforge.deleted_children',
                       concat_ws(',', v_events, v_attempts, v_results, v_runs), true);
    RETURN NULL;
END $$;

-- One batch of a prune (see the top of this file). Not callable by anyone but its owner: the
-- SECURITY DEFINER functions below check the caller and the arguments first. The caller's
-- transaction must have the worker scope (row-level security is forced for the owner too).
CREATE FUNCTION jobforge.prune_batch(
    p_older_than interval,
    p_statuses   jobforge.job_status[],
    p_tenant     text,
    p_types      text[],
    p_runs_only  boolean,
    p_dry_run    boolean,
    p_batch      integer,
    p_after_type text,
    p_after_at   timestamptz,
    p_after_id   bigint,
    p_now        timestamptz
) RETURNS TABLE (jobs bigint, events bigint, attempts bigint, results bigint, runs bigint,
                 after_type text, after_at timestamptz, after_id bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
                           AND (p_tenant IS NULL OR w.tenant_id = p_tenant)), '{}')
                INTO v_ids, v_last_at, v_doomed
                FROM (
                    SELECT j.id, j.finished_at, j.status, j.tenant_id FROM jobforge.jobs j
                    WHERE j.type = v_type AND j.finished_at IS NOT NULL AND j.finished_at < v_cutoff
                      AND (j.finished_at, j.id) > (v_at, v_id)
                    ORDER BY j.finished_at, j.id
                    LIMIT v_left
                ) w;
            ELSE
                SELECT coalesce(array_agg(w.id ORDER BY w.finished_at, w.id), '{}'),
                       max(w.finished_at),
                       coalesce(array_agg(w.id) FILTER (WHERE w.status = ANY (p_statuses)
                           AND (p_tenant IS NULL OR w.tenant_id = p_tenant)), '{}'),
                       coalesce(array_agg(w.ctid) FILTER (WHERE w.status = ANY (p_statuses)
                           AND (p_tenant IS NULL OR w.tenant_id = p_tenant)), '{}')
                INTO v_ids, v_last_at, v_doomed, v_ctids
                FROM (
                    SELECT j.id, j.finished_at, j.status, j.tenant_id, j.ctid FROM jobforge.jobs j
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

-- Prune one batch, as an operator: jobs in `p_statuses` (default: every terminal state) of
-- `p_types` (default: all) and `p_tenant` (default: every tenant) that finished more than
-- `p_older_than` ago (default: each type's retention). With `p_runs_only` the jobs stay and only
-- their run records go; with `p_dry_run` nothing is deleted and the counts say what would be.
-- Call it again with the cursor it returned (after_type, after_at, after_id) until that is NULL.
CREATE FUNCTION jobforge.prune_v1(
    p_older_than interval DEFAULT NULL,
    p_statuses   text[] DEFAULT NULL,
    p_tenant     text DEFAULT NULL,
    p_types      text[] DEFAULT NULL,
    p_runs_only  boolean DEFAULT false,
    p_dry_run    boolean DEFAULT false,
    p_batch      integer DEFAULT 1000,
    p_after_type text DEFAULT NULL,
    p_after_at   timestamptz DEFAULT NULL,
    p_after_id   bigint DEFAULT NULL,
    p_now        timestamptz DEFAULT NULL
) RETURNS TABLE (jobs bigint, events bigint, attempts bigint, results bigint, runs bigint,
                 after_type text, after_at timestamptz, after_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := jobforge.clock(p_now);
    v_statuses jobforge.job_status[];
    v_bad      text;
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
        coalesce(p_dry_run, false), p_batch, p_after_type, p_after_at, p_after_id, v_now);
END $$;

-- One batch of the workers' periodic prune, under each type's retention. Nothing (zeros, more =
-- false) unless it is this worker's turn: no other worker holds the pass (or its hold lapsed), and
-- a pass is under way or the last one started at least p_every_s ago. A batch takes the pass's
-- row lock SKIP LOCKED, so workers never queue behind each other's batches; only an operator's
-- login can take that lock (an advisory lock key could be taken by any login, a tenant's too,
-- and held to stop every prune).
CREATE FUNCTION jobforge.prune_pass_v1(
    p_worker  text,
    p_every_s double precision,
    p_batch   integer DEFAULT 1000,
    p_hold_s  double precision DEFAULT 60,
    p_now     timestamptz DEFAULT NULL
) RETURNS TABLE (jobs bigint, events bigint, attempts bigint, results bigint, runs bigint,
                 more boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now  timestamptz := jobforge.clock(p_now);
    v_pass jobforge.prune_pass;
    v_done record;
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'prune: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_worker IS NULL OR length(p_worker) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'prune: the worker name must be 1-200 characters' USING ERRCODE = 'JF006';
    END IF;
    IF p_every_s IS NULL OR NOT (p_every_s > 0 AND p_every_s <= 31536000)
       OR p_hold_s IS NULL OR NOT (p_hold_s > 0 AND p_hold_s <= 86400) THEN
        RAISE EXCEPTION 'prune: every_s must be 0-31536000 s and hold_s 0-86400 s'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 50000 THEN
        RAISE EXCEPTION 'prune: batch % is out of range 1-50000', p_batch USING ERRCODE = 'JF006';
    END IF;

    SELECT * INTO v_pass FROM jobforge.prune_pass FOR UPDATE SKIP LOCKED;
    IF NOT FOUND  -- another worker's batch is running
       OR (v_pass.holder IS DISTINCT FROM p_worker AND v_pass.held_until > v_now)  -- its pass
       OR (v_pass.after_type IS NULL AND v_pass.holder IS NULL
           AND v_pass.started_at > v_now - make_interval(secs => p_every_s)) THEN  -- not due
        RETURN QUERY SELECT 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, false;
        RETURN;
    END IF;
    IF v_pass.holder IS NULL AND v_pass.after_type IS NULL THEN  -- a new pass
        v_pass.started_at := v_now;
        v_pass.jobs := 0; v_pass.events := 0; v_pass.attempts := 0; v_pass.results := 0;
        v_pass.runs := 0;
    END IF;

    SELECT * INTO v_done FROM jobforge.prune_batch(
        NULL, ARRAY['succeeded', 'failed', 'dead', 'canceled']::jobforge.job_status[], NULL, NULL,
        false, false, p_batch, v_pass.after_type, v_pass.after_at, v_pass.after_id, v_now);

    UPDATE jobforge.prune_pass p SET
        holder = CASE WHEN v_done.after_type IS NULL THEN NULL ELSE p_worker END,
        held_until = CASE WHEN v_done.after_type IS NULL THEN NULL
                          ELSE v_now + make_interval(secs => p_hold_s) END,
        after_type = v_done.after_type, after_at = v_done.after_at, after_id = v_done.after_id,
        started_at = v_pass.started_at,
        finished_at = CASE WHEN v_done.after_type IS NULL THEN v_now ELSE p.finished_at END,
        jobs = v_pass.jobs + v_done.jobs, events = v_pass.events + v_done.events,
        attempts = v_pass.attempts + v_done.attempts, results = v_pass.results + v_done.results,
        runs = v_pass.runs + v_done.runs;
    RETURN QUERY SELECT v_done.jobs, v_done.events, v_done.attempts, v_done.results, v_done.runs,
                        v_done.after_type IS NOT NULL;
END $$;

-- Set the retention of one job type, or of every type without its own ('*'); NULL keeps forever.
CREATE FUNCTION jobforge.set_retention_v1(
    p_type text, p_keep interval, p_now timestamptz DEFAULT NULL
) RETURNS SETOF jobforge.retention
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := jobforge.clock(p_now);
BEGIN
    PERFORM jobforge.require_worker();
    IF p_type IS NULL
       OR (p_type <> '*' AND (p_type !~ '^[a-z0-9._-]+$' OR length(p_type) > 200)) THEN
        RAISE EXCEPTION 'retention: % is not a valid job type',
            coalesce(quote_literal(left(p_type, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_keep IS NOT NULL AND NOT (p_keep >= interval '0' AND p_keep <= interval '100 years') THEN
        RAISE EXCEPTION 'retention: keep % is out of range 0-100 years', p_keep
            USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    INSERT INTO jobforge.retention AS r (type, keep, updated_at) VALUES (p_type, p_keep, v_now)
    ON CONFLICT (type) DO UPDATE SET keep = EXCLUDED.keep, updated_at = EXCLUDED.updated_at
    RETURNING r.*;
END $$;

-- Remove a type's own retention (it follows the default again); true when it had one. The
-- default stays: set it to NULL (forever) to prune nothing by default.
CREATE FUNCTION jobforge.clear_retention_v1(p_type text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM jobforge.require_worker();
    IF p_type = '*' THEN
        RAISE EXCEPTION 'retention: the default cannot be cleared; set it to forever instead'
            USING ERRCODE = 'JF006';
    END IF;
    DELETE FROM jobforge.retention r WHERE r.type = p_type;
    RETURN FOUND;
END $$;

REVOKE ALL ON FUNCTION
    jobforge.prune_batch(interval, jobforge.job_status[], text, text[], boolean, boolean, integer,
                         text, timestamptz, bigint, timestamptz),
    jobforge.prune_v1(interval, text[], text, text[], boolean, boolean, integer, text, timestamptz,
                      bigint, timestamptz),
    jobforge.prune_pass_v1(text, double precision, integer, double precision, timestamptz),
    jobforge.set_retention_v1(text, interval, timestamptz),
    jobforge.clear_retention_v1(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    jobforge.prune_v1(interval, text[], text, text[], boolean, boolean, integer, text, timestamptz,
                      bigint, timestamptz),
    jobforge.prune_pass_v1(text, double precision, integer, double precision, timestamptz),
    jobforge.set_retention_v1(text, interval, timestamptz),
    jobforge.clear_retention_v1(text) TO jobforge_worker;
