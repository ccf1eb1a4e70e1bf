-- Every function of jobforge's resolves what it calls in pg_catalog, whatever the caller's
-- search_path (CVE-2018-1058). A login that may create objects on its own path (`public` on
-- PostgreSQL <= 14, or any schema it owns) could otherwise plant `public.pg_has_role(name, text,
-- text)` or `public.current_setting(text, boolean)`, put `public` first on its path, and have
-- the row-level security policies, which call current_tenant() and worker_scope(), believe it.
--
-- The two functions the policies call on every row stay plain SQL, so the planner keeps
-- inlining them (a function with its own SET clause cannot be inlined): their bodies name every
-- function and operator with its schema. Every other function gets a fixed path.

CREATE OR REPLACE FUNCTION jobforge.current_tenant() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN pg_catalog.current_setting('jobforge.tenant', true) OPERATOR(pg_catalog.=) ''
            THEN NULL
        ELSE pg_catalog.current_setting('jobforge.tenant', true)
    END
$$;

CREATE OR REPLACE FUNCTION jobforge.worker_scope() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(pg_catalog.current_setting('jobforge.scope', true), '')
               OPERATOR(pg_catalog.=) 'worker'
       AND pg_catalog.pg_has_role(session_user, 'jobforge_worker', 'MEMBER')
$$;

ALTER FUNCTION jobforge.require_tenant() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION jobforge.require_worker() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION jobforge.jobs_check_transition() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION jobforge.jitter(bigint, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION jobforge.backoff(bigint, integer, double precision, double precision)
    SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION jobforge.jobs_delete_children() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION jobforge.notify_jobs() SET search_path = pg_catalog, pg_temp;
