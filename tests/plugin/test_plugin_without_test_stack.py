"""The plugin where pytest is installed but not the rest of the test stack (a core install plus
pytest): it loads and never breaks a run, and a golden feature used without the stack fails in
one line naming what to install (pytester, in a fresh interpreter where hypothesis, syrupy,
deepdiff, testcontainers and docker cannot be imported and their pytest plugins are off)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import jobforge

pytestmark = pytest.mark.slow

INSTALL = "pip install 'jobforge[testing]'"
HIDDEN = ("hypothesis", "syrupy", "deepdiff", "testcontainers", "docker")

#: pytest in a fresh interpreter where the HIDDEN packages cannot be imported.
PYTEST = """
import sys
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Hide())
import pytest
sys.exit(pytest.main(sys.argv[1:]))
""".replace("HIDDEN", repr(HIDDEN))

RUNNERS = """
from pydantic import BaseModel

from jobforge.contracts import runner


class In(BaseModel):
    target: str = "a"


@runner("ops.echo", version="1.0.0", input=In, output=In)
def echo(inp, ctx):
    return inp
"""

TESTS = """
def test_plain():
    assert 1 + 1 == 2
"""


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner pytest imports the jobforge under test; no provider or server from outside."""
    here = str(Path(jobforge.__file__).resolve().parents[1])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    )
    for name in ("CI", "JOBFORGE_PROVIDER", "JOBFORGE_SCRATCH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str]:
    off = ("hypothesispytest", "syrupy", "benchmark", "cacheprovider", "randomly")
    plugins = [arg for name in off for arg in ("-p", f"no:{name}")]
    # --assert=plain: pytest's rewriting hook would find the modules of every distribution with
    # a pytest plugin (hypothesis, syrupy) ahead of the hiding finder
    result = pytester.run(sys.executable, "-c", PYTEST, *plugins, "--assert=plain", "-rA", *args)
    text = result.stdout.str() + "\n" + result.stderr.str()
    for noise in ("INTERNALERROR", "Traceback", "During handling"):
        assert noise not in text, text
    return result, text


def test_an_unrelated_run_is_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=TESTS)
    result, text = run(pytester)
    result.assert_outcomes(passed=1)
    assert "test stack" not in text


def test_golden_cases_and_the_property_fixture_say_what_to_install(
    pytester: pytest.Pytester,
) -> None:
    """Plain tests pass; each golden case and each use of `jobforge_check_runner` fails with the
    one line; a golden case is not run first (no deepdiff, no verdict)."""
    pytester.makefile(".toml", pyproject='[tool.jobforge]\nrunners = ["myrunners"]\n')
    pytester.makepyfile(myrunners=RUNNERS)
    pytester.makepyfile(
        test_mine=TESTS
        + """
def test_property(jobforge_check_runner):
    jobforge_check_runner("ops.echo", max_examples=2)
"""
    )
    case = pytester.path / "golden" / "ops.echo" / "basic.json"
    case.parent.mkdir(parents=True)
    expect = {"status": "succeeded", "output": {"target": "a"}, "trace": [], "artifacts": {}}
    case.write_text(json.dumps({"input": {"target": "a"}, "expect": expect}) + "\n")
    result, text = run(pytester, "test_mine.py", "golden")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    golden = (
        "golden case ops.echo/basic needs the test stack (deepdiff is not installed): " + INSTALL
    )
    fixture = (
        "jobforge: jobforge_check_runner needs the test stack (hypothesis is not installed): "
        + INSTALL
    )
    lines = text.splitlines()
    assert golden in lines, text
    assert f"Failed: {fixture}" in lines or fixture in lines, text
