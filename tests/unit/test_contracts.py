"""`@runner` declarations, the strict contract model, `[tool.jobforge]` config and discovery.

No database. The runner registry (`jobforge.contracts.RUNNERS`) is process-global: every test
declares under its own id and the `registry` fixture puts the registry back afterwards.
"""

from __future__ import annotations

import importlib
import math
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError, computed_field

from jobforge import errors
from jobforge.config import ProjectConfig, find_config
from jobforge.contracts import (
    RUNNERS,
    Contract,
    RetryPolicy,
    RunnerDef,
    contract_of,
    discover,
    runner,
)
from jobforge.contracts.model import generator_versions
from jobforge.runtime.context import RunContext


class ScanIn(BaseModel):
    target: str
    threshold: float = 0.2


class ScanOut(BaseModel):
    findings: list[str]
    savings_usd: float


def scan(inp: ScanIn, ctx: RunContext) -> ScanOut:
    return ScanOut(findings=[inp.target], savings_usd=0.0)


def other_scan(inp: ScanIn, ctx: RunContext) -> ScanOut:
    return ScanOut(findings=[], savings_usd=1.0)


@pytest.fixture
def registry() -> Iterator[dict[str, RunnerDef]]:
    """The process-wide registry, restored to what it held before the test."""
    before = dict(RUNNERS)
    yield RUNNERS
    RUNNERS.clear()
    RUNNERS.update(before)


@pytest.fixture
def rid(registry: dict[str, RunnerDef]) -> str:
    """A runner id no other test (or test module) uses."""
    return f"ut-contracts.{uuid.uuid4().hex[:12]}"


def declare(runner_id: str, fn: Callable[..., Any] = scan, **overrides: Any) -> Callable[..., Any]:
    options: dict[str, Any] = {"version": "1.0.0", "input": ScanIn, "output": ScanOut}
    options.update(overrides)
    return runner(runner_id, **options)(fn)


def refused(runner_id: str, fn: Callable[..., Any] = scan, **overrides: Any) -> str:
    """Declare, expect a ConfigurationError, check nothing was registered; the message."""
    with pytest.raises(errors.ConfigurationError) as caught:
        declare(runner_id, fn, **overrides)
    assert runner_id not in RUNNERS
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert repr(runner_id) in message, message
    return message


# ---------------------------------------------------------------------------------------------
# the declaration


def test_the_decorator_returns_the_function_unchanged_and_registers_it(rid: str) -> None:
    returned = declare(rid, scan, trace_keys=["threshold"], artifacts=["report.md"])
    assert returned is scan
    assert returned(ScanIn(target="db-1"), None) == ScanOut(findings=["db-1"], savings_usd=0.0)
    definition = RUNNERS[rid]
    assert definition.fn is scan
    assert definition.id == rid
    assert definition.version == "1.0.0"
    assert definition.input is ScanIn
    assert definition.output is ScanOut
    assert definition.trace_keys == ("threshold",)
    assert definition.artifacts == ("report.md",)
    assert definition.is_async is False
    assert definition.where == f"{scan.__module__}.scan"


def test_an_async_runner_is_marked_async(rid: str) -> None:
    async def scan_async(inp: ScanIn, ctx: RunContext) -> ScanOut:
        return ScanOut(findings=[], savings_usd=0.0)

    assert declare(rid, scan_async) is scan_async
    assert RUNNERS[rid].is_async is True


@pytest.mark.parametrize(
    "bad",
    ["", "Ops.Scan", "ops scan", "ops/scan", "ops:scan", "a" * 201, "ops.scan\n", "ünï"],
)
def test_a_bad_id_is_refused(registry: dict[str, RunnerDef], bad: str) -> None:
    assert "the id must be 1-200 of [a-z0-9._-]" in refused(bad)


def test_an_id_of_200_characters_is_fine(registry: dict[str, RunnerDef]) -> None:
    declare("a" * 200)
    assert "a" * 200 in RUNNERS


@pytest.mark.parametrize(
    "bad", ["1", "1.0", "v1.0.0", "01.0.0", "1.0.0.0", "1.0.0-", "1.0.0-01", " 1.0.0", "latest"]
)
def test_a_version_that_is_not_semver_is_refused(rid: str, bad: str) -> None:
    assert f"version {bad!r} is not semver" in refused(rid, version=bad)


