-- Artifacts ([6/10]): the bytes of every artifact a run writes, of any size, stored
-- content-addressed per tenant, and the references from each run record to them.
--
-- artifact_blobs:  one row per (tenant, sha256): the blob's size, its chunk count and whether
--                  every chunk arrived. Per tenant, never across tenants: a blob shared between
--                  tenants would tell one tenant that another holds the same bytes (a write that
--                  is skipped because the bytes exist is an oracle). Within a tenant the same
--                  bytes are stored once, whichever runs wrote them.
-- artifact_chunks: the bytes, in chunks of exactly 1 MiB (the last one shorter), so no row, no
--                  statement and no server-side value is ever larger than a chunk, whatever the
--                  artifact's size. Fixed-size chunks make a chunk's content a function of
--                  (sha256, seq): two workers storing the same blob at once write the same rows.
-- artifact_refs:   which blob each artifact of each run record is (name, sha256, size), written
--                  with the run record in one transaction (record_run_v2, which also stores the
--                  run's small blobs, one chunk each, in that call) and deleted with it
--                  (ON DELETE CASCADE from job_runs): a prune of jobs or of run records drops
--                  the references, and prune_artifacts_v1 then deletes the blobs no reference
--                  holds. A reference cannot point at a blob that is missing (the foreign key)
--                  or incomplete (record_run_v2 checks).
--
-- Writes are the worker's, fenced on the attempt's lease token like record_run_v1: the tenant is
-- the attempt's, never the caller's word, and an attempt may store blobs only until its run
-- record is written. The sha256 is not recomputed by the server (Postgres hashes a value only
-- whole, and a blob may be larger than a value can be): every reader verifies it while reading
-- (jobforge.queue.store) and refuses bytes that do not match. The server checks what it can
-- chunk by chunk: each chunk's position and length against the declared size, and that every
-- chunk is there before a blob is complete; a blob of one chunk (artifact_put_v1, one round trip)
-- it hashes too.
--
-- Reads are plain SELECTs under row-level security (forced, as everywhere): an app login sees
-- its tenant's blobs, a worker in the worker scope every tenant's.

CREATE TABLE jobforge.artifact_blobs (
    tenant_id  text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
    sha256     text NOT NULL CHECK (sha256 ~ '^sha256:[0-9a-f]{64}$'),
    size       bigint NOT NULL CHECK (size BETWEEN 0 AND 1099511627776),  -- up to 1 TiB
    chunks     integer NOT NULL,
    complete   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    touched_at timestamptz NOT NULL,  -- last stored or found stored: a prune's grace runs from it
    PRIMARY KEY (tenant_id, sha256),
    CONSTRAINT artifact_blobs_chunks CHECK (chunks = (size + 1048575) / 1048576)
);
CREATE INDEX artifact_blobs_by_touch ON jobforge.artifact_blobs (touched_at, tenant_id, sha256);

CREATE TABLE jobforge.artifact_chunks (
    tenant_id text NOT NULL,
    sha256    text NOT NULL,
    seq       integer NOT NULL CHECK (seq >= 0),
    data      bytea NOT NULL CHECK (octet_length(data) BETWEEN 1 AND 1048576),
    PRIMARY KEY (tenant_id, sha256, seq),
    FOREIGN KEY (tenant_id, sha256) REFERENCES jobforge.artifact_blobs (tenant_id, sha256)
        ON DELETE CASCADE
);

CREATE TABLE jobforge.artifact_refs (
    tenant_id   text NOT NULL,
    lease_token uuid NOT NULL REFERENCES jobforge.job_runs (lease_token) ON DELETE CASCADE,
    name        text NOT NULL CHECK (
        name = '@logs.jsonl'
        OR (name ~ '^[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,199}$' AND name !~ '(^|/)\.{1,2}(/|$)'
            AND name !~ '//' AND name !~ '/$')
    ),
    sha256      text NOT NULL,
    size        bigint NOT NULL,
    PRIMARY KEY (lease_token, name),
    FOREIGN KEY (tenant_id, sha256) REFERENCES jobforge.artifact_blobs (tenant_id, sha256)
);
CREATE INDEX artifact_refs_by_blob ON jobforge.artifact_refs (tenant_id, sha256);

ALTER TABLE jobforge.artifact_blobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobforge.artifact_blobs FORCE ROW LEVEL SECURITY;
ALTER TABLE jobforge.artifact_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobforge.artifact_chunks FORCE ROW LEVEL SECURITY;
ALTER TABLE jobforge.artifact_refs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobforge.artifact_refs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON jobforge.artifact_blobs
    USING (tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope()))
    WITH CHECK (tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope()));
