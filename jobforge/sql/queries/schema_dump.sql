-- What `schema.sql` (jobforge.provision.schema_dump) adds to pg_dump's view of one database.

-- name: schema_dump_roles
-- The roles the schema grants to or names in a policy, the objects' owners and PUBLIC aside,
-- with their attributes and their memberships among each other. Roles are server-wide, so
-- pg_dump of a database leaves them out; the migrations create them when missing.
WITH objects AS (
    SELECT n.nspacl AS acl, n.nspowner AS owner
    FROM pg_catalog.pg_namespace n WHERE n.nspname = %(schema)s
    UNION ALL
    SELECT c.relacl, c.relowner
    FROM pg_catalog.pg_class c WHERE c.relnamespace = %(schema)s::regnamespace
    UNION ALL
    SELECT p.proacl, p.proowner
    FROM pg_catalog.pg_proc p WHERE p.pronamespace = %(schema)s::regnamespace
    UNION ALL
    SELECT t.typacl, t.typowner
    FROM pg_catalog.pg_type t WHERE t.typnamespace = %(schema)s::regnamespace
),
named AS (
    SELECT a.grantee AS oid
    FROM objects, pg_catalog.aclexplode(objects.acl) AS a
    WHERE a.grantee <> objects.owner
    UNION
    SELECT pg_catalog.unnest(pol.polroles)
    FROM pg_catalog.pg_policy pol
    JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid
    WHERE c.relnamespace = %(schema)s::regnamespace
)
SELECT r.rolname AS name, r.rolcanlogin AS login, r.rolsuper AS superuser,
       r.rolcreatedb AS createdb, r.rolcreaterole AS createrole, r.rolinherit AS inherit,
       r.rolbypassrls AS bypassrls,
       ARRAY(
           SELECT g.rolname::text
           FROM pg_catalog.pg_auth_members m
           JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
           WHERE m.member = r.oid AND m.roleid IN (SELECT oid FROM named)
           ORDER BY 1
       ) AS member_of
FROM pg_catalog.pg_roles r
WHERE r.oid IN (SELECT oid FROM named WHERE oid <> 0)
ORDER BY r.rolname
