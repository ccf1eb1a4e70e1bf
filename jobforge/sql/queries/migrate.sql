-- Migration bookkeeping. The migrator holds a session-level advisory lock for its whole run, so two
-- `jobforge migrate` processes serialise: one applies, the other waits and then finds nothing to do.

-- name: migrations_bootstrap
CREATE SCHEMA IF NOT EXISTS jobforge;
CREATE TABLE IF NOT EXISTS jobforge.schema_migrations (
    version     integer PRIMARY KEY CHECK (version > 0),
    name        text NOT NULL UNIQUE,
    checksum    text NOT NULL CHECK (checksum ~ '^sha256:[0-9a-f]{64}$'),
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: migrations_lock
SELECT pg_advisory_lock(hashtext('jobforge.migrate'))

-- name: migrations_unlock
SELECT pg_advisory_unlock(hashtext('jobforge.migrate'))

-- name: migrations_table_exists
SELECT to_regclass('jobforge.schema_migrations') IS NOT NULL

-- name: migrations_applied
SELECT version, name, checksum FROM jobforge.schema_migrations ORDER BY version

-- name: migrations_record
INSERT INTO jobforge.schema_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s)

-- name: migrations_pin_path
-- What the migrations call resolves in pg_catalog only: a function or operator another role
-- planted on this session's path (`public.format(text, text)`) never runs as the migrating role.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)
