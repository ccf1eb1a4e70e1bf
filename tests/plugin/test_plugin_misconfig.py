"""A new user's plugin mistakes, each answered in one line (pytester, in a subprocess).

A value that cannot mean anything (an option, its ini twin, a `[tool.jobforge]` key or value) is a
pytest usage error: exit code 4 and one `ERROR: jobforge: ...` line naming the option or key,
the value and what is allowed; never an INTERNALERROR traceback. A project whose golden cases
cannot be collected says so in the summary instead of a bare "no tests ran". None of these needs
a database: each is decided before any case runs.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import jobforge

pytestmark = pytest.mark.slow

RUNNERS = """
from pydantic import BaseModel

from jobforge.contracts import runner


class In(BaseModel):
    target: str = "a"


@runner("ops.echo", version="1.0.0", input=In, output=In)
def echo(inp, ctx):
    return inp
"""

PYPROJECT = '[tool.jobforge]\nrunners = ["myrunners"]\n'


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner pytest imports the jobforge under test; no provider or server from outside."""
    here = str(Path(jobforge.__file__).resolve().parents[1])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    )
    for name in ("CI", "JOBFORGE_PROVIDER", "JOBFORGE_SCRATCH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def repo(pytester: pytest.Pytester, pyproject: str | None = PYPROJECT) -> Path:
    """A runner repository with one golden case of ops.echo (and `pyproject` as given)."""
    if pyproject is not None:
        pytester.makefile(".toml", pyproject=pyproject)
    pytester.makepyfile(myrunners=RUNNERS)
    case = pytester.path / "golden" / "ops.echo" / "basic.json"
    case.parent.mkdir(parents=True)
    case.write_text(json.dumps({"input": {"target": "a"}}) + "\n")
    return case


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def usage_error(result: pytest.RunResult) -> str:
    """The one line a usage error prints; the run printed nothing else and exited 4."""
    text = (result.stdout.str() + "\n" + result.stderr.str()).strip()
    assert "INTERNALERROR" not in text, text
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("ERROR: jobforge: "), text
    return lines[0]


# --- [tool.jobforge] ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runners", "expected"),
    [
        pytest.param(
            '"myrunnerz"',
            "[tool.jobforge] runners: cannot import runner module 'myrunnerz': no module named "
            "'myrunnerz' (did you mean 'myrunners'?)",
            id="misspelt-module",
        ),
        pytest.param(
            '"myrunners:echo"',
            "[tool.jobforge] runners: 'myrunners:echo' is not a module name: write 'myrunners'",
            id="module-attr",
        ),
        pytest.param(
            '"myrunners.py"',
            "[tool.jobforge] runners: 'myrunners.py' is not a module name: a file path; write "
            "its import name (like 'myrunners')",
            id="file-path",
        ),
    ],
)
def test_a_typo_in_runners_is_one_line_naming_the_key_and_the_value(
    pytester: pytest.Pytester, runners: str, expected: str
) -> None:
    repo(pytester, f"[tool.jobforge]\nrunners = [{runners}]\n")
    line = usage_error(run(pytester))
    assert str(pytester.path / "pyproject.toml") in line
    assert expected in line


def test_a_runner_module_that_exits_is_one_line_not_an_internal_error(
    pytester: pytest.Pytester,
) -> None:
    repo(pytester, '[tool.jobforge]\nrunners = ["leaving"]\n')
    pytester.makepyfile(leaving="raise SystemExit(3)\n")
    assert "importing 'leaving' failed: it called sys.exit(3)" in usage_error(run(pytester))


def test_an_unknown_key_is_one_line_with_the_key_it_resembles(pytester: pytest.Pytester) -> None:
    repo(pytester, '[tool.jobforge]\nrunner = ["myrunners"]\n')
    line = usage_error(run(pytester))
    assert "[tool.jobforge] has no key 'runner' (did you mean 'runners'?); its keys are " in line
    assert "golden_dir" in line


def test_a_value_of_the_wrong_type_is_one_line(pytester: pytest.Pytester) -> None:
    repo(pytester, '[tool.jobforge]\nrunners = "myrunners"\n')
    line = usage_error(run(pytester))
    assert "[tool.jobforge] runners must be a list of module names" in line


def test_a_misspelt_submodule_in_runners_gets_the_close_name(pytester: pytest.Pytester) -> None:
    repo(pytester, '[tool.jobforge]\nrunners = ["mypkg.triag"]\n')
    pytester.mkpydir("mypkg")
    (pytester.path / "mypkg" / "triage.py").write_text(RUNNERS)
    line = usage_error(run(pytester))
    assert "cannot import runner module 'mypkg.triag': no module named 'mypkg.triag' (did you " \
        "mean 'mypkg.triage'?)" in line  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "near"),
    [("golden_dir", "goldne", "golden"), ("contracts_dir", "contract", "contracts")],
)
def test_a_folder_tool_jobforge_names_that_is_not_there_is_one_line(
    pytester: pytest.Pytester, key: str, value: str, near: str
) -> None:
    """A typo would turn every golden case (or lock) off in silence: a usage error instead."""
    repo(pytester, f'{PYPROJECT}{key} = "{value}"\n')
    (pytester.path / "contracts").mkdir()
    line = usage_error(run(pytester))
    assert f"[tool.jobforge] {key} = {value!r}: no such folder {pytester.path / value}" in line
    assert f"(did you mean {near!r}?)" in line