@pytest.mark.parametrize("good", ["0.0.0", "1.2.3", "10.20.30", "1.0.0-rc.1", "1.0.0+build.7"])
def test_semver_versions_are_accepted(rid: str, good: str) -> None:
    declare(rid, version=good)
    assert RUNNERS[rid].version == good


@pytest.mark.parametrize("side", ["input", "output"])
@pytest.mark.parametrize("bad", [dict, ScanIn(target="x"), "ScanIn", None])
def test_input_and_output_must_be_pydantic_model_classes(rid: str, side: str, bad: Any) -> None:
    assert f"{side} must be a pydantic model class" in refused(rid, **{side: bad})


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "é", "k" * 201, 7])
def test_a_bad_trace_key_is_refused(rid: str, bad: Any) -> None:
    assert f"trace key {bad!r} must be" in refused(rid, trace_keys=["ok", bad])


def test_repeated_trace_keys_are_refused(rid: str) -> None:
    assert "trace keys repeat" in refused(rid, trace_keys=["a", "b", "a"])


@pytest.mark.parametrize("field", ["trace_keys", "artifacts"])
def test_a_bare_string_is_not_a_list_of_names(rid: str, field: str) -> None:
    # "ab" would otherwise declare the names "a" and "b"
    overrides: dict[str, Any] = {field: "ab"}
    assert field.replace("_", " ") in refused(rid, **overrides)


@pytest.mark.parametrize(
    "bad",
    ["", "..", "../x", "a/../b", "a/..", "/etc/passwd", "a\\b", "a b", ".", "a/./b", "a//b", "a/"],
)
def test_a_bad_artifact_name_is_refused(rid: str, bad: str) -> None:
    assert f"artifact name {bad!r}" in refused(rid, artifacts=[bad])


@pytest.mark.parametrize("good", ["report.md", "out/data.json", ".hidden", "a-b_c.1"])
def test_relative_artifact_names_are_accepted(rid: str, good: str) -> None:
    declare(rid, artifacts=[good])
    assert RUNNERS[rid].artifacts == (good,)


def test_repeated_artifact_names_are_refused(rid: str) -> None:
    assert "artifact names repeat" in refused(rid, artifacts=["a.md", "a.md"])


@pytest.mark.parametrize("bad", [0, -1, 0.0, float("nan"), float("inf")])
def test_a_timeout_must_be_positive(rid: str, bad: float) -> None:
    assert "timeout_s must be" in refused(rid, timeout_s=bad)


@pytest.mark.parametrize("bad", [0, -3, 1001, 2.5, True, "3"])
def test_max_attempts_must_be_1_to_1000(rid: str, bad: Any) -> None:
    assert "max_attempts must be 1-1000" in refused(rid, max_attempts=bad)


@pytest.mark.parametrize("good", [1, 1000])
def test_max_attempts_bounds_are_inclusive(rid: str, good: int) -> None:
    declare(rid, max_attempts=good)
    assert RUNNERS[rid].max_attempts == good


@pytest.mark.parametrize(
    "bad",
    [RetryPolicy(base_s=0), RetryPolicy(cap_s=-1.0), RetryPolicy(base_s=math.inf), {"base_s": 1}],
    ids=["zero-base", "negative-cap", "infinite", "dict"],
)
def test_a_retry_policy_needs_positive_seconds(rid: str, bad: Any) -> None:
    assert "retry must be a RetryPolicy of positive seconds" in refused(rid, retry=bad)


def _no_args() -> None:
    return None


def _one_arg(inp: ScanIn) -> None:
    return None


def _three_args(inp: ScanIn, ctx: RunContext, extra: int) -> None:
    return None


def _ctx_keyword_only(inp: ScanIn, *, ctx: RunContext) -> None:
    return None


def _required_keyword(inp: ScanIn, ctx: RunContext, *, mode: str) -> None:
    return None


@pytest.mark.parametrize(
    "fn", [_no_args, _one_arg, _three_args, _ctx_keyword_only, _required_keyword]
)
def test_the_function_must_take_inp_and_ctx(rid: str, fn: Callable[..., Any]) -> None:
    assert "the function must take (inp, ctx)" in refused(rid, fn)


