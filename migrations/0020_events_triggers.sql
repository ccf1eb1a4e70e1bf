-- Events and triggers ([7/10]), behind the `events` and `triggers` feature flags of 0018.
--
-- Events. A tenant submits events: a CloudEvents-like envelope (type, source, subject, data, the
-- instant it occurred) with an optional dedupe key, unique per tenant. A resubmit under a key
-- already used returns the first event and evaluates nothing again, as an idempotent enqueue
-- does; the same key with another type, source, subject or data is refused (JF001) in one line.
-- Submitting needs the `events` feature on for the tenant.
--
-- Triggers. A tenant's trigger matches events of one type whose data passes its predicates (a
-- list of {path, op, value}: a dotted path into the data, ops eq, ne, in, exists, gt, ge, lt,
-- le), maps the event onto a job's input (a JSON template whose strings "$.data.x", "$.subject",
-- "$.id", ... are replaced by the event's values) and enqueues a job of its type, at most once
-- per cooldown and `max_per_hour` in any 60 minutes, under the idempotency key
-- `trigger:<name>:<event id>` (or `trigger:<name>:<the mapped dedupe value>`).
--
-- Evaluation happens in event_submit_v1, in the transaction that stores the event: the event and
-- the jobs it fires commit together or not at all, so no event is stored without its triggers
-- evaluated and none is evaluated twice. Each matching trigger's row is locked while it is
-- evaluated, so concurrent submits take its cooldown and hourly cap in turn. Every evaluation
-- of a trigger whose type matched is logged in trigger_evaluations: fired (the job), dry_run
-- (the job it would have enqueued, checked by enqueue_v1 in a subtransaction rolled back) or
-- skipped with the reason (predicate, cooldown, hourly_cap, dedupe, paused, mapping, enqueue,
-- feature_off). With the `triggers` feature off the event is stored (if `events` is on) and
-- each matching trigger logs `feature_off`. The predicates and the mapping are computed here,
-- in one place, by the IMMUTABLE functions trigger_match and trigger_render, which
-- `jobforge triggers test` calls too.
--
-- The three tables are walled per tenant like the jobs (row-level security, forced).

CREATE TABLE jobforge.events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    text NOT NULL,
    type         text NOT NULL CHECK (type ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$'),
    source       text NOT NULL CHECK (length(source) BETWEEN 1 AND 500 AND source !~ '[[:cntrl:]]'),
    subject      text CHECK (length(subject) BETWEEN 1 AND 500 AND subject !~ '[[:cntrl:]]'),
    data         jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    dedupe_key   text CHECK (length(dedupe_key) BETWEEN 1 AND 200 AND dedupe_key !~ '[[:cntrl:]]'),
    occurred_at  timestamptz NOT NULL,
    submitted_at timestamptz NOT NULL,
    login        text NOT NULL DEFAULT session_user,
    actor        text DEFAULT nullif(pg_catalog.current_setting('jobforge.actor', true), '')
        CHECK (actor IS NULL OR (length(actor) BETWEEN 1 AND 200
            AND actor !~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]')),
    CHECK (octet_length(data::text) <= 1048576)
);
CREATE UNIQUE INDEX events_dedupe ON jobforge.events (tenant_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL;
CREATE INDEX events_by_tenant ON jobforge.events (tenant_id, id);
CREATE INDEX events_by_type ON jobforge.events (tenant_id, type, id);

CREATE TABLE jobforge.triggers (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     text NOT NULL,
    -- no ':' in a name, so the idempotency key trigger:<name>:<...> reads one way only
    name          text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,99}$'),
    event_type    text NOT NULL CHECK (event_type ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$'),
    predicates    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(predicates) = 'array'),
    job_type      text NOT NULL CHECK (job_type ~ '^[a-z0-9._-]+$' AND length(job_type) <= 200),
    input         jsonb NOT NULL CHECK (jsonb_typeof(input) = 'object'),
    dedupe        text CHECK (dedupe ~ '^\$\.[^[:cntrl:]]{1,200}$'),  -- NULL: the event's id
    cooldown      interval NOT NULL DEFAULT interval '0'
        CHECK (cooldown >= interval '0' AND cooldown <= interval '1 day'),
    max_per_hour  integer CHECK (max_per_hour BETWEEN 1 AND 1000),  -- NULL: no cap
    priority      integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 32767),
    max_attempts  integer CHECK (max_attempts BETWEEN 1 AND 1000),  -- NULL: enqueue's default
    dry_run       boolean NOT NULL DEFAULT false,
    paused        boolean NOT NULL DEFAULT false,
    last_fired_at timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    login         text NOT NULL DEFAULT session_user,
    actor         text DEFAULT nullif(pg_catalog.current_setting('jobforge.actor', true), '')
        CHECK (actor IS NULL OR (length(actor) BETWEEN 1 AND 200
            AND actor !~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]')),
    UNIQUE (tenant_id, name),
    CHECK (octet_length(input::text) <= 1048576 AND octet_length(predicates::text) <= 65536)
);
CREATE INDEX triggers_by_type ON jobforge.triggers (tenant_id, event_type);

CREATE TABLE jobforge.trigger_evaluations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    text NOT NULL,
    trigger_id   bigint NOT NULL REFERENCES jobforge.triggers (id) ON DELETE CASCADE,
    event_id     bigint NOT NULL REFERENCES jobforge.events (id) ON DELETE CASCADE,
    evaluated_at timestamptz NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('fired', 'dry_run', 'skipped')),
    reason       text CHECK (reason IN ('predicate', 'cooldown', 'hourly_cap', 'dedupe', 'paused',
                                        'mapping', 'enqueue', 'feature_off')),
    job_id       bigint,  -- fired, skipped for dedupe: the job (no reference: pruned jobs go)
    job          jsonb,   -- dry_run: the job it would have enqueued
    detail       text CHECK (length(detail) <= 1000),
    CHECK ((outcome = 'skipped') = (reason IS NOT NULL))
);
CREATE INDEX trigger_evaluations_by_trigger ON jobforge.trigger_evaluations (trigger_id, id);
CREATE INDEX trigger_evaluations_by_event ON jobforge.trigger_evaluations (event_id);
-- what the hourly cap counts: a trigger's firings (and dry runs) of the last hour
CREATE INDEX trigger_evaluations_fired ON jobforge.trigger_evaluations (trigger_id, evaluated_at)
    WHERE outcome IN ('fired', 'dry_run');

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'triggers', 'trigger_evaluations'] LOOP
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
REVOKE ALL ON jobforge.events, jobforge.triggers, jobforge.trigger_evaluations FROM PUBLIC;
GRANT SELECT ON jobforge.events, jobforge.triggers, jobforge.trigger_evaluations
    TO jobforge_app, jobforge_worker;

