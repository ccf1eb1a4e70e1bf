"""Fixtures shared by the integration tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge.provision import ClonePool, Database, Template
from tests.integration.clones import Clones


@pytest.fixture
def clones(jobforge_template: Template) -> Iterator[Clones]:
    pool = ClonePool(jobforge_template, ahead=1, threads=1)
    try:
        yield Clones(pool)
    finally:
        pool.close()


@contextmanager
def new_app_login(
    database: Database,
    tenants: Sequence[str] | None = None,
    projects: Sequence[str] | None = None,
) -> Iterator[str]:
    """The URL of a fresh non-owner login that is a member of jobforge_app only (roles are
    cluster-wide: a unique name), bound to `tenants` (and to `projects`, migrations/0016) in
    jobforge.tenant_logins when given; dropped afterwards with whatever it came to own."""
    name = f"jf_app_{secrets.token_hex(4)}"
    role = sql.Identifier(name)
    with database.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_app").format(role))
        if tenants is not None:
            admin.execute(
                "INSERT INTO jobforge.tenant_logins (login, tenants, projects) VALUES (%s, %s, %s)",
                (name, list(tenants), None if projects is None else list(projects)),
            )
    try:
        yield make_conninfo(database.dsn, user=name)
    finally:
        with database.connect() as admin:
            admin.execute("DELETE FROM jobforge.tenant_logins WHERE login = %s", (name,))
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))


@pytest.fixture
def app_login(jobforge_db: Database) -> Iterator[str]:
    """A fresh app login (member of jobforge_app only, bound to no tenant)."""
    with new_app_login(jobforge_db) as url:
        yield url
