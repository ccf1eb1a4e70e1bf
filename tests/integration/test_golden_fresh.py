"""The fresh-interpreter child on a real throwaway Postgres: it runs cases on a lane over a clone
the parent took for it, and a child that fails or dies is ended with its clone, so the next case
starts on a new one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jobforge.errors import JobforgeError
from jobforge.golden.case import GoldenCase, write_case
from jobforge.golden.fresh import FreshInterpreter
from tests.integration.clones import Clones

MODULE = "jobforge_test_fresh_runners"
RUNNERS = """
import os

from pydantic import BaseModel

from jobforge.contracts import runner


class In(BaseModel):
    n: int
    die: bool = False


class Out(BaseModel):
    n: int
    order: list[str]


@runner("fresh.order", version="1.0.0", input=In, output=Out)
def order(inp, ctx):
    if inp.die:
        os._exit(3)
    ctx.decide("n", inp.n)
    return Out(n=inp.n, order=sorted({"b", "a", "c"}))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(f'[tool.jobforge]\nrunners = ["{MODULE}"]\n')
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(RUNNERS).lstrip())
    return tmp_path


def case_file(project: Path, name: str, **payload: object) -> Path:
    path = project / "golden" / "fresh.order" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_case(path, GoldenCase(input=payload))
    return path


def test_one_child_runs_every_case_on_one_clone(project: Path, clones: Clones) -> None:
    child = FreshInterpreter(project, [MODULE], clones)
    try:
        records = [child.run("fresh.order", case_file(project, f"c{n}", n=n)) for n in (1, 2, 1)]
    finally:
        child.close()
    assert [r["status"] for r in records] == ["succeeded"] * 3
    assert records[0]["trace"] == records[2]["trace"]
    assert {r["provenance"]["job_id"] for r in records} == {1}  # reset between cases
    assert len(clones.taken) == 1
    assert clones.returned == clones.taken


def test_an_error_in_the_child_ends_it_and_the_next_case_gets_a_new_clone(
    project: Path, clones: Clones
) -> None:
    child = FreshInterpreter(project, [MODULE], clones)
    try:
        unknown = r"nobody\.json: .*no runner 'no\.such\.runner' is declared in a fresh interpreter"
        with pytest.raises(JobforgeError, match=unknown):
            child.run("no.such.runner", case_file(project, "nobody", n=1))
        assert clones.returned == clones.taken  # that child's clone is gone with it
        record = child.run("fresh.order", case_file(project, "after", n=2))
    finally:
        child.close()
    assert record["status"] == "succeeded"
    assert len(clones.taken) == 2


def test_a_child_that_dies_is_reported_with_its_exit_code_and_replaced(
    project: Path, clones: Clones
) -> None:
    child = FreshInterpreter(project, [MODULE], clones)
    try:
        with pytest.raises(JobforgeError, match=r"died \(exit 3\)"):
            child.run("fresh.order", case_file(project, "dies", n=1, die=True))
        assert clones.returned == clones.taken
        record = child.run("fresh.order", case_file(project, "after", n=2))
    finally:
        child.close()
    assert record["status"] == "succeeded"
    assert len(clones.taken) == 2
