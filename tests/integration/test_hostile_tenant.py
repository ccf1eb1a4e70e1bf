"""A hostile tenant against the tenant wall (issue [2/10], acceptance: the hostile-tenant module).

The attacker is a `jobforge_app` LOGIN bound to tenant_a (a row in `jobforge.tenant_logins`,
written by the owner) that may CREATE in `public`. Both tenants have rows in every tenant table:
jobs in every state, attempts, results, events, run records and connector configs. The owner
snapshots every tenant_b row first; then the attacker tries every read and write path it has:

* SELECT from every table of schema jobforge (listed from the catalog) with the tenant unset,
  tenant_a, tenant_b and look-alikes, `jobforge.scope = 'worker'`, and made-up `jobforge.*`
  settings, each with and without planted shadows of the functions and operators RLS relies on
  and `search_path = public, pg_catalog`;
* INSERT, UPDATE, DELETE, TRUNCATE and COPY on every table, and tenant_b's connector configs
  by name;
* every function the app role may execute (enqueue, cancel, reschedule as tenant_b, and on
  tenant_b's job ids as tenant_a), every worker and internal function (permission denied);
* DDL on the wall itself, role switches, `row_security = off`, a leaky function in a WHERE, a
  view, planner statistics.

It must see no tenant_b row anywhere, and the owner's snapshot of tenant_b must be unchanged.
A last test documents the trust model: an unbound app login chooses any tenant.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge import db, errors
from jobforge.provision import Database
from jobforge.queue import Job, Outcome, QueueClient
from tests.integration.test_rls_catalog import seed_events, seed_schedules, seed_trust
from tests.records import run_write

TENANTS = ("tenant_a", "tenant_b")
KINDS = ("queued", "running", "succeeded", "failed", "canceled", "dead")
DIGEST = "sha256:" + "0" * 64

#: Functions the app role may EXECUTE; each is attacked below. A new one fails
#: `test_every_function_the_app_role_may_call_is_attacked` until it is added here and attacked.
APP_FUNCTIONS = {
    "enqueue_v1", "cancel_v1", "reschedule_v1",  # tenant-facing
    "enqueue_one_v1",  # tenant-facing, the scope as arguments, [5/10] (migrations/0025)
    "stats_v1", "bulk_retry_v1", "bulk_cancel_v1",  # tenant-facing, [6/10]
    "schedule_add_v1", "schedule_pause_v1", "schedule_remove_v1",  # tenant-facing, [7/10]
    "event_submit_v1", "trigger_add_v1", "trigger_pause_v1", "trigger_remove_v1",
    "trigger_test_v1",  # tenant-facing, [7/10]
    "connector_set_v1",  # tenant-facing, [9/10] (migrations/0022)
    "connector_remove_v1",  # tenant-facing, removal by a whole-tenant login (migrations/0028)
    "current_tenant", "worker_scope", "require_tenant",  # what the policies and functions call
    "current_project", "require_project_scope",  # the project scope, [6/10] (migrations/0016)
    "jobs_delete_children", "notify_jobs",  # trigger functions: not callable directly
}  # fmt: skip

#: Shadows of what the wall's functions and policies could resolve through a caller's path. Some
#: names are keywords (nullif, coalesce) and cannot be planted: they are tried anyway.
PLANTS = (
    "CREATE FUNCTION public.pg_has_role(name, text, text) RETURNS boolean "
    "LANGUAGE sql AS 'SELECT true'",
    "CREATE FUNCTION public.pg_has_role(text, text, text) RETURNS boolean "
    "LANGUAGE sql AS 'SELECT true'",
    "CREATE FUNCTION public.pg_has_role(name, name, text) RETURNS boolean "
    "LANGUAGE sql AS 'SELECT true'",
    "CREATE FUNCTION public.current_setting(text, boolean) RETURNS text "
    "LANGUAGE sql AS $$ SELECT 'worker' $$",
    "CREATE FUNCTION public.current_setting(text) RETURNS text "
    "LANGUAGE sql AS $$ SELECT 'worker' $$",
    "CREATE FUNCTION public.has_table_privilege(text, text) RETURNS boolean "
    "LANGUAGE sql AS 'SELECT true'",
    "CREATE FUNCTION public.has_table_privilege(name, text, text) RETURNS boolean "
    "LANGUAGE sql AS 'SELECT true'",
    "CREATE FUNCTION public.row_security_active(regclass) RETURNS boolean "
    "LANGUAGE sql AS 'SELECT false'",
    "CREATE FUNCTION public.nullif(text, text) RETURNS text "
    "LANGUAGE sql AS $$ SELECT 'tenant_b' $$",
    "CREATE FUNCTION public.coalesce(text, text) RETURNS text "
    "LANGUAGE sql AS $$ SELECT 'worker' $$",
    "CREATE FUNCTION public.jf_true(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "CREATE FUNCTION public.jf_true_name(name, name) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.jf_true)",
    "CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.jf_true_name)",
    "CREATE OPERATOR public.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = public.jf_true)",
    "CREATE OPERATOR public.~ (LEFTARG = text, RIGHTARG = text, FUNCTION = public.jf_true)",
    "CREATE FUNCTION public.jf_leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS "
    "$$ BEGIN RAISE NOTICE 'leak: %', $1; RETURN true; END $$",
)

#: The tenant values tried: exact, look-alikes, lists and patterns.
TENANT_VALUES = (None, "", "tenant_a", "tenant_b", " tenant_b", "TENANT_B", "tenant_a,tenant_b",
                 "{tenant_a,tenant_b}", "*", "%")  # fmt: skip

#: `jobforge.*` settings jobforge does not use, each set to each of these values at once.
OTHER_SETTINGS = ("jobforge.tenants", "jobforge.tenant_id", "jobforge.role", "jobforge.worker",
                  "jobforge.admin", "jobforge.owner", "jobforge.bypass", "jobforge.bypass_rls",
                  "jobforge.superuser", "jobforge.login", "jobforge.session_user",
                  "jobforge.caller_clock", "jobforge.all_tenants", "jobforge.unbound",
                  "jobforge.debug", "jobforge.x")  # fmt: skip
OTHER_VALUES = (None, "true", "tenant_b", "*")


Setup = tuple[tuple[str, tuple[Any, ...]], ...]


@dataclass
class Answer:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rowcount: int = 0
    sqlstate: str | None = None
    message: str = ""

    @property
    def refused(self) -> bool:
        return self.sqlstate is not None


@dataclass
class Scene:
    db: Database
    attacker: str  # DSN of the bound login
    login: str
    ids: dict[str, dict[str, int]]  # tenant -> kind -> job id
    tenant_tables: list[str]  # every jobforge table with a tenant_id column (from the catalog)
    all_tables: list[str]  # every table of schema jobforge


PLANTED = "public, pg_catalog"


@dataclass(frozen=True)
class Context:
    """What one attempt's transaction sets first (local to that transaction)."""

    tenant: str | None = None
    scope: str | None = None
    other: str | None = None  # the value every made-up jobforge.* setting gets
    path: str | None = None

    @property
    def steps(self) -> Setup:
        steps: list[tuple[str, tuple[Any, ...]]] = []
        if self.path is not None:
            steps.append((f"SET LOCAL search_path = {self.path}", ()))
        names, values = [], []
        for name, value in (("jobforge.tenant", self.tenant), ("jobforge.scope", self.scope)):
            if value is not None:
                names.append(name)
                values.append(value)
        if self.other is not None:
            names += OTHER_SETTINGS
            values += [self.other] * len(OTHER_SETTINGS)
        if names:
            pairs = "ROWS FROM (pg_catalog.unnest(%s::text[]), pg_catalog.unnest(%s::text[]))"
            steps.append((f"SELECT pg_catalog.set_config(n, v, true) FROM {pairs} AS u(n, v)",
                          (names, values)))  # fmt: skip
        return tuple(steps)

    @property
    def acts_for(self) -> str | None:
        """The tenant the bound login really acts for here: tenant_a, or none at all."""
        return "tenant_a" if self.tenant == "tenant_a" else None


