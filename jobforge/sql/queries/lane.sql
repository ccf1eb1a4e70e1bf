-- A golden lane's reset: the clone it runs cases on goes back to the template's state between
-- cases. Rows go per tenant (row-level security is forced even for the owner, and the lane's
-- role may be neither superuser nor a worker); deleting jobs deletes their attempts, events,
-- results and run records (the jobs_delete_children trigger), and the run records the artifact
-- references (migrations/0017); the tenant's artifact blobs go too, their chunks with them. The
-- runner catalogue is deployment-wide, not a tenant's: a case's runner cannot write it (only an
-- operator's functions do), but a test that syncs into a lane's clone must not leak its runners
-- into the next case, so it is emptied too (the template holds none).

-- name: lane_sequences
SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) AS name,
       coalesce(last_value, start_value) AS value,
       last_value IS NOT NULL AS called
FROM pg_sequences
WHERE schemaname = 'jobforge'
ORDER BY 1

-- name: lane_reset
WITH refs AS (DELETE FROM jobforge.artifact_refs),
     jobs AS (DELETE FROM jobforge.jobs),
     blobs AS (DELETE FROM jobforge.artifact_blobs),
     configs AS (DELETE FROM jobforge.connector_configs),
     schedules AS (DELETE FROM jobforge.schedules),  -- their firing logs go with them
     catalogue AS (DELETE FROM jobforge.runner_catalogue),
     events AS (DELETE FROM jobforge.events),  -- their evaluations go with them
     triggers AS (DELETE FROM jobforge.triggers)
SELECT setval(s.name::regclass, s.value, s.called)
FROM unnest(%(names)s::text[], %(values)s::bigint[], %(called)s::boolean[]) AS s(name, value, called)
