"""Choosing a provisioning path: no Docker engine falls through; nothing at all is one error."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from jobforge import errors
from jobforge.provision import choose, docker, osuser


def test_docker_absent_is_detected_quickly_without_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    began = time.monotonic()
    usable, reason = docker.engine_status()
    assert not usable
    assert "no Docker engine answered" in reason
    assert time.monotonic() - began <= docker.PROBE_TIMEOUT_S + 1


def test_auto_falls_back_to_local_binaries_when_docker_is_absent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JOBFORGE_SCRATCH_DATABASE_URL", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    decided = choose.plan(provider="auto")
    assert decided.choice == "local"
    assert [s.provider for s in decided.steps] == ["url", "docker", "local"]
    assert not decided.steps[1].usable


def test_url_wins_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBFORGE_SCRATCH_DATABASE_URL", "postgresql://u@db.example:6543/x")
    assert choose.plan().choice == "url"


def test_the_clis_database_is_never_a_server_for_scratch_databases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Point 11: exporting JOBFORGE_DATABASE_URL (say, production's) for `jobforge jobs` made
    pytest, replay and certify create their scratch databases on that server."""
    monkeypatch.delenv("JOBFORGE_SCRATCH_DATABASE_URL", raising=False)
    monkeypatch.setenv("JOBFORGE_DATABASE_URL", "postgresql://app@prod.example:5432/jobs")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    decided = choose.plan()
    assert decided.choice == "local"
    assert decided.url is None
    assert "never used for scratch databases" in decided.steps[0].reason
    with pytest.raises(errors.ConfigurationError, match="needs JOBFORGE_SCRATCH_DATABASE_URL"):
        choose.plan(provider="url")


def test_nothing_available_is_one_error_saying_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JOBFORGE_SCRATCH_DATABASE_URL", raising=False)
    monkeypatch.delenv("JOBFORGE_PG_BINDIR", raising=False)
    with pytest.raises(errors.ProvisionError) as info:
        choose.plan(provider="local", search=[str(tmp_path)])
    message = str(info.value)
    assert "apt-get install postgresql" in message
    assert "JOBFORGE_SCRATCH_DATABASE_URL" in message
    assert str(tmp_path) in message


def test_forced_docker_without_engine_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    with pytest.raises(errors.ProvisionError, match="provider 'docker' was requested"):
        choose.plan(provider="docker")


def test_unknown_provider_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigurationError, match="unknown provider 'nope'"):
        choose.plan(provider="nope")


def test_url_provider_without_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBFORGE_SCRATCH_DATABASE_URL", raising=False)
    with pytest.raises(errors.ConfigurationError, match="needs JOBFORGE_SCRATCH_DATABASE_URL"):
        choose.plan(provider="url")


def test_traversal_check_follows_mode_bits() -> None:
    user = osuser.ServerUser("someone", 54321, 54321, switch=True)
    root = Path(tempfile.mkdtemp(prefix="jf-traverse-"))  # pytest's tmp_path may sit under 0700
    try:
        root.chmod(0o755)
        private = root / "private"
        inner = private / "inner"
        inner.mkdir(parents=True)
        private.chmod(0o700)
        assert not osuser.can_traverse(user, inner)
        private.chmod(0o711)
        assert osuser.can_traverse(user, inner)
        assert osuser.can_traverse(osuser.ServerUser("me", 0, 0, switch=False), inner)
    finally:
        shutil.rmtree(root)


def test_no_docker_configuration_skips_the_probe_entirely(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if Path("/var/run/docker.sock").exists():
        pytest.skip("this machine has a Docker socket")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("TESTCONTAINERS_HOST_OVERRIDE", raising=False)
    usable, reason = docker.engine_status()
    assert not usable
    assert reason.startswith("no Docker engine configured")