def _with_default(inp: ScanIn, ctx: RunContext, extra: int = 1) -> None:
    return None


def _varargs(*args: Any) -> None:
    return None


@pytest.mark.parametrize("fn", [_with_default, _varargs])
def test_functions_callable_as_inp_ctx_are_accepted(rid: str, fn: Callable[..., Any]) -> None:
    assert declare(rid, fn) is fn


def test_a_non_callable_is_refused(rid: str) -> None:
    assert "not callable" in refused(rid, "not a function")  # type: ignore[arg-type]


def test_every_problem_is_reported_at_once(rid: str) -> None:
    message = refused(rid, version="1", timeout_s=0, max_attempts=0, artifacts=[".."])
    for part in ("not semver", "timeout_s", "max_attempts", "artifact name '..'"):
        assert part in message
    assert "scan" in message  # where it is declared


def test_the_same_id_from_two_functions_is_refused_naming_both(rid: str) -> None:
    declare(rid, scan)
    with pytest.raises(errors.ConfigurationError) as caught:
        declare(rid, other_scan)
    message = str(caught.value)
    assert f"runner {rid!r} is declared twice" in message
    assert f"{scan.__module__}.scan" in message
    assert f"{other_scan.__module__}.other_scan" in message
    assert RUNNERS[rid].fn is scan  # the first declaration stays


def test_declaring_the_same_function_again_is_fine(rid: str) -> None:
    """What re-importing a module does."""
    declare(rid, scan)
    declare(rid, scan, version="1.1.0")
    assert RUNNERS[rid].version == "1.1.0"


# ---------------------------------------------------------------------------------------------
# the contract model


def test_contract_of_states_the_declaration(rid: str) -> None:
    declare(
        rid,
        version="2.1.0",
        trace_keys=["zeta", "alpha", "mid"],
        artifacts=["z.md", "a/b.json", "m.txt"],
        timeout_s=30.0,
        max_attempts=5,
        retry=RetryPolicy(base_s=2.0, cap_s=60.0),
    )
    contract = contract_of(RUNNERS[rid])
    assert contract.format == "jobforge.contract/1"
    assert contract.runner_id == rid
    assert contract.version == "2.1.0"
    assert contract.trace_keys == ["alpha", "mid", "zeta"]
    assert contract.artifacts == ["a/b.json", "m.txt", "z.md"]
    assert contract.timeout_s == 30.0
    assert contract.max_attempts == 5
    assert (contract.retry.base_s, contract.retry.cap_s) == (2.0, 60.0)
    assert contract.input_schema == ScanIn.model_json_schema(mode="validation")
    assert contract.output_schema == ScanOut.model_json_schema(mode="serialization")
    assert contract.input_schema["required"] == ["target"]  # threshold has a default


def test_contract_of_records_keys_generator_and_fingerprints(rid: str) -> None:
    declare(rid, secret_keys=["session", "cookie_jar"], public_keys=["next_page_token"])
    contract = contract_of(RUNNERS[rid])
    assert contract.secret_keys == ["cookie_jar", "session"]  # sorted: order means nothing
    assert contract.public_keys == ["next_page_token"]
    assert contract.generator == generator_versions()
    assert set(contract.generator) == {"pydantic", "pydantic_core"}
    assert contract.fingerprints is not None
    assert set(contract.fingerprints.input) == {"", "target", "threshold"}
    assert contract.fingerprints.input["target"].shape == "str; required"
    assert contract.fingerprints.input["threshold"].shape == "float; default=0.2"


def test_contract_defaults(rid: str) -> None:
    declare(rid)
    contract = contract_of(RUNNERS[rid])
    assert contract.secret_keys == []
    assert contract.public_keys == []
    assert contract.trace_keys == []
    assert contract.artifacts == []
    assert contract.timeout_s is None
    assert contract.max_attempts == 3
    assert (contract.retry.base_s, contract.retry.cap_s) == (1.0, 3600.0)
    assert contract.guarantees.model_dump() == {
        "input_snapshot": True, "decision_trace": True, "output_artifact": True,
        "replayable": True,
    }  # fmt: skip


