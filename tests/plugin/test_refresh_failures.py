"""Refresh never records a failure as an expectation without saying so, through pytester: a
case whose run raises, or whose input is rejected, is reported in one line and left unwritten;
`--jobforge-refresh-failures` records it (with a warning that says so); a case that declares
`"expect": {"status": "invalid_input"}` is a test of rejected input and is refreshed as such.
Decimals keep their scale in the recorded trace."""

from __future__ import annotations

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
from decimal import Decimal

from pydantic import BaseModel, Field

from jobforge.contracts import runner


class PayIn(BaseModel):
    amount: Decimal = Field(ge=0, decimal_places=2)


class PayOut(BaseModel):
    charged: Decimal


@runner("pay.charge", version="1.0.0", input=PayIn, output=PayOut, trace_keys=["fee"])
def charge(inp, ctx):
    fee = ctx.decide("fee", Decimal("18.00"), basis=Decimal("0.10"))
    if inp.amount == Decimal("13.13"):
        raise RuntimeError("unlucky amount")
    return PayOut(charged=inp.amount + fee)
"""


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner pytest imports the jobforge under test; CI=true would change its verdicts."""
    here = str(Path(jobforge.__file__).resolve().parents[1])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture
def dsn(jobforge_server: Server) -> str:
    return jobforge_server.dsn


def _repo(pytester: pytest.Pytester, cases: dict[str, dict[str, Any]]) -> dict[str, Path]:
    pytester.makefile(".toml", pyproject='[tool.jobforge]\nrunners = ["payrunners"]\n')
    pytester.makepyfile(payrunners=RUNNERS)
    paths = {}
    for name, body in cases.items():
        path = pytester.path / "golden" / "pay.charge" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=2) + "\n")
        paths[name] = path
    return paths


def _run(pytester: pytest.Pytester, dsn: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:benchmark", f"--jobforge-database-url={dsn}",
        "--jobforge-runs", "2", "--jobforge-fresh", "no", "-rA", *args,
    )  # fmt: skip


def _summary(result: pytest.RunResult) -> str:
    lines = result.stdout.lines
    section = next(i for i, line in enumerate(lines) if re.fullmatch(r"=+ jobforge =+", line))
    return next(line for line in lines[section + 1 :] if line.strip())


def _failure(result: pytest.RunResult, name: str) -> list[str]:
    """The lines pytest printed for the failure of golden case `name`."""
    lines = result.stdout.lines
    head = re.compile(rf"_+ golden {re.escape(name)} _+")
    start = next((i for i, line in enumerate(lines) if head.fullmatch(line)), None)
    assert start is not None, f"no failure reported for {name}:\n{result.stdout.str()}"
    boundary = re.compile(r"(_{3,} |={3,}|-{3,} )")
    end = next(i for i in range(start + 1, len(lines)) if boundary.match(lines[i]))
    return [line for line in lines[start + 1 : end] if line.strip()]


