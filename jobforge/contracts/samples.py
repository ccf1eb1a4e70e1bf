"""The empirical check beside the schema diff: do recorded inputs still validate?

A schema diff reasons about what *could* be sent; recorded inputs are what *was* sent. Both
matter: the diff catches a narrowing no case exercises, the samples catch what the diff can only
guess at (a pattern change, a validator in Python code, an open-content key clash). Samples are
`(label, input)` pairs so that any source can feed them: golden cases here, run records from a
database later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

Sample = tuple[str, Any]


@dataclass(frozen=True)
class SampleCheck:
    total: int
    failures: tuple[tuple[str, str], ...] = field(default=())  #: (label, first error)

    @property
    def ok(self) -> bool:
        return not self.failures

    def message(self) -> str:
        """ "3 of 41 recorded inputs no longer validate; first: golden/ops.scan/big.json: ..." """
        if self.ok:
            return f"all {self.total} recorded inputs validate"
        label, error = self.failures[0]
        return (
            f"{len(self.failures)} of {self.total} recorded inputs no longer validate; "
            f"first: {label}: {error}"
        )


def check_samples(model: type[BaseModel], samples: Iterable[Sample]) -> SampleCheck:
    """Validate every sample input against `model` (the new input model)."""
    total = 0
    failures: list[tuple[str, str]] = []
    for label, value in samples:
        total += 1
        try:
            model.model_validate(value)
        except ValidationError as exc:
            failures.append((label, _first_error(exc)))
    return SampleCheck(total, tuple(failures))


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if not errors:
        return str(exc)
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "(input)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def golden_inputs(golden_dir: Path, runner_id: str, root: Path | None = None) -> list[Sample]:
    """The `input` of every case in `golden_dir/<runner_id>/`, labelled by path from `root`.

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
            found.append((_label(path, root), data["input"]))
    return found


def _label(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()
