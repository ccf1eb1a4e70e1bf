"""JSON Schemas of jobforge's file formats, generated from their models and checked in under
`jobforge/schemas/` (a test fails when a model and its checked-in schema drift apart): a
contract lock, a run record, a golden case and a replay bundle. Editors and other tools read
these files without jobforge.

It sits above every layer whose models it names (a bundle is replay's), so no format module
depends on another just to publish its schema. Regenerate with
`python -m jobforge.formats --write`.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from jobforge.contracts.model import Contract
from jobforge.golden.case import GoldenCase
from jobforge.replay.bundle import Bundle
from jobforge.runtime.record import RunRecord

#: file name -> model (the `$id` is the name without `.schema.json`)
FORMATS: dict[str, type[BaseModel]] = {
    "bundle.schema.json": Bundle,
    "contract.schema.json": Contract,
    "golden_case.schema.json": GoldenCase,
    "run_record.schema.json": RunRecord,
}


def schema_of(model: type[BaseModel], name: str) -> dict[str, Any]:
    body = model.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:jobforge:schema:{name.removesuffix('.schema.json')}",
        **body,
    }


def rendered(name: str) -> str:
    return json.dumps(schema_of(FORMATS[name], name), indent=2, sort_keys=True) + "\n"


def directory() -> Path:
    return Path(str(resources.files("jobforge") / "schemas"))


def stale() -> list[str]:
    """Checked-in schema files that differ from what the models generate."""
    found = []
    for name in FORMATS:
        path = directory() / name
        if not path.is_file() or path.read_text() != rendered(name):
            found.append(name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the checked-in schemas")
    args = parser.parse_args(argv)
    if args.write:
        for name in FORMATS:
            (directory() / name).write_text(rendered(name))
        return 0
    drifted = stale()
    for name in drifted:
        print(f"stale: jobforge/schemas/{name}", file=sys.stderr)
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main())
