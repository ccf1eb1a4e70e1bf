"""A core install (`pip install jobforge`, no extra) has none of the test stack: no jobforge module
but the pytest plugin and `jobforge.strategies` imports it, the CLI's production commands run
without it, and a test-stack feature says in one line what to install.

Each check runs in a fresh interpreter (this one has the test stack loaded already). `HIDE` makes
the test stack unimportable there, as it is in a core install; `.ci/core-only` proves the same on
a real one.
"""

from __future__ import annotations

import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import jobforge
from jobforge.provision import Database
from jobforge.queue import QueueClient
from jobforge.states import JobState

ROOT = Path(jobforge.__file__).resolve().parents[1]
#: What `pip install jobforge` must not bring, and no production module may import.
STACK = ("pytest", "_pytest", "hypothesis", "syrupy", "deepdiff", "testcontainers", "docker")
#: The modules that are the test stack's features by design (they need pytest or hypothesis).
FEATURES = ("jobforge.plugins", "jobforge.strategies")
INSTALL = "pip install 'jobforge[testing]'"

#: Run first in the fresh interpreter: argv[1] names the packages to make unimportable.
HIDE = """
import json, sys
class _Hide:
    names = set(filter(None, sys.argv.pop(1).split(",")))
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Hide())
def loaded():
    return sorted(set(STACK) & {m.partition(".")[0] for m in sys.modules})
""".replace("STACK", repr(STACK))


def python(
    code: str, *args: str, hide: tuple[str, ...] = STACK, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFORGE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-c", HIDE + code, ",".join(hide), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def production_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(jobforge.__path__, "jobforge.")]
    return ["jobforge", *(n for n in names if not n.startswith(FEATURES))]


def test_no_production_module_imports_the_test_stack() -> None:
    """Every jobforge module but the features, imported where the test stack IS installed:
    none of it is loaded (a lazy import that became eager is caught, even inside a try)."""
    modules = production_modules()
    assert {"jobforge.worker", "jobforge.queue", "jobforge.cli.app"} <= set(modules)
    code = "import importlib\nfor name in sys.argv[1:]: importlib.import_module(name)\n"
    result = python(code + "print(json.dumps(loaded()))", *modules, hide=())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [], result.stdout


def test_production_commands_run_without_the_test_stack() -> None:
    """`jobforge --help` and every production command's --help, and `contracts check` of the
    examples (discovery, locks, drift: no database), with the test stack unimportable."""
    commands = [["--help"], ["worker", "--help"], ["enqueue", "--help"], ["jobs", "list", "--help"],
                ["jobs", "show", "--help"], ["migrate", "--help"], ["db", "start", "--help"],
                ["runs", "list", "--help"], ["doctor", "--help"], ["contracts", "lock", "--help"],
                ["schedules", "add", "--help"], ["features", "enable", "--help"],
                ["events", "submit", "--help"], ["triggers", "add", "--help"],
                ["contracts", "check", "--project", "examples"]]  # fmt: skip
    code = (
        "from jobforge.cli.app import main\n"
        "codes = [main(json.loads(arg)) for arg in sys.argv[1:]]\n"
        "print(json.dumps({'codes': codes, 'loaded': loaded()}))\n"
    )
    result = python(code, *map(json.dumps, commands))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"codes": [0] * len(commands), "loaded": []}, result.stdout
    assert "contracts: ok" in result.stdout


@pytest.mark.parametrize("command", [["certify", "examples"], ["replay", "examples/bundles"]],
                         ids=" ".join)  # fmt: skip
def test_a_test_stack_command_says_what_to_install(command: list[str]) -> None:
    """One line on stderr and exit 2, before any server starts; never a traceback."""
    code = "from jobforge.cli.app import main\nsys.exit(main(sys.argv[1:]))\n"
    result = python(code, *command)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: jobforge {command[0]} needs the test stack (deepdiff is not installed): {INSTALL}"
    ], result.stderr


def test_the_plugin_imports_with_pytest_alone() -> None:
    """pytest installed, the rest of the test stack not: the plugin's entry point module (and
    its golden and bundle items) import, so an unrelated pytest run never breaks."""
    code = (
        "import jobforge.plugins.pytest.plugin, jobforge.plugins.pytest.factories\n"
        "import jobforge.plugins.pytest.golden_items, jobforge.plugins.pytest.bundle_items\n"
        "print('ok')\n"
    )
    hidden = tuple(name for name in STACK if name not in ("pytest", "_pytest"))
    result = python(code, hide=hidden)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("module", "feature", "missing"),
    [
        ("jobforge.strategies", "jobforge.strategies", "hypothesis"),
        ("jobforge.plugins.pytest.snapshot", "RunRecordSnapshot (syrupy snapshots)", "syrupy"),
    ],
)
def test_a_test_stack_module_says_what_to_install(module: str, feature: str, missing: str) -> None:
    """Importing it raises MissingTestStack, an ImportError too (pytest.importorskip skips)."""
    code = (
        f"try:\n    import {module}\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.exit_code, exc, sep='|')\n"
    )
    result = python(code, hide=(missing,))
    assert result.returncode == 0, result.stderr
    message = f"{feature} needs the test stack ({missing} is not installed): {INSTALL}"
    assert result.stdout.strip() == f"MissingTestStack|2|{message}"


def test_a_worker_runs_a_job_without_the_test_stack(
    jobforge_db: Database, jobforge_queue: QueueClient, tmp_path: Path
) -> None:
    """`jobforge worker --exit-when-idle` of the examples' runners, in a fresh interpreter where
    the test stack cannot be imported: the job succeeds, its run is recorded, and the process
    loaded none of the test stack (`.ci/core-only` does the same from a real core install)."""
    shutil.copytree(ROOT / "examples" / "example_runners", tmp_path / "example_runners")
    shutil.copy(ROOT / "examples" / "pyproject.toml", tmp_path / "pyproject.toml")
    resources = [{"id": "vm-1", "kind": "vm", "monthly_usd": 12.5, "utilization": 0.01}]
    payload = {"target": "core", "resources": resources}
    job = jobforge_queue.enqueue("ops.scan", payload).job_id
    code = (
        "from jobforge.cli.app import main\n"
        "code = main(sys.argv[1:])\n"
        "print(json.dumps({'code': code, 'loaded': loaded()}))\n"
    )
    args = ("worker", "--exit-when-idle", "--database-url", jobforge_db.dsn, "--concurrency", "2")
    result = python(code, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"code": 0, "loaded": []}
    assert "succeeded 1" in result.stdout + result.stderr, result.stdout + result.stderr
    assert jobforge_queue.get(job).status is JobState.SUCCEEDED
    assert jobforge_queue.result(job)["findings"] == ["vm-1"]
    (run,) = jobforge_queue.runs(job)
    assert run["status"] == "succeeded"
