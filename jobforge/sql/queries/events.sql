-- Events and triggers (migrations/0020): the tenant's calls, in its transaction (under
-- row-level security as jobforge_app when the login may).

-- name: event_submit
SELECT * FROM jobforge.event_submit_v1(
    %(type)s, %(source)s, %(subject)s, %(data)s::jsonb, %(dedupe_key)s,
    %(occurred_at)s::timestamptz, %(dry_run)s::boolean, %(now)s::timestamptz)

-- name: event_list
-- The newest first, at most %(limit)s, of a type and since an instant when given.
SELECT * FROM jobforge.events
WHERE tenant_id = jobforge.current_tenant()
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
  AND (%(since)s::timestamptz IS NULL OR submitted_at >= %(since)s::timestamptz)
ORDER BY id DESC
LIMIT %(limit)s

-- name: trigger_add
SELECT * FROM jobforge.trigger_add_v1(
    %(name)s, %(event_type)s, %(predicates)s::jsonb, %(job_type)s, %(input)s::jsonb, %(dedupe)s,
    %(cooldown)s::interval, %(max_per_hour)s::integer, %(dry_run)s::boolean, %(paused)s::boolean,
    %(priority)s::integer, %(max_attempts)s::integer, %(now)s::timestamptz)

-- name: trigger_pause
SELECT * FROM jobforge.trigger_pause_v1(%(name)s, %(paused)s::boolean, %(now)s::timestamptz)

-- name: trigger_remove
SELECT jobforge.trigger_remove_v1(%(name)s) AS id

-- name: trigger_list
SELECT * FROM jobforge.triggers WHERE tenant_id = jobforge.current_tenant() ORDER BY name

-- name: trigger_get
SELECT * FROM jobforge.triggers
WHERE tenant_id = jobforge.current_tenant() AND name = %(name)s

-- name: trigger_test
SELECT * FROM jobforge.trigger_test_v1(%(name)s, %(event)s::jsonb)

-- name: trigger_evaluations
-- The newest first, at most %(limit)s, of one trigger (by name) or of all the tenant's.
SELECT e.id, e.trigger_id, t.name AS trigger, e.event_id, e.evaluated_at, e.outcome, e.reason,
       e.job_id, e.job, e.detail
FROM jobforge.trigger_evaluations e
JOIN jobforge.triggers t ON t.id = e.trigger_id
WHERE e.tenant_id = jobforge.current_tenant()
  AND (%(name)s::text IS NULL OR t.name = %(name)s::text)
ORDER BY e.id DESC
LIMIT %(limit)s
