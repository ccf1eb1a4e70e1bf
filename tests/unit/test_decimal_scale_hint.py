"""The scale hint advises a refresh only where an old recording explains the difference.

Before a Decimal kept its scale, canonical JSON wrote it normalized ("18" for `Decimal("18.00")`).
An expectation in that form against a run's "18.00" is such an old recording: refreshing brings
it up to date. An expected "18.00" against a run's "18.0" is not (normalizing never leaves a
trailing zero): the runner's text changed, and a refresh would hide that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from jobforge import canonical
from jobforge.contracts import RunnerDef
from jobforge.golden.compare import (
    Difference,
    only_normalized,
    only_rescaled,
    scale_note,
    was_normalized,
)
from jobforge.replay.bundle import load_bundle
from jobforge.replay.engine import ReplayResult, Target, _compare


@pytest.mark.parametrize(
    ("expected", "actual"),
    [("18", "18.00"), ("18", "18.0"), ("0.1", "0.10"), ("1e-7", "1E-7"), ("100", "1E+2"),
     ("0", "0.00"), ("0", "-0.00"), ("1e+22", "1E+22"), ("-2.5", "-2.50")],
)  # fmt: skip
def test_an_expectation_written_normalized_may_be_an_old_recording(
    expected: str, actual: str
) -> None:
    assert was_normalized(expected, actual)
    rendered = Difference("output.total", expected, actual).render()
    assert "refresh the expectation if this is one" in rendered


@pytest.mark.parametrize(
    ("expected", "actual"),
    [("18.00", "18.0"), ("18.0", "18"), ("18.00", "18"), ("0.10", "0.1"), ("1E+2", "100"),
     ("1E-7", "1e-7")],
)  # fmt: skip
def test_an_expectation_with_a_scale_normalizing_never_writes_is_a_real_change(
    expected: str, actual: str
) -> None:
    assert not was_normalized(expected, actual)
    rendered = Difference("output.total", expected, actual).render()
    assert "refresh" not in rendered
    assert "a real change in the text the run writes" in rendered


def test_the_trial_case_reads_as_a_change_naming_the_normalized_form() -> None:
    rendered = Difference("output.total", "18.00", "18.0").render()
    assert rendered == (
        "output.total: expected '18.00', got '18.0' (the same number with another scale, a real "
        "change in the text the run writes: a recording made before Decimals kept their scale "
        "would read '18')"
    )
    assert scale_note("18", "18.00").endswith("refresh the expectation if this is one")


def test_only_normalized_holds_where_every_difference_is_an_old_recording() -> None:
    recorded: dict[str, Any] = {"key": "fee", "value": "18", "why": {"rate": "0.19"}}
    assert only_normalized(recorded, {"key": "fee", "value": "18.00", "why": {"rate": "0.190"}})
    changed = {"key": "fee", "value": "18.0", "why": {"rate": "0.19"}}
    assert not only_normalized({**recorded, "value": "18.00"}, changed)
    assert only_rescaled({**recorded, "value": "18.00"}, changed)  # still the same number
    assert not only_normalized(recorded, recorded)


# -- replay: a step that differs only in scale -------------------------------------------------

BUNDLE = (
    Path(__file__).resolve().parents[2] / "examples" / "bundles" / "billing.invoice-job2-a1.json"
)


def _echo(inp: BaseModel, ctx: object) -> BaseModel:
    return inp


def _replayed(step: int, value: str) -> ReplayResult:
    """The example bundle replayed with trace step `step`'s value written as `value`."""
    bundle = load_bundle(BUNDLE)
    expect = bundle.expect
    trace = [s.model_dump(mode="json") for s in expect.trace]
    trace[step]["value"] = value
    record = {
        "status": expect.status,
        "output": {"canonical": canonical.canonical_text(expect.output)},
        "trace": trace,
        "artifacts": [{"name": name, "sha256": a.sha256, "size": a.size}
                      for name, a in expect.artifacts.items()],
        "error": None,
    }  # fmt: skip
    definition = RunnerDef(id=bundle.runner_id, version=bundle.runner_version, fn=_echo,
                           input=BaseModel, output=BaseModel)  # fmt: skip
    return _compare(Target(BUNDLE.name, bundle), definition, record)


def test_a_replayed_step_rescaled_from_a_normalized_recording_says_export_again() -> None:
    result = _replayed(0, "0.00")  # recorded "0": how a Decimal was written when normalized
    assert result.verdict == "diverged"
    assert any("export the run again" in line for line in result.context), result.context


def test_a_replayed_step_rescaled_from_a_scaled_recording_is_a_change() -> None:
    result = _replayed(1, "0.2")  # recorded "0.20": normalizing never wrote that
    assert result.verdict == "diverged"
    notes = [line for line in result.context if "scale" in line]
    assert notes == [
        "trace[1] differs only in the scale of a decimal number: the runner now writes it with "
        "another scale than the recorded run did, a real change in its text"
    ]