GUARANTEES = ["input_snapshot", "decision_trace", "output_artifact", "replayable"]


@pytest.mark.parametrize("off", GUARANTEES)
def test_each_guarantee_can_be_turned_off(rid: str, off: str) -> None:
    overrides: dict[str, Any] = {off: False}
    declare(rid, **overrides)
    guarantees = contract_of(RUNNERS[rid]).guarantees.model_dump()
    assert guarantees == {name: name != off for name in GUARANTEES}


class Priced(BaseModel):
    amount: float
    quantity: int = 1

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> float:
        return self.amount * self.quantity


def test_the_output_schema_is_what_the_runner_emits_and_the_input_what_it_accepts(
    rid: str,
) -> None:
    declare(rid, input=Priced, output=Priced)
    contract = contract_of(RUNNERS[rid])
    assert "total" not in contract.input_schema["properties"]
    assert "quantity" not in contract.input_schema["required"]
    assert "total" in contract.output_schema["properties"]  # computed: part of the output


def test_the_contract_round_trips_through_json_and_is_strict(rid: str) -> None:
    declare(rid, trace_keys=["b", "a"], artifacts=["r.md"])
    contract = contract_of(RUNNERS[rid])
    data = contract.model_dump(mode="json")
    assert Contract.model_validate(data) == contract
    assert Contract.model_validate_json(contract.model_dump_json()) == contract

    for where, bad in [
        ("extra", {**data, "surprise": 1}),
        ("guarantees.extra", {**data, "guarantees": {**data["guarantees"], "fast": True}}),
        ("retry.extra", {**data, "retry": {**data["retry"], "jitter": 0.5}}),
        ("format", {**data, "format": "jobforge.contract/2"}),
        ("runner_id", {**data, "runner_id": "Not An Id"}),
        ("max_attempts", {**data, "max_attempts": 0}),
        ("timeout_s", {**data, "timeout_s": 0}),
        ("retry.base_s", {**data, "retry": {"base_s": 0, "cap_s": 1}}),
        ("missing", {k: v for k, v in data.items() if k != "guarantees"}),
    ]:
        with pytest.raises(ValidationError):
            Contract.model_validate(bad)
        assert where  # names the case in a failure's traceback


def test_a_contract_is_frozen(rid: str) -> None:
    declare(rid)
    contract = contract_of(RUNNERS[rid])
    with pytest.raises(ValidationError):
        contract.version = "9.9.9"


# ---------------------------------------------------------------------------------------------
# [tool.jobforge]


def _pyproject(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pyproject.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_find_config_reads_tool_jobforge_searching_upwards(tmp_path: Path) -> None:
    _pyproject(
        tmp_path,
        """
        [project]
        name = "runner-repo"

        [tool.jobforge]
        runners = ["myapp.runners", "myapp.more"]
        golden_dir = "tests/golden"
        contracts_dir = "locks"
        """,
    )
    deep = tmp_path / "src" / "myapp"
    deep.mkdir(parents=True)
    config = find_config(deep)
    assert config == ProjectConfig(
        root=tmp_path.resolve(),
        runners=("myapp.runners", "myapp.more"),
        golden_dir="tests/golden",
        contracts_dir="locks",
    )


def test_find_config_defaults(tmp_path: Path) -> None:
    _pyproject(tmp_path, "[tool.jobforge]\n")
    assert find_config(tmp_path) == ProjectConfig(root=tmp_path.resolve())
    assert ProjectConfig(root=tmp_path).golden_dir == "golden"
    assert ProjectConfig(root=tmp_path).contracts_dir == "contracts"


def test_find_config_starts_at_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pyproject(tmp_path, '[tool.jobforge]\nrunners = ["here"]\n')
    monkeypatch.chdir(tmp_path)
    config = find_config()
    assert config is not None
    assert config.runners == ("here",)


def test_the_nearest_table_wins_and_a_pyproject_without_one_is_passed(tmp_path: Path) -> None:
    _pyproject(tmp_path, '[tool.jobforge]\nrunners = ["outer"]\n')
    _pyproject(tmp_path / "inner", '[tool.jobforge]\nrunners = ["inner"]\n')
    _pyproject(tmp_path / "plain", '[project]\nname = "plain"\n[tool.ruff]\nline-length = 99\n')
    inner = find_config(tmp_path / "inner")
    assert inner is not None
    assert (inner.root, inner.runners) == ((tmp_path / "inner").resolve(), ("inner",))
    outer = find_config(tmp_path / "plain")
    assert outer is not None
    assert (outer.root, outer.runners) == (tmp_path.resolve(), ("outer",))


def test_no_config_anywhere_is_none(tmp_path: Path) -> None:
    _pyproject(tmp_path / "plain", '[project]\nname = "plain"\n')
    assert find_config(tmp_path / "plain") is None


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param('[tool.jobforge]\nrunners = "myapp"\n', "runners", id="runners-str"),
        pytest.param("[tool.jobforge]\nrunners = [1]\n", "runners", id="runners-ints"),
        pytest.param("[tool.jobforge]\ngolden_dir = 3\n", "golden_dir", id="golden-int"),
        pytest.param("[tool.jobforge]\ncontracts_dir = []\n", "contracts_dir", id="contracts"),
        pytest.param("[tool]\njobforge = 1\n", "must be a table", id="not-a-table"),
        pytest.param('tool = "x"\n', "[tool]", id="tool-not-a-table"),
    ],
)
def test_bad_config_types_are_refused_naming_the_file(
    tmp_path: Path, text: str, names: str
) -> None:
    path = _pyproject(tmp_path, text)
    with pytest.raises(errors.ConfigurationError) as caught:
        find_config(tmp_path)
    assert str(path.resolve()) in str(caught.value)
    assert names in str(caught.value)


