"""Where throwaway clusters live: the override a benchmark on disk relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobforge.provision import cluster


def test_scratch_dir_from_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JOBFORGE_SCRATCH_DIR", str(tmp_path))
    assert cluster.scratch_root() == tmp_path


def test_without_it_a_writable_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBFORGE_SCRATCH_DIR", raising=False)
    root = cluster.scratch_root()
    assert root.is_dir()
