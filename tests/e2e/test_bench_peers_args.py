"""benchmarks/peers.py parses its command line without the peers installed and without a server:
`--help` works and an unknown library in `--only` is refused before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "peers.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFORGE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_names_the_options() -> None:
    done = run("--help")
    assert done.returncode == 0, done.stderr
    for option in ("-n", "--runs", "--only"):
        assert option in done.stdout
    assert "--case" not in done.stdout  # the subprocess's own option stays hidden


def test_an_unknown_library_is_refused() -> None:
    done = run("--only", "jobforge,celery", "--runs", "1")
    assert done.returncode == 2
    assert "--only takes some of floor, pgqueuer, procrastinate, jobforge, table" in done.stderr
