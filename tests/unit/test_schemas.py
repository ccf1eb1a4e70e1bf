"""The checked-in JSON Schemas of jobforge's file formats (`jobforge/schemas/`) match the models
they are generated from, and the check that says so fails loudly when they drift."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from jobforge import formats as schemas
from jobforge.contracts import RUNNERS, Contract, contract_of, runner
from jobforge.golden.case import GoldenCase
from jobforge.replay.bundle import Bundle
from jobforge.runtime.context import RunContext
from jobforge.runtime.record import RunRecord

NAMES = sorted(schemas.FORMATS)


def test_the_checked_in_schemas_match_the_models() -> None:
    assert schemas.stale() == [], "run `python -m jobforge.formats --write`"
    assert schemas.main([]) == 0


def test_every_format_has_a_schema_file() -> None:
    assert NAMES == [
        "bundle.schema.json", "contract.schema.json", "golden_case.schema.json",
        "run_record.schema.json",
    ]  # fmt: skip
    assert schemas.FORMATS["contract.schema.json"] is Contract
    assert schemas.FORMATS["run_record.schema.json"] is RunRecord
    assert schemas.FORMATS["golden_case.schema.json"] is GoldenCase
    assert schemas.FORMATS["bundle.schema.json"] is Bundle
    assert sorted(p.name for p in schemas.directory().glob("*.json")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_each_schema_names_its_dialect_and_id(name: str) -> None:
    schema = json.loads((schemas.directory() / name).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:jobforge:schema:{name.removesuffix('.schema.json')}"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False  # the formats are strict
    for definition in schema.get("$defs", {}).values():
        if definition.get("type") == "object" and "properties" in definition:
            assert definition.get("additionalProperties") is False, definition["title"]


@pytest.mark.parametrize("name", NAMES)
def test_the_files_are_stable_text(name: str) -> None:
    text = (schemas.directory() / name).read_text()
    assert text == schemas.rendered(name)
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------------------------------------
# a real contract against the contract schema


class In(BaseModel):
    target: str
    threshold: float = 0.2


class Out(BaseModel):
    findings: list[str]


@pytest.fixture
def contract() -> Iterator[dict[str, Any]]:
    before = dict(RUNNERS)
    runner_id = f"ut-schemas.{uuid.uuid4().hex[:12]}"

    def scan(inp: In, ctx: RunContext) -> Out:
        return Out(findings=[])

    runner(runner_id, version="1.2.0-rc.1", input=In, output=Out, trace_keys=["threshold"],
           artifacts=["report.md"], timeout_s=5, replayable=False)(scan)  # fmt: skip
    try:
        yield contract_of(RUNNERS[runner_id]).model_dump(mode="json")
    finally:
        RUNNERS.clear()
        RUNNERS.update(before)


def test_a_declared_contract_round_trips_through_the_strict_model(
    contract: dict[str, Any],
) -> None:
    text = json.dumps(contract, sort_keys=True)
    again = Contract.model_validate_json(text)
    assert again.model_dump(mode="json") == contract
    assert contract["guarantees"]["replayable"] is False


def test_a_declared_contract_fits_the_shape_of_the_contract_schema(
    contract: dict[str, Any],
) -> None:
    schema = json.loads((schemas.directory() / "contract.schema.json").read_text())
    assert set(schema["required"]) <= set(contract)
    assert set(contract) <= set(schema["properties"])
    assert schema["properties"]["format"]["const"] == contract["format"]
    guarantees = schema["$defs"]["GuaranteesModel"]
    assert set(guarantees["required"]) == set(contract["guarantees"])


def test_a_declared_contract_validates_against_the_contract_schema(
    contract: dict[str, Any],
) -> None:
    schema = json.loads((schemas.directory() / "contract.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    assert list(validator.iter_errors(contract)) == []
    assert list(validator.iter_errors({**contract, "surprise": 1}))
    assert list(validator.iter_errors({**contract, "runner_id": "Bad Id"}))


def test_a_run_record_validates_against_the_run_record_schema() -> None:
    schema = json.loads((schemas.directory() / "run_record.schema.json").read_text())
    record = {
        "format": "jobforge.run/1",
        "runner_id": "ops.scan",
        "runner_version": "1.0.0",
        "status": "succeeded",
        "input": {"canonical": "{}", "sha256": "sha256:" + "0" * 64},
        "environment": {
            "clock": {"start": datetime(2026, 1, 1, tzinfo=UTC).isoformat(), "step_us": 1000},
            "seed": 1,
            "tenant_id": "acme",
        },
        "trace": [{"key": "k", "value": [1, 2], "why": {}}],
        "trace_sha256": "sha256:" + "1" * 64,
        "provenance": {
            "job_id": 1, "attempt": 1, "worker": "w", "recorded_at": "2026-01-01T00:00:00Z",
            "duration_ms": 1.5,
            "fingerprints": {"code_sha256": None, "python": "3.11.7", "packages": {}},
        },
    }  # fmt: skip
    RunRecord.model_validate(record)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(record)) == []
    assert list(validator.iter_errors({**record, "status": "exploded"}))


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("name", "pattern"),
    [("golden_case.schema.json", "golden/*/*.json"), ("bundle.schema.json", "bundles/*.json")],
)
def test_the_example_files_validate_against_their_schema(name: str, pattern: str) -> None:
    """What a team checks in (golden cases, replay bundles) is described by the schema an editor
    or another tool can read without jobforge; a field jobforge refuses, the schema refuses."""
    schema = json.loads((schemas.directory() / name).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    files = sorted(EXAMPLES.glob(pattern))
    assert files
    for path in files:
        document = json.loads(path.read_text())
        schemas.FORMATS[name].model_validate(document)
        assert list(validator.iter_errors(document)) == [], path
        assert list(validator.iter_errors({**document, "surprise": 1})), path
        without_input = {k: v for k, v in document.items() if k != "input"}
        assert list(validator.iter_errors(without_input)), path


def test_a_golden_case_of_rejected_input_validates() -> None:
    schema = json.loads((schemas.directory() / "golden_case.schema.json").read_text())
    case = {"input": {"amount": "-1.00"}, "expect": {"status": "invalid_input"}}
    GoldenCase.model_validate(case)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(case)) == []


# ---------------------------------------------------------------------------------------------
# the drift check itself, on a copy


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "schemas"
    shutil.copytree(schemas.directory(), folder)
    monkeypatch.setattr(schemas, "directory", lambda: folder)
    return folder


@pytest.mark.parametrize("name", NAMES)
def test_an_altered_schema_file_fails_the_check_naming_it(
    copy: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy / name
    data = json.loads(path.read_text())
    data["title"] = "Edited by hand"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert schemas.stale() == [name]
    assert schemas.main([]) == 1
    err = capsys.readouterr().err
    assert err == f"stale: jobforge/schemas/{name}\n"


def test_a_whitespace_change_is_drift_too(copy: Path) -> None:
    path = copy / "contract.schema.json"
    path.write_text(path.read_text().rstrip("\n"))
    assert schemas.stale() == ["contract.schema.json"]


def test_a_missing_schema_file_fails_the_check(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (copy / "run_record.schema.json").unlink()
    assert schemas.main([]) == 1
    assert "stale: jobforge/schemas/run_record.schema.json" in capsys.readouterr().err


def test_write_regenerates_the_files(copy: Path) -> None:
    for name in NAMES:
        (copy / name).write_text("{}\n")
    assert schemas.stale() == NAMES
    assert schemas.main(["--write"]) == 0
    assert schemas.stale() == []
    for name in NAMES:
        assert (copy / name).read_text() == schemas.rendered(name)
