-- The runner catalogue and follow-up jobs ([7/10]).
--
-- Runner catalogue: the runners a deployment knows, synced from their contracts
-- (`jobforge runners sync`): id, version, input and output JSON Schemas, the contract's hash,
-- whether it is enabled, when and by whom it was synced or switched. Deployment-wide, not per
-- tenant: runners are code, deployed once for every tenant. Every login of the deployment may
-- read it (a producer without the runner's code validates a request against the synced input
-- schema); only an operator (a superuser or a member of jobforge_worker, as for retention and
-- limits) writes it, through catalogue_sync_v1 and catalogue_enable_v1. No login is granted
-- INSERT, UPDATE or DELETE on the table, and row-level security is forced with a read-only
-- policy, so even a grant added by mistake writes nothing.
--
-- A sync refuses a version downgrade, and a changed contract under the same version, unless
-- forced: a producer that validated against version 2 must not silently meet version 1 again.
--
-- enqueue_v1 refuses a job of a disabled runner (JF010), so a producer that skips the client's
-- check (its own SQL, an old client) still cannot request one. A type the catalogue does not
-- know is not refused by the database: plain handlers and runners never synced keep working.
--
-- Follow-up jobs: finish_followups_v1 is finish_v1 with the follow-up jobs the succeeded
-- outcomes enqueue (ctx.enqueue inside a runner), inserted in the same transaction as the
-- completion, fenced on the lease as finish_v1 is: an outcome that finish_v1 does not record as
-- succeeded (a lost lease, a repeat, a result it rejects) enqueues nothing. Each follow-up
-- carries an idempotency key (the worker derives one from the parent job id and the effect's
-- index when the runner gave none), so a finish retried after its commit enqueues nothing twice.
-- A follow-up inherits its parent's tenant, project and trace id, and records its parent in
-- jobs.parent_id and in its 'created' event. A follow-up that cannot be enqueued (an invalid
-- type or payload, a key already used with another payload) fails its parent, not retried; one
-- of a disabled runner makes the parent retry with its backoff (an operator may enable the
-- runner again). finish_v1 itself is unchanged: a finish without follow-ups costs what it did.

ALTER TABLE jobforge.jobs ADD COLUMN parent_id bigint;

CREATE TABLE jobforge.runner_catalogue (
    runner_id       text PRIMARY KEY CHECK (runner_id ~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)*$'
                                            AND length(runner_id) <= 200),
    version         text NOT NULL CHECK (version ~ '^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$'
                                         AND length(version) <= 100),
    input_schema    jsonb NOT NULL CHECK (jsonb_typeof(input_schema) = 'object'
                                          AND octet_length(input_schema::text) <= 1048576),
    output_schema   jsonb NOT NULL CHECK (jsonb_typeof(output_schema) = 'object'
                                          AND octet_length(output_schema::text) <= 1048576),
    contract_sha256 text NOT NULL CHECK (contract_sha256 ~ '^sha256:[0-9a-f]{64}$'),
    enabled         boolean NOT NULL DEFAULT true,
    synced_at       timestamptz NOT NULL,
    synced_by       text NOT NULL,  --: the login (session_user) that synced this version
    synced_actor    text,           --: the actor its client named (jobforge.actor), a claim
    changed_at      timestamptz,    --: the last enable or disable
    changed_by      text,
    changed_actor   text
);
-- The disabled runners: what enqueue_v1 probes (empty on most deployments).
CREATE INDEX runner_catalogue_disabled ON jobforge.runner_catalogue (runner_id) WHERE NOT enabled;
ALTER TABLE jobforge.runner_catalogue ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobforge.runner_catalogue FORCE ROW LEVEL SECURITY;
-- Readable by every login of the deployment; the owner's functions below write it.
CREATE POLICY readable ON jobforge.runner_catalogue FOR SELECT USING (true);
CREATE POLICY operator_writes ON jobforge.runner_catalogue FOR ALL
    USING (pg_has_role(session_user, 'jobforge_worker', 'MEMBER'))
    WITH CHECK (pg_has_role(session_user, 'jobforge_worker', 'MEMBER'));
REVOKE ALL ON jobforge.runner_catalogue FROM PUBLIC;
GRANT SELECT ON jobforge.runner_catalogue TO jobforge_app, jobforge_worker;

