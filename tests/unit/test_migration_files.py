"""Discovery of migration files: naming rule, versions, checksums."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobforge import errors, migrate


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        (folder / name).write_text(body)
    return folder


def test_discovers_in_version_order_with_checksums(tmp_path: Path) -> None:
    _write(tmp_path, {"0002_b.sql": "SELECT 2;", "0001_a.sql": "SELECT 1;", "notes.txt": "x"})
    found = migrate.discover(tmp_path)
    assert [m.name for m in found] == ["0001_a.sql", "0002_b.sql"]
    assert found[0].checksum == migrate.checksum(b"SELECT 1;")
    assert found[0].checksum.startswith("sha256:")
    assert len(found[0].checksum) == 71


@pytest.mark.parametrize(
    "name", ["1_a.sql", "0001-a.sql", "0001_A.sql", "0001_.sql", "0000_zero.sql"]
)
def test_misnamed_files_are_refused_by_name(tmp_path: Path, name: str) -> None:
    _write(tmp_path, {name: "SELECT 1;"})
    with pytest.raises(errors.MigrationError, match=name.replace(".", r"\.")):
        migrate.discover(tmp_path)


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, {"0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 2;"})
    with pytest.raises(errors.MigrationError, match="share version 1"):
        migrate.discover(tmp_path)


def test_shipped_migrations_follow_the_naming_rule() -> None:
    shipped = migrate.discover()
    assert shipped, "jobforge ships at least one migration"
    assert [m.version for m in shipped] == list(range(1, len(shipped) + 1))
