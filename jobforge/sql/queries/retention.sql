-- Retention (migrations/0012): pruning finished jobs in batches, the workers' periodic pass, and
-- the per-type retention settings. Every function here requires a member of jobforge_worker; the
-- tables are readable by the same logins only (an app login has no grant on them).

-- name: prune_batch
SELECT jobs, events, attempts, results, runs, after_type, after_at, after_id
FROM jobforge.prune_v1(%(older_than)s::interval, %(statuses)s::text[], %(tenant)s::text,
                       %(types)s::text[], %(runs_only)s::boolean, %(dry_run)s::boolean,
                       %(batch)s::integer, %(after_type)s::text, %(after_at)s::timestamptz,
                       %(after_id)s::bigint, %(now)s::timestamptz, %(project)s::text)

-- name: prune_pass
SELECT jobs, events, attempts, results, runs, more
FROM jobforge.prune_pass_v1(%(worker)s, %(every_s)s::double precision, %(batch)s::integer,
                            %(hold_s)s::double precision, %(now)s::timestamptz)

-- name: token_uses_prune
-- Token and envelope uses past their expiry and the largest skew (migrations/0027), one batch.
SELECT jobforge.prune_token_uses_v1(%(batch)s::integer, %(now)s::timestamptz) AS pruned

-- name: prune_pass_state
SELECT holder, started_at, finished_at, after_type IS NOT NULL AS under_way,
       jobs, events, attempts, results, runs
FROM jobforge.prune_pass

-- name: retention_set
SELECT type, keep FROM jobforge.set_retention_v1(%(type)s, %(keep)s::interval)

-- name: retention_clear
SELECT jobforge.clear_retention_v1(%(type)s)

-- name: retention_list
-- The default ('*') first, then the types by name.
SELECT type, keep FROM jobforge.retention ORDER BY type <> '*', type
