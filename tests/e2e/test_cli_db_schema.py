"""`jobforge db schema` prints (or writes) what the repository checks in as schema.sql."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobforge.provision import binaries
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.sql"


@pytest.fixture(autouse=True)
def _local_binaries() -> None:
    if binaries.find() is None:
        pytest.skip("no local PostgreSQL binaries")


def test_db_schema_prints_the_checked_in_schema(cli: Cli) -> None:
    result = cli("db", "schema", "--provider", "local")
    assert result.code == 0, result.err
    assert result.out == SCHEMA_FILE.read_text(encoding="utf-8")


def test_db_schema_output_writes_the_file(cli: Cli, project: Path) -> None:
    result = cli("db", "schema", "--provider", "local", "--output", "schema.sql")
    assert result.code == 0, result.err
    assert result.out.strip() == "wrote schema.sql"
    assert (project / "schema.sql").read_text(encoding="utf-8") == SCHEMA_FILE.read_text(
        encoding="utf-8"
    )
