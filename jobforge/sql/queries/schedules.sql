-- Schedules and feature flags (migrations/0018). The tenant's calls run in its transaction
-- (under row-level security as jobforge_app when the login may); the workers' pass and the
-- flags take the worker scope (a member of jobforge_worker).

-- name: schedule_add
SELECT * FROM jobforge.schedule_add_v1(
    %(name)s, %(cron)s, %(timezone)s, %(type)s, %(input)s::jsonb, %(priority)s::integer,
    %(max_attempts)s::integer, %(missed)s, %(catch_up)s::integer, %(grace)s::interval,
    %(dry_run)s::boolean, %(paused)s::boolean, %(now)s::timestamptz)

-- name: schedule_pause
SELECT * FROM jobforge.schedule_pause_v1(%(name)s, %(paused)s::boolean, %(now)s::timestamptz)

-- name: schedule_remove
SELECT jobforge.schedule_remove_v1(%(name)s) AS id

-- name: schedule_list
SELECT * FROM jobforge.schedules WHERE tenant_id = jobforge.current_tenant() ORDER BY name

-- name: schedule_get
SELECT * FROM jobforge.schedules
WHERE tenant_id = jobforge.current_tenant() AND name = %(name)s

-- name: schedule_firings
-- The newest first, at most %(limit)s, of the tenant's schedule by that name.
SELECT f.id, f.schedule_id, f.slot, f.fired_at, f.outcome, f.job_id, f.job, f.detail, f.worker
FROM jobforge.schedule_firings f
JOIN jobforge.schedules s ON s.id = f.schedule_id
WHERE s.tenant_id = jobforge.current_tenant() AND s.name = %(name)s
ORDER BY f.id DESC
LIMIT %(limit)s

-- name: schedules_due
SELECT * FROM jobforge.schedules_due_v1(%(limit)s::integer, %(now)s::timestamptz)

-- name: schedule_fire
SELECT * FROM jobforge.schedule_fire_v1(%(plans)s::jsonb, %(worker)s, %(now)s::timestamptz)

-- name: feature_set
SELECT feature, tenant, enabled, updated_at, login, actor
FROM jobforge.set_feature_v1(%(feature)s, %(tenant)s, %(enabled)s::boolean)

-- name: feature_clear
SELECT jobforge.clear_feature_v1(%(feature)s, %(tenant)s)

-- name: feature_list
-- The deployment's rows ('*') first, then the tenants', by feature.
SELECT feature, tenant, enabled, updated_at, login, actor
FROM jobforge.features ORDER BY feature, tenant <> '*', tenant
