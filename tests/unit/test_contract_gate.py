"""The gate as a library: runners added and removed, recorded inputs, check and `--against`
verdicts, lock writing and refusing, lock files read from git revisions. No database, no
subprocess but git."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import BaseModel

from jobforge import errors
from jobforge.config import ProjectConfig
from jobforge.contracts import RunnerDef, contract_of
from jobforge.contracts.gate import check_project, compare_project, lock_project, source_of
from jobforge.contracts.locks import locks_at, read_lock, render, write_lock
from jobforge.contracts.samples import check_samples, golden_inputs
from jobforge.report import Outcome
from jobforge.runtime.context import RunContext


class In(BaseModel):
    target: str
    threshold: float = 0.2


class InRequired(BaseModel):
    target: str
    threshold: float = 0.2
    mode: str


class InMore(BaseModel):
    target: str
    threshold: float = 0.2
    note: str = ""


class Out(BaseModel):
    findings: list[str]


def scan(inp: In, ctx: RunContext) -> Out:
    return Out(findings=[])


SCAN = RunnerDef(id="ops.scan", version="1.0.0", fn=scan, input=In, output=Out)
OTHER = RunnerDef(id="ops.other", version="0.1.0", fn=scan, input=In, output=Out)


@pytest.fixture
def config(tmp_path: Path) -> ProjectConfig:
    return ProjectConfig(root=tmp_path)


def lock(config: ProjectConfig, *definitions: RunnerDef) -> None:
    for definition in definitions:
        write_lock(config.root / config.contracts_dir, contract_of(definition))


def case(config: ProjectConfig, runner_id: str, name: str, data: object) -> None:
    folder = config.root / config.golden_dir / runner_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"input": data}))


def rules(config: ProjectConfig, runners: dict[str, RunnerDef]) -> dict[str, set[str]]:
    return {
        d.runner_id: {c.rule for c in d.all_changes} | {f"status:{d.status}"}
        for d in compare_project(config, runners)
    }


# -- the gate's own rules: fire and stay quiet ------------------------------------------------


def test_runner_added_fires_for_a_runner_without_lock(config: ProjectConfig) -> None:
    report = check_project(config, {"ops.scan": SCAN})
    (item,) = report.items
    assert item.outcome is Outcome.failed
    assert [f.rule for f in item.findings] == ["runner.added"]
    assert "not locked yet" in item.summary


def test_runner_added_stays_quiet_once_locked(config: ProjectConfig) -> None:
    lock(config, SCAN)
    report = check_project(config, {"ops.scan": SCAN})
    assert report.ok
    assert report.items[0].findings == ()
    assert report.items[0].summary == "1.0.0 matches its lock"


def test_runner_removed_fires_for_a_lock_without_runner(config: ProjectConfig) -> None:
    lock(config, SCAN, OTHER)
    report = check_project(config, {"ops.scan": SCAN})
    gone = next(i for i in report.items if i.name == "ops.other")
    assert gone.outcome is Outcome.failed
    assert [(f.rule, f.severity, f.file) for f in gone.findings] == [
        ("runner.removed", "breaking", "contracts/ops.other.json")
    ]
    assert not report.ok


def test_runner_removed_stays_quiet_while_declared(config: ProjectConfig) -> None:
    lock(config, SCAN, OTHER)
    assert check_project(config, {"ops.scan": SCAN, "ops.other": OTHER}).ok


def test_recorded_inputs_invalid_fires_with_count_and_first_failure(config: ProjectConfig) -> None:
    lock(config, SCAN)
    for index in range(3):
        case(config, "ops.scan", f"c{index}", {"target": "x", "mode": "fast"})
    case(config, "ops.scan", "big", {"target": "x"})
    changed = replace(SCAN, input=InRequired, version="2.0.0")
    (drift,) = compare_project(config, {"ops.scan": changed})
    assert drift.samples is not None
    assert drift.samples.message() == (
        "1 of 4 recorded inputs no longer validate; first: golden/ops.scan/big.json: "
        "mode: Field required"
    )
    assert drift.sample_change is not None
    assert drift.sample_change.rule == "input.recorded_inputs_invalid"
    # a major bump covers the schema change, yet the recorded input still fails the check
    assert not drift.passes("against")


def test_recorded_inputs_invalid_stays_quiet_when_inputs_validate(config: ProjectConfig) -> None:
    lock(config, SCAN)
    case(config, "ops.scan", "ok", {"target": "x"})
    case(config, "ops.scan", "broken-json", "not an object")  # not a case: the golden items' job
    (config.root / "golden" / "ops.scan" / "garbage.json").write_text("{")
    changed = replace(SCAN, input=InMore, version="1.1.0")
    (drift,) = compare_project(config, {"ops.scan": changed})
    assert drift.samples is not None
    assert drift.samples.ok
    assert drift.samples.total == 1
    assert "input.recorded_inputs_invalid" not in {c.rule for c in drift.all_changes}


def test_extra_samples_are_checked_beside_golden_ones(config: ProjectConfig) -> None:
    lock(config, SCAN)
    samples = {"ops.scan": [("run 41/1", {"target": "x"}), ("run 42/1", {"threshold": 1})]}
    report = check_project(config, {"ops.scan": SCAN}, samples=samples)
    (item,) = report.items
    assert item.outcome is Outcome.failed
    (finding,) = item.findings
    assert finding.message.startswith(
        "1 of 2 recorded inputs no longer validate; first: run 42/1: target: Field required"
    )


def test_samples_library_function() -> None:
    checked = check_samples(In, [("a", {"target": "x"}), ("b", {}), ("c", {"target": 1})])
    assert (checked.total, [label for label, _ in checked.failures]) == (3, ["b", "c"])
    assert check_samples(In, []).message() == "all 0 recorded inputs validate"


def test_golden_inputs_are_labelled_from_the_project_root(config: ProjectConfig) -> None:
    case(config, "ops.scan", "one", {"target": "x"})
    assert golden_inputs(config.root / "golden", "ops.scan", config.root) == [
        ("golden/ops.scan/one.json", {"target": "x"})
    ]
    assert golden_inputs(config.root / "golden", "nobody", config.root) == []


# -- verdicts ---------------------------------------------------------------------------------


def test_check_fails_on_any_change_even_compatible_and_covered(config: ProjectConfig) -> None:
    lock(config, SCAN)
    changed = replace(SCAN, input=InMore, version="1.1.0")
    (item,) = check_project(config, {"ops.scan": changed}).items
    assert item.outcome is Outcome.failed
    assert {f.rule for f in item.findings} == {
        "input.property_added",
        "input.annotation_changed",  # the model's title: InMore
        "runner.version_changed",
    }
    assert "version 1.0.0 → 1.1.0 (minor bump) covers the changes" in item.summary


def test_check_says_whether_a_breaking_change_was_bumped_major(config: ProjectConfig) -> None:
    lock(config, SCAN)
    minor = replace(SCAN, input=InRequired, version="1.1.0")
    (item,) = check_project(config, {"ops.scan": minor}).items
    (breaking,) = [f for f in item.findings if f.severity == "breaking"]
    assert breaking.message.endswith("(version not bumped major: 1.0.0 → 1.1.0)")
    major = replace(SCAN, input=InRequired, version="2.0.0")
    (item,) = check_project(config, {"ops.scan": major}).items
    (breaking,) = [f for f in item.findings if f.severity == "breaking"]
    assert breaking.message.endswith("(version bumped major: 1.0.0 → 2.0.0)")


def test_against_mode_passes_covered_changes_and_fails_uncovered(config: ProjectConfig) -> None:
    lock(config, SCAN, OTHER)
    covered = replace(SCAN, input=InRequired, version="2.0.0")
    report = check_project(config, {"ops.scan": covered, "ops.other": OTHER}, mode="against")
    assert report.ok
    uncovered = replace(SCAN, input=InRequired, version="1.1.0")
    report = check_project(config, {"ops.scan": uncovered, "ops.other": OTHER}, mode="against")
    assert [i.name for i in report.items if i.outcome is Outcome.failed] == ["ops.scan"]
    added = RunnerDef(id="ops.new", version="0.1.0", fn=scan, input=In, output=Out)
    report = check_project(config, {"ops.scan": SCAN, "ops.new": added}, mode="against")
    assert [i.name for i in report.items if i.outcome is Outcome.failed] == ["ops.other"]


def test_diff_mode_marks_differences_but_report_shape_is_the_same(config: ProjectConfig) -> None:
    lock(config, SCAN)
    report = check_project(config, {"ops.scan": replace(SCAN, version="1.0.1")}, mode="diff")
    assert [f.rule for f in report.items[0].findings] == ["runner.version_changed"]


def test_only_restricts_and_unknown_ids_are_configuration_errors(config: ProjectConfig) -> None:
    lock(config, SCAN)
    runners = {"ops.scan": SCAN, "ops.other": OTHER}
    assert [i.name for i in check_project(config, runners, only=["ops.scan"]).items] == ["ops.scan"]
    with pytest.raises(errors.ConfigurationError, match=r"no runner 'ops\.nope'"):
        check_project(config, runners, only=["ops.nope"])


def test_runners_of_other_packages_are_not_the_projects(config: ProjectConfig) -> None:
    mine = replace(config, runners=("myapp.runners",))
    # SCAN's function lives in this test module, outside the project folder and its modules
    assert check_project(mine, {"ops.scan": SCAN}).items == []


# -- lock -------------------------------------------------------------------------------------


def test_lock_writes_new_runners_deterministically(config: ProjectConfig) -> None:
    result = lock_project(config, {"ops.scan": SCAN})
    assert [(o.runner_id, o.action) for o in result.outcomes] == [("ops.scan", "written")]
    path = config.root / "contracts" / "ops.scan.json"
    text = path.read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert text == render(contract_of(SCAN))
    assert read_lock(path) == contract_of(SCAN)
    assert [p.name for p in path.parent.iterdir()] == ["ops.scan.json"]  # no temporary left
    again = lock_project(config, {"ops.scan": SCAN})
    assert [o.action for o in again.outcomes] == ["unchanged"]


@pytest.mark.parametrize(
    ("version", "input_model", "action"),
    [
        ("1.0.0", InRequired, "refused"),  # breaking, no bump
        ("1.1.0", InRequired, "refused"),  # breaking, minor bump
        ("2.0.0", InRequired, "written"),  # breaking, major bump
        ("1.0.0", InMore, "refused"),  # compatible, no bump
        ("1.0.1", InMore, "refused"),  # compatible, patch bump
        ("1.1.0", InMore, "written"),  # compatible, minor bump
        ("1.0.1", In, "written"),  # a bump alone
        ("0.9.0", In, "refused"),  # backwards
    ],
)
def test_lock_version_policy(
    config: ProjectConfig, version: str, input_model: type[BaseModel], action: str
) -> None:
    lock(config, SCAN)
    changed = replace(SCAN, input=input_model, version=version)
    result = lock_project(config, {"ops.scan": changed})
    assert [o.action for o in result.outcomes] == [action]
    assert result.exit_code == (1 if action == "refused" else 0)
    locked = read_lock(config.root / "contracts" / "ops.scan.json")
    assert locked.version == (version if action == "written" else "1.0.0")


def test_a_refusal_names_the_version_to_bump_to_and_force_overrides(
    config: ProjectConfig,
) -> None:
    lock(config, SCAN)
    changed = replace(SCAN, input=InRequired, version="1.1.0")
    (refused,) = lock_project(config, {"ops.scan": changed}).refused
    assert "bump the version to 2.0.0 or later, or pass --force" in refused.reason
    forced = lock_project(config, {"ops.scan": changed}, force=True)
    assert [o.action for o in forced.outcomes] == ["written"]
    assert forced.outcomes[0].reason.endswith("(forced)")


def test_zero_x_minor_bump_is_major(config: ProjectConfig) -> None:
    lock(config, OTHER)
    changed = replace(OTHER, input=InRequired, version="0.2.0")
    assert [o.action for o in lock_project(config, {"ops.other": changed}).outcomes] == ["written"]


def test_a_refused_runner_does_not_hold_the_others_back(config: ProjectConfig) -> None:
    lock(config, SCAN, OTHER)
    runners = {
        "ops.scan": replace(SCAN, input=InRequired),
        "ops.other": replace(OTHER, input=InMore, version="0.1.1"),
    }
    result = lock_project(config, runners)
    assert {o.runner_id: o.action for o in result.outcomes} == {
        "ops.scan": "refused",
        "ops.other": "written",
    }


def test_locks_of_removed_runners_are_kept_unless_pruned(config: ProjectConfig) -> None:
    lock(config, SCAN, OTHER)
    kept = lock_project(config, {"ops.scan": SCAN})
    assert {o.runner_id: o.action for o in kept.outcomes}["ops.other"] == "kept"
    assert kept.exit_code == 0
    assert (config.root / "contracts" / "ops.other.json").exists()
    pruned = lock_project(config, {"ops.scan": SCAN}, prune=True)
    assert {o.runner_id: o.action for o in pruned.outcomes}["ops.other"] == "pruned"
    assert not (config.root / "contracts" / "ops.other.json").exists()


def test_invalid_locks_are_configuration_errors_naming_the_file(config: ProjectConfig) -> None:
    folder = config.root / "contracts"
    folder.mkdir()
    (folder / "ops.scan.json").write_text('{"format": "jobforge.contract/1"}')
    with pytest.raises(errors.ConfigurationError, match=r"invalid lock file contracts/ops\.scan"):
        check_project(config, {"ops.scan": SCAN})
    # --force rewrites a lock it cannot read
    assert [o.action for o in lock_project(config, {"ops.scan": SCAN}, force=True).outcomes] == [
        "written"
    ]
    text = render(contract_of(SCAN)).replace('"ops.scan"', '"ops.other"')
    (folder / "ops.scan.json").write_text(text)
    with pytest.raises(errors.ConfigurationError, match=r"it is for 'ops\.other', not 'ops\.scan'"):
        check_project(config, {"ops.scan": SCAN})


def test_source_of_points_at_the_def_line() -> None:
    file, line = source_of(SCAN, Path(__file__).resolve().parents[2])
    assert file == "tests/unit/test_contract_gate.py"
    assert line is not None
    source = Path(__file__).read_text().splitlines()
    assert source[line - 1].startswith("def scan(")


# -- git baselines ----------------------------------------------------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=root, check=True, capture_output=True,
    )  # fmt: skip


@needs_git
def test_locks_at_a_revision(config: ProjectConfig) -> None:
    git(config.root, "init", "-q")
    lock(config, SCAN)
    git(config.root, "add", ".")
    git(config.root, "commit", "-q", "-m", "v1")
    git(config.root, "tag", "v1")
    lock(config, replace(SCAN, version="1.1.0", input=InMore), OTHER)
    git(config.root, "add", ".")
    git(config.root, "commit", "-q", "-m", "v2")
    then = locks_at("v1", config.root / "contracts")
    assert {k: v.version for k, v in then.items()} == {"ops.scan": "1.0.0"}
    now = locks_at("HEAD", config.root / "contracts")
    assert {k: v.version for k, v in now.items()} == {"ops.other": "0.1.0", "ops.scan": "1.1.0"}
    report = check_project(config, {"ops.scan": replace(SCAN, version="1.1.0", input=InMore)},
                           against="HEAD~1")  # fmt: skip
    assert report.ok  # a minor bump covers the compatible change against v1
    with pytest.raises(errors.ConfigurationError, match="--against nope: unknown revision"):
        locks_at("nope", config.root / "contracts")


@needs_git
def test_against_outside_git_is_a_configuration_error(config: ProjectConfig) -> None:
    with pytest.raises(errors.ConfigurationError, match="is not in a git repository"):
        locks_at("HEAD", config.root / "contracts")


@needs_git
def test_a_revision_without_the_contracts_folder_has_no_locks(config: ProjectConfig) -> None:
    git(config.root, "init", "-q")
    (config.root / "README").write_text("x")
    git(config.root, "add", ".")
    git(config.root, "commit", "-q", "-m", "empty")
    assert locks_at("HEAD", config.root / "contracts") == {}


# -- locks another schema generator wrote -----------------------------------------------------


def _edit_lock(config: ProjectConfig, runner_id: str, edit: dict[str, object]) -> Path:
    path = config.root / config.contracts_dir / f"{runner_id}.json"
    data = json.loads(path.read_text())
    data.update(edit)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def _older_generator(config: ProjectConfig) -> Path:
    """The lock as an older pydantic would have written it: `0.2` for the default is the same,
    the bound spelled `0.0`, and a title it did not write."""
    path = config.root / config.contracts_dir / "ops.scan.json"
    data = json.loads(path.read_text())
    # a version no test environment runs (tox runs these tests under 2.7.4 too)
    data["generator"] = {"pydantic": "2.6.0", "pydantic_core": "2.16.1"}
    data["input_schema"]["properties"]["threshold"].pop("title")
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def test_a_lock_of_another_generator_passes_check_with_a_notice(config: ProjectConfig) -> None:
    lock(config, SCAN)
    _older_generator(config)
    (drift,) = compare_project(config, {"ops.scan": SCAN})
    assert drift.status == "unchanged"
    assert drift.changes == ()
    assert [c.path for c in drift.generated] == ["input.properties.threshold"]
    assert drift.stale
    report = check_project(config, {"ops.scan": SCAN})
    assert report.ok
    (item,) = report.items
    assert item.outcome is Outcome.passed
    (finding,) = item.findings
    assert finding.severity == "notice"
    assert finding.rule == "runner.generator_changed"
    assert finding.message == (
        f"schema generator changed (pydantic 2.6.0 → {contract_of(SCAN).generator['pydantic']})"  # type: ignore[index]
        "; 1 schema difference it alone explains; `jobforge contracts lock` rewrites the lock"
    )
    assert "matches its lock; schema generator changed" in item.summary


def test_lock_rewrites_a_lock_of_another_generator_without_a_bump(config: ProjectConfig) -> None:
    lock(config, SCAN)
    path = _older_generator(config)
    (outcome,) = lock_project(config, {"ops.scan": SCAN}).outcomes
    assert outcome.action == "written"
    assert outcome.reason.endswith("lock rewritten, no contract change")
    assert path.read_text() == render(contract_of(SCAN))
    (again,) = lock_project(config, {"ops.scan": SCAN}).outcomes
    assert again.action == "unchanged"
    assert check_project(config, {"ops.scan": SCAN}).items[0].findings == ()


def test_a_real_change_beside_a_generator_change_is_drift_and_noise_stays_out(
    config: ProjectConfig,
) -> None:
    lock(config, SCAN)
    _older_generator(config)
    changed = replace(SCAN, input=InRequired)
    (drift,) = compare_project(config, {"ops.scan": changed})
    assert [(c.rule, c.path) for c in drift.changes] == [
        ("input.annotation_changed", "input"),  # the model's title: InRequired
        ("input.required_added", "input.properties.mode"),
    ]
    assert [c.path for c in drift.generated] == ["input.properties.threshold"]
    report = check_project(config, {"ops.scan": changed})
    assert not report.ok
    severities = [f.severity for f in report.items[0].findings]
    assert severities == ["notice", "compatible", "breaking"]
    (refused,) = lock_project(config, {"ops.scan": changed}).outcomes
    assert refused.action == "refused"


def test_the_same_generator_never_excuses_a_schema_difference(config: ProjectConfig) -> None:
    """A hand-edited schema under the recorded generator is drift, fingerprints or not."""
    lock(config, SCAN)
    path = config.root / config.contracts_dir / "ops.scan.json"
    data = json.loads(path.read_text())
    data["input_schema"]["properties"]["threshold"]["type"] = "integer"
    path.write_text(json.dumps(data))
    (drift,) = compare_project(config, {"ops.scan": SCAN})
    assert [c.rule for c in drift.changes] == ["input.type_widened"]
    assert drift.generated == ()


def test_a_lock_without_generator_and_fingerprints_loads_and_is_rewritten(
    config: ProjectConfig,
) -> None:
    lock(config, SCAN)
    path = config.root / config.contracts_dir / "ops.scan.json"
    data = json.loads(path.read_text())
    for key in ("generator", "fingerprints", "secret_keys", "public_keys"):
        del data[key]
    path.write_text(json.dumps(data))
    (item,) = check_project(config, {"ops.scan": SCAN}).items
    assert item.outcome is Outcome.passed
    (finding,) = item.findings
    assert finding.rule == "runner.generator_changed"
    assert finding.message.startswith("the lock does not record its schema generator; this one")
    (outcome,) = lock_project(config, {"ops.scan": SCAN}).outcomes
    assert outcome.action == "written"
    assert path.read_text() == render(contract_of(SCAN))


def test_a_lock_out_of_date_where_no_rule_looks_is_a_notice(config: ProjectConfig) -> None:
    lock(config, SCAN)
    path = config.root / config.contracts_dir / "ops.scan.json"
    data = json.loads(path.read_text())
    data["fingerprints"]["input"]["target"]["doc"] = "edited by hand"
    path.write_text(json.dumps(data))
    (item,) = check_project(config, {"ops.scan": SCAN}).items
    assert item.outcome is Outcome.passed
    (finding,) = item.findings
    assert (finding.rule, finding.severity) == ("runner.lock_outdated", "notice")
    assert [o.action for o in lock_project(config, {"ops.scan": SCAN}).outcomes] == ["written"]


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        ({"generator": "2.13.4"}, "generator"),
        ({"generator": {"pydantic": 2}}, "generator.pydantic"),
        ({"fingerprints": {"input": {}}}, "fingerprints.output"),
        ({"fingerprints": {"input": {"a": {"shape": 1}}, "output": {}}},
         "fingerprints.input.a.shape"),
        ({"fingerprints": {"input": {"a": {"shape": "int", "x": 1}}, "output": {}}},
         "fingerprints.input.a.x"),
        ({"secret_keys": "session"}, "secret_keys"),
    ],
)  # fmt: skip
def test_invalid_generator_fields_are_configuration_errors_naming_them(
    config: ProjectConfig, edit: dict[str, object], where: str
) -> None:
    lock(config, SCAN)
    _edit_lock(config, "ops.scan", edit)
    expected = rf"invalid lock file contracts/ops\.scan\.json: {where}:"
    with pytest.raises(errors.ConfigurationError, match=expected):
        check_project(config, {"ops.scan": SCAN})
