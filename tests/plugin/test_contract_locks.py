"""Contract lock files as pytest items: a valid lock of a declared runner passes; an invalid
one, a misnamed one and one whose runner is gone fail with one clear line each; one its runner
drifted from fails listing each classified change (the drift gate's engine)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

RUNNERS = """
from pydantic import BaseModel
from jobforge.contracts import runner

class In(BaseModel):
    n: int

class Out(BaseModel):
    n: int

@runner("lk.echo", version="1.2.0", input=In, output=Out)
def echo(inp, ctx):
    return Out(n=inp.n)


@runner("lk.drift", version="1.2.0", input=In, output=Out)
def drift(inp, ctx):
    return Out(n=inp.n)
"""


def test_lock_items(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject='[tool.jobforge]\nrunners = ["myrunners"]\n')
    pytester.makepyfile(myrunners=RUNNERS)
    contracts = pytester.mkdir("contracts")
    from jobforge.contracts import contract_of
    from jobforge.contracts.declare import RUNNERS as DECLARED

    namespace: dict[str, object] = {}
    exec(compile(RUNNERS, "myrunners", "exec"), namespace)
    lock = contract_of(DECLARED.pop("lk.echo")).model_dump(mode="json")
    drifted = contract_of(DECLARED.pop("lk.drift")).model_dump(mode="json")
    drifted["max_attempts"] = 5  # the declaration says 3: fewer attempts, breaking
    drifted["input_schema"]["properties"]["n"]["type"] = "number"  # now integer: narrowed
    (contracts / "lk.drift.json").write_text(json.dumps(drifted))
    (contracts / "lk.echo.json").write_text(json.dumps(lock))
    (contracts / "lk.gone.json").write_text(json.dumps({**lock, "runner_id": "lk.gone"}))
    (contracts / "lk.misnamed.json").write_text(json.dumps(lock))
    (contracts / "lk.broken.json").write_text('{"format": "jobforge.contract/1", "extra": 1}')

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines([
        "*lk.broken.json is invalid*",
        "*lk.drift.json: lk.drift drifted from its lock (2 changes, 2 breaking; version still "
        "1.2.0: the changes need a major bump, this is no bump); bump the version to 2.0.0 or "
        "later, then run `jobforge contracts lock`",  # what `lock` accepts, not "review"
        # the drift gate's findings, as `jobforge contracts check` has them
        "  [[]breaking[]] input.type_narrowed at input.properties.n: type number → integer "
        "(version not bumped major: 1.2.0 → 1.2.0)",
        "  [[]breaking[]] limits.max_attempts_reduced at max_attempts: max_attempts 5 → 3 "
        "(version not bumped major: 1.2.0 → 1.2.0)",
        "*runner 'lk.gone' is no longer declared*",
        "*lk.misnamed.json is for 'lk.echo', not 'lk.misnamed'*",
    ])  # fmt: skip


def test_a_lock_of_another_schema_generator_passes_with_a_warning(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".toml", pyproject='[tool.jobforge]\nrunners = ["myrunners"]\n')
    pytester.makepyfile(myrunners=RUNNERS)
    contracts = pytester.mkdir("contracts")
    from jobforge.contracts import contract_of
    from jobforge.contracts.declare import RUNNERS as DECLARED

    namespace: dict[str, object] = {}
    exec(compile(RUNNERS, "myrunners", "exec"), namespace)
    DECLARED.pop("lk.drift")
    lock = contract_of(DECLARED.pop("lk.echo")).model_dump(mode="json")
    lock["generator"] = {"pydantic": "2.6.0", "pydantic_core": "2.16.1"}
    lock["input_schema"]["properties"]["n"].pop("title")  # what the other generator wrote
    (contracts / "lk.echo.json").write_text(json.dumps(lock))

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "always")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([
        "*JobforgeWarning: contract lock *lk.echo.json: schema generator changed (pydantic "
        "2.6.0 → *); 1 schema difference it alone explains; `jobforge contracts lock` rewrites "
        "the lock",
    ])  # fmt: skip
