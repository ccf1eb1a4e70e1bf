"""The checked-in schema.sql is what the migrations make.

Regenerated from a freshly migrated database it must equal the file byte for byte, so a migration
added (or a function rewritten) without refreshing the file fails here, naming the command that
refreshes it.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from jobforge import db, errors
from jobforge.provision import Database, schema_dump

SCHEMA_FILE = Path(__file__).resolve().parents[2] / schema_dump.FILE_NAME
SHOWN_DIFF_LINES = 60


def test_schema_sql_is_what_a_freshly_migrated_database_holds(jobforge_db: Database) -> None:
    with jobforge_db.connect() as conn:
        server_major = int(db.scalar(conn, "server_version_num")) // 10000
    try:
        schema_dump.find_pg_dump(server_major)
    except errors.ProvisionError as exc:
        pytest.skip(str(exc))
    fresh = schema_dump.dump(jobforge_db.dsn)
    checked_in = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.is_file() else ""
    if fresh == checked_in:
        return
    diff = list(
        difflib.unified_diff(
            checked_in.splitlines(), fresh.splitlines(),
            "schema.sql (checked in)", "schema.sql (freshly migrated)", lineterm="", n=2,
        )
    )  # fmt: skip
    more = len(diff) - SHOWN_DIFF_LINES
    shown = "\n".join(diff[:SHOWN_DIFF_LINES]) + (f"\n… {more} more lines" if more > 0 else "")
    pytest.fail(
        f"{schema_dump.FILE_NAME} is stale: a freshly migrated database differs from it. Refresh "
        f"it with `{schema_dump.REFRESH}` and commit it.\n{shown}",
        pytrace=False,
    )


def test_the_roles_the_schema_grants_to_head_the_file() -> None:
    text = SCHEMA_FILE.read_text(encoding="utf-8")
    roles = text.index("CREATE ROLE jobforge_app NOLOGIN;")
    assert roles < text.index("CREATE SCHEMA jobforge;")
    assert "CREATE ROLE jobforge_worker NOLOGIN;" in text
    assert f"`{schema_dump.REFRESH}`" in text[:roles]