def test_bad_toml_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, "[tool.jobforge\nrunners = [\n")
    with pytest.raises(errors.ConfigurationError, match="cannot read") as caught:
        find_config(tmp_path / ".")
    assert str(path.resolve()) in str(caught.value)


def test_a_pyproject_that_is_not_utf8_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_bytes(b'[project]\nname = "caf\xe9"\n[tool.jobforge]\n')
    with pytest.raises(errors.ConfigurationError) as caught:
        find_config(tmp_path)
    assert str(path.resolve()) in str(caught.value)


# ---------------------------------------------------------------------------------------------
# discovery


@pytest.fixture
def project(tmp_path: Path, registry: dict[str, RunnerDef]) -> Iterator[Path]:
    """A runner repo folder; its modules (all named `ut_*`) and its sys.path entry are removed
    after. Only those: other modules first imported meanwhile (pydantic's, say) must stay."""
    path_before = list(sys.path)
    yield tmp_path
    sys.path[:] = path_before
    for name in [n for n in sys.modules if n.startswith("ut_")]:
        del sys.modules[name]


RUNNER_MODULE = """
from pydantic import BaseModel

from jobforge.contracts import runner


class In(BaseModel):
    n: int


class Out(BaseModel):
    doubled: int


@runner({rid!r}, version="0.3.0", input=In, output=Out)
def double(inp, ctx):
    return Out(doubled=inp.n * 2)
"""


def _repo(root: Path, modules: dict[str, str]) -> ProjectConfig:
    names = ", ".join(f'"{name}"' for name in modules)
    _pyproject(root, f"[tool.jobforge]\nrunners = [{names}]\n")
    for name, source in modules.items():
        path = root / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in path.relative_to(root).parents:
            if folder != Path("."):
                (root / folder / "__init__.py").touch()
        path.write_text(textwrap.dedent(source))
    importlib.invalidate_caches()
    config = find_config(root)
    assert config is not None
    return config


def _module_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def test_discover_imports_the_configured_modules_from_the_project_root(
    project: Path, rid: str
) -> None:
    name = _module_name("ut_runners")
    config = _repo(project, {name: RUNNER_MODULE.format(rid=rid)})
    assert rid not in RUNNERS
    found = discover(config, entry_points=False)
    assert found[rid].version == "0.3.0"
    assert found[rid].where == f"{name}.double"
    assert found[rid].fn(found[rid].input(n=4), None).doubled == 8
    assert str(project.resolve()) in sys.path
    found["other"] = found[rid]  # a copy: the registry is not handed out
    assert "other" not in RUNNERS
    assert discover(config, entry_points=False)[rid] == RUNNERS[rid]  # importing again is fine