-- Why `p_predicates` is not a valid predicate list (NULL when it is): an array of at most 20
-- objects {path, op, value}; path dotted keys into the data; value of the op's kind.
CREATE FUNCTION jobforge.trigger_predicates_problem(p_predicates jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_p  jsonb;
    v_i  integer := 0;
    v_op text;
BEGIN
    IF p_predicates IS NULL OR jsonb_typeof(p_predicates) <> 'array' THEN
        RETURN 'the predicates must be a JSON array';
    END IF;
    IF jsonb_array_length(p_predicates) > 20 THEN
        RETURN format('%s predicates, over the limit of 20', jsonb_array_length(p_predicates));
    END IF;
    FOR v_p IN SELECT e FROM jsonb_array_elements(p_predicates) AS e LOOP
        v_i := v_i + 1;
        IF jsonb_typeof(v_p) <> 'object' OR NOT v_p ?& ARRAY['path', 'op']
           OR EXISTS (SELECT 1 FROM jsonb_object_keys(v_p) k WHERE k NOT IN ('path', 'op', 'value')) THEN
            RETURN format('predicate #%s must be an object {path, op, value}', v_i);
        END IF;
        IF jsonb_typeof(v_p->'path') <> 'string'
           OR (v_p->>'path') !~ '^[^.[:cntrl:]]{1,100}(\.[^.[:cntrl:]]{1,100}){0,31}$' THEN
            RETURN format('predicate #%s: the path must be dotted keys into the data, e.g. order.total',
                          v_i);
        END IF;
        v_op := CASE WHEN jsonb_typeof(v_p->'op') = 'string' THEN v_p->>'op' END;
        IF v_op IS NULL OR v_op NOT IN ('eq', 'ne', 'in', 'exists', 'gt', 'ge', 'lt', 'le') THEN
            RETURN format('predicate #%s: op %s is unknown: use eq, ne, in, exists, gt, ge, lt or le',
                          v_i, left(coalesce((v_p->'op')::text, 'null'), 40));
        END IF;
        IF NOT v_p ? 'value' THEN
            RETURN format('predicate #%s: %s needs a value', v_i, v_op);
        ELSIF v_op = 'in' AND jsonb_typeof(v_p->'value') <> 'array' THEN
            RETURN format('predicate #%s: in needs a JSON array of values', v_i);
        ELSIF v_op = 'exists' AND jsonb_typeof(v_p->'value') <> 'boolean' THEN
            RETURN format('predicate #%s: exists needs true or false', v_i);
        ELSIF v_op IN ('gt', 'ge', 'lt', 'le') AND jsonb_typeof(v_p->'value') <> 'number' THEN
            RETURN format('predicate #%s: %s compares numbers: its value must be a number', v_i, v_op);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

-- Whether the event's data passes every predicate: NULL when it does, else which one failed and
-- why. A missing path is absent: eq, in, gt, ge, lt, le are false on it, ne true (ne is not eq),
-- `exists false` true. gt, ge, lt, le compare numbers only: any other value fails them.
CREATE FUNCTION jobforge.trigger_match(p_predicates jsonb, p_data jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_p     jsonb;
    v_op    text;
    v_want  jsonb;
    v_got   jsonb;
    v_ok    boolean;
BEGIN
    FOR v_p IN SELECT e FROM jsonb_array_elements(coalesce(p_predicates, '[]')) AS e LOOP
        v_op := v_p->>'op';
        v_want := v_p->'value';
        v_got := p_data #> string_to_array(v_p->>'path', '.');
        v_ok := CASE v_op
            WHEN 'eq' THEN v_got IS NOT NULL AND v_got = v_want
            WHEN 'ne' THEN v_got IS NULL OR v_got <> v_want
            WHEN 'in' THEN v_got IS NOT NULL AND EXISTS (
                SELECT 1 FROM jsonb_array_elements(v_want) AS w WHERE w = v_got)
            WHEN 'exists' THEN (v_got IS NOT NULL) = (v_want = 'true'::jsonb)
            ELSE v_got IS NOT NULL AND jsonb_typeof(v_got) = 'number' AND CASE v_op
                WHEN 'gt' THEN v_got::text::numeric > v_want::text::numeric
                WHEN 'ge' THEN v_got::text::numeric >= v_want::text::numeric
                WHEN 'lt' THEN v_got::text::numeric < v_want::text::numeric
                WHEN 'le' THEN v_got::text::numeric <= v_want::text::numeric
            END
        END;
        IF NOT coalesce(v_ok, false) THEN
            RETURN left(format('%s %s %s is false (data.%s is %s)', v_p->>'path', v_op,
                               v_want::text, v_p->>'path', coalesce(v_got::text, 'absent')), 1000);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

-- The value at `p_path` ("$.id", "$.type", "$.source", "$.subject", "$.time", "$.data",
-- "$.data.<dotted keys>") of the event envelope `p_event`; JF006 naming it when it is absent.
CREATE FUNCTION jobforge.trigger_value(p_path text, p_event jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_keys text[] := string_to_array(substr(p_path, 3), '.');
    v_got  jsonb;
BEGIN
    IF v_keys[1] NOT IN ('id', 'type', 'source', 'subject', 'time', 'data')
       OR (v_keys[1] <> 'data' AND cardinality(v_keys) > 1) OR '' = ANY (v_keys) THEN
        RAISE EXCEPTION 'mapping: % is not an event field: use $.id, $.type, $.source, $.subject, $.time, $.data or $.data.<keys>',
            left(p_path, 120) USING ERRCODE = 'JF006';
    END IF;
    v_got := p_event #> v_keys;
    IF v_got IS NULL OR v_got = 'null'::jsonb AND v_keys[1] <> 'data' THEN
        RAISE EXCEPTION 'mapping: the event has no % (%)', left(p_path, 120),
            CASE WHEN v_keys[1] = 'data' THEN 'absent from its data' ELSE 'not set' END
            USING ERRCODE = 'JF006';
    END IF;
    RETURN v_got;
END $$;

-- The input template with each string "$.<path>" replaced by the event's value there (of its
-- own JSON type); a string starting "$$" stands for itself less one "$". Raises JF006 (a mapping
-- error) naming a path the event lacks.
CREATE FUNCTION jobforge.trigger_render(p_template jsonb, p_event jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_text text;
BEGIN
    CASE jsonb_typeof(p_template)
    WHEN 'object' THEN
        RETURN coalesce((SELECT jsonb_object_agg(e.key, jobforge.trigger_render(e.value, p_event))
                         FROM jsonb_each(p_template) AS e), '{}'::jsonb);
    WHEN 'array' THEN
        RETURN coalesce((SELECT jsonb_agg(jobforge.trigger_render(e.value, p_event) ORDER BY e.i)
                         FROM jsonb_array_elements(p_template) WITH ORDINALITY AS e(value, i)),
                        '[]'::jsonb);
    WHEN 'string' THEN
        v_text := p_template #>> '{}';
        IF left(v_text, 2) = repeat(chr(36), 2) THEN  -- "$" twice: an escaped "$"
            RETURN to_jsonb(substr(v_text, 2));
        ELSIF v_text LIKE '$.%' THEN
            RETURN jobforge.trigger_value(v_text, p_event);
        END IF;
        RETURN p_template;
    ELSE
        RETURN p_template;
    END CASE;
END $$;

-- The envelope the mapping reads: {id, type, source, subject, time, data}.
CREATE FUNCTION jobforge.event_envelope(p_event jobforge.events) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'id', p_event.id, 'type', p_event.type, 'source', p_event.source,
        'subject', p_event.subject,
        'time', to_char(p_event.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'data', p_event.data)
$$;

-- What evaluating trigger `p_trigger` on the event `p_event` (its envelope) yields, the state
-- (cooldown, cap, paused, the feature) aside: (NULL, input, key) when it would fire, else
-- (reason, detail, ...). Shared by the submit and `triggers test`.
CREATE FUNCTION jobforge.trigger_outcome(
    p_trigger jobforge.triggers, p_event jsonb,
    OUT reason text, OUT detail text, OUT input jsonb, OUT idempotency_key text
)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_key jsonb;
BEGIN
    detail := jobforge.trigger_match(p_trigger.predicates, coalesce(p_event->'data', '{}'));
    IF detail IS NOT NULL THEN
        reason := 'predicate';
        RETURN;
    END IF;
    BEGIN
        input := jobforge.trigger_render(p_trigger.input, p_event);
        IF p_trigger.dedupe IS NULL THEN
            v_key := p_event->'id';
        ELSE
            v_key := jobforge.trigger_value(p_trigger.dedupe, p_event);
        END IF;
    EXCEPTION WHEN sqlstate 'JF006' THEN
        reason := 'mapping';
        detail := left(SQLERRM, 1000);
        input := NULL;
        RETURN;
    END;
    IF v_key IS NOT NULL AND v_key <> 'null'::jsonb THEN
        idempotency_key := left('trigger:' || p_trigger.name || ':'
                                || CASE jsonb_typeof(v_key) WHEN 'string' THEN v_key #>> '{}'
                                   ELSE v_key::text END, 255);
    END IF;
END $$;

-- A tenant's trigger by name, locked; JF004 naming it when there is none.
CREATE FUNCTION jobforge.trigger_locked(p_tenant text, p_name text) RETURNS jobforge.triggers
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row jobforge.triggers;
BEGIN
    SELECT * INTO v_row FROM jobforge.triggers t
    WHERE t.tenant_id = p_tenant AND t.name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trigger % not found for tenant %',
            coalesce(quote_literal(left(p_name, 120)), 'null'), p_tenant USING ERRCODE = 'JF004';
    END IF;
    RETURN v_row;
END $$;

-- Add a trigger for the transaction's tenant (the `triggers` feature on).
CREATE FUNCTION jobforge.trigger_add_v1(
    p_name         text,
    p_event_type   text,
    p_predicates   jsonb,
    p_job_type     text,
    p_input        jsonb,
    p_dedupe       text DEFAULT NULL,
    p_cooldown     interval DEFAULT interval '0',
    p_max_per_hour integer DEFAULT NULL,
    p_dry_run      boolean DEFAULT false,
    p_paused       boolean DEFAULT false,
    p_priority     integer DEFAULT 0,
    p_max_attempts integer DEFAULT NULL,
    p_now          timestamptz DEFAULT NULL
) RETURNS SETOF jobforge.triggers
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_now     timestamptz := jobforge.clock(p_now);
    v_limit   integer;
    v_problem text;
BEGIN
    PERFORM jobforge.require_feature('triggers', v_tenant);
    IF p_name IS NULL OR p_name !~ '^[a-z0-9][a-z0-9._-]{0,99}$' THEN
        RAISE EXCEPTION 'trigger name % is invalid: use 1-100 of [a-z0-9._-], starting with a letter or digit',
            coalesce(quote_literal(left(p_name, 120)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_event_type IS NULL OR p_event_type !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$' THEN
        RAISE EXCEPTION 'trigger %: event type % is invalid: use 1-200 of [A-Za-z0-9._-]', p_name,
            coalesce(quote_literal(left(p_event_type, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    v_problem := jobforge.trigger_predicates_problem(coalesce(p_predicates, '[]'));
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'trigger %: %', p_name, v_problem USING ERRCODE = 'JF006';
    END IF;
    IF p_job_type IS NULL OR p_job_type !~ '^[a-z0-9._-]+$' OR length(p_job_type) > 200 THEN
        RAISE EXCEPTION 'trigger %: job type % is invalid: use 1-200 of [a-z0-9._-]', p_name,
            coalesce(quote_literal(left(p_job_type, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_input IS NULL OR jsonb_typeof(p_input) <> 'object' THEN
        RAISE EXCEPTION 'trigger %: the input template must be a JSON object, not %', p_name,
            coalesce(jsonb_typeof(p_input), 'null') USING ERRCODE = 'JF006';
    END IF;
    SELECT s.max_payload_bytes INTO v_limit FROM jobforge.settings s;
    IF octet_length(p_input::text) > v_limit THEN
        RAISE EXCEPTION 'trigger %: the input template is % bytes, over the limit of %', p_name,
            octet_length(p_input::text), v_limit USING ERRCODE = 'JF005';
    END IF;
    v_problem := jobforge.json_problem(p_input);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'trigger %: the input template cannot be stored: %', p_name, v_problem
            USING ERRCODE = 'JF006';
    END IF;
    -- every "$." string of the template must name an event field: checked on an empty event
    BEGIN
        PERFORM jobforge.trigger_render(p_input, jsonb_build_object(
            'id', 0, 'type', '', 'source', '', 'subject', '', 'time', '', 'data', '{}'::jsonb));
    EXCEPTION WHEN sqlstate 'JF006' THEN
        IF SQLERRM LIKE '%is not an event field%' THEN
            RAISE EXCEPTION 'trigger %: %', p_name, SQLERRM USING ERRCODE = 'JF006';
        END IF;
    END;
    IF p_dedupe IS NOT NULL THEN
        IF p_dedupe !~ '^\$\.[^[:cntrl:]]{1,200}$' THEN
            RAISE EXCEPTION 'trigger %: the dedupe path % must be an event field such as $.data.order_id',
                p_name, quote_literal(left(p_dedupe, 120)) USING ERRCODE = 'JF006';
        END IF;
        BEGIN
            PERFORM jobforge.trigger_value(p_dedupe, jsonb_build_object(
                'id', 0, 'type', '', 'source', '', 'subject', '', 'time', '', 'data', '{}'::jsonb));
        EXCEPTION WHEN sqlstate 'JF006' THEN
            IF SQLERRM LIKE '%is not an event field%' THEN
                RAISE EXCEPTION 'trigger %: dedupe %', p_name, SQLERRM USING ERRCODE = 'JF006';
            END IF;
        END;
    END IF;
    IF p_cooldown IS NULL OR NOT (p_cooldown >= interval '0' AND p_cooldown <= interval '1 day') THEN
        RAISE EXCEPTION 'trigger %: cooldown % is out of range 0 s to 1 day', p_name,
            coalesce(p_cooldown::text, 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_max_per_hour NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'trigger %: max per hour % is out of range 1-1000', p_name, p_max_per_hour
            USING ERRCODE = 'JF006';
    END IF;
    IF p_priority IS NULL OR p_priority NOT BETWEEN 0 AND 32767 THEN
        RAISE EXCEPTION 'trigger %: priority % is out of range 0-32767', p_name,
            coalesce(p_priority::text, 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'trigger %: max_attempts % is out of range 1-1000', p_name, p_max_attempts
            USING ERRCODE = 'JF006';
    END IF;
    -- a bound on what one tenant makes every submit evaluate
    IF (SELECT count(*) FROM jobforge.triggers t WHERE t.tenant_id = v_tenant) >= 1000 THEN
        RAISE EXCEPTION 'trigger %: tenant % has 1000 triggers already, the most it may have',
            p_name, v_tenant USING ERRCODE = 'JF006';
    END IF;
    IF EXISTS (SELECT 1 FROM jobforge.triggers t WHERE t.tenant_id = v_tenant AND t.name = p_name) THEN
        RAISE EXCEPTION 'trigger % already exists for tenant % (remove it first: jobforge triggers rm %)',
            quote_literal(p_name), v_tenant, p_name USING ERRCODE = 'JF006';
    END IF;
    RETURN QUERY
    INSERT INTO jobforge.triggers AS t (tenant_id, name, event_type, predicates, job_type, input,
                                        dedupe, cooldown, max_per_hour, priority,
                                        max_attempts, dry_run, paused, created_at, updated_at)
    VALUES (v_tenant, p_name, p_event_type, coalesce(p_predicates, '[]'), p_job_type, p_input,
            p_dedupe, p_cooldown, p_max_per_hour, p_priority, p_max_attempts,
            coalesce(p_dry_run, false), coalesce(p_paused, false), v_now, v_now)
    RETURNING t.*;
EXCEPTION WHEN unique_violation THEN  -- a concurrent add of the same name won
    RAISE EXCEPTION 'trigger % already exists for tenant % (remove it first: jobforge triggers rm %)',
        quote_literal(p_name), v_tenant, p_name USING ERRCODE = 'JF006';
END $$;

-- Pause (p_paused) or resume a trigger of the transaction's tenant. Resuming needs the feature;
-- pausing does not (a tenant can always stop what it started).
CREATE FUNCTION jobforge.trigger_pause_v1(
    p_name text, p_paused boolean, p_now timestamptz DEFAULT NULL
) RETURNS SETOF jobforge.triggers
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_now    timestamptz := jobforge.clock(p_now);
    v_row    jobforge.triggers;
BEGIN
    IF p_paused IS NULL THEN
        RAISE EXCEPTION 'triggers: paused must be true or false' USING ERRCODE = 'JF006';
    END IF;
    IF NOT p_paused THEN
        PERFORM jobforge.require_feature('triggers', v_tenant);
    END IF;
    v_row := jobforge.trigger_locked(v_tenant, p_name);
    RETURN QUERY UPDATE jobforge.triggers t
                 SET paused = p_paused, updated_at = v_now, login = DEFAULT, actor = DEFAULT
                 WHERE t.id = v_row.id RETURNING t.*;
END $$;

-- Remove a trigger of the transaction's tenant, with its evaluations; its jobs stay.
CREATE FUNCTION jobforge.trigger_remove_v1(p_name text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_row    jobforge.triggers;
BEGIN
    v_row := jobforge.trigger_locked(v_tenant, p_name);
    DELETE FROM jobforge.triggers t WHERE t.id = v_row.id;
    RETURN v_row.id;
END $$;

-- Evaluate every trigger of the event's tenant and type on the stored event, in the caller's
-- transaction; log each evaluation and return them. p_force_dry: every trigger acts as a dry
-- run (a submit's dry run).
CREATE FUNCTION jobforge.evaluate_triggers(
    p_event jobforge.events, p_now timestamptz, p_force_dry boolean
) RETURNS SETOF jobforge.trigger_evaluations
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_envelope jsonb := jobforge.event_envelope(p_event);
    v_enabled  boolean := jobforge.feature_enabled('triggers', p_event.tenant_id);
    v_trigger  jobforge.triggers;
    v_out      record;
    v_outcome  text;
    v_reason   text;
    v_detail   text;
    v_job_id   bigint;
    v_job      jsonb;
    v_created  boolean;
    v_actor    text := current_setting('jobforge.actor', true);
    v_cut      bigint;
    v_eval     jobforge.trigger_evaluations;
BEGIN
    -- by id, locked: concurrent submits take each trigger's cooldown and cap in turn, and two
    -- transactions lock the triggers they share in the same order (no deadlock)
    FOR v_trigger IN
        SELECT * FROM jobforge.triggers t
        WHERE t.tenant_id = p_event.tenant_id AND t.event_type = p_event.type
        ORDER BY t.id FOR UPDATE
    LOOP
        v_outcome := 'skipped';
        v_reason := NULL; v_detail := NULL; v_job_id := NULL; v_job := NULL;
        SELECT * INTO v_out FROM jobforge.trigger_outcome(v_trigger, v_envelope);
        IF NOT v_enabled THEN
            v_reason := 'feature_off';
            v_detail := format('the triggers feature is disabled for tenant %s (jobforge features enable triggers --tenant %s)',
                               p_event.tenant_id, p_event.tenant_id);
        ELSIF v_trigger.paused THEN
            v_reason := 'paused';
            v_detail := 'the trigger is paused (jobforge triggers resume ' || v_trigger.name || ')';
        ELSIF v_out.reason IS NOT NULL THEN
            v_reason := v_out.reason;
            v_detail := v_out.detail;
        ELSIF v_trigger.cooldown > interval '0' AND v_trigger.last_fired_at IS NOT NULL
              AND p_now < v_trigger.last_fired_at + v_trigger.cooldown THEN
            v_reason := 'cooldown';
            v_detail := format('fired at %s, cooldown %s', v_trigger.last_fired_at, v_trigger.cooldown);
        ELSIF v_trigger.max_per_hour IS NOT NULL AND (
                SELECT count(*) FROM jobforge.trigger_evaluations e
                WHERE e.trigger_id = v_trigger.id AND e.outcome IN ('fired', 'dry_run')
                  AND e.evaluated_at > p_now - interval '1 hour') >= v_trigger.max_per_hour THEN
            v_reason := 'hourly_cap';
            v_detail := format('fired %s times in the last hour, the most it may',
                               v_trigger.max_per_hour);
        ELSE
            v_job := jsonb_build_object('type', v_trigger.job_type, 'payload', v_out.input,
                                        'idempotency_key', v_out.idempotency_key,
                                        'priority', v_trigger.priority,
                                        'max_attempts', coalesce(v_trigger.max_attempts, 3));
            BEGIN
                PERFORM set_config('jobforge.actor', 'trigger:' || v_trigger.name, true);
                SELECT e.job_id, e.created INTO v_job_id, v_created
                FROM jobforge.enqueue_v1(
                    ARRAY[v_trigger.job_type], ARRAY[v_out.input], ARRAY[v_out.idempotency_key],
                    ARRAY[v_trigger.priority], NULL,
                    CASE WHEN v_trigger.max_attempts IS NULL THEN NULL
                         ELSE ARRAY[v_trigger.max_attempts] END,
                    NULL, p_now, NULL) e;
                PERFORM set_config('jobforge.actor', coalesce(v_actor, ''), true);
                IF NOT v_created THEN
                    v_reason := 'dedupe';
                    v_detail := format('job %s has the key %s already', v_job_id,
                                       v_out.idempotency_key);
                ELSIF v_trigger.dry_run OR p_force_dry THEN
                    -- checked by the real enqueue; undone with this subtransaction
                    RAISE EXCEPTION USING ERRCODE = 'JFDRY';
                ELSE
                    v_outcome := 'fired';
                END IF;
            EXCEPTION
                WHEN sqlstate 'JFDRY' THEN
                    v_outcome := 'dry_run';
                    v_job_id := NULL;
                WHEN sqlstate 'JF001' THEN  -- the key names a job with another payload
                    v_reason := 'dedupe';
                    v_detail := left(SQLERRM, 1000);
                    v_job_id := NULL;
                WHEN OTHERS THEN  -- the settings and the job go back with the subtransaction
                    v_reason := 'enqueue';
                    v_detail := left(SQLERRM, 1000);
                    v_job_id := NULL;
            END;
            IF v_outcome <> 'dry_run' THEN
                v_job := NULL;
            END IF;
        END IF;
        IF v_outcome IN ('fired', 'dry_run') AND NOT p_force_dry THEN
            UPDATE jobforge.triggers t SET last_fired_at = p_now WHERE t.id = v_trigger.id;
        END IF;
        INSERT INTO jobforge.trigger_evaluations AS e
            (tenant_id, trigger_id, event_id, evaluated_at, outcome, reason, job_id, job, detail)
        VALUES (p_event.tenant_id, v_trigger.id, p_event.id, p_now, v_outcome, v_reason, v_job_id,
                v_job, left(v_detail, 1000))
        RETURNING e.* INTO v_eval;
        RETURN NEXT v_eval;
        -- the log keeps a trigger's last 1,000 entries, and every entry of the last hour (the cap)
        SELECT e.id INTO v_cut FROM jobforge.trigger_evaluations e
        WHERE e.trigger_id = v_trigger.id ORDER BY e.id DESC OFFSET 1000 LIMIT 1;
        IF FOUND THEN
            DELETE FROM jobforge.trigger_evaluations e
            WHERE e.trigger_id = v_trigger.id AND e.id <= v_cut
              AND e.evaluated_at <= p_now - interval '1 hour';
        END IF;
    END LOOP;
END $$;

-- Submit an event for the transaction's tenant (the `events` feature on) and evaluate its
-- triggers in the same transaction. Returns the event (`created` false: its dedupe key named an
-- event submitted before, which is returned and not evaluated again) and the evaluations as a
-- JSON array. p_dry_run: everything is done and checked, then undone; nothing is kept and every
-- trigger that would fire reports the job as a dry run.
CREATE FUNCTION jobforge.event_submit_v1(
    p_type        text,
    p_source      text,
    p_subject     text,
    p_data        jsonb,
    p_dedupe_key  text DEFAULT NULL,
    p_occurred_at timestamptz DEFAULT NULL,
    p_dry_run     boolean DEFAULT false,
    p_now         timestamptz DEFAULT NULL
) RETURNS TABLE (event jsonb, created boolean, evaluations jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_now     timestamptz := jobforge.clock(p_now);
    v_limit   integer;
    v_problem text;
    v_row     jobforge.events;
    v_evals   jsonb;
BEGIN
    PERFORM jobforge.require_feature('events', v_tenant);
    IF p_type IS NULL OR p_type !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$' THEN
        RAISE EXCEPTION 'event type % is invalid: use 1-200 of [A-Za-z0-9._-], starting with a letter or digit',
            coalesce(quote_literal(left(p_type, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_source IS NULL OR length(p_source) NOT BETWEEN 1 AND 500 OR p_source ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'event %: the source must be 1-500 printable characters', p_type
            USING ERRCODE = 'JF006';
    END IF;
    IF length(p_subject) NOT BETWEEN 1 AND 500 OR p_subject ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'event %: the subject must be 1-500 printable characters', p_type
            USING ERRCODE = 'JF006';
    END IF;
    IF length(p_dedupe_key) NOT BETWEEN 1 AND 200 OR p_dedupe_key ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'event %: the dedupe key must be 1-200 printable characters', p_type
            USING ERRCODE = 'JF006';
    END IF;
    IF p_data IS NULL OR jsonb_typeof(p_data) <> 'object' THEN
        RAISE EXCEPTION 'event %: the data must be a JSON object, not %', p_type,
            coalesce(jsonb_typeof(p_data), 'null') USING ERRCODE = 'JF006';
    END IF;
    SELECT s.max_payload_bytes INTO v_limit FROM jobforge.settings s;
    IF octet_length(p_data::text) > v_limit THEN
        RAISE EXCEPTION 'event %: the data is % bytes, over the limit of %', p_type,
            octet_length(p_data::text), v_limit USING ERRCODE = 'JF005';
    END IF;
    v_problem := jobforge.json_problem(p_data);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'event %: the data cannot be stored: %', p_type, v_problem
            USING ERRCODE = 'JF006';
    END IF;
    IF p_occurred_at IS NOT NULL AND (NOT isfinite(p_occurred_at)
            OR p_occurred_at NOT BETWEEN v_now - interval '100 years' AND v_now + interval '1 day') THEN
        RAISE EXCEPTION 'event %: time % is out of range: within 100 years before now and a day after',
            p_type, p_occurred_at USING ERRCODE = 'JF006';
    END IF;

    BEGIN
        INSERT INTO jobforge.events AS e (tenant_id, type, source, subject, data, dedupe_key,
                                          occurred_at, submitted_at)
        VALUES (v_tenant, p_type, p_source, p_subject, p_data, p_dedupe_key,
                coalesce(p_occurred_at, v_now), v_now)
        ON CONFLICT (tenant_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
        RETURNING e.* INTO v_row;
        IF v_row.id IS NULL THEN
            -- its key is taken (by a transaction that has committed: the insert waited for it)
            SELECT * INTO v_row FROM jobforge.events e
            WHERE e.tenant_id = v_tenant AND e.dedupe_key = p_dedupe_key;
            IF v_row.type <> p_type OR v_row.source <> p_source
               OR v_row.subject IS DISTINCT FROM p_subject OR v_row.data <> p_data THEN
                RAISE EXCEPTION 'dedupe key % is already used by event % with a different body',
                    quote_literal(p_dedupe_key), v_row.id
                    USING ERRCODE = 'JF001',
                          DETAIL = json_build_object('key', p_dedupe_key, 'event_id', v_row.id)::text;
            END IF;
            event := to_jsonb(v_row);
            created := false;
            evaluations := '[]'::jsonb;
        ELSE
            SELECT coalesce(jsonb_agg(to_jsonb(x) || jsonb_build_object('trigger', t.name)
                                      ORDER BY x.id), '[]'::jsonb) INTO v_evals
            FROM jobforge.evaluate_triggers(v_row, v_now, coalesce(p_dry_run, false)) AS x
            JOIN jobforge.triggers t ON t.id = x.trigger_id;
            event := to_jsonb(v_row);
            created := true;
            evaluations := v_evals;
        END IF;
        IF p_dry_run THEN
            RAISE EXCEPTION USING ERRCODE = 'JFDRY';  -- undo it all, answer what it did
        END IF;
    EXCEPTION WHEN sqlstate 'JFDRY' THEN
        NULL;
    END;
    RETURN NEXT;
END $$;

-- What `jobforge triggers test` shows: trigger `p_name` evaluated on the envelope `p_event`
-- ({type, source, subject, time, data, id}), nothing stored and its state (cooldown, cap)
-- aside. matched: whether its type and predicates match; reason/detail: why not or why the
-- mapping failed; input and key: the job it would enqueue.
CREATE FUNCTION jobforge.trigger_test_v1(p_name text, p_event jsonb)
RETURNS TABLE (matched boolean, reason text, detail text, job_type text, input jsonb,
               idempotency_key text, dry_run boolean, paused boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_trigger jobforge.triggers;
    v_out     record;
BEGIN
    PERFORM jobforge.require_feature('triggers', v_tenant);
    SELECT * INTO v_trigger FROM jobforge.triggers t
    WHERE t.tenant_id = v_tenant AND t.name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trigger % not found for tenant %',
            coalesce(quote_literal(left(p_name, 120)), 'null'), v_tenant USING ERRCODE = 'JF004';
    END IF;
    IF p_event IS NULL OR jsonb_typeof(p_event) <> 'object'
       OR jsonb_typeof(coalesce(p_event->'data', '{}')) <> 'object' THEN
        RAISE EXCEPTION 'triggers test: the event must be a JSON object whose data is an object'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_event->>'type' IS DISTINCT FROM v_trigger.event_type THEN
        RETURN QUERY SELECT false, 'type'::text,
            format('the event''s type %s is not %s', coalesce(p_event->>'type', 'null'),
                   v_trigger.event_type),
            v_trigger.job_type, NULL::jsonb, NULL::text, v_trigger.dry_run, v_trigger.paused;
        RETURN;
    END IF;
    SELECT * INTO v_out FROM jobforge.trigger_outcome(
        v_trigger, jsonb_build_object('data', '{}'::jsonb) || p_event);
    RETURN QUERY SELECT v_out.reason IS DISTINCT FROM 'predicate', v_out.reason, v_out.detail,
                        v_trigger.job_type, v_out.input, v_out.idempotency_key,
                        v_trigger.dry_run, v_trigger.paused;
END $$;

REVOKE ALL ON FUNCTION
    jobforge.trigger_predicates_problem(jsonb),
    jobforge.trigger_match(jsonb, jsonb),
    jobforge.trigger_value(text, jsonb),
    jobforge.trigger_render(jsonb, jsonb),
    jobforge.event_envelope(jobforge.events),
    jobforge.trigger_outcome(jobforge.triggers, jsonb),
    jobforge.trigger_locked(text, text),
    jobforge.trigger_add_v1(text, text, jsonb, text, jsonb, text, interval, integer, boolean,
                            boolean, integer, integer, timestamptz),
    jobforge.trigger_pause_v1(text, boolean, timestamptz),
    jobforge.trigger_remove_v1(text),
    jobforge.evaluate_triggers(jobforge.events, timestamptz, boolean),
    jobforge.event_submit_v1(text, text, text, jsonb, text, timestamptz, boolean, timestamptz),
    jobforge.trigger_test_v1(text, jsonb) FROM PUBLIC;
-- The helpers (match, render, the locked row, the evaluation) are called by the owner's
-- functions only.
GRANT EXECUTE ON FUNCTION
    jobforge.trigger_add_v1(text, text, jsonb, text, jsonb, text, interval, integer, boolean,
                            boolean, integer, integer, timestamptz),
    jobforge.trigger_pause_v1(text, boolean, timestamptz),
    jobforge.trigger_remove_v1(text),
    jobforge.event_submit_v1(text, text, text, jsonb, text, timestamptz, boolean, timestamptz),
    jobforge.trigger_test_v1(text, jsonb) TO jobforge_app, jobforge_worker;
