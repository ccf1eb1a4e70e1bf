"""Replay bundles: `jobforge.bundle/1`, a golden case plus the provenance of the recorded run.

A bundle is what `jobforge runs export` writes from a run record in a database, and what
`jobforge replay` re-executes. Its `input`, `environment` and `expect` are exactly a golden case's,
so `--to golden/` promotes a recorded production run to a golden case by dropping the provenance.
The input is the recorded one *after* redaction: a secret the runner received is not in the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from jobforge import errors, validation
from jobforge.contracts.declare import RUNNER_ID_PATTERN
from jobforge.golden.case import Expect, GoldenCase, case_text, expectation_of, write_case
from jobforge.jsonfile import Kept, read_json, write_atomic, write_new
from jobforge.runtime.context import Environment
from jobforge.runtime.record import Provenance, RunRecord

FORMAT: Literal["jobforge.bundle/1"] = "jobforge.bundle/1"


class Bundle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["jobforge.bundle/1"] = FORMAT
    #: a folder name when promoted to a golden case: a forged `../x` is refused here
    runner_id: str = Field(pattern=RUNNER_ID_PATTERN, max_length=200)
    runner_version: str
    input: dict[str, Any]
    input_sha256: str
    environment: Environment
    expect: Expect
    provenance: Provenance
    #: What admitted the recorded run (signatures' key ids, the policy token's claims and
    #: hash, the timeout and whose it was), as its run record says; left out when it says
    #: nothing. Shown, never checked again: replay verifies nothing new.
    admission: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _leave_out_no_admission(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("admission", 1) is None:
            del data["admission"]
        return data

    def case(self) -> GoldenCase:
        """The golden case this run stands for (what replay executes)."""
        return GoldenCase(input=self.input, environment=self.environment, expect=self.expect)

    def file_name(self, run_id: int | None = None) -> str:
        """`<runner_id>-job<id>-a<attempt>.json`, with `-run<run_id>` before `.json` when the
        stored run is known: a job retried with its attempts reset records attempt 1 twice, and
        its two runs must not share a file."""
        job = self.provenance.job_id if self.provenance.job_id is not None else "local"
        run = f"-run{run_id}" if run_id is not None else ""
        return f"{_safe(self.runner_id)}-job{job}-a{self.provenance.attempt}{run}.json"


def from_record(record: dict[str, Any], *, where: str = "run record") -> Bundle:
    """The bundle of one stored run record (format jobforge.run/1)."""
    try:
        run = RunRecord.model_validate(record)
    except ValidationError as exc:
        raise errors.ConfigurationError(
            f"{where} is not a valid run record: {validation.summary(exc)}"
        ) from None
    try:
        return Bundle(
            runner_id=run.runner_id,
            runner_version=run.runner_version,
            input=json.loads(run.input.canonical),
            input_sha256=run.input.sha256,
            environment=run.environment,
            expect=expectation_of(record),
            provenance=run.provenance,
            admission=run.admission,
        )
    except ValidationError as exc:
        problems = validation.summary(exc)
        raise errors.ConfigurationError(f"{where} cannot be a bundle: {problems}") from None


def load_bundle(path: Path) -> Bundle:
    """Read and validate a bundle; every problem names the file and the field."""
    data = read_json(path, "bundle")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise errors.ConfigurationError(
            f"{path} is not a replay bundle (format {FORMAT!r} expected, found {found!r})"
        )
    try:
        return Bundle.model_validate(data)
    except ValidationError as exc:
        problems = validation.summary(exc)
        raise errors.ConfigurationError(f"bundle {path} is invalid: {problems}") from None


def write_bundle(folder: Path, bundle: Bundle, run_id: int | None = None) -> Path:
    """Write atomically into `folder` (created), keys sorted: bundles diff well in review.
    With `run_id` (the stored run's) the name is the run's own (see `Bundle.file_name`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / bundle.file_name(run_id)
    write_atomic(path, _bundle_text(bundle))
    return path


def promote(golden_dir: Path, bundle: Bundle) -> Path:
    """Write the bundle as the golden case `<golden_dir>/<runner_id>/job<id>-a<n>.json`."""
    path = _case_path(golden_dir, bundle, None)
    write_case(path, bundle.case())
    return path


@dataclass(frozen=True)
class Exported:
    """Where `export` put a run, and whether it wrote it ("written"), found that file already
    holding it ("unchanged"), or found a different file there and left it ("kept")."""

    path: Path
    outcome: Kept


def export(bundle: Bundle, run_id: int, *, bundles: Path | None = None,
           golden: Path | None = None, overwrite: bool = False) -> Exported:  # fmt: skip
    """The stored run `run_id` as a bundle in `bundles`, or as a golden case under `golden`;
    its file is named for the run (`file_name(run_id)`). A different file already at that name
    is replaced only with `overwrite`."""
    if golden is not None:
        path, text = _case_path(golden, bundle, run_id), case_text(bundle.case())
    elif bundles is not None:
        path, text = bundles / bundle.file_name(run_id), _bundle_text(bundle)
        try:
            bundles.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise errors.ConfigurationError(
                f"cannot write {path}: cannot make the folder {bundles}: {exc.strerror or exc}"
            ) from None
    else:
        raise ValueError("export needs a bundles folder or a golden folder")
    if not overwrite:
        return Exported(path, write_new(path, text))  # a ConfigurationError when it cannot
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from None
    return Exported(path, "written")


def _bundle_text(bundle: Bundle) -> str:
    body = bundle.model_dump(mode="json")
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _case_path(golden_dir: Path, bundle: Bundle, run_id: int | None) -> Path:
    """`<golden_dir>/<runner_id>/job<id>-a<n>[-run<id>].json`, its folder made."""
    folder = golden_dir / bundle.runner_id
    path = folder / bundle.file_name(run_id).removeprefix(_safe(bundle.runner_id) + "-")
    if not path.resolve().is_relative_to(golden_dir.resolve()):  # a symlinked folder, say
        raise errors.ConfigurationError(
            f"refusing to write {path}: it resolves outside the golden folder {golden_dir}"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise errors.ConfigurationError(
            f"cannot write {path}: cannot make the folder {folder}: {exc.strerror or exc}"
        ) from None
    return path


def bundle_paths(paths: list[Path]) -> list[Path]:
    """The bundle files named, folders searched recursively (sorted, so reports are stable)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.json") if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise errors.ConfigurationError(f"no such bundle file or folder: {path}")
    return found


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)