def test_discover_imports_modules_of_packages(project: Path, rid: str) -> None:
    package = _module_name("ut_pkg")
    config = _repo(project, {f"{package}.jobs.runners": RUNNER_MODULE.format(rid=rid)})
    assert rid in discover(config, entry_points=False)


def test_a_missing_runner_module_is_reported(project: Path) -> None:
    name = _module_name("ut_nosuch")
    config = _repo(project, {})
    config = ProjectConfig(root=config.root, runners=(name,))
    with pytest.raises(errors.ConfigurationError) as caught:
        discover(config, entry_points=False)
    assert str(caught.value) == (
        f"{config.root / 'pyproject.toml'}: [tool.jobforge] runners: "
        f"cannot import runner module {name!r}: no module named {name!r}"
    )
    assert caught.value.exit_code == 2


def test_a_missing_submodule_of_a_real_package_is_reported(project: Path) -> None:
    package = _module_name("ut_pkg")
    config = _repo(project, {f"{package}.present": "X = 1\n"})
    config = ProjectConfig(root=config.root, runners=(f"{package}.absent",))
    with pytest.raises(errors.ConfigurationError, match="cannot import runner module") as caught:
        discover(config, entry_points=False)
    assert f"{package}.absent" in str(caught.value)


def test_a_runner_module_missing_a_dependency_names_the_dependency(project: Path) -> None:
    """The dependency's name is a prefix of the module's: still not "no such runner module"."""
    dependency = _module_name("ut_dep")
    name = f"{dependency}_runners"
    config = _repo(project, {name: f"import {dependency}\n"})
    with pytest.raises(errors.ConfigurationError) as caught:
        discover(config, entry_points=False)
    message = str(caught.value)
    assert message.startswith(f"importing {name!r} failed"), message
    assert dependency in message


@pytest.mark.parametrize(
    ("source", "names"),
    [
        pytest.param("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import",
                     id="raises"),
        pytest.param("def broken(:\n", "SyntaxError", id="syntax"),
        pytest.param("import json\njson.loads('{')\n", "JSONDecodeError", id="nested-error"),
    ],
)  # fmt: skip
def test_a_runner_module_failing_to_import_is_reported(
    project: Path, source: str, names: str
) -> None:
    name = _module_name("ut_broken")
    config = _repo(project, {name: source})
    with pytest.raises(errors.ConfigurationError) as caught:
        discover(config, entry_points=False)
    message = str(caught.value)
    assert message.startswith(f"importing {name!r} failed: "), message
    assert names in message
    assert caught.value.__cause__ is None  # one clear line, no chained traceback


def test_a_bad_declaration_in_a_runner_module_is_reported_as_is(project: Path, rid: str) -> None:
    name = _module_name("ut_baddecl")
    source = RUNNER_MODULE.format(rid=rid).replace('version="0.3.0"', 'version="three"')
    config = _repo(project, {name: source})
    with pytest.raises(errors.ConfigurationError) as caught:
        discover(config, entry_points=False)
    message = str(caught.value)
    assert message.startswith(f"runner {rid!r} ({name}.double): version 'three'"), message


def test_discover_loads_the_runners_entry_points(
    project: Path, rid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _module_name("ut_plugin")
    _repo(project, {name: RUNNER_MODULE.format(rid=rid)})
    sys.path.insert(0, str(project))
    points = [metadata.EntryPoint(name="mine", value=name, group="jobforge.runners")]

    def entry_points(*, group: str) -> list[metadata.EntryPoint]:
        assert group == "jobforge.runners"
        return points

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    assert rid in discover()

    points[:] = [metadata.EntryPoint(name="gone", value="ut_gone_xyz:x", group="jobforge.runners")]
    with pytest.raises(errors.ConfigurationError, match=r"entry point gone = ut_gone_xyz:x"):
        discover()


@pytest.mark.parametrize("bad", ["..", ".", ".hidden", "trailing.", "a..b", "../x", "a/b"])
def test_a_runner_id_is_a_safe_folder_name(bad: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"not starting or ending with '\.'"):
        runner(bad, version="1.0.0", input=ScanIn, output=ScanOut)(_with_default)
