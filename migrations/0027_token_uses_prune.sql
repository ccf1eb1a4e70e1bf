-- A policy token's or a signed envelope's use (token_uses, 0021) is kept while it could still be
-- presented again: until its expiry plus the largest clock skew a worker allows (trust_skew_s,
-- at most an hour), plus a day for a worker's clock that runs behind the database's or a use
-- recorded a while after its check. Past that the worker refuses the token or envelope as
-- expired, so the row guards nothing, and nothing deleted the rows: the table grew by one row per
-- signed or token-bearing job, for ever. The workers' periodic prune now takes them in batches.
-- An envelope that names no expiry can be presented for as long as its key is valid: its use is
-- recorded with ten years to live (admission.UNEXPIRING_USE), and a use of nine years or more is
-- never pruned.

CREATE INDEX token_uses_expiry ON jobforge.token_uses (expires_at);

CREATE FUNCTION jobforge.prune_token_uses_v1(p_batch integer DEFAULT 1000, p_now timestamptz DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_now timestamptz := jobforge.clock(p_now);
    v_n   integer;
BEGIN
    PERFORM jobforge.require_worker();
    IF NOT jobforge.worker_scope() THEN  -- else row-level security would hide every row
        RAISE EXCEPTION 'prune: the transaction needs the worker scope (jobforge.scope = worker)'
            USING ERRCODE = 'JF006';
    END IF;
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 50000 THEN
        RAISE EXCEPTION 'prune: the batch must be 1-50000' USING ERRCODE = 'JF006';
    END IF;
    -- Oldest first, skipping rows another worker's prune (or a use being recorded) holds.
    WITH gone AS (
        DELETE FROM jobforge.token_uses u
        WHERE u.ctid = ANY (ARRAY(
            SELECT x.ctid FROM jobforge.token_uses x
            WHERE x.expires_at < v_now - interval '1 day 1 hour'
              AND x.expires_at < x.used_at + interval '9 years'  -- else: names no expiry
            ORDER BY x.expires_at
            LIMIT p_batch
            FOR UPDATE SKIP LOCKED
        ))
        RETURNING 1
    )
    SELECT count(*) INTO v_n FROM gone;
    RETURN v_n;
END $$;

REVOKE ALL ON FUNCTION jobforge.prune_token_uses_v1(integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobforge.prune_token_uses_v1(integer, timestamptz) TO jobforge_worker;
