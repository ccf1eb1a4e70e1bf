"""The tenant wall against a login that can create objects on its own search_path (issue [2/10],
point 1, and the CVE-2018-1058 pattern): functions and operators planted in `public` that
shadow what the policies, triggers and helpers call change nothing they decide.

Every test logs in as a fresh `jobforge_app` (or `jobforge_worker`) role that owns nothing of
jobforge's but may CREATE in `public`, plants its shadows, puts `public` before `pg_catalog` on
its path, and tries to read or change another tenant's rows.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge import db
from jobforge.provision import Database
from jobforge.queue import QueueClient
from tests.records import run_write

TABLES = ("jobs", "job_attempts", "job_results", "job_events", "connector_configs", "job_runs")

#: Shadows of every unqualified call a policy, trigger or helper body made: each answers
#: whatever opens the wall. `public` first on the path, and better-matching argument types,
#: make each one win over pg_catalog's where a body names the call without its schema.
PLANTS = (
    "CREATE FUNCTION public.pg_has_role(name, text, text) RETURNS boolean "
    "LANGUAGE sql AS 'SELECT true'",
    "CREATE FUNCTION public.current_setting(text, boolean) RETURNS text "
    "LANGUAGE sql AS $$ SELECT 'worker' $$",
    "CREATE FUNCTION public.jf_true(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.jf_true)",
)


@pytest.fixture
def attacker(jobforge_db: Database) -> Iterator[dict[str, str]]:
    """DSNs of an app login and a worker login, each allowed to CREATE in public."""
    suffix = secrets.token_hex(4)
    names = {"app": f"jf_evil_app_{suffix}", "worker": f"jf_evil_worker_{suffix}"}
    with jobforge_db.connect() as admin:
        for kind, name in names.items():
            role = sql.Identifier(name)
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                role, sql.Identifier(f"jobforge_{kind}")))  # fmt: skip
            admin.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(role))
    yield {k: make_conninfo(jobforge_db.dsn, user=v) for k, v in names.items()}
    with jobforge_db.connect() as admin:
        for name in names.values():
            role = sql.Identifier(name)
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))


@pytest.fixture
def seeded(jobforge_db: Database) -> dict[str, int]:
    """A job of tenant_b, claimed and recorded, with a connector config: rows everywhere."""
    with QueueClient.connect(jobforge_db.dsn, tenant="tenant_b") as queue:
        job = queue.enqueue("ops.scan", {"secret": "of tenant b"}).job_id
        with queue.pool.connection() as conn, db.tenant_transaction(conn, "tenant_b"):
            conn.execute(
                "INSERT INTO jobforge.connector_configs VALUES ('tenant_b', 'http', "
                """'{"api_key": "b-key"}', now())"""
            )
    with QueueClient.connect(jobforge_db.dsn) as worker:
        [claimed] = worker.claim("w", 1)
        assert claimed.lease_token is not None
        digest = "sha256:" + "0" * 64
        record = {"runner_id": "ops.scan", "runner_version": "1.0.0", "status": "succeeded",
                  "input": {"sha256": digest}, "trace_sha256": digest}  # fmt: skip
        assert worker.record_run("w", claimed.id, claimed.lease_token, run_write(record))
    return {"tenant_b": job}


def _plant(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    for statement in PLANTS:
        conn.execute(statement.encode())
    conn.execute("SET search_path = public, pg_catalog")
    conn.execute("SET jobforge.scope = 'worker'")


def test_planted_shadows_do_not_open_another_tenants_rows(
    attacker: dict[str, str], seeded: dict[str, int]
) -> None:
    with psycopg.connect(attacker["app"], autocommit=True) as conn:
        _plant(conn)
        for tenant in ("", "tenant_a"):
            conn.execute("SELECT set_config('jobforge.tenant', %s, false)", (tenant,))
            for table in TABLES:
                seen = conn.execute(f"SELECT count(*) FROM jobforge.{table}").fetchone()
                assert seen == (0,), (tenant, table)
            # no direct write at all since migrations/0022 (connector_set_v1 writes them), nor a
            # delete since 0028 (connector_remove_v1 removes them)
            for statement in (
                'UPDATE jobforge.connector_configs SET config = \'{"api_key": "mine"}\'',
                "DELETE FROM jobforge.connector_configs",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)


def test_planted_shadows_do_not_make_an_app_login_a_worker(
    attacker: dict[str, str], seeded: dict[str, int]
) -> None:
    with psycopg.connect(attacker["app"], autocommit=True) as conn:
        _plant(conn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT jobforge.require_worker()")
        assert conn.execute("SELECT jobforge.worker_scope()").fetchone() == (False,)
        conn.execute("SET jobforge.tenant = 'tenant_a'")
        assert conn.execute("SELECT jobforge.current_tenant()").fetchone() == ("tenant_a",)


def test_a_planted_operator_does_not_bend_the_transition_trigger_for_its_owner(
    attacker: dict[str, str], seeded: dict[str, int], jobforge_db: Database
) -> None:
    """A trigger runs under the path of whoever changes the row: an owner or operator with
    `public` first on its path must still meet pg_catalog's `=` in the transition check."""
    with psycopg.connect(attacker["app"], autocommit=True) as conn:
        _plant(conn)
    with jobforge_db.connect() as admin:
        admin.execute("SET search_path = public, pg_catalog")
        admin.execute("SET jobforge.scope = 'worker'")
        admin.execute(
            "UPDATE jobforge.jobs SET status = 'canceled', lease_token = NULL, "
            "lease_holder = NULL, lease_expires_at = NULL, finished_at = now() WHERE id = %s",
            (seeded["tenant_b"],),
        )  # legal: running -> canceled
        with pytest.raises(psycopg.DatabaseError, match="cannot go from canceled to succeeded"):
            admin.execute(  # canceled is final: the planted `=` must not make it look allowed
                "UPDATE jobforge.jobs SET status = 'succeeded' WHERE id = %s", (seeded["tenant_b"],)
            )


