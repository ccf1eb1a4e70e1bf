-- Connector configs (the table of migrations/0002): one JSON object per (tenant, name), walled
-- per tenant by row-level security (forced), written through connector_set_v1 (migrations/0022:
-- the server's time, one-line refusals) and removed through connector_remove_v1 (0028: neither
-- by a login bound to projects), read by the tenant's logins and its runs.

-- name: connector_set
SELECT name, config, updated_at FROM jobforge.connector_set_v1(%(name)s, %(config)s)

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
SELECT name FROM jobforge.connector_remove_v1(%(name)s)