def test_failing_runs_are_reported_not_recorded_unless_asked(
    pytester: pytest.Pytester, dsn: str
) -> None:
    paths = _repo(
        pytester,
        {
            "ok": {"input": {"amount": "5.00"}},
            "boom": {"input": {"amount": "13.13"}},
            "negative": {"input": {"amount": "-1"}},
            "refused": {"input": {"amount": "-2"}, "expect": {"status": "invalid_input"}},
        },
    )
    before = {name: path.read_bytes() for name, path in paths.items()}

    refreshed = _run(pytester, dsn, "--jobforge-refresh")
    refreshed.assert_outcomes(passed=2, failed=2)
    assert _summary(refreshed) == (
        "golden: 0 passed, 2 failed, 0 nondeterministic, 2 refreshed, 0 missing, 0 unused"
    )
    assert _failure(refreshed, "pay.charge/boom") == [
        "golden case pay.charge/boom: the run ended retry (RuntimeError: unlucky amount); not "
        "recorded as its expectation: fix the runner or the input, or record the failure on "
        'purpose with --jobforge-refresh-failures (or "expect": {"status": "retry"} in the case '
        "file)"
    ]
    (negative,) = _failure(refreshed, "pay.charge/negative")
    assert negative.startswith(
        "golden case pay.charge/negative: the run ended invalid_input (InvalidInput: the input of "
        "pay.charge is invalid: amount: Input should be greater than or equal to 0); not recorded"
    )
    assert paths["boom"].read_bytes() == before["boom"]
    assert paths["negative"].read_bytes() == before["negative"]

    # the case that declared its input rejected is a first-class case: refreshed, and said so
    refused = json.loads(paths["refused"].read_text())["expect"]
    assert refused["status"] == "invalid_input"
    assert refused["error"]["type"] == "InvalidInput"
    assert "amount: Input should be greater than or equal to 0" in refused["error"]["message"]
    out = refreshed.stdout.str()
    assert "golden case pay.charge/refused: recorded a failing run as its expectation: " in out

    # the successful case: the Decimal decided is recorded with its scale
    ok = json.loads(paths["ok"].read_text())["expect"]
    assert ok["trace"] == [{"key": "fee", "value": "18.00", "why": {"basis": "0.10"}}]
    assert ok["output"] == {"charged": "23.00"}

    on_purpose = _run(pytester, dsn, "--jobforge-refresh", "--jobforge-refresh-failures")
    on_purpose.assert_outcomes(passed=4)
    assert _summary(on_purpose) == (
        "golden: 2 passed, 0 failed, 0 nondeterministic, 2 refreshed, 0 missing, 0 unused"
    )
    boom = json.loads(paths["boom"].read_text())["expect"]
    assert boom["status"] == "retry"
    assert boom["error"] == {"type": "RuntimeError", "message": "unlucky amount"}
    assert json.loads(paths["negative"].read_text())["expect"]["status"] == "invalid_input"
    text = on_purpose.stdout.str()
    assert (
        "golden case pay.charge/boom: recorded a failing run as its expectation: retry "
        "(RuntimeError: unlucky amount)" in text
    )

    again = _run(pytester, dsn)
    again.assert_outcomes(passed=4)
    assert _summary(again) == (
        "golden: 4 passed, 0 failed, 0 nondeterministic, 0 refreshed, 0 missing, 0 unused"
    )


def test_an_unchanged_recorded_failure_is_left_as_it_is(
    pytester: pytest.Pytester, dsn: str
) -> None:
    """Refreshing again without the flag keeps a failure recorded before: the file already says
    it is expected, and nothing is rewritten."""
    paths = _repo(pytester, {"boom": {"input": {"amount": "13.13"}}})
    first = _run(pytester, dsn, "--jobforge-refresh", "--jobforge-refresh-failures")
    first.assert_outcomes(passed=1)
    written = paths["boom"].read_bytes()
    again = _run(pytester, dsn, "--jobforge-refresh")
    again.assert_outcomes(passed=1)
    assert paths["boom"].read_bytes() == written


PROPERTY_RUNNERS = """
from decimal import Decimal

from pydantic import BaseModel, Field

from jobforge.contracts import runner


class Line(BaseModel):
    sku: str
    qty: int = Field(ge=1, le=50)
    unit_price: Decimal = Field(ge=0, le=10000, decimal_places=2)


class InvoiceIn(BaseModel):
    lines: list[Line] = Field(min_length=1, max_length=3)
    amount: Decimal = Field(ge=0, decimal_places=2)


class InvoiceOut(BaseModel):
    total: Decimal


@runner("pay.invoice", version="1.0.0", input=InvoiceIn, output=InvoiceOut, trace_keys=["fee"])
def invoice(inp, ctx):
    fee = ctx.decide("fee", Decimal("18.00"))
    return InvoiceOut(total=sum((l.unit_price * l.qty for l in inp.lines), fee))
"""


def test_property_check_and_run_of_a_decimal_runner(pytester: pytest.Pytester, dsn: str) -> None:
    pytester.makepyfile(payrunners=PROPERTY_RUNNERS)
    pytester.makepyfile(
        """
        import payrunners

        def test_property(jobforge_check_runner):
            jobforge_check_runner("pay.invoice", max_examples=5)

        def test_trace(jobforge_run):
            record = jobforge_run("pay.invoice", {"lines": [{"sku": "a", "qty": 2,
                                                            "unit_price": "1.50"}],
                                                 "amount": "3.00"})
            assert record["status"] == "succeeded", record.get("error")
            assert record["trace"] == [{"key": "fee", "value": "18.00", "why": {}}]
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:benchmark", f"--jobforge-database-url={dsn}"
    )  # fmt: skip
    result.assert_outcomes(passed=2)
