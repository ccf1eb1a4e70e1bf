-- Connector configs (the table of migrations/0002): one JSON object per (tenant, name), walled
-- per tenant by row-level security (forced), written by the tenant's app login, read by the
-- tenant's runs. Times are the server's.

-- name: connector_set
INSERT INTO jobforge.connector_configs AS c (tenant_id, name, config, updated_at)
VALUES (jobforge.require_tenant(), %(name)s, %(config)s, statement_timestamp())
ON CONFLICT (tenant_id, name) DO UPDATE
    SET config = excluded.config, updated_at = excluded.updated_at
RETURNING c.name, c.config, c.updated_at

-- name: connector_get
SELECT name, config, updated_at
FROM jobforge.connector_configs
WHERE tenant_id = jobforge.require_tenant() AND name = %(name)s

-- name: connector_list
SELECT name, config, updated_at
FROM jobforge.connector_configs
WHERE tenant_id = jobforge.require_tenant()
ORDER BY name

-- name: connector_remove
DELETE FROM jobforge.connector_configs
WHERE tenant_id = jobforge.require_tenant() AND name = %(name)s
RETURNING name