#: Every combination of tenant, scope, made-up settings and path the reads are tried under.
CONTEXTS = [
    Context(tenant, scope, other, path)
    for path in (None, PLANTED)
    for tenant in TENANT_VALUES
    for scope in (None, "worker", "owner")
    for other in OTHER_VALUES
]


def attempt(conn: psycopg.Connection[Any], ctx: Context | None, statement: str | sql.Composed,
            params: Sequence[Any] = ()) -> Answer:  # fmt: skip
    """One attempt in its own transaction: committed when it succeeds (so a breach would stay
    and show in the owner's snapshot), rolled back when refused."""
    try:
        with conn.transaction():
            for step, args in ctx.steps if ctx else ():
                conn.execute(step.encode(), args)
            query = statement.encode() if isinstance(statement, str) else statement
            cursor = conn.execute(query, params or None)
            rows = cursor.fetchall() if cursor.description else []
            return Answer(rows=rows, rowcount=cursor.rowcount)
    except psycopg.Error as exc:
        return Answer(sqlstate=exc.sqlstate or "?", message=exc.diag.message_primary or str(exc))


def leaks(value: object) -> bool:
    return "tenant_b" in json.dumps(value, default=str)


def owner_snapshot(database: Database) -> dict[str, list[str]]:
    """Every tenant_b row of every table with a tenant_id, and every login binding and setting,
    as the owner sees them (a superuser: row-level security does not hide rows from it)."""
    with database.connect() as conn:
        tables = tenant_tables(conn)
        snap = {
            t: [r[0] for r in conn.execute(sql.SQL(
                "SELECT to_jsonb(x)::text FROM jobforge.{} x WHERE tenant_id = 'tenant_b' "
                "ORDER BY 1").format(sql.Identifier(t))).fetchall()]
            for t in tables
        }  # fmt: skip
        for t in ("tenant_logins", "settings"):
            snap[t] = [r[0] for r in conn.execute(sql.SQL(
                "SELECT to_jsonb(x)::text FROM jobforge.{} x ORDER BY 1").format(
                    sql.Identifier(t))).fetchall()]  # fmt: skip
    return snap


def tenant_tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE c.relnamespace = 'jobforge'::regnamespace AND c.relkind IN ('r', 'p') "
        "AND a.attname = 'tenant_id' AND NOT a.attisdropped ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def _token(job: Job) -> Any:
    assert job.lease_token is not None
    return job.lease_token


def seed(database: Database) -> dict[str, dict[str, int]]:
    """For each tenant: a job in every state (with attempts, events, a result, a run record per
    attempt with an artifact stored, a progress report, a cancellation acknowledged), a
    connector config, a dry-run schedule named 'rls' fired once, and a dry-run trigger named
    'rls' that evaluated an event (the features on for both)."""
    seed_schedules(database)
    seed_events(database)
    seed_trust(database)
    ids: dict[str, dict[str, int]] = {}
    for tenant in TENANTS:
        with QueueClient.connect(database.dsn, tenant=tenant) as queue:
            ids[tenant] = {
                kind: queue.enqueue(
                    f"hx.{kind}", {"tenant": tenant, "secret": f"{tenant}-secret"},
                    max_attempts=1 if kind == "dead" else 3, idempotency_key=f"{tenant}-{kind}",
                    trace_id=f"trace-{tenant}").job_id
                for kind in KINDS
            }  # fmt: skip
            with queue.pool.connection() as conn, db.tenant_transaction(conn, tenant):
                conn.execute(
                    "INSERT INTO jobforge.connector_configs VALUES (%s, 'http', %s, now())",
                    (tenant, json.dumps({"api_key": f"{tenant}-key", "tenant": tenant})),
                )
    with QueueClient.connect(database.dsn) as worker:
        types = [f"hx.{k}" for k in KINDS if k != "queued"]
        claimed = {j.id: j for j in worker.claim("w", 100, types=types)}
        for tenant in TENANTS:
            tenant_q = QueueClient.connect(database.dsn, tenant=tenant)
            with tenant_q:
                for kind, job_id in ids[tenant].items():
                    if kind == "queued":
                        continue
                    lease = _token(claimed[job_id])
                    rec = {"format": "jobforge.run/1", "runner_id": f"hx.{kind}",
                           "runner_version": "1.0.0", "status": "succeeded",
                           "input": {"sha256": DIGEST}, "trace_sha256": DIGEST,
                           "tenant": tenant}  # fmt: skip
                    data = f"{tenant}-artifact-of-{kind}".encode()
                    sha = worker.store_blob("w", job_id, lease, tenant, data)
                    assert sha is not None
                    written = run_write(rec, [("report.md", sha, len(data))])
                    assert worker.record_run("w", job_id, lease, written)
                    if kind == "running":
                        assert worker.progress("w", job_id, lease, 40, f"{tenant} at 40%")
                    elif kind == "canceled":
                        tenant_q.cancel(job_id)
                        assert worker.acknowledge_cancel("w", job_id, lease, {"c": tenant})
                    else:
                        outcome = {"succeeded": "succeeded", "failed": "failed",
                                   "dead": "retry"}[kind]  # fmt: skip
                        mark = {"tenant": tenant}
                        error = None if kind == "succeeded" else mark
                        done = Outcome.model_validate(
                            {"job_id": job_id, "lease_token": lease, "outcome": outcome,
                             "result": mark, "error": error})  # fmt: skip
                        assert worker.finish("w", [done]) == {job_id: kind}
    with database.connect() as conn:
        conn.execute("ANALYZE")  # statistics exist, for the side-channel test
    return ids


