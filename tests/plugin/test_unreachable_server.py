"""A server the session cannot get fails once, in one line (pytester, in a subprocess).

An unreachable `--jobforge-database-url` used to error every test that needed it with ~40 lines
of traceback through the plugin and the provisioning modules, then fail every golden case with
the same message. Now, when a collected test needs the server, the plugin provides it before the
first test runs: a failure is a pytest usage error (exit 4), one `ERROR: jobforge: ...` line,
whatever `--tb` says. Where that check cannot run (an xdist worker), each test needing the server
fails in one line, and the server is tried once a session.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import jobforge

pytestmark = pytest.mark.slow

URL = "postgresql://u:secret@127.0.0.1:1/x"

RUNNERS = """
from pydantic import BaseModel

from jobforge.contracts import runner


class In(BaseModel):
    target: str = "a"


@runner("ops.echo", version="1.0.0", input=In, output=In)
def echo(inp, ctx):
    return inp
"""


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    here = str(Path(jobforge.__file__).resolve().parents[1])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    )
    for name in ("CI", "JOBFORGE_PROVIDER", "JOBFORGE_SCRATCH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def runner_repo(pytester: pytest.Pytester) -> Path:
    """A runner repository: a test using `jobforge_run`, a golden case, a plain test."""
    pytester.makefile(".toml", pyproject='[tool.jobforge]\nrunners = ["myrunners"]\n')
    pytester.makepyfile(myrunners=RUNNERS)
    pytester.makepyfile(
        test_echo="""
        def test_echo(jobforge_run):
            assert jobforge_run("ops.echo", {"target": "b"})["status"] == "succeeded"

        def test_plain():
            pass
        """
    )
    case = pytester.path / "golden" / "ops.echo" / "basic.json"
    case.parent.mkdir(parents=True)
    case.write_text(json.dumps({"input": {"target": "a"}}) + "\n")
    return pytester.path


def _text(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


@pytest.mark.parametrize("tb", ["--tb=auto", "--tb=long"])
def test_an_unreachable_url_is_one_usage_error_before_any_test(
    pytester: pytest.Pytester, runner_repo: Path, tb: str
) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", tb,
                                           f"--jobforge-database-url={URL}")  # fmt: skip
    text = _text(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    # (other plugins of the machine may warn on stderr: pytest-benchmark under xdist does)
    errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
    assert len(errors) == 1, text
    assert errors[0].startswith("ERROR: jobforge: cannot connect to Postgres at 127.0.0.1:1/x"), (
        text
    )
    for noise in ("Traceback", "provision", "plugin.py", "secret", "golden:", "passed"):
        assert noise not in text, (noise, text)


def test_a_suite_that_needs_no_server_runs_whatever_the_url(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", f"--jobforge-database-url={URL}")
    result.assert_outcomes(passed=1)


def test_without_the_early_check_each_test_fails_in_one_line(
    pytester: pytest.Pytester, runner_repo: Path
) -> None:
    """xdist workers provide the server when a test asks: one line per test, no traceback."""
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2",
                                           f"--jobforge-database-url={URL}")  # fmt: skip
    text = _text(result)
    result.assert_outcomes(passed=1, failed=1, errors=1)  # the plain test passes
    for noise in ("Traceback", "provision/", "plugin.py"):
        assert noise not in text, (noise, text)
    assert "During handling" not in text, text
    result.stdout.fnmatch_lines(["jobforge: cannot connect to Postgres at 127.0.0.1:1/x*"])
