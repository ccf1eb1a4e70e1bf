-- The queue client's statements: thin calls of the SQL functions (migrations/0003), and reads.
-- Reads filter on the session's tenant (and project scope, migrations/0016) explicitly as well as
-- through row-level security, so a login that bypasses RLS and cannot take the role jobforge_app
-- still sees one tenant (and one project, when the session names one) only. The scope is an
-- initplan, `(SELECT jobforge.current_project())`: evaluated once, not per row.

-- name: session_scope
-- The transaction's tenant and scope. With app_role (a client acting for a tenant) the
-- transaction also takes the role jobforge_app when the login may: a superuser, or a member with
-- the right to SET it (PostgreSQL 16 separates that right from membership). The tenant policies
-- then bind every read however privileged the login (a superuser or BYPASSRLS login skips them
-- as itself), and the role goes back at the end of the transaction. A login that may not take
-- the role is left as it is: an app login is bound by the policies already. A missing role is
-- no switch, never an error (to_regrole is NULL, and so is pg_has_role of it): an unmigrated
-- database is reported by the statement that needs the schema. The switch costs ~30 us; what a
-- superuser pays beyond that is the policies' own cost, which every app login pays. The actor and
-- the reason go on every event the transaction writes (migrations/0014: column defaults). The
-- project scope (migrations/0016; '' for every project) hides every other project's rows.
SELECT set_config('jobforge.tenant', %(tenant)s, true), set_config('jobforge.scope', %(scope)s, true),
       set_config('jobforge.project', %(project)s, true),
       set_config('jobforge.actor', %(actor)s, true), set_config('jobforge.reason', %(reason)s, true),
       (SELECT pg_catalog.set_config('role', 'jobforge_app', true)
        WHERE %(app_role)s::boolean
          AND pg_catalog.pg_has_role(session_user, pg_catalog.to_regrole('jobforge_app'), CASE
                  WHEN pg_catalog.current_setting('server_version_num')::int >= 160000 THEN 'SET'
                  ELSE 'MEMBER' END))

