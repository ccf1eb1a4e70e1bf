-- A connector (0022) is the whole tenant's: its runners in every project read it, a webhook's
-- secret or an API's credentials among them. A login bound to some of the tenant's projects
-- (tenant_logins.projects, 0016) acts for those projects only, yet it could set or remove any of
-- the tenant's connectors, the credentials the other projects' runs use. Such a login now reads
-- connectors (its runs need them) and neither sets nor removes one; a login bound to no project
-- (or not in tenant_logins) does both. Removal goes through a function too, so the rule is
-- checked in one place and the app role no longer deletes from the table itself.

-- Refuses a login bound to projects: what only a login for the whole tenant may change.
CREATE FUNCTION jobforge.require_whole_tenant_login() RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM jobforge.tenant_logins l
               WHERE l.login = session_user AND l.projects IS NOT NULL) THEN
        RAISE EXCEPTION 'login % is bound to projects (jobforge.tenant_logins): a connector is the '
            'whole tenant''s, set or removed by a login bound to no project', session_user
            USING ERRCODE = 'JF003';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION jobforge.connector_set_v1(p_name text, p_config jsonb)
RETURNS TABLE (name text, config jsonb, updated_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant  text := jobforge.require_tenant();
    v_problem text;
BEGIN
    PERFORM jobforge.require_whole_tenant_login();
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

CREATE FUNCTION jobforge.connector_remove_v1(p_name text)
RETURNS TABLE (name text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant text := jobforge.require_tenant();
BEGIN
    PERFORM jobforge.require_whole_tenant_login();
    RETURN QUERY
    DELETE FROM jobforge.connector_configs c
    WHERE c.tenant_id = v_tenant AND c.name = p_name
    RETURNING c.name;
END $$;

REVOKE DELETE ON jobforge.connector_configs FROM jobforge_app;
REVOKE ALL ON FUNCTION jobforge.require_whole_tenant_login() FROM PUBLIC;
REVOKE ALL ON FUNCTION jobforge.connector_remove_v1(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobforge.connector_remove_v1(text) TO jobforge_app;
