"""Golden cases through pytester: a runner repository is written into pytester's directory and
pytest runs in a subprocess (fresh module state, the plugin configured from scratch) against the
session's server. Each test asserts on the report's own wording: the path of what differs, the
likely cause of a nondeterminism and, in strict mode, the uncontrolled call with file and line."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import jobforge

if TYPE_CHECKING:
    from jobforge.provision import Server

pytestmark = pytest.mark.slow

RUNNERS = """
import datetime
import random
import time
import uuid
from typing import Any

from pydantic import BaseModel

from jobforge.contracts import runner


class In(BaseModel):
    target: str = "a"
    items: list[str] = []


class Out(BaseModel):
    findings: list[str]
    summary: str = "unrelated-summary"


class Val(BaseModel):
    value: Any


@runner("ops.scan", version="1.0.0", input=In, output=Out, trace_keys=["picked"],
        artifacts=["report.md"])
def scan(inp, ctx):
    ctx.decide("threshold", 0.5, reason="default")
    ctx.decide("picked", inp.target, reason="first")
    ctx.artifact("report.md", f"# Scan of {inp.target}\\n")
    return Out(findings=[inp.target, "zzz-unrelated"])


@runner("ops.echo", version="1.0.0", input=In, output=Out)
def echo(inp, ctx):
    return Out(findings=[inp.target])


@runner("nd.clock", version="1.0.0", input=In, output=Val)
def clock(inp, ctx):
    return Val(value=time.time())  # MARK:clock


@runner("nd.today", version="1.0.0", input=In, output=Val)
def today(inp, ctx):
    return Val(value=datetime.datetime.now().isoformat())  # MARK:today


@runner("nd.ids", version="1.0.0", input=In, output=Val)
def ids(inp, ctx):
    return Val(value=str(uuid.uuid4()))  # MARK:ids


@runner("nd.dice", version="1.0.0", input=In, output=Val)
def dice(inp, ctx):
    return Val(value=random.random())  # MARK:dice


@runner("nd.seeded", version="1.0.0", input=In, output=Val)
def seeded(inp, ctx):
    random.seed(5)  # MARK:seeded
    return Val(value=random.random())  # MARK:seeded-draw


_calls = 0


@runner("nd.counter", version="1.0.0", input=In, output=Val)
def counter(inp, ctx):
    global _calls
    _calls += 1
    return Val(value=_calls)  # MARK:counter


@runner("nd.order", version="1.0.0", input=In, output=Val)
def order(inp, ctx):
    return Val(value=list(set(inp.items)))
"""

ITEMS = [f"finding-{i:02d}" for i in range(20)]


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def scan_expect(target: str = "a") -> dict[str, Any]:
    """What ops.scan gives for `target`, written by hand (the format, as a user would)."""
    report = f"# Scan of {target}\n".encode()
    return {
        "status": "succeeded",
        "output": {"findings": [target, "zzz-unrelated"], "summary": "unrelated-summary"},
        "trace": [
            {"key": "threshold", "value": 0.5, "why": {"reason": "default"}},
            {"key": "picked", "value": target, "why": {"reason": "first"}},
        ],
        "artifacts": {"report.md": {"sha256": _sha(report), "size": len(report)}},
    }


def echo_expect(target: str) -> dict[str, Any]:
    return {"status": "succeeded", "output": {"findings": [target], "summary": "unrelated-summary"}}


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner pytest inherits this environment. It imports the jobforge under test (not
    whichever copy an editable install points at), and CI=true (set on CI machines) would
    change what a missing expectation means."""
    here = str(Path(jobforge.__file__).resolve().parents[1])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture
def dsn(jobforge_server: Server) -> str:
    """The inner runs use this session's server (no server start per run)."""
    return jobforge_server.dsn


def repo(pytester: pytest.Pytester, cases: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """A runner repository: pyproject.toml, myrunners.py and `golden/<name>.json` per case."""
    pytester.makefile(".toml", pyproject='[tool.jobforge]\nrunners = ["myrunners"]\n')
    pytester.makepyfile(myrunners=RUNNERS)
    paths = {}
    for name, body in cases.items():
        path = pytester.path / "golden" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=2) + "\n")
        paths[name] = path
    return paths


def run(pytester: pytest.Pytester, dsn: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:benchmark", f"--jobforge-database-url={dsn}",
        "--jobforge-runs", "2", *args,
    )  # fmt: skip


