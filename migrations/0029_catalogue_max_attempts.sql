-- A runner declares how many attempts its jobs get (`@runner(max_attempts=8)`, in its contract
-- lock), and a producer that has the runner's code applies it. A producer without the code
-- enqueues through the runner catalogue (0019: `request`, MCP, `jobforge enqueue` of a synced
-- type), which did not hold it: those jobs took the default 3 attempts, so a webhook's delivery
-- was given up after 3 tries instead of 8. The catalogue now holds the declared max_attempts
-- (NULL: none declared, or synced before this migration until the next sync), and such a
-- producer applies it unless the job names its own.

ALTER TABLE jobforge.runner_catalogue
    ADD COLUMN max_attempts integer CHECK (max_attempts BETWEEN 1 AND 1000);

-- catalogue_sync_v1 and the runner's max_attempts (NULL: none declared). The contract hash
-- covers max_attempts, so a change of it is a contract change, with v1's version rules; an
-- entry synced before this migration gets it on its next sync, even when otherwise unchanged.
CREATE FUNCTION jobforge.catalogue_sync_v2(
    p_runner_id text, p_version text, p_input_schema jsonb, p_output_schema jsonb,
    p_contract_sha256 text, p_force boolean, p_max_attempts integer
) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_action text;
BEGIN
    PERFORM jobforge.require_worker();
    IF p_max_attempts IS NOT NULL AND p_max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'runner %: max_attempts % is out of range 1-1000', p_runner_id,
            p_max_attempts USING ERRCODE = 'JF006';
    END IF;
    v_action := jobforge.catalogue_sync_v1(p_runner_id, p_version, p_input_schema,
                                           p_output_schema, p_contract_sha256, p_force);
    UPDATE jobforge.runner_catalogue c SET max_attempts = p_max_attempts
    WHERE c.runner_id = p_runner_id AND c.max_attempts IS DISTINCT FROM p_max_attempts;
    RETURN v_action;
END $$;

REVOKE ALL ON FUNCTION
    jobforge.catalogue_sync_v2(text, text, jsonb, jsonb, text, boolean, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    jobforge.catalogue_sync_v2(text, text, jsonb, jsonb, text, boolean, integer) TO jobforge_worker;
