-- Operator reads across tenants (jobforge doctor), in the worker scope: a login allowed it (a
-- superuser, or a member of jobforge_worker) sees every tenant's rows, anyone else none.

-- name: worker_scope_allowed
SELECT jobforge.worker_scope()

-- name: queued_types
-- Queued jobs per type, every tenant.
SELECT type, count(*) AS jobs FROM jobforge.jobs
WHERE status = 'queued' AND jobforge.worker_scope()
GROUP BY type
ORDER BY type