def test_a_default_golden_dir_that_does_not_exist_is_said_in_the_summary(
    pytester: pytest.Pytester,
) -> None:
    case = repo(pytester)
    case.unlink()
    case.parent.rmdir()
    case.parent.parent.rmdir()
    result = run(pytester)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(
        [f"*no golden cases folder: {pytester.path / 'golden'} does not exist*"]
    )


def test_golden_cases_without_tool_jobforge_get_a_hint(pytester: pytest.Pytester) -> None:
    repo(pytester, pyproject='[project]\nname = "new"\n')
    result = run(pytester)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    hints = [line for line in result.stdout.lines if line.startswith("jobforge: ")]
    assert hints == [
        "jobforge: golden/ holds golden cases, but pyproject.toml has no [tool.jobforge] table, "
        'so none were collected: add [tool.jobforge] with runners = ["your.runner.module"] '
        "(see the README)"
    ]


def test_no_hint_without_golden_cases(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject='[project]\nname = "plain"\n')
    (pytester.path / "golden").mkdir()  # a folder of that name, with no case in it
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert "holds golden cases" not in result.stdout.str()


# --- an invalid case is a failure, counted as one -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param('{"input": {"target": "a"},\n', "is not JSON: ", id="not-json"),
        pytest.param('{"input": {}, "expcet": {}}\n', "is invalid: ", id="unknown-field"),
    ],
)
def test_an_invalid_golden_case_is_counted_as_failed(
    pytester: pytest.Pytester, body: str, problem: str
) -> None:
    case = repo(pytester)
    case.write_text(body)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert re.search(r"^golden: 0 passed, 1 failed, ", result.stdout.str(), re.M), (
        result.stdout.str()
    )
    # the failure is one line naming the file and the problem
    result.stdout.re_match_lines(
        [r"_+ golden ops\.echo/basic _+", re.escape(f"golden case {case} {problem}") + ".+"],
        consecutive=True,
    )


# --- option values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["--jobforge-strict", "maybe"],
                     "--jobforge-strict 'maybe' is not valid: use yes or no", id="strict"),
        pytest.param(["--jobforge-fresh=sometimes"],
                     "--jobforge-fresh 'sometimes' is not valid: use yes or no", id="fresh"),
        pytest.param(["--jobforge-runs", "two"],
                     "--jobforge-runs 'two' is not valid: use a whole number of runs, 1 or more",
                     id="runs-word"),
        pytest.param(["--jobforge-runs", "0"],
                     "--jobforge-runs '0' is not valid: use a whole number of runs, 1 or more",
                     id="runs-zero"),
        pytest.param(["--jobforge-provider", "podman"],
                     "--jobforge-provider 'podman' is not valid: use one of auto, url, docker, "
                     "local", id="provider"),
        pytest.param(["--jobforge-golden-dir", "nowhere"],
                     "--jobforge-golden-dir 'nowhere' is not valid: no such folder", id="golden"),
        pytest.param(["--jobforge-bundles", "nowhere"],
                     "--jobforge-bundles 'nowhere' is not valid: no such folder", id="bundles"),
        pytest.param(["--jobforge-database-url", "nonsense"],
                     "--jobforge-database-url: invalid database URL: ", id="database-url"),
        pytest.param(["--jobforge-refresh-failures"],
                     "--jobforge-refresh-failures records failing runs only while refreshing: "
                     "add --jobforge-refresh", id="refresh-failures-alone"),
    ],
)  # fmt: skip
def test_an_invalid_option_value_is_one_line(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    repo(pytester)
    line = usage_error(run(pytester, *args))
    assert line.startswith(f"ERROR: jobforge: {expected}"), line


def test_an_invalid_option_is_refused_without_tool_jobforge_too(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    line = usage_error(run(pytester, "--jobforge-strict", "maybe"))
    assert "--jobforge-strict 'maybe' is not valid: use yes or no" in line


@pytest.mark.parametrize(
    ("ini", "expected"),
    [
        pytest.param('jobforge_strict = "maybe"',
                     "ini option jobforge_strict 'maybe' is not valid: use yes or no",
                     id="strict"),
        pytest.param('jobforge_refresh = "maybe"',
                     "ini option jobforge_refresh: invalid truth value 'maybe'; use true or false",
                     id="refresh"),
    ],
)  # fmt: skip
def test_an_invalid_ini_value_is_one_line(
    pytester: pytest.Pytester, ini: str, expected: str
) -> None:
    repo(pytester, PYPROJECT + f"\n[tool.pytest.ini_options]\n{ini}\n")
    assert expected in usage_error(run(pytester))


def test_valid_spellings_of_yes_and_no_are_taken(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    for value in ("yes", "NO", "true", "off", "1"):
        run(pytester, "--jobforge-strict", value, "--jobforge-fresh", value).assert_outcomes(
            passed=1
        )
