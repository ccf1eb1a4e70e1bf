-- Feature flags and schedules ([7/10]).
--
-- Feature flags. Features that change what a tenant's data does on its own (schedules now;
-- events and triggers later) are off until an operator turns them on, for the whole deployment
-- (the row of tenant '*') or for one tenant (its own row, which wins over the deployment's). No
-- row at all is off. Only an operator (a superuser or a member of jobforge_worker, as for
-- retention and queue limits) writes the flags: a tenant's app login has no grant on the table
-- and cannot call the functions that change it, so a tenant never turns on what the operator
-- left off. `jobforge.require_feature` is what every function of a flagged feature calls first:
-- it refuses in one line naming the flag and the command that turns it on.
--
-- Schedules. A tenant's schedule is a cron expression read in a time zone, and the job it
-- enqueues at each slot (type, input, priority, max attempts). Workers fire them: every worker
-- runs a short pass every second or so (`jobforge worker --no-schedules` opts out). A pass takes
-- the due schedules FOR UPDATE SKIP LOCKED (schedules_due_v1) and, in the same transaction,
-- enqueues each slot's job with the idempotency key `schedule:<name>:<slot, ISO UTC>` and moves
-- next_slot past now (schedule_fire_v1). Two workers never take the same row at once, and a
-- worker killed midway rolls back both the jobs and the move: the slot stays due and the next
-- pass fires it. The key is a second wall: a slot whose job exists already is logged as
-- `existing`, never enqueued twice.
--
-- The worker computes the slots (croniter, in the schedule's time zone; jobforge/cron.py) from
-- the database's clock, which schedules_due_v1 returns with the rows: the database stores UTC
-- instants only. `anchor` is the instant slots are counted after (the schedule's creation, its
-- resume); next_slot NULL means no worker has computed it yet. Slots that are more than `grace`
-- late when a worker gets to them (the workers were down, the feature was off) follow the
-- schedule's missed-slot policy: `latest` fires the most recent once and skips the rest,
-- `all` fires up to `catch_up` of the most recent and skips older ones, `skip` fires none. Each
-- skipped slot is logged (beyond 100 at once, in one summary row). A paused schedule fires
-- nothing, and its resume counts slots from the moment of the resume: what fell due while it was
-- paused is neither fired nor logged. A schedule a worker cannot compute (a cron expression or
-- time zone its croniter or tz database refuses) is paused with the reason in `broken`, and
-- the failure logged.
--
-- The firing log (schedule_firings) keeps the last 1,000 entries of each schedule and goes with
-- it. A dry-run schedule logs the job it would have enqueued (`dry_run`, the job in `job`) and
-- enqueues nothing. Both tables are walled per tenant like the jobs (row-level security, forced).

-- The features a flag exists for; the table's CHECK and every message read this list.
CREATE FUNCTION jobforge.known_features() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY['events', 'schedules', 'triggers']
$$;

CREATE TABLE jobforge.features (
    feature    text NOT NULL CHECK (feature = ANY (jobforge.known_features())),
    tenant     text NOT NULL CHECK (
        tenant = '*' OR (tenant ~ '^[A-Za-z0-9._:-]+$' AND length(tenant) <= 128)
    ),
    enabled    boolean NOT NULL,
    updated_at timestamptz NOT NULL,
    login      text NOT NULL DEFAULT session_user,
    actor      text DEFAULT nullif(pg_catalog.current_setting('jobforge.actor', true), '')
        CHECK (actor IS NULL OR (length(actor) BETWEEN 1 AND 200
            AND actor !~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]')),
    PRIMARY KEY (feature, tenant)
);
-- Forced like the tenant tables: the owner's functions acting for a tenant see that tenant's
-- row and the deployment's only; writing takes the worker scope (an operator's login).
ALTER TABLE jobforge.features ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobforge.features FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON jobforge.features
    USING (tenant = '*' OR tenant = (SELECT jobforge.current_tenant())
           OR (SELECT jobforge.worker_scope()))
    WITH CHECK ((SELECT jobforge.worker_scope()));
REVOKE ALL ON jobforge.features FROM PUBLIC;
GRANT SELECT ON jobforge.features TO jobforge_worker;

-- Whether `p_feature` is on for `p_tenant`: the tenant's own row, else the deployment's, else off.
CREATE FUNCTION jobforge.feature_enabled(p_feature text, p_tenant text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(
        (SELECT f.enabled FROM jobforge.features f
         WHERE f.feature OPERATOR(pg_catalog.=) p_feature AND f.tenant OPERATOR(pg_catalog.=) p_tenant),
        (SELECT f.enabled FROM jobforge.features f
         WHERE f.feature OPERATOR(pg_catalog.=) p_feature AND f.tenant OPERATOR(pg_catalog.=) '*'),
        false)
$$;

-- Refuse, in one line naming the flag and how to turn it on, unless the feature is on.
CREATE FUNCTION jobforge.require_feature(p_feature text, p_tenant text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT p_feature = ANY (jobforge.known_features()) THEN
        RAISE EXCEPTION 'unknown feature %: known features are %', quote_literal(left(p_feature, 60)),
            array_to_string(jobforge.known_features(), ', ') USING ERRCODE = 'JF006';
    END IF;
    IF NOT jobforge.feature_enabled(p_feature, p_tenant) THEN
        RAISE EXCEPTION 'feature ''%'' is disabled for tenant % (jobforge features enable % --tenant %)',
            p_feature, p_tenant, p_feature, p_tenant USING ERRCODE = 'JF007';
    END IF;
END $$;

-- Turn a feature on or off for one tenant, or for the deployment (p_tenant '*'). Operators only.
CREATE FUNCTION jobforge.set_feature_v1(
    p_feature text, p_tenant text, p_enabled boolean, p_now timestamptz DEFAULT NULL
) RETURNS SETOF jobforge.features
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := jobforge.clock(p_now);
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'features: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_feature IS NULL OR NOT p_feature = ANY (jobforge.known_features()) THEN
        RAISE EXCEPTION 'unknown feature %: known features are %',
            coalesce(quote_literal(left(p_feature, 60)), 'null'),
            array_to_string(jobforge.known_features(), ', ') USING ERRCODE = 'JF006';
    END IF;
    IF p_tenant IS NULL
       OR (p_tenant <> '*' AND (p_tenant !~ '^[A-Za-z0-9._:-]+$' OR length(p_tenant) > 128)) THEN
        RAISE EXCEPTION 'features: tenant % is not a valid tenant id',
            coalesce(quote_literal(left(p_tenant, 130)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_enabled IS NULL THEN
        RAISE EXCEPTION 'features: enabled must be true or false' USING ERRCODE = 'JF006';
    END IF;
    INSERT INTO jobforge.features AS f (feature, tenant, enabled, updated_at)
    VALUES (p_feature, p_tenant, p_enabled, v_now)
    ON CONFLICT (feature, tenant) DO UPDATE
        SET enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at,
            login = EXCLUDED.login, actor = EXCLUDED.actor;
    PERFORM jobforge.hold_for_feature(p_feature, p_tenant);
    RETURN QUERY SELECT * FROM jobforge.features f
                 WHERE f.feature = p_feature AND f.tenant = p_tenant;
END $$;

-- Remove a tenant's own setting (it follows the deployment's again); true when it had one.
CREATE FUNCTION jobforge.clear_feature_v1(p_feature text, p_tenant text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'features: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_feature IS NULL OR NOT p_feature = ANY (jobforge.known_features()) THEN
        RAISE EXCEPTION 'unknown feature %: known features are %',
            coalesce(quote_literal(left(p_feature, 60)), 'null'),
            array_to_string(jobforge.known_features(), ', ') USING ERRCODE = 'JF006';
    END IF;
    DELETE FROM jobforge.features f WHERE f.feature = p_feature AND f.tenant = p_tenant;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM jobforge.hold_for_feature(p_feature, p_tenant);
    RETURN true;
END $$;

CREATE TABLE jobforge.schedules (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     text NOT NULL,
    -- no ':' in a name, so the idempotency key schedule:<name>:<slot> reads one way only
    name          text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,99}$'),
    cron          text NOT NULL CHECK (length(cron) BETWEEN 1 AND 200 AND cron !~ '[[:cntrl:]]'),
    timezone      text NOT NULL CHECK (length(timezone) BETWEEN 1 AND 64),
    type          text NOT NULL CHECK (type ~ '^[a-z0-9._-]+$' AND length(type) <= 200),
    input         jsonb NOT NULL CHECK (jsonb_typeof(input) = 'object'),
    priority      integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 32767),
    max_attempts  integer CHECK (max_attempts BETWEEN 1 AND 1000),  -- NULL: enqueue's default
    missed        text NOT NULL DEFAULT 'latest' CHECK (missed IN ('latest', 'all', 'skip')),
    catch_up      integer NOT NULL DEFAULT 10 CHECK (catch_up BETWEEN 1 AND 1000),
    grace         interval NOT NULL DEFAULT interval '60 seconds'
        CHECK (grace >= interval '0' AND grace <= interval '1 day'),
    dry_run       boolean NOT NULL DEFAULT false,
    paused        boolean NOT NULL DEFAULT false,
    -- the tenant's `schedules` feature is off (kept by set_feature_v1 and clear_feature_v1), so
    -- the due index leaves it out: a pass never walks a disabled tenant's due schedules
    held          boolean NOT NULL DEFAULT false,
    broken        text CHECK (length(broken) <= 500),
    anchor        timestamptz NOT NULL,
    next_slot     timestamptz,
    last_slot     timestamptz,
    last_fired_at timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    login         text NOT NULL DEFAULT session_user,
    actor         text DEFAULT nullif(pg_catalog.current_setting('jobforge.actor', true), '')
        CHECK (actor IS NULL OR (length(actor) BETWEEN 1 AND 200
            AND actor !~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]')),
    UNIQUE (tenant_id, name),
    CHECK (octet_length(input::text) <= 1048576)
);
-- What a pass probes: the active schedules by next slot (NULL first: not computed yet). Without
-- `held` in it, 10,000 due schedules of a tenant whose feature is off cost every pass of every
-- worker 83 ms, each row checked and passed over again.
CREATE INDEX schedules_due ON jobforge.schedules (next_slot NULLS FIRST)
    WHERE NOT paused AND NOT held;

-- After a change of the `schedules` flag of p_tenant ('*': every tenant): which schedules are
-- held (the tenant's feature off). Other features have nothing to hold yet.
CREATE FUNCTION jobforge.hold_for_feature(p_feature text, p_tenant text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE jobforge.schedules s
    SET held = NOT jobforge.feature_enabled('schedules', s.tenant_id)
    WHERE p_feature OPERATOR(pg_catalog.=) 'schedules'
      AND (p_tenant OPERATOR(pg_catalog.=) '*' OR s.tenant_id OPERATOR(pg_catalog.=) p_tenant)
      AND s.held IS DISTINCT FROM NOT jobforge.feature_enabled('schedules', s.tenant_id)
$$;

CREATE TABLE jobforge.schedule_firings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text NOT NULL,
    schedule_id bigint NOT NULL REFERENCES jobforge.schedules (id) ON DELETE CASCADE,
    slot        timestamptz,
    fired_at    timestamptz NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('enqueued', 'existing', 'dry_run', 'skipped',
                                                 'failed')),
    job_id      bigint,  -- enqueued, existing: the job (no reference: a pruned job's entry stays)
    job         jsonb,   -- dry_run: the job it would have enqueued
    detail      text CHECK (length(detail) <= 1000),  -- skipped: why; failed: the error
    worker      text CHECK (length(worker) <= 200)
);
CREATE INDEX schedule_firings_by_schedule ON jobforge.schedule_firings (schedule_id, id);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['schedules', 'schedule_firings'] LOOP
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
REVOKE ALL ON jobforge.schedules, jobforge.schedule_firings FROM PUBLIC;
GRANT SELECT ON jobforge.schedules, jobforge.schedule_firings TO jobforge_app, jobforge_worker;

-- A tenant's schedule by name, locked; JF004 naming it when there is none.
CREATE FUNCTION jobforge.schedule_locked(p_tenant text, p_name text) RETURNS jobforge.schedules
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row jobforge.schedules;
BEGIN
    SELECT * INTO v_row FROM jobforge.schedules s
    WHERE s.tenant_id = p_tenant AND s.name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schedule % not found for tenant %',
            coalesce(quote_literal(left(p_name, 120)), 'null'), p_tenant USING ERRCODE = 'JF004';
    END IF;
    RETURN v_row;
END $$;

-- Add a schedule for the transaction's tenant. The cron expression and the time zone are
-- checked again by the worker that computes the slots (the database knows no cron): one it
-- cannot read pauses the schedule with the reason (`broken`).
CREATE FUNCTION jobforge.schedule_add_v1(
    p_name         text,
    p_cron         text,
    p_timezone     text,
    p_type         text,
    p_input        jsonb,
    p_priority     integer DEFAULT 0,
    p_max_attempts integer DEFAULT NULL,
    p_missed       text DEFAULT 'latest',
    p_catch_up     integer DEFAULT 10,
    p_grace        interval DEFAULT interval '60 seconds',
    p_dry_run      boolean DEFAULT false,
    p_paused       boolean DEFAULT false,
    p_now          timestamptz DEFAULT NULL
) RETURNS SETOF jobforge.schedules
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_now     timestamptz := jobforge.clock(p_now);
    v_limit   integer;
    v_problem text;
BEGIN
    PERFORM jobforge.require_feature('schedules', v_tenant);
    IF p_name IS NULL OR p_name !~ '^[a-z0-9][a-z0-9._-]{0,99}$' THEN
        RAISE EXCEPTION 'schedule name % is invalid: use 1-100 of [a-z0-9._-], starting with a letter or digit',
            coalesce(quote_literal(left(p_name, 120)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_cron IS NULL OR length(p_cron) NOT BETWEEN 1 AND 200 OR p_cron ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'schedule %: the cron expression must be 1-200 printable characters',
            p_name USING ERRCODE = 'JF006';
    END IF;
    IF p_timezone IS NULL OR length(p_timezone) NOT BETWEEN 1 AND 64
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = p_timezone) THEN
        RAISE EXCEPTION 'schedule %: unknown time zone % (an IANA name such as Europe/Paris or UTC)',
            p_name, coalesce(quote_literal(left(p_timezone, 70)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_type IS NULL OR p_type !~ '^[a-z0-9._-]+$' OR length(p_type) > 200 THEN
        RAISE EXCEPTION 'schedule %: job type % is invalid: use 1-200 of [a-z0-9._-]', p_name,
            coalesce(quote_literal(left(p_type, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_input IS NULL OR jsonb_typeof(p_input) <> 'object' THEN
        RAISE EXCEPTION 'schedule %: the input must be a JSON object, not %', p_name,
            coalesce(jsonb_typeof(p_input), 'null') USING ERRCODE = 'JF006';
    END IF;
    SELECT s.max_payload_bytes INTO v_limit FROM jobforge.settings s;
    IF octet_length(p_input::text) > v_limit THEN
        RAISE EXCEPTION 'schedule %: the input is % bytes, over the limit of %', p_name,
            octet_length(p_input::text), v_limit USING ERRCODE = 'JF005';
    END IF;
    v_problem := jobforge.json_problem(p_input);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'schedule %: the input cannot be stored: %', p_name, v_problem
            USING ERRCODE = 'JF006';
    END IF;
    IF p_priority IS NULL OR p_priority NOT BETWEEN 0 AND 32767 THEN
        RAISE EXCEPTION 'schedule %: priority % is out of range 0-32767', p_name,
            coalesce(p_priority::text, 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'schedule %: max_attempts % is out of range 1-1000', p_name, p_max_attempts
            USING ERRCODE = 'JF006';
    END IF;
    IF p_missed IS NULL OR p_missed NOT IN ('latest', 'all', 'skip') THEN
        RAISE EXCEPTION 'schedule %: missed-slot policy % is unknown: use latest, all or skip',
            p_name, coalesce(quote_literal(left(p_missed, 40)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_catch_up IS NULL OR p_catch_up NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'schedule %: catch_up % is out of range 1-1000', p_name,
            coalesce(p_catch_up::text, 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_grace IS NULL OR NOT (p_grace >= interval '0' AND p_grace <= interval '1 day') THEN
        RAISE EXCEPTION 'schedule %: grace % is out of range 0 s to 1 day', p_name,
            coalesce(p_grace::text, 'null') USING ERRCODE = 'JF006';
    END IF;
    -- a bound on what one tenant makes every worker do (each schedule may fire every minute)
    IF (SELECT count(*) FROM jobforge.schedules s WHERE s.tenant_id = v_tenant) >= 1000 THEN
        RAISE EXCEPTION 'schedule %: tenant % has 1000 schedules already, the most it may have',
            p_name, v_tenant USING ERRCODE = 'JF006';
    END IF;
    IF EXISTS (SELECT 1 FROM jobforge.schedules s WHERE s.tenant_id = v_tenant AND s.name = p_name) THEN
        RAISE EXCEPTION 'schedule % already exists for tenant % (remove it first: jobforge schedules rm %)',
            quote_literal(p_name), v_tenant, p_name USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    INSERT INTO jobforge.schedules AS s (tenant_id, name, cron, timezone, type, input, priority,
                                         max_attempts, missed, catch_up, grace, dry_run, paused,
                                         anchor, created_at, updated_at)
    VALUES (v_tenant, p_name, p_cron, p_timezone, p_type, p_input, p_priority, p_max_attempts,
            p_missed, p_catch_up, p_grace, coalesce(p_dry_run, false), coalesce(p_paused, false),
            v_now, v_now, v_now)
    RETURNING s.*;
EXCEPTION WHEN unique_violation THEN  -- a concurrent add of the same name won
    RAISE EXCEPTION 'schedule % already exists for tenant % (remove it first: jobforge schedules rm %)',
        quote_literal(p_name), v_tenant, p_name USING ERRCODE = 'JF006';
END $$;

-- Pause (p_paused) or resume a schedule of the transaction's tenant. A resume counts slots from
-- now: those that fell due while it was paused are neither fired nor logged. Resuming needs the
-- feature; pausing does not (a tenant can always stop what it started). The schedule's login and
-- actor become those of this change (who added it, or last paused or resumed it).
CREATE FUNCTION jobforge.schedule_pause_v1(
    p_name text, p_paused boolean, p_now timestamptz DEFAULT NULL
) RETURNS SETOF jobforge.schedules
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_now    timestamptz := jobforge.clock(p_now);
    v_row    jobforge.schedules;
BEGIN
    IF p_paused IS NULL THEN
        RAISE EXCEPTION 'schedules: paused must be true or false' USING ERRCODE = 'JF006';
    END IF;
    IF NOT p_paused THEN
        PERFORM jobforge.require_feature('schedules', v_tenant);
    END IF;
    v_row := jobforge.schedule_locked(v_tenant, p_name);
    IF p_paused THEN
        RETURN QUERY UPDATE jobforge.schedules s
                     SET paused = true, updated_at = v_now, login = DEFAULT, actor = DEFAULT
                     WHERE s.id = v_row.id RETURNING s.*;
    ELSIF v_row.paused THEN
        RETURN QUERY UPDATE jobforge.schedules s
                     SET paused = false, held = false, broken = NULL, anchor = v_now,
                         next_slot = NULL, updated_at = v_now, login = DEFAULT, actor = DEFAULT
                     WHERE s.id = v_row.id RETURNING s.*;
    ELSE  -- running already: nothing changes (its slots are not reset)
        RETURN QUERY SELECT v_row.*;
    END IF;
END $$;

-- Remove a schedule of the transaction's tenant, with its firing log; its jobs stay.
CREATE FUNCTION jobforge.schedule_remove_v1(p_name text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_row    jobforge.schedules;
BEGIN
    v_row := jobforge.schedule_locked(v_tenant, p_name);
    DELETE FROM jobforge.schedules s WHERE s.id = v_row.id;
    RETURN v_row.id;
END $$;

-- The due schedules of every tenant with the feature on, locked for this transaction (SKIP
-- LOCKED: a row another worker's pass holds is its to fire), with the database's clock for the
-- worker to compute the slots from. Call schedule_fire_v1 in the same transaction.
CREATE FUNCTION jobforge.schedules_due_v1(p_limit integer DEFAULT 100, p_now timestamptz DEFAULT NULL)
RETURNS TABLE (id bigint, tenant_id text, name text, cron text, timezone text, missed text,
               catch_up integer, grace interval, anchor timestamptz, next_slot timestamptz,
               last_slot timestamptz, now timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := jobforge.clock(p_now);
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'schedules: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'schedules: limit % is out of range 1-10000', p_limit USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    SELECT s.id, s.tenant_id, s.name, s.cron, s.timezone, s.missed, s.catch_up, s.grace, s.anchor,
           s.next_slot, s.last_slot, v_now
    FROM jobforge.schedules s
    WHERE NOT s.paused AND NOT s.held AND (s.next_slot IS NULL OR s.next_slot <= v_now)
      AND jobforge.feature_enabled('schedules', s.tenant_id)  -- a row added as it was turned off
    ORDER BY s.next_slot NULLS FIRST
    LIMIT p_limit
    FOR UPDATE OF s SKIP LOCKED;
END $$;

-- Fire what the worker planned for the schedules it took with schedules_due_v1, in the same
-- transaction. p_plans: a JSON array of {"id", "expected" (the next_slot it planned from),
-- "fire": [slots], "skips": [{"slot", "detail"}], "next": the next slot (after now), "error":
-- why it could not plan (the schedule is paused)}. A plan for a row that changed or that this
-- transaction does not hold is left out. Each slot's job is enqueued as the schedule's tenant,
-- with the actor `schedule:<name>`; a slot whose enqueue fails (its key taken by a job with
-- another payload, an input over a lowered limit) is logged `failed` and the schedule moves on.
CREATE FUNCTION jobforge.schedule_fire_v1(
    p_plans jsonb, p_worker text, p_now timestamptz DEFAULT NULL
) RETURNS TABLE (schedule_id bigint, tenant_id text, name text, slot timestamptz, outcome text,
                 job_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := jobforge.clock(p_now);
    v_plan     jsonb;
    v_row      jobforge.schedules;
    v_slots    timestamptz[];
    v_slot     timestamptz;
    v_next     timestamptz;
    v_key      text;
    v_job      record;
    v_tenant   text := current_setting('jobforge.tenant', true);
    v_actor    text := current_setting('jobforge.actor', true);
    v_skip     jsonb;
    v_cut      bigint;
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'schedules: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_plans IS NULL OR jsonb_typeof(p_plans) <> 'array' OR jsonb_array_length(p_plans) > 10000 THEN
        RAISE EXCEPTION 'schedules: the plans must be a JSON array of at most 10000'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_worker IS NULL OR length(p_worker) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'schedules: the worker name must be 1-200 characters' USING ERRCODE = 'JF006';
    END IF;
    FOR v_plan IN SELECT e FROM jsonb_array_elements(p_plans) AS e LOOP
        -- the row, if this transaction holds it (or can take it at once) and it is as planned
        SELECT * INTO v_row FROM jobforge.schedules s
        WHERE s.id = (v_plan->>'id')::bigint FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND OR v_row.paused
            OR v_row.next_slot IS DISTINCT FROM (v_plan->>'expected')::timestamptz;

        IF v_plan->>'error' IS NOT NULL THEN
            INSERT INTO jobforge.schedule_firings AS f
                (tenant_id, schedule_id, slot, fired_at, outcome, detail, worker)
            VALUES (v_row.tenant_id, v_row.id, NULL, v_now, 'failed',
                    left('paused: ' || (v_plan->>'error'), 1000), p_worker);
            UPDATE jobforge.schedules s
            SET paused = true, broken = left(v_plan->>'error', 500), next_slot = NULL,
                updated_at = v_now
            WHERE s.id = v_row.id;
            RETURN QUERY SELECT v_row.id, v_row.tenant_id, v_row.name, NULL::timestamptz,
                                'failed'::text, NULL::bigint;
            CONTINUE;
        END IF;

        SELECT coalesce(array_agg(x::timestamptz ORDER BY x::timestamptz), '{}')
        INTO v_slots FROM jsonb_array_elements_text(coalesce(v_plan->'fire', '[]')) AS x;
        v_next := (v_plan->>'next')::timestamptz;
        IF v_next IS NULL OR v_next <= v_now OR NOT isfinite(v_next)
           OR v_next > v_now + interval '100 years' OR cardinality(v_slots) > 2500
           OR v_slots[cardinality(v_slots)] > v_now OR v_slots[1] <= v_row.anchor
           OR v_slots[1] <= v_row.last_slot
           OR jsonb_array_length(coalesce(v_plan->'skips', '[]')) > 101 THEN
            -- a worker's plan this schedule cannot take: paused, with why, and the pass goes
            -- on with the others (raising would stall every schedule of the pass, each pass)
            INSERT INTO jobforge.schedule_firings AS f
                (tenant_id, schedule_id, slot, fired_at, outcome, detail, worker)
            VALUES (v_row.tenant_id, v_row.id, NULL, v_now, 'failed',
                    left(format('paused: the worker''s plan is out of bounds (%s slots from %s '
                                'to %s, next %s)', cardinality(v_slots), v_slots[1],
                                v_slots[cardinality(v_slots)], v_next), 1000), p_worker);
            UPDATE jobforge.schedules s
            SET paused = true, broken = 'the worker''s plan was out of bounds (jobforge '
                                        'schedules firings)', next_slot = NULL, updated_at = v_now
            WHERE s.id = v_row.id;
            RETURN QUERY SELECT v_row.id, v_row.tenant_id, v_row.name, NULL::timestamptz,
                                'failed'::text, NULL::bigint;
            CONTINUE;
        END IF;

        FOR v_skip IN SELECT e FROM jsonb_array_elements(coalesce(v_plan->'skips', '[]')) AS e LOOP
            INSERT INTO jobforge.schedule_firings AS f
                (tenant_id, schedule_id, slot, fired_at, outcome, detail, worker)
            VALUES (v_row.tenant_id, v_row.id, (v_skip->>'slot')::timestamptz, v_now, 'skipped',
                    left(v_skip->>'detail', 1000), p_worker);
        END LOOP;

        FOREACH v_slot IN ARRAY v_slots LOOP
            v_key := 'schedule:' || v_row.name || ':'
                     || to_char(v_slot AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
            IF v_row.dry_run THEN
                INSERT INTO jobforge.schedule_firings AS f
                    (tenant_id, schedule_id, slot, fired_at, outcome, job, worker)
                VALUES (v_row.tenant_id, v_row.id, v_slot, v_now, 'dry_run',
                        jsonb_build_object('type', v_row.type, 'payload', v_row.input,
                                           'priority', v_row.priority,
                                           'max_attempts', coalesce(v_row.max_attempts, 3),
                                           'run_at', v_slot, 'idempotency_key', v_key),
                        p_worker);
                RETURN QUERY SELECT v_row.id, v_row.tenant_id, v_row.name, v_slot,
                                    'dry_run'::text, NULL::bigint;
                CONTINUE;
            END IF;
            BEGIN
                PERFORM set_config('jobforge.tenant', v_row.tenant_id, true);
                PERFORM set_config('jobforge.actor', 'schedule:' || v_row.name, true);
                SELECT e.job_id, e.created INTO v_job
                FROM jobforge.enqueue_v1(
                    ARRAY[v_row.type], ARRAY[v_row.input], ARRAY[v_key], ARRAY[v_row.priority],
                    ARRAY[v_slot],
                    CASE WHEN v_row.max_attempts IS NULL THEN NULL ELSE ARRAY[v_row.max_attempts] END,
                    NULL, p_now, NULL) e;
                PERFORM set_config('jobforge.tenant', coalesce(v_tenant, ''), true);
                PERFORM set_config('jobforge.actor', coalesce(v_actor, ''), true);
                INSERT INTO jobforge.schedule_firings AS f
                    (tenant_id, schedule_id, slot, fired_at, outcome, job_id, worker)
                VALUES (v_row.tenant_id, v_row.id, v_slot, v_now,
                        CASE WHEN v_job.created THEN 'enqueued' ELSE 'existing' END, v_job.job_id,
                        p_worker);
                RETURN QUERY SELECT v_row.id, v_row.tenant_id, v_row.name, v_slot,
                                    CASE WHEN v_job.created THEN 'enqueued' ELSE 'existing' END,
                                    v_job.job_id;
            EXCEPTION WHEN OTHERS THEN  -- the settings go back with the subtransaction
                INSERT INTO jobforge.schedule_firings AS f
                    (tenant_id, schedule_id, slot, fired_at, outcome, detail, worker)
                VALUES (v_row.tenant_id, v_row.id, v_slot, v_now, 'failed', left(SQLERRM, 1000),
                        p_worker);
                RETURN QUERY SELECT v_row.id, v_row.tenant_id, v_row.name, v_slot,
                                    'failed'::text, NULL::bigint;
            END;
        END LOOP;

        UPDATE jobforge.schedules s
        SET next_slot = v_next,
            last_slot = coalesce(v_slots[cardinality(v_slots)], s.last_slot),
            last_fired_at = CASE WHEN cardinality(v_slots) > 0 THEN v_now ELSE s.last_fired_at END
        WHERE s.id = v_row.id;

        -- the log keeps the schedule's last 1,000 entries
        SELECT f.id INTO v_cut FROM jobforge.schedule_firings f
        WHERE f.schedule_id = v_row.id ORDER BY f.id DESC OFFSET 1000 LIMIT 1;
        IF FOUND THEN
            DELETE FROM jobforge.schedule_firings f
            WHERE f.schedule_id = v_row.id AND f.id <= v_cut;
        END IF;
    END LOOP;
END $$;

REVOKE ALL ON FUNCTION
    jobforge.known_features(),
    jobforge.feature_enabled(text, text),
    jobforge.require_feature(text, text),
    jobforge.hold_for_feature(text, text),
    jobforge.set_feature_v1(text, text, boolean, timestamptz),
    jobforge.clear_feature_v1(text, text),
    jobforge.schedule_locked(text, text),
    jobforge.schedule_add_v1(text, text, text, text, jsonb, integer, integer, text, integer,
                             interval, boolean, boolean, timestamptz),
    jobforge.schedule_pause_v1(text, boolean, timestamptz),
    jobforge.schedule_remove_v1(text),
    jobforge.schedules_due_v1(integer, timestamptz),
    jobforge.schedule_fire_v1(jsonb, text, timestamptz) FROM PUBLIC;
-- known_features and the other helpers are called by the owner's functions only (the features
-- table's CHECK too: only those functions write it).
GRANT EXECUTE ON FUNCTION
    jobforge.schedule_add_v1(text, text, text, text, jsonb, integer, integer, text, integer,
                             interval, boolean, boolean, timestamptz),
    jobforge.schedule_pause_v1(text, boolean, timestamptz),
    jobforge.schedule_remove_v1(text) TO jobforge_app, jobforge_worker;
GRANT EXECUTE ON FUNCTION
    jobforge.set_feature_v1(text, text, boolean, timestamptz),
    jobforge.clear_feature_v1(text, text),
    jobforge.schedules_due_v1(integer, timestamptz),
    jobforge.schedule_fire_v1(jsonb, text, timestamptz) TO jobforge_worker;