-- The numeric core of a semver version (1.10.0 -> {1,10,0}), for ordering versions.
CREATE FUNCTION jobforge.version_core(p_version text) RETURNS integer[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT string_to_array(substring(p_version FROM '^(\d{1,9}\.\d{1,9}\.\d{1,9})'), '.')::integer[]
$$;

-- Add or update one runner from its contract: 'added', 'changed' or 'unchanged'. A lower
-- version, or another contract under the same version, is refused (JF011) unless p_force. A
-- sync never changes `enabled`: a runner an operator disabled stays disabled across deploys.
CREATE FUNCTION jobforge.catalogue_sync_v1(
    p_runner_id text, p_version text, p_input_schema jsonb, p_output_schema jsonb,
    p_contract_sha256 text, p_force boolean DEFAULT false
) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_old   jobforge.runner_catalogue;
    v_actor text := nullif(current_setting('jobforge.actor', true), '');
BEGIN
    PERFORM jobforge.require_worker();
    IF p_runner_id IS NULL OR p_runner_id !~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)*$' OR length(p_runner_id) > 200 THEN
        RAISE EXCEPTION 'runner id % is invalid: use dotted names of [a-z0-9_-], at most 200 characters',
            coalesce(quote_literal(left(p_runner_id, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_version IS NULL OR jobforge.version_core(p_version) IS NULL OR length(p_version) > 100 THEN
        RAISE EXCEPTION 'runner %: version % is not a semantic version (1.2.3)', p_runner_id,
            coalesce(quote_literal(left(p_version, 120)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF jsonb_typeof(p_input_schema) IS DISTINCT FROM 'object'
       OR jsonb_typeof(p_output_schema) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'runner %: the input and output schemas must be JSON objects', p_runner_id
            USING ERRCODE = 'JF006';
    END IF;
    SELECT * INTO v_old FROM jobforge.runner_catalogue c WHERE c.runner_id = p_runner_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO jobforge.runner_catalogue (runner_id, version, input_schema, output_schema,
            contract_sha256, synced_at, synced_by, synced_actor)
        VALUES (p_runner_id, p_version, p_input_schema, p_output_schema, p_contract_sha256, now(),
                session_user, v_actor);
        RETURN 'added';
    END IF;
    IF v_old.version = p_version AND v_old.contract_sha256 = p_contract_sha256 THEN
        RETURN 'unchanged';
    END IF;
    IF NOT coalesce(p_force, false) THEN
        IF jobforge.version_core(p_version) < jobforge.version_core(v_old.version) THEN
            RAISE EXCEPTION 'runner %: version % is older than the synced %: a downgrade needs --force',
                p_runner_id, p_version, v_old.version USING ERRCODE = 'JF011';
        END IF;
        IF v_old.version = p_version THEN
            RAISE EXCEPTION 'runner %: the contract changed but the version is still %: bump the version, or sync with --force',
                p_runner_id, p_version USING ERRCODE = 'JF011';
        END IF;
    END IF;
    UPDATE jobforge.runner_catalogue c
    SET version = p_version, input_schema = p_input_schema, output_schema = p_output_schema,
        contract_sha256 = p_contract_sha256, synced_at = now(), synced_by = session_user,
        synced_actor = v_actor
    WHERE c.runner_id = p_runner_id;
    RETURN 'changed';
END $$;

-- Enable or disable a catalogued runner; whether it changed anything. An unknown id is JF004.
CREATE FUNCTION jobforge.catalogue_enable_v1(p_runner_id text, p_enabled boolean) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_was boolean;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_enabled IS NULL THEN
        RAISE EXCEPTION 'catalogue: enabled must be true or false' USING ERRCODE = 'JF006';
    END IF;
    SELECT c.enabled INTO v_was FROM jobforge.runner_catalogue c WHERE c.runner_id = p_runner_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'runner % is not in the runner catalogue (jobforge runners sync adds it)',
            coalesce(quote_literal(left(p_runner_id, 240)), 'null') USING ERRCODE = 'JF004';
    END IF;
    IF v_was = p_enabled THEN
        RETURN false;
    END IF;
    UPDATE jobforge.runner_catalogue c
    SET enabled = p_enabled, changed_at = now(), changed_by = session_user,
        changed_actor = nullif(current_setting('jobforge.actor', true), '')
    WHERE c.runner_id = p_runner_id;
    RETURN true;
END $$;

-- Enqueue (0016's: each job's project), refusing a disabled runner of the catalogue.
CREATE OR REPLACE FUNCTION jobforge.enqueue_v1(p_types text[], p_payloads jsonb[], p_idempotency_keys text[] DEFAULT NULL::text[], p_priorities integer[] DEFAULT NULL::integer[], p_run_ats timestamp with time zone[] DEFAULT NULL::timestamp with time zone[], p_max_attempts integer[] DEFAULT NULL::integer[], p_trace_ids text[] DEFAULT NULL::text[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_max_payload_bytes integer DEFAULT 1048576, p_projects text[] DEFAULT NULL::text[]) RETURNS TABLE(ord integer, job_id bigint, created boolean)
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

-- Whether an optional JSON value is absent (NULL or JSON null) or a whole number in [lo, hi]; never
-- an error, whatever the value (a caller's string or fraction must not abort the finish).
CREATE FUNCTION jobforge.whole_number_between(p_value jsonb, p_lo integer, p_hi integer)
RETURNS boolean LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN true
                WHEN jsonb_typeof(p_value) <> 'number' THEN false
                ELSE (p_value::text)::numeric BETWEEN p_lo AND p_hi
                     AND (p_value::text)::numeric = trunc((p_value::text)::numeric)
           END
$$;

-- Finish with follow-ups (see the top of this file). p_followups: a JSON array of
-- {"job": position in p_job_ids (1-based), "type", "payload", "key", "priority",
-- "max_attempts"}; the worker builds it, so a malformed entry is the caller's bug (JF006).
CREATE FUNCTION jobforge.finish_followups_v1(
    p_worker text, p_job_ids bigint[], p_tokens uuid[], p_outcomes text[],
    p_results jsonb[], p_errors jsonb[], p_now timestamptz,
    p_backoff_base_s double precision, p_backoff_cap_s double precision,
    p_followups jsonb
) RETURNS TABLE (job_id bigint, state text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_n        integer := coalesce(cardinality(p_job_ids), 0);
    v_now      timestamptz := jobforge.clock(p_now);
    v_limit    integer := (SELECT s.max_payload_bytes FROM jobforge.settings s);
    v_outcomes text[] := p_outcomes;
    v_errors   jsonb[] := coalesce(p_errors, array_fill(NULL::jsonb, ARRAY[v_n]));
    v_states   text[];
    v_bad      record;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_followups IS NULL OR jsonb_typeof(p_followups) <> 'array'
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_followups) e
                  WHERE CASE WHEN jsonb_typeof(e) <> 'object'
                                  OR jsonb_typeof(e -> 'job') IS DISTINCT FROM 'number' THEN true
                             ELSE (e ->> 'job')::numeric NOT BETWEEN 1 AND v_n
                                  OR (e ->> 'job')::numeric <> trunc((e ->> 'job')::numeric)
                        END) THEN
        RAISE EXCEPTION 'finish: follow-ups must be a JSON array of objects naming a job position 1-%', v_n
            USING ERRCODE = 'JF006';
    END IF;

    -- The first problem of each succeeded outcome's follow-ups turns the outcome into a failure
    -- (a retry when the runner is disabled), recorded as the parent's error.
    FOR v_bad IN
        WITH f AS (
            SELECT x.n, (x.e ->> 'job')::numeric::integer AS pos, x.e ->> 'type' AS t, x.e -> 'payload' AS p,
                   x.e ->> 'key' AS k, x.e -> 'priority' AS prio, x.e -> 'max_attempts' AS att
            FROM jsonb_array_elements(p_followups) WITH ORDINALITY AS x(e, n)
        ),
        judged AS (
            SELECT f.pos, f.n,
                   CASE
                       WHEN f.t IS NULL OR f.t !~ '^[a-z0-9._-]+$' OR length(f.t) > 200
                           THEN 'its type ' || coalesce(quote_literal(left(f.t, 240)), 'null')
                                || ' is invalid: use 1-200 of [a-z0-9._-]'
                       WHEN f.p IS NULL OR jsonb_typeof(f.p) <> 'object'
                           THEN 'its payload must be a JSON object'
                       WHEN f.k IS NULL OR length(f.k) NOT BETWEEN 1 AND 1000
                           THEN 'its idempotency key must be 1-1000 characters'
                       WHEN NOT jobforge.whole_number_between(f.prio, 0, 32767)
                           THEN 'its priority must be a whole number 0-32767'
                       WHEN NOT jobforge.whole_number_between(f.att, 1, 1000)
                           THEN 'its max_attempts must be a whole number 1-1000'
                       WHEN octet_length(f.p::text) > v_limit
                           THEN 'its payload is ' || octet_length(f.p::text)
                                || ' bytes, over the limit of ' || v_limit
                       WHEN jobforge.json_problem(f.p) IS NOT NULL
                           THEN 'its payload cannot be stored: ' || jobforge.json_problem(f.p)
                       WHEN EXISTS (SELECT 1 FROM jobforge.runner_catalogue c
                                    WHERE c.runner_id = f.t AND NOT c.enabled)
                           THEN 'runner ' || f.t || ' is disabled'
                       WHEN EXISTS (SELECT 1 FROM jobforge.jobs j
                                    WHERE j.tenant_id = pj.tenant_id AND j.project = pj.project
                                      AND j.type = f.t AND j.idempotency_key = f.k
                                      AND j.payload_hash <> 'sha256:' || encode(sha256(convert_to(f.p::text, 'UTF8')), 'hex'))
                           THEN 'its idempotency key ' || quote_literal(f.k)
                                || ' is already used by another job with a different payload'
                   END AS problem,
                   EXISTS (SELECT 1 FROM jobforge.runner_catalogue c
                           WHERE c.runner_id = f.t AND NOT c.enabled) AS disabled
            FROM f JOIN jobforge.jobs pj ON pj.id = p_job_ids[f.pos]
            WHERE v_outcomes[f.pos] = 'succeeded'
        )
        SELECT DISTINCT ON (j.pos) j.pos, j.n, j.problem, j.disabled
        FROM judged j WHERE j.problem IS NOT NULL ORDER BY j.pos, j.n
    LOOP
        v_outcomes[v_bad.pos] := CASE WHEN v_bad.disabled THEN 'retry' ELSE 'failed' END;
        v_errors[v_bad.pos] := jsonb_build_object(
            'kind', 'followup_rejected',
            'message', 'follow-up #' || v_bad.n || ' cannot be enqueued: ' || v_bad.problem);
    END LOOP;

    SELECT array_agg(f.state ORDER BY f.i) INTO v_states
    FROM jobforge.finish_v1(p_worker, p_job_ids, p_tokens, v_outcomes, p_results, v_errors, p_now,
                            p_backoff_base_s, p_backoff_cap_s) WITH ORDINALITY AS f(job_id, state, i);

    -- Only what finish_v1 recorded as succeeded (the lease held, the first entry of a job)
    -- enqueues its follow-ups; a key already taken (a finish retried after its commit) is skipped.
    WITH f AS (
        SELECT x.n, (x.e ->> 'job')::numeric::integer AS pos, x.e ->> 'type' AS t, x.e -> 'payload' AS p,
               x.e ->> 'key' AS k, (x.e ->> 'priority')::numeric::integer AS prio,
               (x.e ->> 'max_attempts')::numeric::integer AS att
        FROM jsonb_array_elements(p_followups) WITH ORDINALITY AS x(e, n)
        WHERE v_states[(x.e ->> 'job')::numeric::integer] = 'succeeded'
    ),
    inserted AS (
        INSERT INTO jobforge.jobs AS j (tenant_id, project, type, payload, payload_hash, priority,
                                        run_at, max_attempts, idempotency_key, trace_id, parent_id,
                                        created_at, updated_at)
        SELECT pj.tenant_id, pj.project, f.t, f.p,
               'sha256:' || encode(sha256(convert_to(f.p::text, 'UTF8')), 'hex'),
               coalesce(f.prio, 0), v_now, coalesce(f.att, 3), f.k, pj.trace_id, pj.id, v_now, v_now
        FROM f JOIN jobforge.jobs pj ON pj.id = p_job_ids[f.pos]
        ORDER BY f.n
        ON CONFLICT (tenant_id, project, type, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING j.id, j.tenant_id, j.parent_id
    )
    INSERT INTO jobforge.job_events (job_id, tenant_id, kind, at, data)
    SELECT i.id, i.tenant_id, 'created', v_now, jsonb_build_object('parent_id', i.parent_id)
    FROM inserted i ORDER BY i.id;

    RETURN QUERY
    SELECT p_job_ids[k.i]::bigint, k.state
    FROM unnest(v_states) WITH ORDINALITY AS k(state, i) ORDER BY k.i;
END $$;

REVOKE ALL ON FUNCTION
    jobforge.version_core(text),
    jobforge.whole_number_between(jsonb, integer, integer),
    jobforge.catalogue_sync_v1(text, text, jsonb, jsonb, text, boolean),
    jobforge.catalogue_enable_v1(text, boolean),
    jobforge.finish_followups_v1(text, bigint[], uuid[], text[], jsonb[], jsonb[], timestamptz,
                                 double precision, double precision, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    jobforge.catalogue_sync_v1(text, text, jsonb, jsonb, text, boolean),
    jobforge.catalogue_enable_v1(text, boolean),
    jobforge.finish_followups_v1(text, bigint[], uuid[], text[], jsonb[], jsonb[], timestamptz,
                                 double precision, double precision, jsonb) TO jobforge_worker;
