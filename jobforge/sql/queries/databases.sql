-- Scratch and template databases on a throwaway server. `{db}` and `{template}` are composed
-- with psycopg.sql.Identifier by the caller.

-- name: database_exists
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = %(name)s)

-- name: database_create
CREATE DATABASE {db}

-- name: database_clone
CREATE DATABASE {db} TEMPLATE {template} STRATEGY FILE_COPY

-- name: database_clone_pre15
CREATE DATABASE {db} TEMPLATE {template}

-- name: template_caller_clock
-- A throwaway database takes the caller's clock (tests freeze time); a production database keeps
-- its own (migrations/0008). Templates built from other migrations may lack the settings table.
DO $$
BEGIN
    IF pg_catalog.to_regclass('jobforge.settings') IS NOT NULL THEN
        UPDATE jobforge.settings SET caller_clock = true;
    END IF;
END $$

-- name: database_mark_template
ALTER DATABASE {db} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false

-- name: database_drop
DROP DATABASE IF EXISTS {db} WITH (FORCE)

-- name: template_lock
SELECT pg_advisory_lock(hashtext('jobforge.template:' || %(name)s))

-- name: template_unlock
SELECT pg_advisory_unlock(hashtext('jobforge.template:' || %(name)s))

-- name: server_version_num
SELECT current_setting('server_version_num')::int

-- name: server_version
SELECT current_setting('server_version')

-- name: database_rename
ALTER DATABASE {db} RENAME TO {new}