@pytest.fixture
def scene(jobforge_db: Database) -> Iterator[Scene]:
    suffix = secrets.token_hex(4)
    login = f"jf_hostile_{suffix}"
    role = sql.Identifier(login)
    with jobforge_db.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_app").format(role))
        admin.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(role))
        admin.execute(
            "INSERT INTO jobforge.tenant_logins VALUES (%s, '{tenant_a}'), (%s, '{tenant_b}')",
            (login, f"jf_tenant_b_app_{suffix}"),  # tenant_b's own binding: not the attacker's
        )
    try:
        ids = seed(jobforge_db)
        with jobforge_db.connect() as conn:
            tables = tenant_tables(conn)
            every = conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'jobforge'::regnamespace "
                "AND relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1"
            ).fetchall()
        assert {"jobs", "job_attempts", "job_results", "job_events", "connector_configs",
                "job_runs"} <= set(tables)  # fmt: skip
        yield Scene(jobforge_db, make_conninfo(jobforge_db.dsn, user=login), login, ids, tables,
                    [r[0] for r in every])  # fmt: skip
    finally:
        with jobforge_db.connect() as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))


@pytest.fixture
def snapshot(scene: Scene) -> Iterator[dict[str, list[str]]]:
    """The owner's view of tenant_b before the test; compared again after it."""
    before = owner_snapshot(scene.db)
    assert all(before[t] for t in scene.tenant_tables), "every tenant table has tenant_b rows"
    yield before
    assert owner_snapshot(scene.db) == before


def plant(conn: psycopg.Connection[Any]) -> list[str]:
    """Create the shadows (committed, owned by the attacker); the ones that exist afterwards."""
    return [statement for statement in PLANTS if not attempt(conn, None, statement).refused]


def select_all(table: str) -> sql.Composed:
    return sql.SQL("SELECT to_jsonb(x) FROM jobforge.{} x").format(sql.Identifier(table))


# reads


def test_the_bound_login_reads_no_other_tenant_row_in_any_context(
    scene: Scene, snapshot: dict[str, list[str]]
) -> None:
    tables = [t for t in scene.all_tables if t != "tenant_logins"]  # its own test below
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        planted = plant(conn)
        assert len(planted) >= 12, "the attacker could plant its shadows"
        for ctx in CONTEXTS:
            for table in tables:
                seen = attempt(conn, ctx, select_all(table))
                assert not leaks(seen.rows), (ctx, table)
                if table not in scene.tenant_tables:
                    continue
                assert not seen.refused, (ctx, table, seen.message)
                tenants = {row[0]["tenant_id"] for row in seen.rows}
                if ctx.acts_for == "tenant_a":  # its own rows in every table: not blind
                    assert tenants == {"tenant_a"}, (ctx, table)
                else:  # anything else, tenant_b or a look-alike included: nothing at all
                    assert tenants == set(), (ctx, table)


def test_the_bound_login_gets_no_tenant_but_its_own(scene: Scene) -> None:
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        plant(conn)
        for ctx in CONTEXTS:
            got = attempt(conn, ctx, "SELECT jobforge.current_tenant(), jobforge.worker_scope()")
            assert got.rows == [(ctx.acts_for, False)], ctx


#: What a login bound to project `pa` may ask for: look-alikes of it and of another project.
PROJECT_VALUES = (None, "", "pa", "pb", " pa", "PA", "pa,pb", "{pa,pb}", "*", "%", "default")


