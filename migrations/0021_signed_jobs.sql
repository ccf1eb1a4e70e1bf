-- Who may run what ([8/10]): signed jobs, the tenants' signing keys, policy tokens used once,
-- per-job timeouts.
--
-- Envelope. A job may carry an envelope beside its payload (jobs.envelope, NULL for most jobs):
-- its own timeout (`timeout_s`), the ed25519 signatures over its canonical signing payload with
-- the payload's `issued_at`, `expires_at` and requested `run_at`, and a policy token. The queue
-- stores it as given and never reads inside it, as it never reads inside a run record: the
-- worker verifies it before a handler runs (jobforge/trust, docs/trust.md). The database is not
-- the guard, and not trusted as one: a row written straight into jobforge.jobs with no
-- envelope, or a forged one, is refused by the worker all the same. enqueue_v1 takes one
-- envelope per job (p_envelopes, last, defaulting to none) and checks only its shape.
--
-- Signing keys. Each tenant's ed25519 public keys: who they belong to, valid from/until, revoked.
-- A tenant's login reads its own keys (RLS, forced, like the jobs); only an operator (a
-- superuser or a member of jobforge_worker, as for the runner catalogue) adds, rotates or
-- revokes them, for the tenant its session names: a login that can enqueue must not be able to
-- register the key it then signs with. A key id names one public key for good (JF012 when it is
-- registered again with another key); revocation is final.
--
-- Token uses. A policy token's `jti` is recorded once per tenant, by the worker, when the job it
-- authorizes starts (token_consume_v1, fenced on the attempt's lease): a second job presenting
-- the same token is refused (JF013). A retried attempt of the same job is the same use. Rows
-- are kept until their token expires; past that the token is refused for its age anyway.

ALTER TABLE jobforge.jobs ADD COLUMN envelope jsonb
    CHECK (envelope IS NULL OR (jsonb_typeof(envelope) = 'object'
                                AND octet_length(envelope::text) <= 65536));

CREATE TABLE jobforge.signing_keys (
    tenant_id      text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
    key_id         text NOT NULL CHECK (key_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
    algorithm      text NOT NULL DEFAULT 'ed25519' CHECK (algorithm = 'ed25519'),
    public_key     bytea NOT NULL CHECK (octet_length(public_key) = 32),
    owner          text NOT NULL CHECK (length(owner) BETWEEN 1 AND 200 AND owner !~ '[[:cntrl:]]'),
    valid_from     timestamptz NOT NULL,
    valid_until    timestamptz,
    revoked_at     timestamptz,
    revoked_reason text CHECK (length(revoked_reason) <= 500 AND revoked_reason !~ '[[:cntrl:]]'),
    created_at     timestamptz NOT NULL,
    created_by     text NOT NULL DEFAULT session_user,
    PRIMARY KEY (tenant_id, key_id),
    UNIQUE (tenant_id, public_key),
    CHECK (valid_until IS NULL OR valid_until > valid_from)
);

CREATE TABLE jobforge.token_uses (
    tenant_id  text NOT NULL,
    jti        text NOT NULL CHECK (length(jti) BETWEEN 1 AND 200 AND jti !~ '[[:cntrl:]]'),
    job_id     bigint NOT NULL,  -- no reference: a pruned job's token stays used
    used_at    timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['signing_keys', 'token_uses'] LOOP
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
REVOKE ALL ON jobforge.signing_keys, jobforge.token_uses FROM PUBLIC;
-- Read only: every write goes through the functions below (operator, or the worker's lease).
GRANT SELECT ON jobforge.signing_keys, jobforge.token_uses TO jobforge_app, jobforge_worker;

-- Register a public key for the session's tenant: 'added', or 'unchanged' when the same key id
-- already names the same key. Another key under the id, or the key under another id, is JF012.
CREATE FUNCTION jobforge.signing_key_add_v1(
    p_key_id text, p_public_key bytea, p_owner text, p_valid_from timestamptz DEFAULT NULL,
    p_valid_until timestamptz DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_from   timestamptz := coalesce(p_valid_from, now());
    v_old    jobforge.signing_keys;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_key_id IS NULL OR p_key_id !~ '^[A-Za-z0-9._:-]{1,128}$' THEN
        RAISE EXCEPTION 'key id % is invalid: use 1-128 of [A-Za-z0-9._:-]',
            coalesce(quote_literal(left(p_key_id, 140)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_public_key IS NULL OR octet_length(p_public_key) <> 32 THEN
        RAISE EXCEPTION 'key %: an ed25519 public key is 32 bytes, not %', p_key_id,
            coalesce(octet_length(p_public_key), 0) USING ERRCODE = 'JF006';
    END IF;
    IF p_owner IS NULL OR length(p_owner) NOT BETWEEN 1 AND 200 OR p_owner ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'key %: the owner must be 1-200 printable characters', p_key_id
            USING ERRCODE = 'JF006';
    END IF;
    IF NOT isfinite(v_from) OR (p_valid_until IS NOT NULL
                                AND (NOT isfinite(p_valid_until) OR p_valid_until <= v_from)) THEN
        RAISE EXCEPTION 'key %: valid_until must be a finite time after valid_from', p_key_id
            USING ERRCODE = 'JF006';
    END IF;
    SELECT * INTO v_old FROM jobforge.signing_keys k
    WHERE k.tenant_id = v_tenant AND (k.key_id = p_key_id OR k.public_key = p_public_key)
    ORDER BY k.key_id = p_key_id DESC LIMIT 1;
    IF FOUND THEN
        IF v_old.key_id = p_key_id AND v_old.public_key = p_public_key THEN
            RETURN 'unchanged';
        END IF;
        IF v_old.key_id = p_key_id THEN
            RAISE EXCEPTION 'key id % already names another public key of tenant %: a key id is never reused',
                p_key_id, v_tenant USING ERRCODE = 'JF012';
        END IF;
        RAISE EXCEPTION 'this public key is already registered for tenant % as %', v_tenant,
            v_old.key_id USING ERRCODE = 'JF012';
    END IF;
    INSERT INTO jobforge.signing_keys (tenant_id, key_id, public_key, owner, valid_from,
                                       valid_until, created_at)
    VALUES (v_tenant, p_key_id, p_public_key, p_owner, v_from, p_valid_until, now());
    RETURN 'added';
END $$;

-- Revoke a key of the session's tenant for good: whether it changed anything (a key revoked
-- already keeps its first revocation). An unknown key id is JF004.
CREATE FUNCTION jobforge.signing_key_revoke_v1(p_key_id text, p_reason text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_old    jobforge.signing_keys;
BEGIN
    PERFORM jobforge.require_worker();
    IF length(p_reason) > 500 OR p_reason ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'key %: the reason must be at most 500 printable characters',
            left(p_key_id, 140) USING ERRCODE = 'JF006';
    END IF;
    SELECT * INTO v_old FROM jobforge.signing_keys k
    WHERE k.tenant_id = v_tenant AND k.key_id = p_key_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no signing key % for tenant %',
            coalesce(quote_literal(left(p_key_id, 140)), 'null'), v_tenant USING ERRCODE = 'JF004';
    END IF;
    IF v_old.revoked_at IS NOT NULL THEN
        RETURN false;
    END IF;
    UPDATE jobforge.signing_keys k SET revoked_at = now(), revoked_reason = p_reason
    WHERE k.tenant_id = v_tenant AND k.key_id = p_key_id;
    RETURN true;
END $$;

-- Rotate: register the new key (valid from now) and end the old one's validity after the
-- overlap, in one transaction, so there is never a moment with neither key valid. The old key
-- must be known and not revoked (JF004, JF012); an old key ending sooner keeps its end.
CREATE FUNCTION jobforge.signing_key_rotate_v1(
    p_old_key_id text, p_new_key_id text, p_public_key bytea, p_owner text,
    p_overlap interval DEFAULT interval '1 day'
) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
    v_old    jobforge.signing_keys;
    v_until  timestamptz;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_overlap IS NULL OR p_overlap < interval '0' OR p_overlap > interval '366 days' THEN
        RAISE EXCEPTION 'rotate: the overlap must be between 0 and 366 days' USING ERRCODE = 'JF006';
    END IF;
    SELECT * INTO v_old FROM jobforge.signing_keys k
    WHERE k.tenant_id = v_tenant AND k.key_id = p_old_key_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no signing key % for tenant %',
            coalesce(quote_literal(left(p_old_key_id, 140)), 'null'), v_tenant USING ERRCODE = 'JF004';
    END IF;
    IF v_old.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'key % of tenant % is revoked: add a new key instead of rotating it',
            p_old_key_id, v_tenant USING ERRCODE = 'JF012';
    END IF;
    PERFORM jobforge.signing_key_add_v1(p_new_key_id, p_public_key, coalesce(p_owner, v_old.owner));
    v_until := least(coalesce(v_old.valid_until, 'infinity'), now() + p_overlap);
    IF v_until <= v_old.valid_from THEN
        v_until := v_old.valid_from + interval '1 microsecond';
    END IF;
    UPDATE jobforge.signing_keys k SET valid_until = v_until
    WHERE k.tenant_id = v_tenant AND k.key_id = p_old_key_id;
    RETURN v_until;
END $$;

-- The worker records a policy token's jti as used by the job it holds the lease of: 'ok' (also
-- when this job used it already: a retried attempt), 'lost' when the lease is not held. A jti
-- another job of the tenant used is JF013. The row is the job's tenant's, whatever the caller.
CREATE FUNCTION jobforge.token_consume_v1(
    p_worker text, p_job_id bigint, p_token uuid, p_jti text, p_expires_at timestamptz
) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_job  jobforge.jobs;
    v_used jobforge.token_uses;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_jti IS NULL OR length(p_jti) NOT BETWEEN 1 AND 200 OR p_jti ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'a token jti must be 1-200 printable characters' USING ERRCODE = 'JF006';
    END IF;
    IF p_expires_at IS NULL OR NOT isfinite(p_expires_at) THEN
        RAISE EXCEPTION 'a token''s expiry must be a finite time' USING ERRCODE = 'JF006';
    END IF;
    SELECT * INTO v_job FROM jobforge.jobs j
    WHERE j.id = p_job_id AND j.status = 'running' AND j.lease_holder = p_worker
      AND j.lease_token = jobforge.lease_id(p_token);
    IF NOT FOUND THEN
        RETURN 'lost';
    END IF;
    INSERT INTO jobforge.token_uses (tenant_id, jti, job_id, used_at, expires_at)
    VALUES (v_job.tenant_id, p_jti, p_job_id, now(), p_expires_at)
    ON CONFLICT (tenant_id, jti) DO NOTHING;
    IF FOUND THEN
        RETURN 'ok';
    END IF;
    SELECT * INTO v_used FROM jobforge.token_uses u
    WHERE u.tenant_id = v_job.tenant_id AND u.jti = p_jti;
    IF v_used.job_id = p_job_id THEN
        RETURN 'ok';
    END IF;
    RAISE EXCEPTION 'token % was already used by job % of this tenant: a policy token is used once',
        quote_literal(p_jti), v_used.job_id USING ERRCODE = 'JF013';
END $$;

-- Enqueue (0019's), storing each job's envelope (p_envelopes): the only change besides checking
-- that an envelope is a JSON object of at most 64 KiB. A new parameter, so the old signature goes.
DROP FUNCTION jobforge.enqueue_v1(text[], jsonb[], text[], integer[], timestamptz[], integer[],
                                  text[], timestamptz, integer, text[]);
CREATE FUNCTION jobforge.enqueue_v1(p_types text[], p_payloads jsonb[], p_idempotency_keys text[] DEFAULT NULL::text[], p_priorities integer[] DEFAULT NULL::integer[], p_run_ats timestamp with time zone[] DEFAULT NULL::timestamp with time zone[], p_max_attempts integer[] DEFAULT NULL::integer[], p_trace_ids text[] DEFAULT NULL::text[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_max_payload_bytes integer DEFAULT 1048576, p_projects text[] DEFAULT NULL::text[], p_envelopes jsonb[] DEFAULT NULL::jsonb[]) RETURNS TABLE(ord integer, job_id bigint, created boolean)
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
           jobforge.json_problem(u.p) AS problem, p_projects[u.i] AS proj,
           p_envelopes[u.i] AS env INTO v_bad
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
       OR jsonb_typeof(p_envelopes[u.i]) <> 'object' OR octet_length(p_envelopes[u.i]::text) > 65536
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
        ELSIF jsonb_typeof(v_bad.env) <> 'object' OR octet_length(v_bad.env::text) > 65536 THEN
            RAISE EXCEPTION 'job #%: the envelope (timeout, signatures, token) must be a JSON object of at most 65536 bytes',
                v_bad.i USING ERRCODE = 'JF006';
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
                                            run_at, max_attempts, trace_id, created_at, updated_at,
                                            envelope)
            SELECT v_tenant, coalesce(p_projects[u.i], v_scope, 'default'), u.t, u.p,
                   'sha256:' || encode(sha256(convert_to(u.p::text, 'UTF8')), 'hex'),
                   coalesce(p_priorities[u.i], 0), coalesce(p_run_ats[u.i], v_now),
                   coalesce(p_max_attempts[u.i], 3), p_trace_ids[u.i], v_now, v_now,
                   p_envelopes[u.i]
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
               p_trace_ids[u.i] AS trace, coalesce(p_projects[u.i], v_scope, 'default') AS proj,
               p_envelopes[u.i] AS env
        FROM unnest(p_types, p_payloads) WITH ORDINALITY AS u(t, p, i)
    ),
    inserted AS (
        INSERT INTO jobforge.jobs AS j (id, tenant_id, project, type, payload, payload_hash, priority,
                                        run_at, max_attempts, idempotency_key, trace_id, created_at,
                                        updated_at, envelope)
        OVERRIDING SYSTEM VALUE
        SELECT new_id, v_tenant, proj, t, p, 'sha256:' || encode(sha256(convert_to(p::text, 'UTF8')), 'hex'),
               prio, run_at, max_att, k, trace, v_now, v_now, env
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

REVOKE ALL ON FUNCTION
    jobforge.enqueue_v1(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[],
                        timestamptz, integer, text[], jsonb[]),
    jobforge.signing_key_add_v1(text, bytea, text, timestamptz, timestamptz),
    jobforge.signing_key_revoke_v1(text, text),
    jobforge.signing_key_rotate_v1(text, text, bytea, text, interval),
    jobforge.token_consume_v1(text, bigint, uuid, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    jobforge.enqueue_v1(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[],
                        timestamptz, integer, text[], jsonb[])
    TO jobforge_app;
-- An operator's: the app role (the logins that enqueue) may not even call them, and the
-- functions check the caller themselves too (a superuser, or a member of jobforge_worker).
GRANT EXECUTE ON FUNCTION
    jobforge.signing_key_add_v1(text, bytea, text, timestamptz, timestamptz),
    jobforge.signing_key_revoke_v1(text, text),
    jobforge.signing_key_rotate_v1(text, text, bytea, text, interval)
    TO jobforge_worker;
GRANT EXECUTE ON FUNCTION jobforge.token_consume_v1(text, bigint, uuid, text, timestamptz)
    TO jobforge_worker;
