"""Follow-up jobs in golden cases, through pytester: the refresh records `effects` in `expect`,
a changed, added or removed follow-up is a failure naming it, a case without `effects` of a
runner that enqueues nothing passes as it did, and the harness performs no follow-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.plugin.test_golden import _environment, failure, repo, run, summary

if TYPE_CHECKING:
    from jobforge.provision import Server

pytestmark = pytest.mark.slow
__all__ = ["_environment"]  # the autouse fixture, shared

RUNNERS = """
from pydantic import BaseModel

from jobforge.contracts import runner


class In(BaseModel):
    target: str = "a"
    children: int = 1


class Out(BaseModel):
    ok: bool


@runner("fx.parent", version="1.0.0", input=In, output=Out)
def parent(inp, ctx):
    for i in range(inp.children):
        ctx.enqueue("fx.child", {"target": inp.target, "n": i})
    ctx.enqueue("fx.child", {"target": "keyed"}, key=f"k-{inp.target}", priority=2)
    return Out(ok=True)


@runner("fx.quiet", version="1.0.0", input=In, output=Out)
def quiet(inp, ctx):
    return Out(ok=True)
"""


@pytest.fixture
def dsn(jobforge_server: Server) -> str:
    return jobforge_server.dsn


def _effects(target: str, children: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {"kind": "enqueue", "runner_id": "fx.child", "input": {"target": target, "n": i}}
        for i in range(children)
    ]
    found.append({"kind": "enqueue", "runner_id": "fx.child", "input": {"target": "keyed"},
                  "key": f"k-{target}", "priority": 2})  # fmt: skip
    return found


def _repo(pytester: pytest.Pytester, cases: dict[str, dict[str, Any]]) -> dict[str, Path]:
    paths = repo(pytester, cases)
    (pytester.path / "myrunners.py").write_text(RUNNERS)
    return paths


def test_refresh_records_effects_and_a_changed_one_is_a_failure(
    pytester: pytest.Pytester, dsn: str
) -> None:
    quiet = {"input": {}, "expect": {"status": "succeeded", "output": {"ok": True}}}
    paths = _repo(pytester, {"fx.parent/two": {"input": {"children": 2}},
                             "fx.quiet/old": quiet})  # fmt: skip
    before = paths["fx.quiet/old"].read_text()
    refreshed = run(pytester, dsn, "--jobforge-refresh", "--jobforge-fresh", "no")
    refreshed.assert_outcomes(passed=2)
    written = json.loads(paths["fx.parent/two"].read_text())
    assert written["expect"]["effects"] == _effects("a", 2)
    # a case of a runner that enqueues nothing: no `effects` key, passes unchanged
    assert paths["fx.quiet/old"].read_text() == before

    # the runner's code changes what it enqueues: each kind of change is a failure
    body = json.loads(paths["fx.parent/two"].read_text())
    changed = {**body, "input": {"children": 2, "target": "b"},
               "expect": {**body["expect"], "effects": _effects("a", 2)}}  # fmt: skip
    added = {**body, "input": {"children": 3}}
    removed = {**body, "input": {"children": 1}}
    for name, case in (("changed", changed), ("added", added), ("removed", removed)):
        path = pytester.path / "golden" / "fx.parent" / f"{name}.json"
        path.write_text(json.dumps(case, indent=2) + "\n")
    result = run(pytester, dsn, "--jobforge-fresh", "no")
    result.assert_outcomes(passed=2, failed=3)
    assert summary(result).startswith("golden: 2 passed, 3 failed")
    text = failure(result, "fx.parent/changed")
    assert "effects[0] (fx.child).input.target: expected 'a', got 'b'" in text
    assert "effects[2] (fx.child).key: expected 'k-a', got 'k-b'" in text
    assert "effects[2] (a follow-up of fx.child the case does not expect)" in failure(
        result, "fx.parent/added"
    )
    assert "effects[1] (a follow-up of fx.child the run no longer asks for)" in failure(
        result, "fx.parent/removed"
    )


def test_a_case_without_effects_of_a_runner_that_enqueues_fails_until_refreshed(
    pytester: pytest.Pytester, dsn: str
) -> None:
    """No `effects` means "asks for none": a follow-up is behaviour, never ignored in silence."""
    old = {"input": {"children": 0}, "expect": {"status": "succeeded", "output": {"ok": True}}}
    _repo(pytester, {"fx.parent/old": old})
    result = run(pytester, dsn, "--jobforge-fresh", "no")
    result.assert_outcomes(failed=1)
    assert "effects[0] (a follow-up of fx.child the case does not expect): expected <missing>" in (
        failure(result, "fx.parent/old"))  # fmt: skip


def test_the_harness_performs_no_follow_up(pytester: pytest.Pytester, dsn: str) -> None:
    """Golden runs enqueue nothing: the lane's database holds only the case's own job."""
    _repo(pytester, {"fx.parent/two": {"input": {"children": 2}}})
    pytester.makepyfile(
        test_lane="""
import json
from pathlib import Path

from jobforge.config import find_config
from jobforge.contracts import discover
from jobforge.golden.case import load_case
from jobforge.golden.execute import run_case


def test_only_the_case_job(jobforge_db):
    runners = discover(find_config(Path.cwd()))
    case = load_case(Path("golden/fx.parent/two.json"))
    record = run_case(jobforge_db.dsn, runners["fx.parent"], case)
    assert len(record["effects"]) == 3
    with jobforge_db.connect() as conn:
        conn.execute("SELECT set_config('jobforge.scope', 'worker', false)")
        types = [r[0] for r in conn.execute("SELECT type FROM jobforge.jobs").fetchall()]
    assert types == ["fx.parent"]
"""
    )
    result = run(pytester, dsn, "--jobforge-fresh", "no", "-k", "test_only_the_case_job")
    result.assert_outcomes(passed=1)
