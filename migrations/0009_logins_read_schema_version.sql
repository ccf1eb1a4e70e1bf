-- Which migrations a database has is readable by every jobforge login, not only by its owner.
-- A command run as an app or worker login (`jobforge runs list --tenant acme`, `jobforge jobs
-- list`) checks that the schema is up to date before it acts; without this grant an app login
-- could not read the version it talks to and failed with "permission denied". The table holds
-- the names and checksums of the migration files jobforge ships: nothing of any tenant.

GRANT SELECT ON jobforge.schema_migrations TO jobforge_app, jobforge_worker;