#: The types of the job's columns that are given once (migrations/0032): an operator or function
#: of one of them would match those columns more exactly than pg_catalog's on text or jsonb.
DOMAINS = ("tenant_id", "project_name", "job_type", "payload", "payload_hash",
           "idempotency_key", "envelope")  # fmt: skip


@pytest.mark.parametrize("kind", ["app", "worker"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_no_login_can_plant_an_operator_on_the_jobs_own_types(
    attacker: dict[str, str], kind: str, domain: str
) -> None:
    with psycopg.connect(attacker[kind], autocommit=True) as conn:
        conn.execute("CREATE FUNCTION public.jf_any(text, text) RETURNS boolean "
                     "LANGUAGE sql AS 'SELECT true'")  # fmt: skip
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="type"):
            conn.execute(sql.SQL(
                "CREATE FUNCTION public.jf_shadow(jobforge.{}, text) RETURNS boolean "
                "LANGUAGE sql AS 'SELECT true'").format(sql.Identifier(domain)))  # fmt: skip
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="type"):
            conn.execute(sql.SQL(
                "CREATE OPERATOR public.= (LEFTARG = jobforge.{}, RIGHTARG = text, "
                "FUNCTION = public.jf_any)").format(sql.Identifier(domain)))  # fmt: skip


def test_the_jobs_domain_columns_meet_pg_catalogs_operators_not_a_planted_one(
    attacker: dict[str, str], seeded: dict[str, int], jobforge_db: Database
) -> None:
    """A column typed as a domain is compared with the operator of its base type, found where
    the text one is: pg_catalog, searched first on the default path, before a shadow planted in
    `public` with the same argument types."""
    with psycopg.connect(attacker["app"], autocommit=True) as conn:
        _plant(conn)
    with jobforge_db.connect() as admin:
        admin.execute("SET jobforge.scope = 'worker'")
        planted = admin.execute("SELECT 'a' OPERATOR(public.=) 'b'").fetchone()
        assert planted == (True,)  # the shadow is there, and would say yes to anything
        seen = admin.execute(
            "SELECT count(*) FROM jobforge.jobs WHERE tenant_id = 'nobody' OR type = 'no.such'"
            " OR project = 'none' OR payload_hash = 'x' OR idempotency_key = 'k'"
        ).fetchone()
        assert seen == (0,)


def test_every_jobforge_function_is_pinned_or_fully_qualified(jobforge_db: Database) -> None:
    """From the catalog, so a function added later cannot be forgotten: each runs with
    `search_path = pg_catalog, pg_temp`, except those inlined into the statements that call
    them (the three of every policy check, json_problem since 0011 and lease_id since 0025),
    whose bodies name every function and operator with its schema: what each must name."""
    inlined = {
        "current_tenant": ("pg_catalog.current_setting", "OPERATOR(pg_catalog.=)"),
        "current_project": ("pg_catalog.current_setting", "OPERATOR(pg_catalog.=)"),  # 0016
        "worker_scope": ("pg_catalog.pg_has_role", "OPERATOR(pg_catalog.=)"),
        "json_problem": ("pg_catalog.jsonb_path_exists",),
        "lease_id": ("pg_catalog.sha256", "pg_catalog.uuid_send", "::pg_catalog.uuid"),  # 0025
    }
    with jobforge_db.connect() as conn:
        rows = conn.execute(
            "SELECT p.proname, coalesce(p.proconfig, '{}'), p.prosrc FROM pg_proc p "
            "WHERE p.pronamespace = 'jobforge'::regnamespace"
        ).fetchall()
    assert rows
    for name, config, body in rows:
        if name in inlined:
            assert config == [], name
            for qualified in inlined[name]:
                assert qualified in body, (name, qualified)
        else:
            assert "search_path=pg_catalog, pg_temp" in config, name