-- name: job_enqueue_many
-- The arrays travel in binary (their placeholders end in b): psycopg quotes a text array element
-- by element in Python, ~0.57 us an element against ~0.15 in binary.
SELECT ord, job_id, created FROM jobforge.enqueue_v1(
    %(types)b::text[],
    ARRAY(SELECT e FROM jsonb_array_elements(%(payloads)s::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n),
    %(keys)b::text[], %(priorities)b::integer[], %(run_ats)b::timestamptz[], %(max_attempts)b::integer[],
    %(trace_ids)b::text[], %(now)s, %(max_payload_bytes)s, %(projects)b::text[],
    CASE WHEN %(envelopes)s::jsonb IS NOT NULL THEN ARRAY(
        SELECT CASE WHEN jsonb_typeof(e) = 'null' THEN NULL ELSE e END
        FROM jsonb_array_elements(%(envelopes)s::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n) END)

-- name: job_enqueue_one
-- One job, one statement, in autocommit: the scope travels as arguments (migrations/0025).
SELECT job_id, created FROM jobforge.enqueue_one_v1(
    %(scope_tenant)s, %(scope_project)s, %(scope_actor)s, %(scope_reason)s,
    %(type)s, %(payload)s::jsonb, %(key)s, %(priority)s::integer, %(run_at)s::timestamptz,
    %(max_attempts)s::integer, %(trace_id)s, %(project)s, %(now)s::timestamptz,
    %(max_payload_bytes)s::integer, %(envelope)s::jsonb)

-- name: job_claim
SELECT * FROM jobforge.claim_v1(%(worker)s, %(limit)s, %(types)s, %(lease_s)s, %(now)s)

-- name: job_reap
SELECT jobforge.reap_v1(%(limit)s, %(now)s)

-- name: job_heartbeat_many
SELECT job_id, state FROM jobforge.heartbeat_v1(%(worker)s, %(ids)s, %(tokens)s, %(lease_s)s, %(now)s)

-- name: job_finish_many
-- The three arrays every outcome adds travel in binary (their placeholders end in b): psycopg
-- quotes a text array element by element in Python, ~2 us a job of the worker's ~60; binary
-- costs ~0.4.
SELECT job_id, state FROM jobforge.finish_v1(
    %(worker)s, %(ids)b::bigint[], %(tokens)b::uuid[], %(outcomes)b::text[], %(results)s::jsonb[], %(errors)s::jsonb[], %(now)s,
    %(backoff_base_s)s, %(backoff_cap_s)s)

-- name: job_finish_followups
SELECT job_id, state FROM jobforge.finish_followups_v1(
    %(worker)s, %(ids)b::bigint[], %(tokens)b::uuid[], %(outcomes)b::text[], %(results)s::jsonb[], %(errors)s::jsonb[], %(now)s,
    %(backoff_base_s)s, %(backoff_cap_s)s, %(followups)s::jsonb)

-- name: job_progress
SELECT jobforge.progress_v1(%(worker)s, %(id)s::bigint, %(token)s, %(pct)s::real, %(message)s::text, %(now)s)

-- name: job_cancel
SELECT jobforge.cancel_v1(%(id)s::bigint, %(now)s)::text

-- name: job_reschedule
SELECT jobforge.reschedule_v1(%(id)s::bigint, %(reset)s, %(run_at)s, %(now)s)::text

-- name: job_get
SELECT * FROM jobforge.jobs WHERE id = %(id)s AND tenant_id = jobforge.current_tenant()
  AND project = coalesce((SELECT jobforge.current_project()), project)

-- name: job_list
SELECT * FROM jobforge.jobs
WHERE tenant_id = jobforge.current_tenant()
  AND project = coalesce((SELECT jobforge.current_project()), project)
  AND (%(project)s::text IS NULL OR project = %(project)s::text)
  AND (%(statuses)s::text[] IS NULL OR status::text = ANY (%(statuses)s::text[]))
  AND (%(types)s::text[] IS NULL OR type = ANY (%(types)s::text[]))
  AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s

-- name: job_events
-- The log as its readers see it: a plain `created` is derived from the job's row (0025).
SELECT id, job_id, kind, at, attempt, worker, data, actor, reason FROM jobforge.job_event_log
WHERE job_id = %(id)s AND tenant_id = jobforge.current_tenant()
  AND project = coalesce((SELECT jobforge.current_project()), project)
ORDER BY id

-- name: job_attempts
SELECT job_id, attempt, worker, started_at, finished_at, outcome, error FROM jobforge.job_attempts
WHERE job_id = %(id)s AND tenant_id = jobforge.current_tenant()
  AND project = coalesce((SELECT jobforge.current_project()), project)
ORDER BY id

-- name: job_result
SELECT result FROM jobforge.job_results WHERE job_id = %(id)s AND tenant_id = jobforge.current_tenant()
  AND project = coalesce((SELECT jobforge.current_project()), project)

-- name: job_release_many
SELECT job_id, state FROM jobforge.release_v1(%(worker)s, %(ids)s, %(tokens)s, %(now)s)

-- name: job_acknowledge_cancel
SELECT jobforge.acknowledge_cancel_v1(%(worker)s, %(id)s::bigint, %(token)s, %(data)s::jsonb, %(now)s)

-- name: job_record_run
-- The record and the references of its artifacts to their stored blobs (migrations/0017).
SELECT jobforge.record_run_v2(%(worker)s, %(id)s::bigint, %(token)s, %(runner_id)s, %(version)s,
    %(status)s, %(input_sha256)s, %(output_sha256)s, %(trace_sha256)s, %(record)s::jsonb,
    %(names)s::text[], %(shas)s::text[], %(sizes)s::bigint[], %(datas)s::bytea[], %(now)s)

-- name: job_runs
SELECT record FROM jobforge.job_runs
WHERE job_id = %(id)s AND tenant_id = jobforge.current_tenant()
  AND project = coalesce((SELECT jobforge.current_project()), project)
ORDER BY id

-- name: find_runs
-- Run records for the replay tools, newest first. Tenant-scoped under a tenant; across tenants
-- in the worker scope (an operator's view). Every other filter is optional.
SELECT id, job_id, tenant_id, project, attempt, runner_id, runner_version, status, recorded_at,
       record
FROM jobforge.job_runs
WHERE (tenant_id = jobforge.current_tenant() OR jobforge.worker_scope())
  AND project = coalesce((SELECT jobforge.current_project()), project)
  AND (%(project)s::text IS NULL OR project = %(project)s::text)
  AND (%(job_ids)s::bigint[] IS NULL OR job_id = ANY(%(job_ids)s::bigint[]))
  AND (%(runner_ids)s::text[] IS NULL OR runner_id = ANY(%(runner_ids)s::text[]))
  AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
  AND (%(since)s::timestamptz IS NULL OR recorded_at >= %(since)s::timestamptz)
  AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s

-- name: login_scopes
-- What the login may read across tenants (the worker scope), for a clear refusal up front.
SELECT session_user AS login,
       coalesce(pg_catalog.pg_has_role(session_user, pg_catalog.to_regrole('jobforge_worker'),
                                       'MEMBER'), false) AS worker

-- name: audit_list
-- The tenant's audit trail (migrations/0014): events that carry an actor, and every manual change
-- with or without one; newest first, by the partial index job_events_audit.
SELECT id, job_id, kind, at, actor, login, reason, data FROM jobforge.job_events
WHERE tenant_id = jobforge.current_tenant()
  AND project = coalesce((SELECT jobforge.current_project()), project)
  AND (actor IS NOT NULL OR kind IN ('canceled', 'rescheduled'))
  AND at >= %(since)s
  AND (%(kinds)s::text[] IS NULL OR kind = ANY (%(kinds)s::text[]))
  AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
  AND (%(job_id)s::bigint IS NULL OR job_id = %(job_id)s::bigint)
ORDER BY at DESC, id DESC
LIMIT %(limit)s

-- name: audit_summary
-- How many events of each kind each actor caused since a time, for the tenant.
SELECT kind, actor, count(*) AS count, min(at) AS first, max(at) AS last
FROM jobforge.job_events
WHERE tenant_id = jobforge.current_tenant()
  AND project = coalesce((SELECT jobforge.current_project()), project)
  AND (actor IS NOT NULL OR kind IN ('canceled', 'rescheduled')) AND at >= %(since)s
  AND (%(kinds)s::text[] IS NULL OR kind = ANY (%(kinds)s::text[]))
  AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
GROUP BY kind, actor
ORDER BY count(*) DESC, kind, actor
