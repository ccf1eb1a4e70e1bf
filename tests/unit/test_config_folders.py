"""A folder `[tool.jobforge]` names must exist; one left at its default may not; close names.

A typo in `golden_dir` used to turn every golden test off in silence (`certify` passed with
`golden 0`); now a folder the table names explicitly that is not there is one configuration
error naming the key, the value and the resolved path. A default folder that is not there is
simply empty (a fresh repository has no bundles yet). Misspelt runner modules and runner ids get
the close name difflib finds, at every depth.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from jobforge import errors
from jobforge.config import close_match, did_you_mean, find_config
from jobforge.contracts import RUNNERS, RunnerDef
from jobforge.contracts.discovery import import_modules
from jobforge.contracts.gate import check_project, compare_project, lock_project
from jobforge.runtime.context import RunContext
from jobforge.strategies import inputs


def _project(root: Path, table: str) -> Path:
    (root / "pyproject.toml").write_text(f"[tool.jobforge]\n{table}")
    return root


def test_an_explicit_folder_that_is_not_there_names_key_value_and_path(tmp_path: Path) -> None:
    (tmp_path / "golden").mkdir()
    config = find_config(_project(tmp_path, 'golden_dir = "goldne"\n'))
    assert config is not None
    with pytest.raises(errors.ConfigurationError) as caught:
        config.folder("golden_dir")
    message = str(caught.value)
    assert "\n" not in message
    assert "[tool.jobforge] golden_dir = 'goldne'" in message
    assert f"no such folder {tmp_path.resolve() / 'goldne'}" in message
    assert "(did you mean 'golden'?)" in message
    assert "(default 'golden')" in message


def test_an_explicit_path_to_a_file_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "bundles").write_text("")
    config = find_config(_project(tmp_path, 'bundles_dir = "bundles"\n'))
    assert config is not None
    with pytest.raises(errors.ConfigurationError, match="bundles_dir = 'bundles': not a folder"):
        config.folder("bundles_dir")


def test_a_default_folder_may_be_absent_and_an_explicit_one_present_is_fine(
    tmp_path: Path,
) -> None:
    (tmp_path / "tests" / "golden").mkdir(parents=True)
    config = find_config(_project(tmp_path, 'golden_dir = "tests/golden"\n'))
    assert config is not None
    assert config.folder("golden_dir") == tmp_path.resolve() / "tests" / "golden"
    assert config.folder("bundles_dir") == tmp_path.resolve() / "bundles"  # default, absent
    assert config.folder("contracts_dir") == tmp_path.resolve() / "contracts"
    assert config.configured == frozenset({"golden_dir"})


def test_the_gate_refuses_a_misspelt_golden_or_contracts_folder(tmp_path: Path) -> None:
    (tmp_path / "contracts").mkdir()
    config = find_config(_project(tmp_path, 'golden_dir = "goldne"\n'))
    assert config is not None
    with pytest.raises(errors.ConfigurationError, match="golden_dir = 'goldne'"):
        check_project(config, {})
    with pytest.raises(errors.ConfigurationError, match="golden_dir = 'goldne'"):
        lock_project(config, {})
    assert compare_project(config, {}, golden=False) == []  # golden inputs not asked for
    locks = find_config(_project(tmp_path, 'contracts_dir = "contrats"\n'))
    assert locks is not None
    with pytest.raises(errors.ConfigurationError, match=r"contracts_dir = 'contrats'.*'contracts'"):
        check_project(locks, {})
    assert lock_project(locks, {}).outcomes == []  # `lock` writes the folder: no refusal


def test_the_gate_is_quiet_about_default_folders_that_are_not_there(tmp_path: Path) -> None:
    config = find_config(_project(tmp_path, ""))
    assert config is not None
    assert check_project(config, {}).items == []


# -- close names --------------------------------------------------------------------------


def test_close_match_and_did_you_mean() -> None:
    assert close_match("example.triag", ["example.triage", "ops.scan"]) == "example.triage"
    assert close_match("zzz", ["example.triage"]) is None
    assert close_match("same", ["same"]) is None  # the name itself is no suggestion
    assert did_you_mean("runers", ["runners"]) == " (did you mean 'runners'?)"
    assert did_you_mean("zzz", []) == ""


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Path]:
    """A package `trialpkg` with a module `triage`, importable from `tmp_path`."""
    (tmp_path / "trialpkg").mkdir()
    (tmp_path / "trialpkg" / "__init__.py").write_text("")
    (tmp_path / "trialpkg" / "triage.py").write_text("")
    yield tmp_path
    for name in [m for m in sys.modules if m == "trialpkg" or m.startswith("trialpkg.")]:
        del sys.modules[name]
    if str(tmp_path.resolve()) in sys.path:
        sys.path.remove(str(tmp_path.resolve()))


def test_a_misspelt_submodule_gets_the_close_name_of_its_package(package: Path) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        import_modules(["trialpkg.triag"], package, source="pyproject.toml: runners")
    assert "no module named 'trialpkg.triag' (did you mean 'trialpkg.triage'?)" in str(caught.value)


def test_a_misspelt_top_level_module_still_gets_its_close_name(package: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"did you mean 'trialpkg'\?"):
        import_modules(["trialpk.triage"], package)


class In(BaseModel):
    subject: str


def triage(inp: In, ctx: RunContext) -> In:
    return inp


TRIAGE = RunnerDef(id="example.triage", version="1.0.0", fn=triage, input=In, output=In)


def test_an_unknown_runner_id_in_the_gate_gets_a_close_name(tmp_path: Path) -> None:
    config = find_config(_project(tmp_path, ""))
    assert config is not None
    with pytest.raises(errors.ConfigurationError) as one:
        compare_project(config, {"example.triage": TRIAGE}, only=["example.triag"])
    assert str(one.value).startswith(
        "no runner 'example.triag' is declared or locked (did you mean 'example.triage'?) (known: "
    )
    with pytest.raises(errors.ConfigurationError) as caught:
        compare_project(config, {"example.triage": TRIAGE}, only=["example.triag", "zzz"])
    assert str(caught.value).startswith(
        "no runner 'example.triag' (did you mean 'example.triage'?), 'zzz' is declared or locked"
    )


def test_an_unknown_runner_id_of_the_strategies_gets_a_close_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(RUNNERS, "example.triage", TRIAGE)
    with pytest.raises(errors.ConfigurationError, match=r"did you mean 'example\.triage'\?"):
        inputs("example.triag")