def test_a_project_bound_login_gets_no_project_but_its_own(scene: Scene) -> None:
    """Bound to project pa as well: every other value of jobforge.project, with the shadows
    planted and made-up settings set, is the scope '' (no project), refused by the writers."""
    with scene.db.connect() as admin:
        admin.execute("UPDATE jobforge.tenant_logins SET projects = '{pa}' WHERE login = %s",
                      (scene.login,))  # fmt: skip
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        plant(conn)
        for ctx in CONTEXTS[:: max(1, len(CONTEXTS) // 40)]:
            for project in PROJECT_VALUES:
                scoped = Context(ctx.tenant, ctx.scope, ctx.other, ctx.path)
                steps = (*scoped.steps, ("SELECT pg_catalog.set_config('jobforge.project', %s, "
                                         "true)", (project or "",)))  # fmt: skip
                got = _attempt_with(conn, steps, "SELECT jobforge.current_project()")
                assert got.rows == [("pa" if project == "pa" else "",)], (ctx, project)
                got = _attempt_with(conn, steps, "SELECT jobforge.require_project_scope()")
                if project == "pa":
                    assert got.rows == [("pa",)], (ctx, project)
                else:
                    assert got.sqlstate == "JF003", (ctx, project)
                for table in ("jobs", "job_events"):  # nothing of project default through it
                    seen = _attempt_with(conn, steps, select_all(table))
                    assert seen.rows == [], (ctx, project, table)


def _attempt_with(conn: psycopg.Connection[Any], steps: Setup,
                  statement: str | sql.Composed) -> Answer:  # fmt: skip
    try:
        with conn.transaction():
            for step, args in steps:
                conn.execute(step.encode(), args)
            query = statement.encode() if isinstance(statement, str) else statement
            cursor = conn.execute(query)
            return Answer(rows=cursor.fetchall() if cursor.description else [])
    except psycopg.Error as exc:
        return Answer(sqlstate=exc.sqlstate, message=exc.diag.message_primary or "")


# writes


def test_the_bound_login_writes_no_other_tenant_row(
    scene: Scene, snapshot: dict[str, list[str]]
) -> None:
    b_config = json.dumps({"api_key": "attacker"})
    targeted = (  # tenant_b's connector configs, by name
        ("INSERT INTO jobforge.connector_configs VALUES ('tenant_b', 'evil', %s, now()) "
         "RETURNING tenant_id", (b_config,)),
        ("INSERT INTO jobforge.connector_configs VALUES ('tenant_b', 'http', %s, now()) "
         "ON CONFLICT (tenant_id, name) DO UPDATE SET config = EXCLUDED.config "
         "RETURNING tenant_id", (b_config,)),
        ("INSERT INTO jobforge.connector_configs VALUES ('tenant_b', 'http', %s, now()) "
         "ON CONFLICT DO NOTHING RETURNING tenant_id", (b_config,)),
        ("UPDATE jobforge.connector_configs SET config = %s WHERE tenant_id = 'tenant_b' "
         "RETURNING tenant_id", (b_config,)),
        ("UPDATE jobforge.connector_configs SET tenant_id = 'tenant_b' "
         "WHERE tenant_id = 'tenant_a' RETURNING tenant_id", ()),  # its own row into tenant_b
        ("DELETE FROM jobforge.connector_configs WHERE tenant_id = 'tenant_b' "
         "RETURNING tenant_id", ()),
    )  # fmt: skip
    contexts = [Context(t, s, o, p) for p in (None, PLANTED) for t in TENANT_VALUES
                for s in (None, "worker") for o in (None, "tenant_b")]  # fmt: skip
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        plant(conn)
        writes: list[tuple[str, sql.Composed, bool]] = []  # (table, statement, may succeed)
        for table in scene.all_tables:
            name = sql.Identifier(table)
            cols = [r[0] for r in conn.execute(
                "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = %s::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (f"jobforge.{table}",)).fetchall()]  # fmt: skip
            first = sql.Identifier(cols[0])
            writable = table == "connector_configs"  # its own rows, as tenant_a
            writes += [
                (table, sql.SQL("INSERT INTO jobforge.{} DEFAULT VALUES").format(name), False),
                (table, sql.SQL("UPDATE jobforge.{} x SET {} = x.{} RETURNING to_jsonb(x)")
                 .format(name, first, first), writable),
                (table, sql.SQL("TRUNCATE jobforge.{}").format(name), False),
            ]  # fmt: skip
            if "tenant_id" in cols:
                writes += [
                    (table, sql.SQL("INSERT INTO jobforge.{} (tenant_id) VALUES ('tenant_b')")
                     .format(name), False),
                    (table, sql.SQL("UPDATE jobforge.{} x SET tenant_id = 'tenant_b' "
                                    "RETURNING to_jsonb(x)").format(name), False),
                ]  # fmt: skip
        for ctx in contexts:
            for statement, params in targeted:
                got = attempt(conn, ctx, statement, params)
                # With a planted `=` the attacker's own WHERE matches every row it can see:
                # tenant_a's, when it acts for tenant_a. Never one of tenant_b's.
                mine = [("tenant_a",)] * len(got.rows) if ctx.acts_for == "tenant_a" else []
                assert got.refused or got.rows == mine, (ctx, statement, got.rows)
            for _table, composed, may in writes:
                got = attempt(conn, ctx, composed, ())
                assert not leaks(got.rows), (ctx, composed.as_string(conn))
                assert got.refused or may or got.rowcount == 0, (ctx, composed.as_string(conn))
        # Last, unrestricted deletes: they may remove tenant_a's own rows, never tenant_b's.
        for ctx in contexts:
            for table in scene.all_tables:
                got = attempt(conn, ctx, sql.SQL("DELETE FROM jobforge.{} x RETURNING to_jsonb(x)")
                              .format(sql.Identifier(table)))  # fmt: skip
                assert not leaks(got.rows), (ctx, table)
                assert got.refused or table == "connector_configs", (ctx, table)


def test_the_bound_login_cannot_change_the_wall(
    scene: Scene, snapshot: dict[str, list[str]]
) -> None:
    attacks = [
        "ALTER TABLE jobforge.jobs DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE jobforge.job_runs NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON jobforge.connector_configs",
        "CREATE POLICY evil ON jobforge.jobs USING (true)",
        "ALTER POLICY tenant_isolation ON jobforge.jobs USING (true)",
        "CREATE OR REPLACE FUNCTION jobforge.current_tenant() RETURNS text "
        "LANGUAGE sql AS $$ SELECT 'tenant_b' $$",
        "CREATE OR REPLACE FUNCTION jobforge.worker_scope() RETURNS boolean "
        "LANGUAGE sql AS 'SELECT true'",
        "CREATE FUNCTION jobforge.evil() RETURNS boolean LANGUAGE sql AS 'SELECT true'",
        "CREATE TABLE jobforge.evil (x int)",
        "ALTER FUNCTION jobforge.current_tenant() SET search_path = public",
        "CREATE TRIGGER evil BEFORE INSERT ON jobforge.jobs "
        "FOR EACH ROW EXECUTE FUNCTION jobforge.notify_jobs()",
        "UPDATE jobforge.settings SET caller_clock = true",
        "INSERT INTO jobforge.tenant_logins VALUES (session_user, '{tenant_b}')",
        "UPDATE jobforge.tenant_logins SET tenants = '{tenant_a,tenant_b}'",
        "DELETE FROM jobforge.tenant_logins",  # unbinding itself would make it a free chooser
        "SET ROLE jobforge_worker",
        "GRANT jobforge_worker TO CURRENT_USER",
        "ALTER ROLE CURRENT_USER BYPASSRLS",
        "COPY jobforge.connector_configs FROM PROGRAM 'true'",
    ]
    with scene.db.connect() as admin:
        row = admin.execute("SELECT current_user, current_database()").fetchone()
        assert row is not None
        owner, database = [sql.Identifier(v).as_string(admin) for v in row]
    attacks += [f"SET ROLE {owner}", f"SET SESSION AUTHORIZATION {owner}",
                f"ALTER DATABASE {database} SET row_security = off",
                f"ALTER TABLE jobforge.jobs OWNER TO {scene.login}"]  # fmt: skip
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        plant(conn)
        for path in (None, PLANTED):
            for statement in attacks:
                got = attempt(conn, Context("tenant_a", "worker", "true", path), statement)
                assert got.refused, statement
        # row_security = off makes a query that RLS would filter fail instead of seeing more
        for table in scene.tenant_tables:
            try:
                with conn.transaction():
                    conn.execute("SET LOCAL row_security = off")
                    conn.execute(select_all(table))
                refused = None
            except psycopg.Error as exc:
                refused = exc.sqlstate
            assert refused == "42501", table
        # COPY TO filters like SELECT; COPY FROM is refused where row-level security applies
        with conn.transaction(), conn.cursor() as cursor:
            conn.execute("SELECT set_config('jobforge.tenant', 'tenant_b', true)")
            with cursor.copy("COPY jobforge.jobs TO STDOUT") as copy:
                assert b"".join(bytes(chunk) for chunk in copy) == b""
        try:
            with conn.transaction(), conn.cursor() as cursor:
                conn.execute("SELECT set_config('jobforge.tenant', 'tenant_a', true)")
                with cursor.copy("COPY jobforge.connector_configs FROM STDIN") as copy:
                    copy.write_row(("tenant_b", "copied", "{}", "2030-01-01"))
            refused = None
        except psycopg.Error as exc:
            refused = exc.sqlstate
        assert refused is not None
        flags = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = session_user"
        ).fetchall()
        assert flags == [(False, False)]


# functions


def test_the_bound_login_cannot_act_for_tenant_b_through_functions(
    scene: Scene, snapshot: dict[str, list[str]]
) -> None:
    b = scene.ids["tenant_b"]
    contexts = [Context(t, s, "tenant_b", p) for p in (None, PLANTED) for t in TENANT_VALUES
                for s in (None, "worker")]  # fmt: skip
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        plant(conn)
        for ctx in contexts:
            own = ctx.acts_for == "tenant_a"
            if not own:  # enqueuing as tenant_a is its right; as anyone else: no tenant
                got = attempt(conn, ctx, "SELECT * FROM jobforge.enqueue_v1("
                              "ARRAY['hx.evil'], ARRAY['{\"x\": 1}'::jsonb])")  # fmt: skip
                assert got.sqlstate == "JF003", ctx
            for kind, job_id in b.items():
                for statement in ("SELECT jobforge.cancel_v1(%s)",
                                  "SELECT jobforge.reschedule_v1(%s, true)"):  # fmt: skip
                    got = attempt(conn, ctx, statement, (job_id,))
                    # as tenant_a: not found (never "exists elsewhere"); else: no tenant at all
                    assert got.sqlstate == ("JF004" if own else "JF003"), (ctx, kind, statement)
                    assert "tenant_b" not in got.message or "tenant_b" in (ctx.tenant or "")
            got = attempt(conn, ctx, "SELECT jobforge.require_tenant()")
            if own:
                assert got.rows == [("tenant_a",)], ctx
            else:
                assert got.sqlstate == "JF003", ctx
        got = attempt(conn, Context("tenant_b"), "SELECT jobforge.require_tenant()")
        assert got.sqlstate == "JF003"
        assert "may not act for tenant" in got.message
    with QueueClient.connect(scene.attacker, tenant="tenant_a") as queue:
        for job_id in b.values():  # and through the client's reads
            with pytest.raises(errors.JobNotFound):
                queue.get(job_id)
            with pytest.raises(errors.JobNotFound):
                queue.runs(job_id)
        assert {j.tenant_id for j in queue.list_jobs(limit=100).jobs} == {"tenant_a"}
        assert {r.tenant_id for r in queue.find_runs(limit=100)} == {"tenant_a"}
    with (
        QueueClient.connect(scene.attacker) as queue,  # no tenant: asks for the worker scope
        pytest.raises(errors.TenantRequired, match="may not read every tenant's runs"),
    ):
        queue.find_runs(limit=100)


def test_the_bound_login_cannot_enqueue_for_tenant_b_by_argument(
    scene: Scene, snapshot: dict[str, list[str]]
) -> None:
    """enqueue_one_v1 takes the tenant, project scope, actor and reason as arguments and sets
    them itself: every tenant value as the argument, under every tenant setting, the worker
    scope and planted shadows, is refused (JF003) unless it is tenant_a, the login's own; a job
    the fast path doubts goes through enqueue_v1 under the same checks (the snapshot fixture
    proves tenant_b unchanged)."""
    contexts = [Context(t, s, "tenant_b", p) for p in (None, PLANTED)
                for t in (None, "tenant_a", "tenant_b") for s in (None, "worker")]  # fmt: skip
    statement = ("SELECT * FROM jobforge.enqueue_one_v1(%s, %s, NULL, NULL, %s, "
                 "'{\"x\": 1}'::jsonb, %s)")  # fmt: skip
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        plant(conn)
        for ctx in contexts:
            for tenant in TENANT_VALUES:
                for job_type, key in (("hx.evil", None), ("HX EVIL", None), ("hx.evil", "k")):
                    got = attempt(conn, ctx, statement, (tenant, None, job_type, key))
                    if tenant != "tenant_a":
                        assert got.sqlstate == "JF003", (ctx, tenant, job_type, got)
                    elif job_type == "HX EVIL":
                        assert got.sqlstate == "JF006", (ctx, tenant, got)
                    else:
                        assert not got.refused, (ctx, tenant, got)
            for scope in ("default", "b", "*"):  # a project scope the login is not bound to
                got = attempt(conn, ctx, statement, ("tenant_b", scope, "hx.evil", None))
                assert got.sqlstate == "JF003", (ctx, scope, got)
    with scene.db.connect() as owner:  # the owner sees every tenant's rows: none but tenant_a's
        owned = owner.execute("SELECT DISTINCT tenant_id FROM jobforge.jobs WHERE type = 'hx.evil'")
        assert {r[0] for r in owned.fetchall()} == {"tenant_a"}


def test_the_bound_login_counts_and_acts_in_bulk_on_its_own_jobs_only(
    scene: Scene, snapshot: dict[str, list[str]]
) -> None:
    """Stats and bulk retry/cancel with every filter that would match tenant_b's jobs, under
    every tenant value, the worker scope and planted shadows: tenant_a's rows only, or no tenant
    at all (the snapshot fixture proves tenant_b unchanged)."""
    contexts = [Context(t, s, None, p) for p in (None, PLANTED) for t in TENANT_VALUES
                for s in (None, "worker")]  # fmt: skip
    b_ids = "ARRAY[" + ", ".join(str(i) for i in scene.ids["tenant_b"].values()) + "]::bigint[]"
    statements = (
        "SELECT * FROM jobforge.stats_v1()",
        "SELECT * FROM jobforge.bulk_retry_v1(ARRAY['dead', 'failed', 'canceled'], NULL, NULL, "
        "true, 0, 10000, true)",
        "SELECT * FROM jobforge.bulk_cancel_v1(ARRAY['queued', 'running'], NULL, NULL, 0, 10000, "
        "true)",
        "SELECT * FROM jobforge.bulk_retry_v1(ARRAY['dead', 'failed', 'canceled'], NULL, NULL, "
        "true, 0, 10000)",
        "SELECT * FROM jobforge.bulk_cancel_v1(ARRAY['queued', 'running'], NULL, NULL, 0, 10000)",
        # by tenant_b's own job ids
        f"SELECT * FROM jobforge.bulk_retry_v1(NULL, NULL, NULL, true, 0, 10000, false, {b_ids})",
        f"SELECT * FROM jobforge.bulk_cancel_v1(ARRAY['queued', 'running'], NULL, NULL, 0, 10000, "
        f"false, {b_ids})",
    )
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        plant(conn)
        for ctx in contexts:
            for statement in statements:
                got = attempt(conn, ctx, statement)
                if ctx.acts_for != "tenant_a":
                    assert got.sqlstate == "JF003", (ctx, statement, got)
                    continue
                assert not got.refused, (ctx, statement, got)
                if "stats_v1" in statement:
                    assert {r[0] for r in got.rows} <= {"tenant_a"}, (ctx, got)
                else:  # tenant_a's own jobs, one of each status, at most
                    assert got.rows[0][0] <= len(KINDS), (ctx, statement, got)
    with QueueClient.connect(scene.attacker, tenant="tenant_a") as queue:
        assert {r.tenant_id for r in queue.stats().rows} == {"tenant_a"}
    with (
        QueueClient.connect(scene.attacker) as queue,  # no tenant: asks for the worker scope
        pytest.raises(errors.TenantRequired, match="may not read every tenant's counts"),
    ):
        queue.stats()


def test_the_bound_login_touches_no_schedule_of_tenant_b(
    scene: Scene, snapshot: dict[str, list[str]]
) -> None:
    """The schedule functions, by tenant_b's schedule name, in every context: refused as
    tenant_b (the login is bound to tenant_a), and as tenant_a (with the worker scope asked for
    too) they act on tenant_a's own schedule of the same name, never on tenant_b's."""
    statements = (
        "SELECT name FROM jobforge.schedule_pause_v1('rls', true)",
        "SELECT name FROM jobforge.schedule_pause_v1('rls', false)",
        "SELECT jobforge.schedule_remove_v1('rls')",
        "SELECT name FROM jobforge.schedule_add_v1('evil', '* * * * *', 'UTC', 'hx.evil', '{}')",
    )
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        for ctx in (Context("tenant_b"), Context("tenant_b", "worker", "true", PLANTED)):
            for statement in statements:
                got = attempt(conn, ctx, statement)
                assert got.sqlstate == "JF003", (ctx, statement, got)
        for ctx in (Context("tenant_a", "worker"), Context("tenant_a", "worker", "true", PLANTED)):
            for statement in statements[:2]:
                got = attempt(conn, ctx, statement)
                assert got.rows == [("rls",)], (ctx, statement, got)
        got = attempt(conn, Context("tenant_a"), statements[2])
        assert got.sqlstate is None, got  # tenant_a's own 'rls' goes; tenant_b's stays
        got = attempt(conn, Context("tenant_a"), statements[2])
        assert got.sqlstate == "JF004", got


def test_the_bound_login_touches_no_event_or_trigger_of_tenant_b(
    scene: Scene, snapshot: dict[str, list[str]]
) -> None:
    """The event and trigger functions, by tenant_b's trigger name, in every context: refused as
    tenant_b (the login is bound to tenant_a); as tenant_a (the worker scope asked for too) they
    act on tenant_a's own trigger of the same name, and its event reaches no trigger of
    tenant_b's (the owner's snapshot of tenant_b is unchanged)."""
    statements = (
        "SELECT name FROM jobforge.trigger_pause_v1('rls', true)",
        "SELECT name FROM jobforge.trigger_pause_v1('rls', false)",
        "SELECT matched FROM jobforge.trigger_test_v1('rls', "
        '\'{"type": "rls.event", "data": {}}\')',
        "SELECT jsonb_array_length(evaluations) FROM jobforge.event_submit_v1("
        "'rls.event', 'hx', NULL, '{\"t\": \"x\"}')",
        "SELECT jobforge.trigger_remove_v1('rls')",
        "SELECT name FROM jobforge.trigger_add_v1('evil', 'rls.event', '[]', 'hx.evil', '{}')",
    )
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        for ctx in (Context("tenant_b"), Context("tenant_b", "worker", "true", PLANTED)):
            for statement in statements:
                got = attempt(conn, ctx, statement)
                assert got.sqlstate == "JF003", (ctx, statement, got)
        for ctx in (Context("tenant_a", "worker"), Context("tenant_a", "worker", "true", PLANTED)):
            for statement in statements[:2]:
                got = attempt(conn, ctx, statement)
                assert got.rows == [("rls",)], (ctx, statement, got)
            assert attempt(conn, ctx, statements[2]).rows == [(True,)]
            assert attempt(conn, ctx, statements[3]).rows == [(1,)]  # tenant_a's trigger only
        got = attempt(conn, Context("tenant_a"), statements[4])
        assert got.sqlstate is None, got  # tenant_a's own 'rls' goes; tenant_b's stays
        got = attempt(conn, Context("tenant_a"), statements[4])
        assert got.sqlstate == "JF004", got


def test_the_bound_login_touches_no_connector_of_tenant_b(
    scene: Scene, snapshot: dict[str, list[str]]
) -> None:
    """connector_set_v1 by tenant_b's connector name, in every context: refused as tenant_b (the
    login is bound to tenant_a), also with the worker scope asked for and shadows planted; as
    tenant_a it writes tenant_a's own connector of that name, never tenant_b's (the snapshot);
    a direct INSERT or UPDATE is no longer the app role's to make (migrations/0022)."""
    evil = '{"api_key": "attacker"}'
    statement = f"SELECT name FROM jobforge.connector_set_v1('http', '{evil}')"
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        for ctx in (Context("tenant_b"), Context("tenant_b", "worker", "true", PLANTED),
                    Context(None, "worker"), Context("", "worker", "true", PLANTED)):  # fmt: skip
            got = attempt(conn, ctx, statement)
            assert got.sqlstate == "JF003", (ctx, got)
        for ctx in (Context("tenant_a", "worker"), Context("tenant_a", "worker", "true", PLANTED)):
            assert attempt(conn, ctx, statement).rows == [("http",)], ctx
            got = attempt(conn, ctx, "SELECT tenant_id, config FROM jobforge.connector_configs")
            assert got.rows == [("tenant_a", {"api_key": "attacker"})], (ctx, got)
        remove = "SELECT name FROM jobforge.connector_remove_v1('http')"
        for ctx in (Context("tenant_b"), Context("tenant_b", "worker", "true", PLANTED),
                    Context(None, "worker"), Context("", "worker", "true", PLANTED)):  # fmt: skip
            got = attempt(conn, ctx, remove)
            assert got.sqlstate == "JF003", (ctx, got)
        for direct in (
            f"INSERT INTO jobforge.connector_configs VALUES ('tenant_a', 'x', '{evil}', now())",
            f"UPDATE jobforge.connector_configs SET config = '{evil}'",
            "DELETE FROM jobforge.connector_configs",  # removal goes through 0028's function
        ):
            assert attempt(conn, Context("tenant_a"), direct).sqlstate == "42501", direct
        got = attempt(conn, Context("tenant_a"), "SELECT name FROM jobforge.connector_set_v1("
                      "'Bad Name', '{}')")  # fmt: skip
        assert got.sqlstate == "JF015", got
        got = attempt(conn, Context("tenant_a"), "SELECT name FROM jobforge.connector_set_v1("
                      "'ok', '[1]')")  # fmt: skip
        assert (got.sqlstate, got.message) == (
            "JF015",
            "connector ok: the config must be a JSON object, not array",
        ), got


def test_every_function_the_app_role_may_call_is_attacked(scene: Scene) -> None:
    with scene.db.connect() as conn:
        callable_ = {r[0] for r in conn.execute(
            "SELECT proname FROM pg_proc WHERE pronamespace = 'jobforge'::regnamespace "
            "AND has_function_privilege('jobforge_app', oid, 'EXECUTE')").fetchall()}  # fmt: skip
    assert callable_ == APP_FUNCTIONS


def test_the_bound_login_may_call_no_worker_or_internal_function(
    scene: Scene, snapshot: dict[str, list[str]]
) -> None:
    """Every other function of schema jobforge, from the catalog: permission denied, whatever
    the settings or planted shadows; trigger functions refuse a direct call."""
    with scene.db.connect() as conn:
        functions = conn.execute(
            "SELECT proname, oid::regprocedure::text, "
            "array(SELECT format_type(t, NULL) FROM unnest(proargtypes) t), "
            "prorettype = 'trigger'::regtype, proisstrict FROM pg_proc "
            "WHERE pronamespace = 'jobforge'::regnamespace ORDER BY 1"
        ).fetchall()
        running = scene.ids["tenant_b"]["running"]
        row = conn.execute("SELECT lease_token FROM jobforge.jobs WHERE id = %s", (running,))
        [(digest,)] = row.fetchall()
        [(schedule_b,)] = conn.execute(
            "SELECT id FROM jobforge.schedules WHERE tenant_id = 'tenant_b'"
        ).fetchall()
    assert digest is not None
    concrete = (  # with tenant_b's running job and even the digest of its lease
        ("SELECT * FROM jobforge.claim_v1('evil', 100)", ()),
        ("SELECT * FROM jobforge.reap_v1(1000)", ()),
        ("SELECT * FROM jobforge.heartbeat_v1('w', %s, %s)", ([running], [digest])),
        ("SELECT * FROM jobforge.finish_v1('w', %s, %s, ARRAY['failed'])", ([running], [digest])),
        ("SELECT * FROM jobforge.release_v1('w', %s, %s)", ([running], [digest])),
        ("SELECT jobforge.progress_v1('w', %s, %s, 1, 'x')", (running, digest)),
        ("SELECT jobforge.acknowledge_cancel_v1('w', %s, %s, '{}')", (running, digest)),
        ("SELECT jobforge.record_run_v1('w', %s, %s, 'hx.evil', '1', 'succeeded', NULL, NULL, "
         "NULL, '{}')", (running, digest)),
        ("SELECT jobforge.lease_id(%s)", (digest,)),
        ("SELECT jobforge.clock(now())", ()),
        ("SELECT jobforge.json_problem('{}')", ()),
        ("SELECT jobforge.check_run_at(now(), now(), 'x')", ()),
        ("SELECT jobforge.backoff(1, 1, 1, 1)", ()),
        ("SELECT jobforge.require_worker()", ()),
        # retention: tenant_b's history pruned, or every tenant's kept no time at all
        ("SELECT * FROM jobforge.prune_v1('0'::interval, NULL, 'tenant_b')", ()),
        ("SELECT * FROM jobforge.prune_v1(NULL, NULL, NULL, NULL, true)", ()),
        ("SELECT * FROM jobforge.prune_pass_v1('evil', 1)", ()),
        ("SELECT * FROM jobforge.set_retention_v1('*', '0'::interval)", ()),
        ("SELECT jobforge.clear_retention_v1('hx.job')", ()),
        # artifacts: bytes planted into tenant_b's store on its running attempt, or its blobs
        # pruned ([6/10], migrations/0017)
        ("SELECT jobforge.artifact_put_v1('w', %s, %s, 'tenant_b', %s, 'x'::bytea)",
         (running, digest, "sha256:" + hashlib.sha256(b"x").hexdigest())),
        ("SELECT jobforge.artifact_begin_v1('w', %s, %s, 'tenant_b', %s, 1)",
         (running, digest, DIGEST)),
        ("SELECT jobforge.artifact_chunk_v1('w', %s, %s, %s, 0, 'x'::bytea)",
         (running, digest, DIGEST)),
        ("SELECT jobforge.artifact_finish_v1('w', %s, %s, %s)", (running, digest, DIGEST)),
        ("SELECT jobforge.artifact_fence('w', %s, %s)", (running, digest)),
        ("SELECT jobforge.record_run_v2('w', %s, %s, 'hx.evil', '1', 'succeeded', NULL, NULL, "
         "NULL, '{}', '{}', '{}', '{}')", (running, digest)),
        ("SELECT * FROM jobforge.prune_artifacts_v1('tenant_b', '0'::interval)", ()),
        # schedules and flags: tenant_b's fired or moved by a forged plan, its flag turned off
        ("SELECT * FROM jobforge.schedules_due_v1(100)", ()),
        ("SELECT * FROM jobforge.schedule_fire_v1(%s::jsonb, 'evil')",
         (json.dumps([{"id": schedule_b, "expected": None, "fire": [], "skips": [],
                       "next": "2100-01-01T00:00:00Z"}]),)),
        ("SELECT * FROM jobforge.set_feature_v1('schedules', 'tenant_b', false)", ()),
        ("SELECT * FROM jobforge.set_feature_v1('schedules', '*', false)", ()),
        ("SELECT jobforge.clear_feature_v1('schedules', 'tenant_b')", ()),
        ("SELECT jobforge.require_feature('schedules', 'tenant_b')", ()),
        ("SELECT jobforge.schedule_locked('tenant_b', 'rls')", ()),
        # events and triggers: tenant_b's trigger locked, or evaluated on a forged event
        ("SELECT jobforge.trigger_locked('tenant_b', 'rls')", ()),
        ("SELECT * FROM jobforge.evaluate_triggers((SELECT e FROM jobforge.events e "
         "WHERE false), now(), false)", ()),
        ("SELECT * FROM jobforge.evaluate_triggers(ROW(1, 'tenant_b', 'rls.event', 'x', NULL, "
         "'{}', NULL, now(), now(), 'x', NULL)::jobforge.events, now(), false)", ()),
        ("SELECT jobforge.trigger_render('{\"a\": \"$.data\"}', '{\"data\": {}}')", ()),
        # signing keys and token uses ([8/10]): a key of one's own registered (then signing
        # anything), tenant_b's key revoked, or a token's jti burnt on tenant_b's running job
        ("SELECT jobforge.signing_key_add_v1('evil', decode(repeat('00', 32), 'hex'), 'x')", ()),
        ("SELECT jobforge.signing_key_revoke_v1('tenant_b-key')", ()),
        ("SELECT jobforge.signing_key_rotate_v1('tenant_b-key', 'evil', "
         "decode(repeat('00', 32), 'hex'), 'x')", ()),
        ("SELECT jobforge.token_consume_v1('w', %s, %s, 'jti-evil', now() + interval '1 hour')",
         (running, digest)),
    )  # fmt: skip
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        plant(conn)
        seen = set()
        for path in (None, PLANTED):
            for tenant in ("tenant_a", "tenant_b"):
                ctx = Context(tenant, "worker", "true", path)
                for name, signature, args, trigger, strict in functions:
                    if name in APP_FUNCTIONS and not trigger:
                        continue
                    seen.add(name)
                    nulls = ", ".join(f"NULL::{a}" for a in args)
                    got = attempt(conn, ctx, f"SELECT jobforge.{name}({nulls})")
                    if strict and args and got.rows == [(None,)]:
                        continue  # folded to NULL by the planner: the function never ran
                    # a trigger function the role may execute refuses a direct call
                    assert got.sqlstate in (("0A000", "42501") if trigger else ("42501",)), (
                        signature, got)  # fmt: skip
                for statement, params in concrete:
                    got = attempt(conn, ctx, statement, params)
                    assert got.sqlstate == "42501", (statement, got)
    assert {"claim_v1", "finish_v1", "heartbeat_v1", "progress_v1", "release_v1", "reap_v1",
            "record_run_v1", "acknowledge_cancel_v1", "require_worker", "lease_id",
            "clock", "prune_v1", "prune_batch", "prune_pass_v1", "set_retention_v1",
            "clear_retention_v1", "artifact_put_v1", "artifact_begin_v1", "artifact_chunk_v1",
            "artifact_finish_v1", "artifact_fence", "record_run_v2",
            "prune_artifacts_v1", "schedules_due_v1", "schedule_fire_v1", "set_feature_v1",
            "clear_feature_v1", "require_feature", "feature_enabled", "known_features",
            "schedule_locked", "trigger_locked", "evaluate_triggers", "trigger_outcome",
            "trigger_match", "trigger_render", "trigger_value", "event_envelope",
            "trigger_predicates_problem"} <= seen  # fmt: skip


# side channels


def test_no_side_channel_shows_tenant_b(scene: Scene, snapshot: dict[str, list[str]]) -> None:
    notices: list[str] = []
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        plant(conn)
        for table in scene.tenant_tables:
            # the whole row as jsonb: a view may not carry the jobs' own column types, which
            # only their owner may use (migrations/0032), but it sees every column this way
            attempt(conn, None, sql.SQL(
                "CREATE VIEW public.{} AS SELECT to_jsonb(x) AS r FROM jobforge.{} x").format(
                    sql.Identifier(f"jf_view_{table}"), sql.Identifier(table)))  # fmt: skip
        for tenant in (None, "tenant_a", "tenant_b"):
            ctx = Context(tenant, "worker", "tenant_b", PLANTED)
            for table in scene.tenant_tables:
                name = sql.Identifier(table)
                # a leaky function in the WHERE sees only rows the policy let through
                got = attempt(conn, ctx, sql.SQL(
                    "SELECT count(*) FROM jobforge.{} x WHERE public.jf_leak(to_jsonb(x)::text)"
                ).format(name))  # fmt: skip
                assert not got.refused, got.message
                # so does the attacker's own view over the table
                got = attempt(conn, ctx, sql.SQL("SELECT to_jsonb(v) FROM public.{} v").format(
                    sql.Identifier(f"jf_view_{table}")))  # fmt: skip
                assert not got.refused, got.message
                assert not leaks(got.rows), (tenant, table)
                # and an error raised on a row's value names none of tenant_b's
                cast = sql.SQL("SELECT (to_jsonb(x) ->> 'tenant_id')::int FROM jobforge.{} x")
                got = attempt(conn, ctx, cast.format(name))
                assert "tenant_b" not in got.message
            # planner statistics of tables under row-level security are hidden from it
            got = attempt(conn, ctx, "SELECT to_jsonb(s) FROM pg_catalog.pg_stats s "
                          "WHERE schemaname = 'jobforge'")  # fmt: skip
            assert not leaks(got.rows)
    assert [n for n in notices if "tenant_a" in n], "the leaky function ran on tenant_a's rows"
    assert not [n for n in notices if "tenant_b" in n]


def test_the_bound_login_cannot_read_settings(scene: Scene) -> None:
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        got = attempt(conn, Context("tenant_a"), "SELECT * FROM jobforge.settings")
        assert got.sqlstate == "42501"


def test_the_bound_login_reads_only_its_own_binding(scene: Scene) -> None:
    with psycopg.connect(scene.attacker, autocommit=True) as conn:
        for ctx in (Context(), Context("tenant_a"), Context("tenant_b", "worker")):
            got = attempt(conn, ctx, "SELECT login, tenants FROM jobforge.tenant_logins")
            assert got.rows == [(scene.login, ["tenant_a"])], got.rows


# the trust model


def test_an_unbound_app_login_chooses_any_tenant(scene: Scene) -> None:
    """The wall against a tenant is the binding: an app login with no row in
    `jobforge.tenant_logins` is the shared application role, trusted to set the tenant it acts
    for, so it reads and changes tenant_b's rows by setting `jobforge.tenant = 'tenant_b'`.
    Deployments that give a tenant its own login must bind it."""
    name = f"jf_unbound_app_{secrets.token_hex(4)}"
    role = sql.Identifier(name)
    with scene.db.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_app").format(role))
    try:
        dsn = make_conninfo(scene.db.dsn, user=name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table in scene.tenant_tables:
                query = sql.SQL("SELECT DISTINCT tenant_id FROM jobforge.{}")
                got = attempt(conn, Context("tenant_b"), query.format(sql.Identifier(table)))
                assert got.rows == [("tenant_b",)], table
            got = attempt(conn, Context(), "SELECT count(*) FROM jobforge.jobs")
            assert got.rows == [(0,)]  # still: no tenant set, nothing seen
        with QueueClient.connect(dsn, tenant="tenant_b") as queue:
            assert queue.cancel(scene.ids["tenant_b"]["queued"]) == "canceled"
    finally:
        with scene.db.connect() as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(role))