def failure(result: pytest.RunResult, name: str) -> str:
    """The failure text pytest printed for golden case `name` (and nothing after it)."""
    lines = result.stdout.lines
    head = re.compile(rf"_+ golden {re.escape(name)} _+")
    start = next((i for i, line in enumerate(lines) if head.fullmatch(line)), None)
    assert start is not None, f"no failure reported for {name}:\n{result.stdout.str()}"
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(r"(_{3,} |={3,})", lines[i])),
        len(lines),
    )
    return "\n".join(lines[start + 1 : end])


def summary(result: pytest.RunResult) -> str:
    """The `golden: …` line of the jobforge section of the terminal summary."""
    lines = result.stdout.lines
    section = next(
        (i for i, line in enumerate(lines) if re.fullmatch(r"=+ jobforge =+", line)), None
    )
    assert section is not None, f"no jobforge section:\n{result.stdout.str()}"
    following = [line for line in lines[section + 1 :] if line.strip()]
    assert following[0].startswith("golden: "), following[0]
    return following[0]


def where(pytester: pytest.Pytester, mark: str) -> str:
    """`file:line` of the runner line tagged `# MARK:<mark>`, as strict mode reports it."""
    path = (pytester.path / "myrunners.py").resolve()
    number = next(
        n
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if line.endswith(f"# MARK:{mark}")
    )
    return f"{path}:{number}"


def test_refresh_writes_the_expectation_then_the_case_passes(
    pytester: pytest.Pytester, dsn: str
) -> None:
    stale = {"status": "succeeded", "output": {"value": 0}}
    paths = repo(
        pytester,
        {
            "ops.scan/basic": {"input": {"target": "a"}},
            "nd.clock/basic": {"input": {}, "expect": stale},
        },
    )
    unstable_before = paths["nd.clock/basic"].read_bytes()

    refreshed = run(pytester, dsn, "--jobforge-refresh")
    assert summary(refreshed) == (
        "golden: 0 passed, 0 failed, 1 nondeterministic, 1 refreshed, 0 missing, 0 unused"
    )
    refreshed.assert_outcomes(passed=1, failed=1)
    written = json.loads(paths["ops.scan/basic"].read_text())
    assert written["input"] == {"target": "a"}
    assert written["expect"] == {**scan_expect("a"), "error": None}
    # a nondeterministic runner is not refreshed: its file is untouched, and it fails as such
    assert paths["nd.clock/basic"].read_bytes() == unstable_before
    assert "golden case nd.clock/basic is nondeterministic:" in failure(refreshed, "nd.clock/basic")
    assert not list((pytester.path / "golden").rglob("*.tmp"))

    again = run(pytester, dsn)
    assert summary(again) == (
        "golden: 1 passed, 0 failed, 1 nondeterministic, 0 refreshed, 0 missing, 0 unused"
    )
    again.assert_outcomes(passed=1, failed=1)
    assert not [line for line in again.stdout.lines if "FAILED" in line and "ops.scan" in line]


def test_differences_are_reported_by_path_only(pytester: pytest.Pytester, dsn: str) -> None:
    output = scan_expect("a")
    output["output"]["findings"][0] = "b"
    trace = scan_expect("a")
    trace["trace"][1]["value"] = "z"
    artifact = scan_expect("a")
    older = _sha(b"an older report\n")
    artifact["artifacts"]["report.md"]["sha256"] = older
    repo(
        pytester,
        {
            "ops.scan/same": {"input": {"target": "a"}, "expect": scan_expect("a")},
            "ops.scan/output": {"input": {"target": "a"}, "expect": output},
            "ops.scan/trace": {"input": {"target": "a"}, "expect": trace},
            "ops.scan/artifact": {"input": {"target": "a"}, "expect": artifact},
        },
    )
    result = run(pytester, dsn, "--jobforge-fresh", "no")
    result.assert_outcomes(passed=1, failed=3)
    assert summary(result).startswith("golden: 1 passed, 3 failed, 0 nondeterministic")
    # never a dump of records: no provenance, environment, snapshots or hashes of the run
    reports = "\n".join(failure(result, f"ops.scan/{n}") for n in ("output", "trace", "artifact"))
    for word in ("provenance", "environment", "canonical", "trace_sha256", "input", "status"):
        assert word not in reports

    text = failure(result, "ops.scan/output")
    assert text.splitlines() == [
        "golden case ops.scan/output differs from its expectation:",
        "  output.findings[0]: expected 'b', got 'a'",
    ]

    text = failure(result, "ops.scan/trace")
    assert text.splitlines() == [
        "golden case ops.scan/trace differs from its expectation:",
        "  trace[1] (picked).value: expected 'z', got 'a'",
    ]
    for unrelated in ("threshold", "reason", "findings", "report.md"):
        assert unrelated not in text

    text = failure(result, "ops.scan/artifact")
    real = scan_expect("a")["artifacts"]["report.md"]["sha256"]
    assert text.splitlines() == [
        "golden case ops.scan/artifact differs from its expectation:",
        f"  artifacts['report.md'].sha256: expected '{older}', got '{real}'",
    ]


