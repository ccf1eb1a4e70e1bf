-- What `jobforge mcp` reads and calls beyond the queue client's own statements (migrations/0023).

-- name: job_claim_tenant
-- A claim held to one tenant: an agent acting as a worker for the tenant its connection is bound
-- to. Fenced and logged as claim_v1's; refused (JF017) where a queue limit applies.
SELECT * FROM jobforge.claim_tenant_v1(%(tenant)s, %(worker)s, %(limit)s, %(types)s, %(lease_s)s, %(now)s)

-- name: session_jobs
-- A correlation id's unfinished jobs (the jobs' trace_id, indexed by jobs_by_trace), oldest
-- first, with what the stale and blocked marks need: the database's now (leases expire by its
-- clock) and whether the job's runner is disabled in the catalogue. The tenant and project
-- scope bind as every read of the queue client's does.
SELECT j.*, now() AS read_at, coalesce(NOT c.enabled, false) AS runner_disabled
FROM jobforge.jobs j
LEFT JOIN jobforge.runner_catalogue c ON c.runner_id = j.type
WHERE j.tenant_id = jobforge.current_tenant()
  AND j.project = coalesce((SELECT jobforge.current_project()), j.project)
  AND j.trace_id = %(correlation_id)s
  AND j.finished_at IS NULL
ORDER BY j.id
LIMIT %(limit)s

-- name: session_tenant
-- The tenant the transaction may act for: NULL when the login is bound (jobforge.tenant_logins)
-- to other tenants, which reads do not say (they see nothing), so a server says it up front.
SELECT jobforge.current_tenant() AS tenant, session_user AS login
