"""`jobforge contracts check|lock` on the example project with locks another pydantic wrote:
no drift (a notice says the generator changed), `lock` rewrites them without a version bump,
and a real change made under the new generator is drift as ever, without generator noise.

`test_cli_contract_generator_locks/` holds the example project's locks as pydantic 2.7.4
(the oldest supported), 2.13.4 and 2.14.4 wrote them, and as jobforge wrote them before it
recorded generators (`legacy-2.13.4`). Regenerate one with `jobforge contracts lock` in a copy
of `examples/` under that pydantic.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jobforge.contracts.model import generator_versions
from tests.e2e.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
LOCKS = Path(__file__).with_name("test_cli_contract_generator_locks")
SETS = sorted(p.name for p in LOCKS.iterdir() if p.is_dir())
RUNNERS = ["billing.invoice", "notify.digest", "ops.scan"]


def example_project(project: Path, locks: str) -> Path:
    shutil.copy(ROOT / "examples" / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(ROOT / "examples" / "example_runners", project / "example_runners")
    shutil.copytree(LOCKS / locks, project / "contracts")
    (project / "golden").mkdir()  # named by the pyproject: a folder it names must exist
    return project


def written_by(locks: str) -> dict[str, str] | None:
    generator: dict[str, str] | None = json.loads(
        (LOCKS / locks / "ops.scan.json").read_text()
    ).get("generator")
    return generator


def test_there_are_lock_sets_of_oldest_and_newest() -> None:
    assert {"pydantic-2.7.4", "pydantic-2.14.4", "legacy-2.13.4"} <= set(SETS)
    assert written_by("legacy-2.13.4") is None


@pytest.mark.parametrize("locks", SETS)
def test_check_passes_with_a_notice_and_lock_rewrites_without_a_bump(
    project: Path, cli: Cli, locks: str
) -> None:
    example_project(project, locks)
    same = written_by(locks) == generator_versions()
    checked = cli("contracts", "check", "--format", "github")
    assert checked.code == 0, checked.out + checked.err
    notices = [line for line in checked.out.splitlines() if line.startswith("::notice")]
    assert not [line for line in checked.out.splitlines() if line.startswith("::error")]
    if same:
        assert notices == []
    else:
        assert len(notices) == len(RUNNERS)
        expected = ("schema generator changed (pydantic " if written_by(locks)
                    else "the lock does not record its schema generator")  # fmt: skip
        assert all(expected in line for line in notices), notices
        assert all("`jobforge contracts lock` rewrites the lock" in line for line in notices)

    locked = cli("contracts", "lock")
    assert locked.code == 0, locked.out
    if not same:
        assert locked.out.count("lock rewritten, no contract change") == len(RUNNERS)
        assert "contracts lock: 3 written" in locked.out
    again = cli("contracts", "check")
    assert again.code == 0
    assert "notice" not in again.out
    assert again.out.count("matches its lock\n") == len(RUNNERS)
    rewritten = json.loads((project / "contracts" / "billing.invoice.json").read_text())
    assert rewritten["generator"] == generator_versions()
    assert rewritten["version"] == "1.2.0"  # no bump asked for


@pytest.mark.parametrize("locks", SETS)
def test_a_real_change_under_a_new_generator_is_drift_without_noise(
    project: Path, cli: Cli, locks: str
) -> None:
    example_project(project, locks)
    source = project / "example_runners" / "invoice.py"
    text = source.read_text()
    anchor = "    coupon: str | None = None\n"
    assert anchor in text
    source.write_text(text.replace(anchor, anchor + "    po_number: str\n", 1))

    checked = cli("contracts", "check", "--format", "json")
    assert checked.code == 1, checked.out + checked.err
    report = json.loads(checked.out)
    items = {item["name"]: item for item in report["items"]}
    assert items["ops.scan"]["outcome"] == "passed"
    invoice = items["billing.invoice"]
    assert invoice["outcome"] == "failed"
    changes = [(f["rule"], f["path"]) for f in invoice["findings"] if f["severity"] != "notice"]
    assert changes == [("input.required_added", "input.properties.po_number")]

    refused = cli("contracts", "lock", "billing.invoice")
    assert refused.code == 1
    assert "bump the version to 2.0.0 or later" in refused.out
