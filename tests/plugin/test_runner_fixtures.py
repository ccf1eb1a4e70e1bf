"""Fixtures for users' own tests: a runner through the real queue, a syrupy extension for run
records, and the opt-in property check, driven through pytester."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

RUNNERS = """
from pydantic import BaseModel, Field
from jobforge.contracts import runner
from jobforge.errors import NonRetryable

class In(BaseModel):
    n: int = Field(ge=0, le=1000)
    label: str = "x"

class Out(BaseModel):
    double: int
    label: str

@runner("fx.double", version="1.0.0", input=In, output=Out, trace_keys=["n"])
def double(inp, ctx):
    ctx.decide("n", inp.n)
    if inp.n == 999:
        raise NonRetryable("999 is refused")
    return Out(double=inp.n * 2, label=inp.label)

COUNT = [0]

@runner("fx.leaky", version="1.0.0", input=In, output=Out)
def leaky(inp, ctx):
    COUNT[0] += 1
    return Out(double=COUNT[0], label=inp.label)
"""


def test_jobforge_run_and_the_snapshot_extension(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(myrunners=RUNNERS)
    pytester.makepyfile(
        """
        import myrunners
        from jobforge.plugins.pytest.snapshot import RunRecordSnapshot

        def test_record(jobforge_run, snapshot):
            record = jobforge_run("fx.double", {"n": 21})
            assert record["status"] == "succeeded"
            assert record["trace"] == [{"key": "n", "value": 21, "why": {}}]
            assert record == snapshot(extension_class=RunRecordSnapshot)

        def test_unknown_runner(jobforge_run):
            import pytest
            from jobforge.errors import ConfigurationError
            with pytest.raises(ConfigurationError, match="no runner 'fx.nope'"):
                jobforge_run("fx.nope", {})
        """
    )
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--snapshot-update")
    first.assert_outcomes(passed=2)
    snapshots = list(pytester.path.rglob("*.json"))
    assert snapshots, "syrupy wrote no snapshot"
    text = snapshots[0].read_text()
    assert '"provenance": "<volatile>"' in text
    again = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    again.assert_outcomes(passed=2)


def test_property_check_passes_a_clean_runner_and_catches_a_leaky_one(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(myrunners=RUNNERS)
    pytester.makepyfile(
        """
        import myrunners
        from hypothesis import given
        from jobforge.strategies import inputs

        def test_clean(jobforge_check_runner):
            jobforge_check_runner("fx.double", max_examples=8)

        def test_leaky(jobforge_check_runner):
            jobforge_check_runner("fx.leaky", max_examples=5)

        @given(inputs("fx.double"))
        def test_inputs_are_valid(payload):
            assert 0 <= payload["n"] <= 1000
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*fx.leaky gave two different runs*"])
