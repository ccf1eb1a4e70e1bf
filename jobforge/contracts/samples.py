"""The empirical check beside the schema diff: do recorded inputs still validate?

A schema diff reasons about what *could* be sent; recorded inputs are what *was* sent. Both
matter: the diff catches a narrowing no case exercises, the samples catch what the diff can only
guess at (a pattern change, a validator in Python code, an open-content key clash). Samples are
`(label, input)` pairs so that any source can feed them: golden cases here, run records from a
database later.

A golden case may expect its input rejected (`"expect": {"status": "invalid_input"}`: a test of
what the runner refuses). Its input is checked the other way round: it must still be rejected,
and one the model now accepts is reported (`SampleCheck.accepted`), as drift too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

Sample = tuple[str, Any]

#: The status of a golden case's expectation that says its input is rejected.
REJECTED_STATUS = "invalid_input"


@dataclass(frozen=True)
class SampleCheck:
    total: int  #: samples recorded as accepted
    failures: tuple[tuple[str, str], ...] = field(default=())  #: (label, first error)
    #: samples recorded as rejected (a golden case expecting `invalid_input`)
    rejected_total: int = 0
    #: of those, the labels of the ones the model now accepts
    accepted: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.failures and not self.accepted

    def message(self) -> str:
        """ "3 of 41 recorded inputs no longer validate; first: golden/ops.scan/big.json: ..." """
        if self.ok:
            still = (
                f"; {self.rejected_total} recorded as rejected still are"
                if self.rejected_total
                else ""
            )
            return f"all {self.total} recorded inputs validate{still}"
        return "; ".join(m for m in (self.invalid_message(), self.accepted_message()) if m)

    def invalid_message(self) -> str:
        """Inputs recorded as accepted that the model now rejects ("" when none)."""
        if not self.failures:
            return ""
        label, error = self.failures[0]
        return (
            f"{len(self.failures)} of {self.total} recorded inputs no longer validate; "
            f"first: {label}: {error}"
        )

    def accepted_message(self) -> str:
        """Inputs recorded as rejected that the model now accepts ("" when none)."""
        if not self.accepted:
            return ""
        return (
            f"{len(self.accepted)} of {self.rejected_total} inputs recorded as rejected now "
            f"validate (their cases expect status {REJECTED_STATUS}); first: {self.accepted[0]}"
        )


def check_samples(
    model: type[BaseModel], samples: Iterable[Sample], rejected: Iterable[Sample] = ()
) -> SampleCheck:
    """Validate every sample input against `model` (the new input model): each of `samples`
    must validate, and each of `rejected` (inputs a golden case expects refused) must not."""
    total = 0
    failures: list[tuple[str, str]] = []
    for label, value in samples:
        total += 1
        try:
            model.model_validate(value)
        except ValidationError as exc:
            failures.append((label, _first_error(exc)))
    rejected_total = 0
    accepted: list[str] = []
    for label, value in rejected:
        rejected_total += 1
        try:
            model.model_validate(value)
        except ValidationError:
            continue
        accepted.append(label)
    return SampleCheck(total, tuple(failures), rejected_total, tuple(accepted))


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if not errors:
        return str(exc)
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "(input)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def golden_inputs(
    golden_dir: Path, runner_id: str, root: Path | None = None, *, rejected: bool = False
) -> list[Sample]:
    """The `input` of every case in `golden_dir/<runner_id>/`, labelled by path from `root`:
    of the cases expecting their input accepted, or with `rejected` of those expecting it
    rejected (`"expect": {"status": "invalid_input", ...}`).

    Read as plain JSON (the contracts layer sits below the golden package); a file that is not a
    readable case is left to the golden items to report.
    """
    folder = golden_dir / runner_id
    if not folder.is_dir():
        return []
    found: list[Sample] = []
    for path in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("input"), dict):
            expect = data.get("expect")
            refused = isinstance(expect, dict) and expect.get("status") == REJECTED_STATUS
            if refused == rejected:
                found.append((_label(path, root), data["input"]))
    return found


def _label(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()
