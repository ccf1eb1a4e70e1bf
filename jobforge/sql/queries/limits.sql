-- Queue limits (migrations/0010): per-type and per-tenant caps on running jobs, per-type rate
-- limits. Set and cleared through SECURITY DEFINER functions that require a member of
-- jobforge_worker; read by the same logins (an app login has no grant on the table).

-- name: limit_set
SELECT scope, key, max_running, rate_per_s, burst, tokens
FROM jobforge.set_limit_v1(%(scope)s, %(key)s, %(max_running)s::integer,
                           %(rate_per_s)s::double precision, %(burst)s::double precision)

-- name: limit_clear
SELECT jobforge.clear_limit_v1(%(scope)s, %(key)s)

-- name: limit_list
SELECT scope, key, max_running, rate_per_s, burst, tokens
FROM jobforge.queue_limits
ORDER BY scope, key
