-- Connector configs ([9/10]): the table of 0002, written through one function.
--
-- A tenant keeps its settings and secrets for outside systems here (a webhook's signing secret,
-- an API's allowed hosts and credential headers), one JSON object per name, walled per tenant
-- by 0002's forced row-level security; runners read them through ctx.connector(name) in the
-- job's tenant only. The table's CHECKs call json_problem, which the app role may not execute,
-- so a tenant's writes go through connector_set_v1 (SECURITY DEFINER, the tenant checked
-- against the session's), which names what is wrong in one line (JF015) instead of a
-- constraint's name: the name, a config that is not an object, over 64 KiB, or not loadable.
-- The time is the server's. Reads and deletes stay plain statements under the policies.

REVOKE INSERT, UPDATE ON jobforge.connector_configs FROM jobforge_app;

CREATE FUNCTION jobforge.connector_set_v1(p_name text, p_config jsonb)
RETURNS TABLE (name text, config jsonb, updated_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_problem text;
BEGIN
    IF p_name IS NULL OR p_name !~ '^[a-z0-9._-]{1,128}$' THEN
        RAISE EXCEPTION 'connector name % is invalid: use 1-128 of [a-z0-9._-]',
            quote_literal(left(coalesce(p_name, ''), 60)) USING ERRCODE = 'JF015';
    END IF;
    IF p_config IS NULL OR jsonb_typeof(p_config) <> 'object' THEN
        RAISE EXCEPTION 'connector %: the config must be a JSON object, not %', p_name,
            coalesce(jsonb_typeof(p_config), 'null') USING ERRCODE = 'JF015';
    END IF;
    IF octet_length(p_config::text) > 65536 THEN
        RAISE EXCEPTION 'connector %: the config is % bytes, over the limit of 65536', p_name,
            octet_length(p_config::text) USING ERRCODE = 'JF015';
    END IF;
    v_problem := jobforge.json_problem(p_config);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'connector %: the config cannot be stored: %', p_name, v_problem
            USING ERRCODE = 'JF015';
    END IF;
    RETURN QUERY
    INSERT INTO jobforge.connector_configs AS c (tenant_id, name, config, updated_at)
    VALUES (v_tenant, p_name, p_config, statement_timestamp())
    ON CONFLICT (tenant_id, name) DO UPDATE
        SET config = excluded.config, updated_at = excluded.updated_at
    RETURNING c.name, c.config, c.updated_at;
END $$;

REVOKE ALL ON FUNCTION jobforge.connector_set_v1(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobforge.connector_set_v1(text, jsonb) TO jobforge_app;
