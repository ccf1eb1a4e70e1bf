-- Queue statistics and bulk actions (migrations/0013): SECURITY DEFINER functions that scope
-- themselves (a tenant's transaction: its jobs; the worker scope: every tenant's, for stats).

-- name: job_stats
-- `at`: the time the figures are taken at (the database's clock, or a test's), so ages are
-- measured against the same clock as the rows; one row even when there are no jobs.
SELECT coalesce(%(now)s::timestamptz, now()) AS at, s.*
FROM (SELECT 1) AS one
LEFT JOIN jobforge.stats_v1(%(succeeded)s, %(expiring_s)s, %(recent_s)s, %(now)s) AS s ON true

-- name: job_bulk_retry
SELECT * FROM jobforge.bulk_retry_v1(%(statuses)s, %(types)s, %(since)s, %(reset_attempts)s,
                                     %(after_id)s, %(limit)s, %(dry_run)s, %(ids)s, %(now)s)

-- name: job_bulk_cancel
SELECT * FROM jobforge.bulk_cancel_v1(%(statuses)s, %(types)s, %(since)s, %(after_id)s,
                                      %(limit)s, %(dry_run)s, %(ids)s, %(now)s)
