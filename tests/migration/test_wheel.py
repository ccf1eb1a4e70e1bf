"""The migrations ship inside the wheel, where `migrate.default_directory()` finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jobforge import migrate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_contains_every_migration(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("jobforge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for migration in migrate.discover(ROOT / "migrations"):
        assert f"jobforge/_migrations/{migration.name}" in names
    assert "jobforge/sql/queries/migrate.sql" in names
    assert "jobforge/provision/watchdog.py" in names
    assert not [
        n for n in names if n.startswith("jobforge/_migrations/") and not n.endswith(".sql")
    ]


def test_a_source_checkout_finds_the_repository_migrations() -> None:
    found = Path(str(migrate.default_directory()))
    assert found.name in ("migrations", "_migrations")
    assert {m.name for m in migrate.discover(found)} == {
        m.name for m in migrate.discover(ROOT / "migrations")
    }
