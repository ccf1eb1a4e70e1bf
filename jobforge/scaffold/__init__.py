"""`jobforge init`: start a runner repository in a folder, empty or not.

It writes `[tool.jobforge]` in pyproject.toml (a new, minimal pyproject when there is none), an
example runner package, a golden case with its expectation, the runner's contract lock (written by
`jobforge.contracts.gate.lock_project`, as `jobforge contracts lock` writes it), a test, a GitHub
Actions workflow, and `.jobforge/` in .gitignore. The files come from `templates/` beside this
module (package data, shipped in the wheel).

It never overwrites: a pyproject.toml that has `[tool.jobforge]` already, or any file it would
write that exists, refuses the whole run before anything is written. An existing pyproject.toml
gets the table appended; an existing .gitignore gets the line appended.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Literal

from jobforge import errors
from jobforge.contracts import discover, find_config
from jobforge.contracts.gate import lock_project

#: The example runner's id (its job type) and its golden case.
RUNNER_ID = "example.triage"
CASE = "urgent-enterprise"
DEFAULT_PACKAGE = "runners"
#: What .gitignore gets: the development server's data (`jobforge db start`).
IGNORED = ".jobforge/"

_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Action = Literal["wrote", "added", "kept"]


@dataclass(frozen=True)
class Step:
    """What `init` did to one path (relative to the project folder)."""

    path: str
    action: Action  #: wrote a new file, added to an existing one, or kept it as it was
    note: str = ""


@dataclass(frozen=True)
class _File:
    path: str
    template: str


def _template(name: str, **values: str) -> str:
    text = (resources.files(__package__) / "templates" / name).read_text("utf-8")
    return Template(text).substitute(values)


def _files(package: str) -> list[_File]:
    """The new files, relative to the project folder (none may exist yet)."""
    return [
        _File(f"{package}/__init__.py", "package-init.py.tmpl"),
        _File(f"{package}/triage.py", "runner.py.tmpl"),
        _File(f"golden/{RUNNER_ID}/{CASE}.json", "case.json.tmpl"),
        _File("tests/test_triage.py", "test_runner.py.tmpl"),
        _File(".github/workflows/jobforge.yml", "workflow.yml.tmpl"),
    ]


def check_package(package: str, root: Path) -> None:
    """A valid module name that no other importable module already has."""
    if not _PACKAGE.fullmatch(package) or keyword.iskeyword(package):
        raise errors.ConfigurationError(f"--package {package!r} is not a Python module name")
    if package in sys.modules or package in sys.builtin_module_names:
        raise errors.ConfigurationError(
            f"--package {package!r}: a module of that name exists already; pick another name"
        )
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return
    places = list(spec.submodule_search_locations or []) or [spec.origin or ""]
    here = root.resolve()
    elsewhere = [
        p for p in places if not (Path(p).is_absolute() and Path(p).resolve().is_relative_to(here))
    ]
    if elsewhere:
        raise errors.ConfigurationError(
            f"--package {package!r}: a module of that name is importable already "
            f"({elsewhere[0]}); pick another name"
        )


def _append(text: str, addition: str) -> str:
    """What to append to a file holding `text` so that `addition` starts on a line of its own."""
    return ("" if not text or text.endswith("\n") else "\n") + addition


def _pyproject(root: Path, package: str) -> tuple[str, Action, str]:
    """What to write to pyproject.toml (all of it, or what to append), and what that does."""
    table = _template("tool-jobforge.toml.tmpl", package=package)
    path = root / "pyproject.toml"
    if not path.exists():
        return _template("pyproject.toml.tmpl", jobforge_table=table), "wrote", ""
    try:
        text = path.read_bytes().decode("utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise errors.ConfigurationError(f"cannot read pyproject.toml: {exc}") from None
    tool = data.get("tool")
    if isinstance(tool, dict) and "jobforge" in tool:
        raise errors.ConfigurationError(
            "pyproject.toml has a [tool.jobforge] table already (this is a runner repository): "
            "nothing written"
        )
    addition = _append(text, "\n" + table)
    try:
        tomllib.loads(text + addition)
    except tomllib.TOMLDecodeError as exc:
        raise errors.ConfigurationError(
            f"cannot append [tool.jobforge] to pyproject.toml without breaking it ({exc}): "
            "nothing written"
        ) from None
    return addition, "added", "[tool.jobforge] appended; the rest of the file is as it was"


def _gitignore(root: Path) -> tuple[str, Action]:
    """What to write to .gitignore (all of it, what to append, or nothing), and what that does."""
    path = root / ".gitignore"
    if not path.exists():
        return _template("gitignore.tmpl"), "wrote"
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.ConfigurationError(f"cannot read .gitignore: {exc}") from None
    patterns = {line.strip().lstrip("/").rstrip("/") for line in text.splitlines()}
    if ".jobforge" in patterns:
        return "", "kept"
    return _append(text, _template("gitignore.tmpl")), "added"


def _write(path: Path, text: str, action: Action) -> None:
    """A new file (never over one), or `text` appended to the file as it is."""
    if action == "kept":
        return
    with path.open("x" if action == "wrote" else "a", encoding="utf-8", newline="") as out:
        out.write(text)


def init_project(root: Path, package: str = DEFAULT_PACKAGE) -> list[Step]:
    """Start a runner repository in `root` (created when missing). Refuses (a
    `ConfigurationError`, nothing written) rather than overwrite anything."""
    if root.exists() and not root.is_dir():
        raise errors.ConfigurationError(f"{root} is not a folder")
    check_package(package, root)
    pyproject, pyproject_action, pyproject_note = _pyproject(root, package)
    files = _files(package)
    lock = f"contracts/{RUNNER_ID}.json"
    taken = [p for p in [f.path for f in files] + [lock] if _exists(root / p)]
    if taken:
        raise errors.ConfigurationError(
            f"would overwrite {', '.join(taken)}: nothing written (move them away, or pass "
            "--package NAME for another runner package)"
        )
    gitignore, gitignore_action = _gitignore(root)

    root.mkdir(parents=True, exist_ok=True)
    _write(root / "pyproject.toml", pyproject, pyproject_action)
    steps = [Step("pyproject.toml", pyproject_action, pyproject_note)]
    for f in files:
        target = root / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(target, _template(f.template, package=package, runner_id=RUNNER_ID), "wrote")
        steps.append(Step(f.path, "wrote"))
    steps.append(_lock(root))
    _write(root / ".gitignore", gitignore, gitignore_action)
    said = "already ignores" if gitignore_action == "kept" else "ignores"
    steps.append(Step(".gitignore", gitignore_action, f"{said} {IGNORED}, the development server"))
    return steps


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _lock(root: Path) -> Step:
    """The example runner's lock, written by the library from its declaration."""
    config = find_config(root)
    if config is None:  # we have just written the table
        raise errors.ConfigurationError(f"no [tool.jobforge] found in {root} after writing it")
    runners = discover(config, entry_points=False)
    if RUNNER_ID not in runners:
        raise errors.ConfigurationError(f"the example runner {RUNNER_ID} was not found")
    result = lock_project(config, {RUNNER_ID: runners[RUNNER_ID]}, only=[RUNNER_ID])
    outcome = result.outcomes[0]
    if outcome.action != "written":
        raise errors.ConfigurationError(f"locking {RUNNER_ID}: {outcome.reason}")
    return Step(f"{config.contracts_dir}/{RUNNER_ID}.json", "wrote", "its contract lock")