CREATE POLICY tenant_isolation ON jobforge.artifact_chunks
    USING (tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope()))
    WITH CHECK (tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope()));
CREATE POLICY tenant_isolation ON jobforge.artifact_refs
    USING (tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope()))
    WITH CHECK (tenant_id = (SELECT jobforge.current_tenant()) OR (SELECT jobforge.worker_scope()));

REVOKE ALL ON jobforge.artifact_blobs, jobforge.artifact_chunks, jobforge.artifact_refs FROM PUBLIC;
GRANT SELECT ON jobforge.artifact_blobs, jobforge.artifact_chunks, jobforge.artifact_refs
    TO jobforge_app, jobforge_worker;

-- The tenant of the attempt (worker, job, lease token) while it may still store blobs: its run
-- record is not written yet. NULL otherwise. Internal: the functions below call it.
CREATE FUNCTION jobforge.artifact_fence(p_worker text, p_job_id bigint, p_token uuid)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.tenant_id FROM jobforge.job_attempts a
    WHERE a.lease_token OPERATOR(pg_catalog.=) jobforge.lease_id(p_token)
      AND a.job_id OPERATOR(pg_catalog.=) p_job_id AND a.worker OPERATOR(pg_catalog.=) p_worker
      AND NOT EXISTS (SELECT 1 FROM jobforge.job_runs r
                      WHERE r.lease_token OPERATOR(pg_catalog.=) jobforge.lease_id(p_token))
$$;

