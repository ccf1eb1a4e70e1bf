-- The runner catalogue (migrations/0019): deployment-wide, readable by every login, written
-- through SECURITY DEFINER functions that require an operator (a member of jobforge_worker).

-- name: catalogue_sync
SELECT jobforge.catalogue_sync_v2(%(id)s, %(version)s, %(input_schema)s::jsonb,
                                  %(output_schema)s::jsonb, %(contract_sha256)s, %(force)s,
                                  %(max_attempts)s::integer)

-- name: catalogue_enable
SELECT jobforge.catalogue_enable_v1(%(id)s, %(enabled)s)

-- name: catalogue_list
SELECT runner_id, version, input_schema, output_schema, contract_sha256, enabled, synced_at,
       synced_by, synced_actor, changed_at, changed_by, changed_actor, max_attempts
FROM jobforge.runner_catalogue
ORDER BY runner_id

-- name: catalogue_get
SELECT runner_id, version, input_schema, output_schema, contract_sha256, enabled, synced_at,
       synced_by, synced_actor, changed_at, changed_by, changed_actor, max_attempts
FROM jobforge.runner_catalogue
WHERE runner_id = %(id)s
