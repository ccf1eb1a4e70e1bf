-- The dashboard's reads (jobforge.dashboard): plain SELECTs in the client's tenant transaction,
-- so row-level security binds them as it binds every tenant call; the explicit tenant and
-- project terms are there for the planner (the indexes lead with tenant_id), not for safety.

-- name: dashboard_jobs
-- One page of the tenant's jobs, newest first, keyset-paginated on id (`before_id`: the last
-- id of the previous page), filtered by status, type and creation time.
SELECT * FROM jobforge.jobs
WHERE tenant_id = jobforge.current_tenant()
  AND project = coalesce((SELECT jobforge.current_project()), project)
  AND (%(statuses)s::text[] IS NULL OR status::text = ANY (%(statuses)s::text[]))
  AND (%(types)s::text[] IS NULL OR type = ANY (%(types)s::text[]))
  AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s::timestamptz)
  AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s

-- name: dashboard_oldest_due
-- The queued job that has waited longest since it became due (the overview's "oldest due").
SELECT id, type, run_at, priority, attempts FROM jobforge.jobs
WHERE tenant_id = jobforge.current_tenant()
  AND project = coalesce((SELECT jobforge.current_project()), project)
  AND status = 'queued' AND run_at <= coalesce(%(now)s::timestamptz, now())
ORDER BY run_at, id
LIMIT 1

-- name: dashboard_throughput
-- Jobs finished per minute since `since` (the start of the window's first minute, given as a
-- value: a bound the planner can weigh against the column's histogram picks the short range of
-- jobs_finished_by_tenant; an expression of now() is guessed at a third of the table), succeeded
-- apart from the rest (failed, dead, canceled); minutes without any are absent.
SELECT date_trunc('minute', finished_at) AS minute,
       count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE status <> 'succeeded') AS other
FROM jobforge.jobs
WHERE tenant_id = jobforge.current_tenant()
  AND project = coalesce((SELECT jobforge.current_project()), project)
  AND finished_at IS NOT NULL
  AND finished_at >= %(since)s::timestamptz
GROUP BY 1
ORDER BY 1
