"""The gate must not go blind and must explain what it sees (issue [1/10]).

Through pytester, as a user's CI runs it: runners that leak nondeterminism into fields of every
kind of name (secret-looking ones included), into the trace only, an artifact only or the error
only; each source explained by its cause and the runner's line; machine-dependent reads reported
as warnings; and deterministic runners (sorted sets, dict order, floats, the RunContext sources,
equal secrets) passing clean.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.plugin.test_golden import _environment, dsn, failure, run, summary

pytestmark = pytest.mark.slow

__all__ = ["_environment", "dsn"]  # fixtures re-used from test_golden

HEAD = """
import itertools
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from jobforge.errors import NonRetryable
from jobforge.contracts import runner


class In(BaseModel):
    items: list[str] = []


class Val(BaseModel):
    value: Any = None
    token: Any = None
    api_key: Any = None
    password: Any = None


_count = 0


def bump():
    global _count
    _count += 1  # MARK:bump
    return _count
"""

#: Sources of nondeterminism: an expression each, written on a line of its own.
SOURCES = {
    "pid": "os.getpid()",
    "monotonic": "time.monotonic_ns()",
    "perf": "time.perf_counter()",
    "uptime": "Path('/proc/uptime').read_text().split()[0]",
    "id": "id(object())",
    "repr": "repr(object())",
    "counter": "bump()",
}
FIELDS = ("token", "api_key", "password", "value")


def _runner(name: str, body: str, *, output: str = "Val", extra: str = "") -> str:
    return (
        f'\n\n@runner("{name}", version="1.0.0", input=In, output={output}{extra})\n'
        f"def {name.replace('.', '_').replace('-', '_')}(inp, ctx):\n{body}\n"
    )


def _leak(name: str, field: str, source: str) -> str:
    return _runner(name, f"    got = {SOURCES[source]}  # MARK:{name}\n"
                         f"    return Val(**{{{field!r}: got}})")  # fmt: skip


def project(pytester: pytest.Pytester, code: str, cases: list[str]) -> None:
    pytester.makefile(".toml", pyproject='[tool.jobforge]\nrunners = ["mutants"]\n')
    pytester.makepyfile(mutants=HEAD + code)
    for name in cases:
        path = pytester.path / "golden" / name / "basic.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"input": {"items": [f"s{i:02d}" for i in range(24)]}}))


def line_of(pytester: pytest.Pytester, mark: str) -> str:
    path = (pytester.path / "mutants.py").resolve()
    number = next(n for n, line in enumerate(path.read_text().splitlines(), 1)
                  if line.endswith(f"# MARK:{mark}"))  # fmt: skip
    return f"{path}:{number}"


def test_sources_in_fields_of_every_name_are_detected(pytester: pytest.Pytester, dsn: str) -> None:
    """Redaction never hides a difference: `token`, `api_key` and `password` are compared on
    their real values, like `value`."""
    names = {f"leak.{s}.{f}": (s, f) for s in ("monotonic", "pid", "counter", "repr")
             for f in FIELDS}  # fmt: skip
    code = "".join(_leak(n, f, s) for n, (s, f) in names.items())
    project(pytester, code, list(names))
    result = run(pytester, dsn, "--jobforge-strict", "no")
    result.assert_outcomes(failed=len(names))
    for name, (_, field) in names.items():
        text = failure(result, f"{name}/basic")
        assert f"golden case {name}/basic is nondeterministic:" in text, text
        assert f"output.{field}: " in text, text
        assert "[redacted]" not in text


def test_each_source_is_explained_by_cause_and_line(pytester: pytest.Pytester, dsn: str) -> None:
    names = {f"why.{s}": s for s in SOURCES}
    code = "".join(_leak(n, "value", s) for n, s in names.items())
    code += _runner("why.order", "    return Val(value=list(set(inp.items)))  # MARK:why.order")
    project(pytester, code, [*names, "why.order"])
    result = run(pytester, dsn)
    result.assert_outcomes(failed=len(names) + 1)
    causes = {
        "pid": r"process id",
        "monotonic": r"monotonic",
        "perf": r"(perf|performance) counter",
        "uptime": r"/proc",
        "id": r"address",
        "repr": r"address",
    }
    for name, source in names.items():
        text = failure(result, f"{name}/basic")
        if source == "counter":
            assert re.search(r"output\.value: 1 vs 2 — module state: the global _count of "
                             r"mutants changed", text), text  # fmt: skip
            assert f"at {line_of(pytester, 'bump')}" in text, text
            continue
        finding = next((ln for ln in text.splitlines() if ln.strip().startswith("output.value")),
                       None)  # fmt: skip
        assert finding is not None, text
        assert re.search(causes[source], finding, re.IGNORECASE), text
        assert finding.endswith(f"at {line_of(pytester, name)}"), text

    text = failure(result, "why.order/basic")
    assert "run 2 (in-process)" not in text
    assert re.search(r"output\.value: \['s.* vs \['s.* — iteration order of a set or dict of "
                     r"str \(hash seed\): confirmed", text), text  # fmt: skip


def test_machine_dependent_reads_are_warnings_at_their_line(
    pytester: pytest.Pytester, dsn: str
) -> None:
    code = _runner("warn.env", '    return Val(value=os.environ.get("HOME", "-"))  # MARK:env')
    code += _runner("warn.host", "    return Val(value=socket.gethostname())  # MARK:host")
    project(pytester, code, ["warn.env", "warn.host"])
    run(pytester, dsn, "--jobforge-refresh").assert_outcomes(passed=2)
    result = run(pytester, dsn, "-W", "always")
    result.assert_outcomes(passed=2, warnings=2)
    out = result.stdout.str()
    for mark in ("env", "host"):
        path, line = line_of(pytester, mark).rsplit(":", 1)
        assert re.search(rf"{re.escape(path)}:{line}: StrictModeWarning: golden case", out), out
    assert "environment variable" in out
    assert "another machine" in out


@pytest.mark.parametrize(
    ("where", "body", "path"),
    [
        ("trace", '    ctx.decide("t", time.monotonic_ns())\n    return Val()', "trace[0]"),
        ("why", '    ctx.decide("t", 1, at=os.getpid())\n    return Val()', "trace[0]"),
        ("artifact", '    ctx.artifact("a.txt", str(id(object())))\n    return Val()',
         "artifacts.a.txt"),
        ("error", '    raise NonRetryable(f"failed at {time.perf_counter_ns()}")', "error.message"),
        ("status", "    if os.getpid() % 2 == bump() % 2:\n        raise NonRetryable('odd')\n"
                   "    return Val()", "status"),
    ],
)  # fmt: skip
def test_nondeterminism_reaching_only_one_part_is_detected(
    pytester: pytest.Pytester, dsn: str, where: str, body: str, path: str
) -> None:
    extra = ', artifacts=["a.txt"]' if where == "artifact" else ""
    project(pytester, _runner(f"part.{where}", body, extra=extra), [f"part.{where}"])
    result = run(pytester, dsn, "--jobforge-strict", "no")
    result.assert_outcomes(failed=1)
    text = failure(result, f"part.{where}/basic")
    assert "is nondeterministic" in text, text
    assert f"    {path}" in text, text


CLEAN = {
    "sorted": "    return Val(value=sorted(set(inp.items)))",
    "dict": "    d = {k: len(k) for k in inp.items}\n    return Val(value=list(d))",
    "floats": "    return Val(value=[0.1 + 0.2, 1 / 3, 1e-300 * 1e-10, 2.5e300])",
    "context": "    return Val(value=[ctx.now().isoformat(), ctx.random.random(), "
    "str(ctx.uuid())])",
    "secret": '    return Val(token="t-" + "".join(inp.items), api_key="k", password="p")',
    "pagetoken": '    ctx.decide("next_page_token", "page-2")\n    return Val(token="page-2")',
}


def test_deterministic_runners_pass_clean(pytester: pytest.Pytester, dsn: str) -> None:
    code = "".join(_runner(f"clean.{n}", body) for n, body in CLEAN.items())
    names = [f"clean.{n}" for n in CLEAN]
    project(pytester, code, names)
    refreshed = run(pytester, dsn, "--jobforge-refresh")
    refreshed.assert_outcomes(passed=len(names))
    result = run(pytester, dsn, "-W", "error::jobforge.errors.StrictModeWarning")
    result.assert_outcomes(passed=len(names))
    assert summary(result).startswith(f"golden: {len(names)} passed, 0 failed")


COARSE = {
    "factory": "    class D(BaseModel):\n        day: datetime.date = "
    "Field(default_factory=datetime.date.today)\n    return Val(value=str(D().day))",
    "email": "    return Val(value=email.utils.formatdate()[:16])",
    "logging": "    f = logging.Formatter('%(asctime)s', '%Y-%m-%d %H')\n"
    "    return Val(value=f.format(logging.makeLogRecord({})))",
}


def test_a_coarse_clock_read_inside_a_library_is_caught_by_moving_the_clock(
    pytester: pytest.Pytester, dsn: str
) -> None:
    """A date taken from the wall clock by a library (a default factory, email.utils, a log
    formatter) agrees between runs a second apart; each run sees the clock moved by a day."""
    code = "import datetime, email.utils, logging\nfrom pydantic import Field\n"
    code += "".join(_runner(f"coarse.{n}", b) for n, b in COARSE.items())
    project(pytester, code, [f"coarse.{n}" for n in COARSE])
    result = run(pytester, dsn, "--jobforge-refresh")
    result.assert_outcomes(failed=len(COARSE))
    for name in COARSE:
        text = failure(result, f"coarse.{name}/basic")
        assert "run 2 (in-process) differs from run 1:\n    output.value: " in text, text
        assert "— the wall clock, read inside a library: time.time() inside " in text, text


INERT = {
    "timed": "    began = time.perf_counter()\n    total = sum(len(i) for i in inp.items)\n"
    "    logging.getLogger('x').info('took %s', time.perf_counter() - began)\n"
    "    return Val(value=total)",
    "identity": "    seen = {id(o): o for o in (inp, ctx)}\n    return Val(value=len(seen))",
    "scratch": "    import tempfile\n    with tempfile.TemporaryDirectory() as d:\n"
    "        (Path(d) / 'x').write_text('a')\n"
    "        return Val(value=(Path(d) / 'x').read_text())",
}


def test_timings_addresses_and_scratch_names_that_never_reach_the_result_are_warnings(
    pytester: pytest.Pytester, dsn: str
) -> None:
    code = "import logging\n" + "".join(_runner(f"inert.{n}", b) for n, b in INERT.items())
    names = [f"inert.{n}" for n in INERT]
    project(pytester, code, names)
    run(pytester, dsn, "--jobforge-refresh").assert_outcomes(passed=len(names))
    result = run(pytester, dsn, "-W", "always")
    result.assert_outcomes(passed=len(names), warnings=4)  # two perf_counter lines
    out = result.stdout.str()
    for cause in ("performance counter", "object address (id)", "random temporary name"):
        assert f"— {cause}, whose values never reached the result in any run" in out, out


def test_a_redaction_key_lets_a_changed_secret_fail_the_expectation(
    pytester: pytest.Pytester, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _runner("sec.tok", '    return Val(token="v1-" + inp.items[0])  # MARK:tok')
    project(pytester, code, ["sec.tok"])
    case = pytester.path / "golden" / "sec.tok" / "basic.json"

    # without a key: stored as [redacted], and the report says it was not compared
    run(pytester, dsn, "--jobforge-refresh").assert_outcomes(passed=1)
    assert json.loads(case.read_text())["expect"]["output"]["token"] == "[redacted]"
    (pytester.path / "mutants.py").write_text(
        (pytester.path / "mutants.py").read_text().replace('"v1-"', '"v2-"')
    )
    blind = run(pytester, dsn, "-W", "always")
    blind.assert_outcomes(passed=1, warnings=1)
    blind.stdout.fnmatch_lines(["*NotComparedWarning*output.token*"])

    # with a key: a keyed HMAC is stored, and a changed value fails
    monkeypatch.setenv("JOBFORGE_REDACTION_KEY", "k" * 32)
    run(pytester, dsn, "--jobforge-refresh").assert_outcomes(passed=1)
    stored = json.loads(case.read_text())["expect"]["output"]["token"]
    assert re.fullmatch(r"\[redacted:[0-9a-f]{8}:[0-9a-f]{32}\]", stored)
    assert "v2-" not in case.read_text()
    run(pytester, dsn).assert_outcomes(passed=1)
    (pytester.path / "mutants.py").write_text(
        (pytester.path / "mutants.py").read_text().replace('"v2-"', '"v3-"')
    )
    changed = run(pytester, dsn)
    changed.assert_outcomes(failed=1)
    assert "output.token: expected '[redacted:" in failure(changed, "sec.tok/basic")


@pytest.mark.parametrize(
    ("code", "env", "message"),
    [
        ("import not_a_module_anywhere\n", {}, "jobforge: importing 'mutants' failed: "
         "No module named 'not_a_module_anywhere'"),
        ("", {"JOBFORGE_REDACTION_KEY": "short"},
         "jobforge: JOBFORGE_REDACTION_KEY must be at least 16 bytes (it is 5)"),
    ],
)  # fmt: skip
def test_a_broken_project_is_a_one_line_usage_error(
    pytester: pytest.Pytester, dsn: str, monkeypatch: pytest.MonkeyPatch, code: str,
    env: dict[str, str], message: str,
) -> None:  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    project(pytester, code, [])
    result = run(pytester, dsn)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stderr.str()
    assert "Traceback" not in result.stderr.str()
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])


def test_an_output_that_cannot_be_recorded_is_a_contract_violation_not_a_crash(
    pytester: pytest.Pytester, dsn: str
) -> None:
    project(pytester, _runner("big.int", "    return Val(value=2**60)"), ["big.int"])
    refused = run(pytester, dsn, "--jobforge-refresh")  # a failing run is not recorded silently
    refused.assert_outcomes(failed=1)
    assert "the run ended contract_violation (ContractViolation: " in refused.stdout.str()
    result = run(pytester, dsn, "--jobforge-refresh", "--jobforge-refresh-failures")
    result.assert_outcomes(passed=1)
    case = json.loads((pytester.path / "golden" / "big.int" / "basic.json").read_text())
    assert case["expect"]["status"] == "contract_violation"
    assert case["expect"]["error"]["message"].startswith(
        "the output of big.int cannot be recorded: integer 1152921504606846976 at $.value: a "
        "JSON number is an IEEE double"
    )
    assert "Traceback" not in result.stdout.str()