def test_nondeterministic_runners_are_flagged_with_their_cause(
    pytester: pytest.Pytester, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a known hash seed: the fresh interpreter then runs with PYTHONHASHSEED=1, where these
    # 20 strings come out of a set in another order (a str hash is fixed for a given seed)
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    names = ["clock", "today", "ids", "dice", "seeded", "counter", "order"]
    cases: dict[str, dict[str, Any]] = {f"nd.{n}/basic": {"input": {}} for n in names}
    cases["nd.order/basic"] = {"input": {"items": ITEMS}}
    repo(pytester, cases)
    result = run(pytester, dsn)
    result.assert_outcomes(failed=7)
    assert summary(result) == (
        "golden: 0 passed, 0 failed, 7 nondeterministic, 0 refreshed, 0 missing, 0 unused"
    )
    strict = "  strict mode: the runner called uncontrolled sources:"

    def site(mark: str, call: str, cause: str, hint: str) -> str:
        return f"    {call} at {where(pytester, mark)} — {cause} (use {hint})"

    text = failure(result, "nd.clock/basic")
    assert text.startswith("golden case nd.clock/basic is nondeterministic:\n")
    assert text.splitlines()[-2:] == [
        strict,
        site("clock", "time.time()", "wall clock", "ctx.now()"),
    ]
    assert re.search(
        r"run 2 \(in-process\) differs from run 1:\n    output\.value: (\S+) vs (\S+) — wall "
        r"clock: time\.time\(\) returned \1 in run 1 and \2 in run 2 \(use ctx\.now\(\)\) at "
        + re.escape(where(pytester, "clock")),
        text,
    )

    text = failure(result, "nd.today/basic")
    assert site("today", "datetime.now()", "wall clock", "ctx.now()") in text
    # a C type's method: the site is known, its values are not, so the value's shape speaks
    assert re.search(r"output\.value: '20\d\d-.*' vs '20\d\d-.*' — time-like value", text)

    text = failure(result, "nd.ids/basic")
    assert site("ids", "uuid.uuid4()", "random id (uuid4)", "ctx.uuid()") in text
    assert "— random id (uuid4): uuid.uuid4() returned UUID(" in text

    text = failure(result, "nd.dice/basic")
    assert site("dice", "random.random()", "random module", "ctx.random") in text
    assert "run 2 (in-process) differs from run 1:\n    output.value: 0." in text
    assert f"(use ctx.random) at {where(pytester, 'dice')}" in text

    # the same value every time (a seeded global generator): strict mode alone catches it
    text = failure(result, "nd.seeded/basic")
    assert text.splitlines() == [
        "golden case nd.seeded/basic is nondeterministic:",
        strict,
        site("seeded", "random.seed()", "random module", "ctx.random"),
        site("seeded-draw", "random.random()", "random module", "ctx.random"),
    ]

    # no uncontrolled call to report: the module global the runner changes says why
    text = failure(result, "nd.counter/basic")
    assert strict not in text
    path = where(pytester, "clock").rsplit(":", 1)[0]
    assert re.search(
        r"run 2 \(in-process\) differs from run 1:\n    output\.value: 1 vs 2 — module state: "
        r"the global _calls of myrunners changed during run 1 \(0 → 1\), so each run starts "
        rf"from another value at {re.escape(path)}:\d+",
        text,
    )
    assert "fresh interpreter" not in text  # a new interpreter counts from 0 again, like run 1

    # set order depends on the hash seed: the in-process runs agree, the fresh interpreter not;
    # another interpreter with the same seed gives the same order, which confirms the cause
    text = failure(result, "nd.order/basic")
    assert strict not in text
    assert "run 2 (in-process)" not in text
    assert (
        text.splitlines()[1] == "  run 3 (fresh interpreter, PYTHONHASHSEED=1) differs from run 1:"
    )
    assert re.fullmatch(
        r"    output\.value: \['finding-.* vs \['finding-.* — iteration order of a set or dict "
        r"of str \(hash seed\): confirmed, another interpreter with the same PYTHONHASHSEED gave "
        r"the same values",
        text.splitlines()[2],
    )
    assert len(text.splitlines()) == 3


def test_without_strict_mode_the_divergence_alone_names_the_cause(
    pytester: pytest.Pytester, dsn: str
) -> None:
    repo(pytester, {"nd.clock/basic": {"input": {}}, "nd.counter/basic": {"input": {}}})
    result = run(pytester, dsn, "--jobforge-strict", "no", "--jobforge-fresh", "no")
    result.assert_outcomes(failed=2)
    assert "strict mode" not in result.stdout.str()
    assert "time.time()" not in result.stdout.str()
    clock = failure(result, "nd.clock/basic").splitlines()
    assert clock[:2] == [
        "golden case nd.clock/basic is nondeterministic:",
        "  run 2 (in-process) differs from run 1:",
    ]
    assert re.fullmatch(
        r"    output\.value: 1\d{9}\.\d+ vs 1\d{9}\.\d+ — time-like value \(wall clock: use "
        r"ctx\.now\(\)\)",
        clock[2],
    )
    counter = failure(result, "nd.counter/basic").splitlines()
    assert counter[1:] == [
        "  run 2 (in-process) differs from run 1:",
        "    output.value: 1 vs 2 — module-level state (a counter or cache that grows from run "
        "to run)",
    ]


def test_a_missing_expectation_fails_under_ci_and_is_skipped_otherwise(
    pytester: pytest.Pytester, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo(pytester, {"ops.echo/new": {"input": {"target": "a"}}})
    report = (
        "golden case ops.echo/new has no expectation: run pytest with --jobforge-refresh to "
        "record one (CI=true makes this a failure)"
    )

    local = run(pytester, dsn, "-rs", "--jobforge-fresh", "no")
    local.assert_outcomes(skipped=1)
    assert local.ret == 0
    local.stdout.fnmatch_lines([f"SKIPPED * {report}"])
    assert summary(local).endswith("0 refreshed, 1 missing, 0 unused")

    monkeypatch.setenv("CI", "true")  # runpytest_subprocess passes os.environ on
    ci = run(pytester, dsn, "--jobforge-fresh", "no")
    ci.assert_outcomes(failed=1)
    assert failure(ci, "ops.echo/new") == report
    assert summary(ci).endswith("0 refreshed, 1 missing, 0 unused")
    assert "expect" not in json.loads((pytester.path / "golden/ops.echo/new.json").read_text())


def test_an_unused_case_is_listed_and_does_not_fail_the_run(
    pytester: pytest.Pytester, dsn: str
) -> None:
    paths = repo(
        pytester,
        {
            "ops.echo/one": {"input": {"target": "a"}, "expect": echo_expect("a")},
            "ops.gone/old": {"input": {"target": "a"}, "expect": echo_expect("a")},
            "ops.gone/deeper/older": {"input": {"target": "a"}},
            "stray": {"input": {"target": "a"}},
        },
    )
    result = run(pytester, dsn)
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert summary(result) == (
        "golden: 1 passed, 0 failed, 0 nondeterministic, 0 refreshed, 0 missing, 3 unused"
    )
    listed = [line for line in result.stdout.lines if "unused golden case" in line]
    assert listed == [
        f"  unused golden case (no runner 'ops.gone'): {paths['ops.gone/deeper/older'].resolve()}",
        f"  unused golden case (no runner 'ops.gone'): {paths['ops.gone/old'].resolve()}",
        "  unused golden case (not in a runner folder: golden/<runner_id>/<case>.json): "
        f"{paths['stray'].resolve()}",
    ]


@pytest.mark.parametrize("xdist", [False, True], ids=["plain", "xdist"])
def test_the_summary_counts_a_mixed_run(pytester: pytest.Pytester, dsn: str, xdist: bool) -> None:
    wrong = echo_expect("a")
    wrong["output"]["findings"] = ["a", "b"]
    repo(
        pytester,
        {
            "ops.echo/one": {"input": {"target": "a"}, "expect": echo_expect("a")},
            "ops.echo/two": {"input": {"target": "b"}, "expect": echo_expect("b")},
            "ops.echo/wrong": {"input": {"target": "a"}, "expect": wrong},
            "ops.echo/new": {"input": {"target": "c"}},
            "nd.clock/basic": {"input": {}},
            "ops.gone/old": {"input": {}},
        },
    )
    result = run(pytester, dsn, *(["-n", "2"] if xdist else []))
    result.assert_outcomes(passed=2, failed=2, skipped=1)
    assert summary(result) == (
        "golden: 2 passed, 1 failed, 1 nondeterministic, 0 refreshed, 1 missing, 1 unused"
    )
    result.stdout.fnmatch_lines(
        ["  unused golden case (no runner 'ops.gone'): */ops.gone/old.json"]
    )
    if xdist:
        result.stdout.fnmatch_lines(["created: 2/2 workers"])
    assert "output.findings[1]: expected 'b', got <missing>" in result.stdout.str()
