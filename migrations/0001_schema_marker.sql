-- jobforge's schema. The queue's tables and functions arrive in later migrations; this first one
-- marks the database as jobforge's and records which format version of the schema it carries.

CREATE SCHEMA IF NOT EXISTS jobforge;

COMMENT ON SCHEMA jobforge IS 'jobforge: Postgres-native job queue (managed by jobforge migrate)';

CREATE TABLE jobforge.schema_info (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO jobforge.schema_info DEFAULT VALUES;
