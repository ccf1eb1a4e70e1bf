"""A command loads what it needs: `jobforge jobs list` and its kind start without the worker,
golden cases, replay, the runners' HTTP client or the signing libraries (each CLI call is a new
process, and those imports were half its start-up time). A top-level import that pulls one of
them back in fails here, naming the module."""

from __future__ import annotations

import json
import subprocess
import sys

#: Packages a queue command (enqueue, list, show, stats, limits, db) has no use for.
HEAVY = (
    "jobforge.worker",
    "jobforge.golden",
    "jobforge.replay",
    "jobforge.runtime",
    "jobforge.trust",
    "jobforge.certify",
    "httpx",
    "jwt",
    "cryptography",
    "deepdiff",
)

COMMANDS = [
    ["jobs", "list", "--help"],
    ["jobs", "show", "--help"],
    ["enqueue", "--help"],
    ["jobs", "stats", "--help"],
    ["health", "--help"],
    ["limits", "--help"],
    ["db", "status", "--help"],
    ["jobs", "retry", "--help"],
    ["audit", "--help"],
]

CODE = """
import json, sys
from jobforge.cli.app import main
codes = [main(json.loads(arg)) for arg in sys.argv[1:]]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"httpx", "jwt", "cryptography",
        "deepdiff"} or m.startswith(tuple(h + "." for h in HEAVY)) or m in HEAVY)
print(json.dumps({"codes": codes, "heavy": sorted({".".join(m.split(".")[:2]) for m in heavy})}))
"""


def test_queue_commands_load_neither_the_worker_nor_the_test_stack() -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + CODE, *map(json.dumps, COMMANDS)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"codes": [0] * len(COMMANDS), "heavy": []}, report


def test_the_worker_command_still_loads_the_worker() -> None:
    """The check above can fail: `worker --help` loads the worker (the list is not empty)."""
    result = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + CODE, json.dumps(["worker", "--help"])],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "jobforge.worker" in report["heavy"], report


def test_an_unknown_command_suggests_the_close_ones() -> None:
    """The lazy group holds no command until asked, and still suggests like typer's."""
    for typo, suggestion in (("job", "'jobs'"), ("helth", "'health'"), ("Jobs", "'jobs'")):
        result = subprocess.run(
            [sys.executable, "-m", "jobforge.cli.app", typo],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [
            f"error: No such command {typo!r}. Did you mean {suggestion}? (see jobforge --help)"
        ], result.stderr


def test_version_prints_the_installed_version_and_loads_no_command() -> None:
    from importlib.metadata import version

    code = (
        "import sys\nfrom jobforge.cli.app import main\ncode = main(['--version'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('jobforge.cli.') and m not in "
        "('jobforge.cli.app', 'jobforge.cli.help_flags')))\nsys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"jobforge {version('jobforge')}", "[]"], result.stdout