-- Start storing a blob for the attempt: 'lost' when the attempt is not this worker's (or its
-- record is written), 'stored' when the tenant holds the complete blob already (nothing to send;
-- its grace starts again), 'send' when its chunks are to be sent (artifact_chunk_v1), then
-- artifact_finish_v1. `p_tenant` is the caller's idea of the tenant: refused unless the
-- attempt's.
CREATE FUNCTION jobforge.artifact_begin_v1(
    p_worker text, p_job_id bigint, p_token uuid, p_tenant text, p_sha256 text, p_size bigint,
    p_now timestamptz DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := jobforge.clock(p_now);
    v_tenant   text;
    v_complete boolean;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_sha256 IS NULL OR p_sha256 !~ '^sha256:[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'artifact: % is not a sha256 (sha256:<64 hex>)',
            coalesce(quote_literal(left(p_sha256, 80)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF p_size IS NULL OR p_size NOT BETWEEN 0 AND 1099511627776 THEN
        RAISE EXCEPTION 'artifact: size % is out of range 0-1099511627776', p_size
            USING ERRCODE = 'JF006';
    END IF;
    v_tenant := jobforge.artifact_fence(p_worker, p_job_id, p_token);
    IF v_tenant IS NULL THEN
        RETURN 'lost';
    END IF;
    IF p_tenant IS DISTINCT FROM v_tenant THEN
        RAISE EXCEPTION 'artifact: job % belongs to another tenant than %', p_job_id,
            coalesce(quote_literal(left(p_tenant, 130)), 'null') USING ERRCODE = 'JF006';
    END IF;
    INSERT INTO jobforge.artifact_blobs AS b (tenant_id, sha256, size, chunks, created_at,
                                              touched_at)
    VALUES (v_tenant, p_sha256, p_size, (p_size + 1048575) / 1048576, v_now, v_now)
    ON CONFLICT (tenant_id, sha256) DO UPDATE SET touched_at = EXCLUDED.touched_at
    RETURNING b.complete INTO v_complete;
    RETURN CASE WHEN v_complete THEN 'stored' ELSE 'send' END;
END $$;

-- One chunk of a blob begun by the attempt: seq from 0, each 1 MiB but the last. A chunk already
-- there is left as it is (same sha256 and seq: the same bytes). False when the attempt is lost.
CREATE FUNCTION jobforge.artifact_chunk_v1(
    p_worker text, p_job_id bigint, p_token uuid, p_sha256 text, p_seq integer, p_data bytea
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text;
    v_blob   jobforge.artifact_blobs;
    v_want   bigint;
BEGIN
    PERFORM jobforge.require_worker();
    v_tenant := jobforge.artifact_fence(p_worker, p_job_id, p_token);
    IF v_tenant IS NULL THEN
        RETURN false;
    END IF;
    SELECT * INTO v_blob FROM jobforge.artifact_blobs b
    WHERE b.tenant_id = v_tenant AND b.sha256 = p_sha256;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'artifact: % was not begun (artifact_begin_v1 first)',
            coalesce(quote_literal(left(p_sha256, 80)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF v_blob.complete THEN
        RETURN true;
    END IF;
    IF p_seq IS NULL OR p_seq < 0 OR p_seq >= v_blob.chunks THEN
        RAISE EXCEPTION 'artifact: chunk % is out of range 0-% for % bytes', p_seq,
            v_blob.chunks - 1, v_blob.size USING ERRCODE = 'JF006';
    END IF;
    v_want := least(1048576, v_blob.size - p_seq::bigint * 1048576);
    IF p_data IS NULL OR octet_length(p_data) <> v_want THEN
        RAISE EXCEPTION 'artifact: chunk % is % bytes, not %', p_seq, octet_length(p_data), v_want
            USING ERRCODE = 'JF006';
    END IF;
    INSERT INTO jobforge.artifact_chunks (tenant_id, sha256, seq, data)
    VALUES (v_tenant, p_sha256, p_seq, p_data)
    ON CONFLICT (tenant_id, sha256, seq) DO NOTHING;
    RETURN true;
END $$;

-- The blob is complete once every chunk is there; an error names what is missing. False when
-- the attempt is lost.
CREATE FUNCTION jobforge.artifact_finish_v1(
    p_worker text, p_job_id bigint, p_token uuid, p_sha256 text
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text;
    v_blob   jobforge.artifact_blobs;
    v_count  bigint;
    v_bytes  bigint;
BEGIN
    PERFORM jobforge.require_worker();
    v_tenant := jobforge.artifact_fence(p_worker, p_job_id, p_token);
    IF v_tenant IS NULL THEN
        RETURN false;
    END IF;
    SELECT * INTO v_blob FROM jobforge.artifact_blobs b
    WHERE b.tenant_id = v_tenant AND b.sha256 = p_sha256 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'artifact: % was not begun (artifact_begin_v1 first)',
            coalesce(quote_literal(left(p_sha256, 80)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF v_blob.complete THEN
        RETURN true;
    END IF;
    SELECT count(*), coalesce(sum(octet_length(c.data)), 0) INTO v_count, v_bytes
    FROM jobforge.artifact_chunks c WHERE c.tenant_id = v_tenant AND c.sha256 = p_sha256;
    IF v_count <> v_blob.chunks OR v_bytes <> v_blob.size THEN
        RAISE EXCEPTION 'artifact: % has % of % chunks (% of % bytes)', p_sha256, v_count,
            v_blob.chunks, v_bytes, v_blob.size USING ERRCODE = 'JF006';
    END IF;
    UPDATE jobforge.artifact_blobs b SET complete = true
    WHERE b.tenant_id = v_tenant AND b.sha256 = p_sha256;
    RETURN true;
END $$;

-- A blob of at most one chunk (most artifacts) in one call, and so one round trip: begun, its
-- chunk stored and finished; its sha256 checked by the server too (a value this small is hashed
-- whole). 'lost', 'stored' (already there, or now), as artifact_begin_v1.
CREATE FUNCTION jobforge.artifact_put_v1(
    p_worker text, p_job_id bigint, p_token uuid, p_tenant text, p_sha256 text, p_data bytea,
    p_now timestamptz DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_state text;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_data IS NULL OR octet_length(p_data) > 1048576 THEN
        RAISE EXCEPTION 'artifact: artifact_put_v1 takes 0 to 1048576 bytes, not %; send larger '
            'blobs in chunks (artifact_begin_v1)', octet_length(p_data) USING ERRCODE = 'JF006';
    END IF;
    IF p_sha256 IS DISTINCT FROM 'sha256:' || encode(sha256(p_data), 'hex') THEN
        RAISE EXCEPTION 'artifact: the bytes hash to sha256:%, not %', encode(sha256(p_data), 'hex'),
            coalesce(quote_literal(left(p_sha256, 80)), 'null') USING ERRCODE = 'JF006';
    END IF;
    v_state := jobforge.artifact_begin_v1(p_worker, p_job_id, p_token, p_tenant, p_sha256,
                                          octet_length(p_data), p_now);
    IF v_state <> 'send' THEN
        RETURN v_state;
    END IF;
    IF octet_length(p_data) > 0 THEN
        PERFORM jobforge.artifact_chunk_v1(p_worker, p_job_id, p_token, p_sha256, 0, p_data);
    END IF;
    PERFORM jobforge.artifact_finish_v1(p_worker, p_job_id, p_token, p_sha256);
    RETURN 'stored';
END $$;

-- record_run_v1 and, in the same transaction, the references of the run's artifacts: each a
-- complete blob of the attempt's tenant, of the size given (else nothing is written, and the
-- error names the artifact). `p_datas`, when given, holds beside each artifact its bytes when
-- they are one chunk at most (NULL for one stored before, by artifact_put_v1 or in chunks):
-- those are hashed and stored here, so a run's small artifacts cost no call, no transaction and
-- no commit of their own. False as record_run_v1.
CREATE FUNCTION jobforge.record_run_v2(
    p_worker text, p_job_id bigint, p_token uuid, p_runner_id text, p_runner_version text,
    p_status text, p_input_sha256 text, p_output_sha256 text, p_trace_sha256 text,
    p_record jsonb, p_names text[], p_shas text[], p_sizes bigint[], p_datas bytea[] DEFAULT NULL,
    p_now timestamptz DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now    timestamptz := jobforge.clock(p_now);
    v_token  uuid := jobforge.lease_id(p_token);
    v_tenant text;
    v_bad    text;
BEGIN
    PERFORM jobforge.require_worker();
    IF cardinality(p_names) IS DISTINCT FROM cardinality(p_shas)
       OR cardinality(p_names) IS DISTINCT FROM cardinality(p_sizes)
       OR (p_datas IS NOT NULL AND cardinality(p_datas) IS DISTINCT FROM cardinality(p_names)) THEN
        RAISE EXCEPTION 'record_run: % artifact names, % hashes, % sizes and % contents',
            cardinality(p_names), cardinality(p_shas), cardinality(p_sizes), cardinality(p_datas)
            USING ERRCODE = 'JF006';
    END IF;
    SELECT n INTO v_bad FROM unnest(p_names) AS n
    WHERE n IS NULL OR NOT (n = '@logs.jsonl' OR (n ~ '^[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,199}$'
        AND n !~ '(^|/)\.{1,2}(/|$)' AND n !~ '//' AND n !~ '/$'))
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'record_run: artifact name % is invalid',
            coalesce(quote_literal(left(v_bad, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    IF (SELECT count(DISTINCT n) FROM unnest(p_names) AS n) <> coalesce(cardinality(p_names), 0)
    THEN
        RAISE EXCEPTION 'record_run: an artifact name is given twice' USING ERRCODE = 'JF006';
    END IF;
    SELECT a.name INTO v_bad
    FROM unnest(p_names, p_shas, p_sizes, p_datas) AS a(name, sha256, size, data)
    WHERE a.data IS NOT NULL AND (
        octet_length(a.data) > 1048576 OR octet_length(a.data) IS DISTINCT FROM a.size
        OR a.sha256 IS DISTINCT FROM 'sha256:' || encode(sha256(a.data), 'hex'))
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'record_run: the bytes of artifact % are not of its sha256 and size, or '
            'more than one chunk', coalesce(quote_literal(left(v_bad, 240)), 'null')
            USING ERRCODE = 'JF006';
    END IF;
    v_tenant := jobforge.artifact_fence(p_worker, p_job_id, p_token);
    IF NOT jobforge.record_run_v1(p_worker, p_job_id, p_token, p_runner_id, p_runner_version,
                                  p_status, p_input_sha256, p_output_sha256, p_trace_sha256,
                                  p_record, p_now) THEN
        RETURN false;
    END IF;
    IF p_datas IS NOT NULL THEN  -- the small ones, hashed above: stored (or found stored) here
        INSERT INTO jobforge.artifact_blobs AS b (tenant_id, sha256, size, chunks, complete,
                                                  created_at, touched_at)
        SELECT DISTINCT ON (a.sha256) v_tenant, a.sha256, octet_length(a.data),
               (octet_length(a.data) + 1048575) / 1048576, true, v_now, v_now
        FROM unnest(p_shas, p_datas) AS a(sha256, data)
        WHERE a.data IS NOT NULL
        ORDER BY a.sha256
        ON CONFLICT (tenant_id, sha256) DO UPDATE
        SET touched_at = EXCLUDED.touched_at, size = EXCLUDED.size, chunks = EXCLUDED.chunks,
            complete = true;
        INSERT INTO jobforge.artifact_chunks AS c (tenant_id, sha256, seq, data)
        SELECT DISTINCT ON (a.sha256) v_tenant, a.sha256, 0, a.data
        FROM unnest(p_shas, p_datas) AS a(sha256, data)
        WHERE octet_length(a.data) > 0
        ORDER BY a.sha256
        ON CONFLICT (tenant_id, sha256, seq) DO UPDATE SET data = EXCLUDED.data
        WHERE c.data IS DISTINCT FROM EXCLUDED.data;  -- bytes just hashed win over any others
    END IF;
    SELECT a.name INTO v_bad
    FROM unnest(p_names, p_shas, p_sizes) AS a(name, sha256, size)
    WHERE NOT EXISTS (SELECT 1 FROM jobforge.artifact_blobs b
                      WHERE b.tenant_id = v_tenant AND b.sha256 = a.sha256
                        AND b.size = a.size AND b.complete)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'record_run: artifact % is not stored complete with that hash and size',
            coalesce(quote_literal(left(v_bad, 240)), 'null') USING ERRCODE = 'JF006';
    END IF;
    INSERT INTO jobforge.artifact_refs (tenant_id, lease_token, name, sha256, size)
    SELECT v_tenant, v_token, a.name, a.sha256, a.size
    FROM unnest(p_names, p_shas, p_sizes) AS a(name, sha256, size);
    RETURN true;
END $$;

-- One batch of a prune of blobs: those of `p_tenant` (default: every tenant) that no run
-- references and that were last stored (or found stored) more than `p_grace` ago, the grace
-- covering a worker between storing its blobs and recording its run. Walks blobs in
-- (touched_at, tenant, sha256) order after the cursor it returned last; locks its window SKIP
-- LOCKED, as prune_v1 does. A dry run counts instead. Operators and workers only.
CREATE FUNCTION jobforge.prune_artifacts_v1(
    p_tenant       text DEFAULT NULL,
    p_grace        interval DEFAULT interval '1 hour',
    p_batch        integer DEFAULT 1000,
    p_dry_run      boolean DEFAULT false,
    p_after_at     timestamptz DEFAULT NULL,
    p_after_tenant text DEFAULT NULL,
    p_after_sha    text DEFAULT NULL,
    p_now          timestamptz DEFAULT NULL
) RETURNS TABLE (blobs bigint, bytes bigint, after_at timestamptz, after_tenant text,
                 after_sha text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now    timestamptz := jobforge.clock(p_now);
    v_cutoff timestamptz;
    v_n      bigint;
    v_ctids  tid[];
    v_blobs  bigint;
    v_bytes  bigint;
    v_at     timestamptz;
    v_tenant text;
    v_sha    text;
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN
        RAISE EXCEPTION 'prune: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_grace IS NULL OR NOT (p_grace >= interval '0' AND p_grace <= interval '100 years') THEN
        RAISE EXCEPTION 'prune: grace % is out of range 0-100 years', p_grace
            USING ERRCODE = 'JF006';
    END IF;
    IF p_tenant IS NOT NULL AND (p_tenant !~ '^[A-Za-z0-9._:-]+$' OR length(p_tenant) > 128) THEN
        RAISE EXCEPTION 'prune: tenant % is not a valid tenant id',
            quote_literal(left(p_tenant, 130)) USING ERRCODE = 'JF006';
    END IF;
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 50000 THEN
        RAISE EXCEPTION 'prune: batch % is out of range 1-50000', p_batch USING ERRCODE = 'JF006';
    END IF;
    v_cutoff := v_now - p_grace;

    -- The window (locked unless dry), and which of it no reference holds.
    IF p_dry_run THEN
        SELECT count(*), coalesce(array_agg(w.ctid) FILTER (WHERE w.orphan), '{}'),
               count(*) FILTER (WHERE w.orphan), coalesce(sum(w.size) FILTER (WHERE w.orphan), 0),
               (array_agg(w.touched_at ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1],
               (array_agg(w.tenant_id ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1],
               (array_agg(w.sha256 ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1]
        INTO v_n, v_ctids, v_blobs, v_bytes, v_at, v_tenant, v_sha
        FROM (
            SELECT b.ctid, b.tenant_id, b.sha256, b.size, b.touched_at,
                   NOT EXISTS (SELECT 1 FROM jobforge.artifact_refs r
                               WHERE r.tenant_id = b.tenant_id AND r.sha256 = b.sha256) AS orphan
            FROM jobforge.artifact_blobs b
            WHERE b.touched_at < v_cutoff AND (p_tenant IS NULL OR b.tenant_id = p_tenant)
              AND (b.touched_at, b.tenant_id, b.sha256)
                  > (coalesce(p_after_at, '-infinity'), coalesce(p_after_tenant, ''),
                     coalesce(p_after_sha, ''))
            ORDER BY b.touched_at, b.tenant_id, b.sha256
            LIMIT p_batch
        ) w;
    ELSE
        SELECT count(*), coalesce(array_agg(w.ctid) FILTER (WHERE w.orphan), '{}'),
               count(*) FILTER (WHERE w.orphan), coalesce(sum(w.size) FILTER (WHERE w.orphan), 0),
               (array_agg(w.touched_at ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1],
               (array_agg(w.tenant_id ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1],
               (array_agg(w.sha256 ORDER BY w.touched_at DESC, w.tenant_id DESC,
                          w.sha256 DESC))[1]
        INTO v_n, v_ctids, v_blobs, v_bytes, v_at, v_tenant, v_sha
        FROM (
            SELECT l.ctid, l.tenant_id, l.sha256, l.size, l.touched_at,
                   NOT EXISTS (SELECT 1 FROM jobforge.artifact_refs r
                               WHERE r.tenant_id = l.tenant_id AND r.sha256 = l.sha256) AS orphan
            FROM (
                SELECT b.ctid, b.tenant_id, b.sha256, b.size, b.touched_at
                FROM jobforge.artifact_blobs b
                WHERE b.touched_at < v_cutoff AND (p_tenant IS NULL OR b.tenant_id = p_tenant)
                  AND (b.touched_at, b.tenant_id, b.sha256)
                      > (coalesce(p_after_at, '-infinity'), coalesce(p_after_tenant, ''),
                         coalesce(p_after_sha, ''))
                ORDER BY b.touched_at, b.tenant_id, b.sha256
                LIMIT p_batch
                FOR UPDATE SKIP LOCKED
            ) l
        ) w;
        IF cardinality(v_ctids) > 0 THEN
            -- by ctid: the rows are locked. A reference written since this statement's snapshot
            -- makes the delete fail on its foreign key: the grace (from the last store of the
            -- blob) makes that a run stalled for longer than the grace between storing its
            -- blobs and recording itself.
            DELETE FROM jobforge.artifact_blobs b WHERE b.ctid = ANY (v_ctids);
        END IF;
    END IF;
    IF v_n < p_batch THEN  -- the window was not full: nothing is left after it
        RETURN QUERY SELECT v_blobs, v_bytes, NULL::timestamptz, NULL::text, NULL::text;
    ELSE
        RETURN QUERY SELECT v_blobs, v_bytes, v_at, v_tenant, v_sha;
    END IF;
END $$;

REVOKE ALL ON FUNCTION
    jobforge.artifact_fence(text, bigint, uuid),
    jobforge.artifact_put_v1(text, bigint, uuid, text, text, bytea, timestamptz),
    jobforge.artifact_begin_v1(text, bigint, uuid, text, text, bigint, timestamptz),
    jobforge.artifact_chunk_v1(text, bigint, uuid, text, integer, bytea),
    jobforge.artifact_finish_v1(text, bigint, uuid, text),
    jobforge.record_run_v2(text, bigint, uuid, text, text, text, text, text, text, jsonb, text[],
                           text[], bigint[], bytea[], timestamptz),
    jobforge.prune_artifacts_v1(text, interval, integer, boolean, timestamptz, text, text,
                                timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    jobforge.artifact_put_v1(text, bigint, uuid, text, text, bytea, timestamptz),
    jobforge.artifact_begin_v1(text, bigint, uuid, text, text, bigint, timestamptz),
    jobforge.artifact_chunk_v1(text, bigint, uuid, text, integer, bytea),
    jobforge.artifact_finish_v1(text, bigint, uuid, text),
    jobforge.record_run_v2(text, bigint, uuid, text, text, text, text, text, text, jsonb, text[],
                           text[], bigint[], bytea[], timestamptz),
    jobforge.prune_artifacts_v1(text, interval, integer, boolean, timestamptz, text, text,
                                timestamptz) TO jobforge_worker;
