"""`jobforge init`: start a runner repository in a folder, empty or not.

It writes `[tool.jobforge]` in pyproject.toml (a new, minimal pyproject when there is none), an
example runner package, a golden case with its expectation, the runner's contract lock (written by
`jobforge.contracts.gate.lock_project`, as `jobforge contracts lock` writes it), a test, a GitHub
Actions workflow, and `.jobforge/` in .gitignore. The files come from `templates/` beside this
module (package data, shipped in the wheel).

It never overwrites: a pyproject.toml that has `[tool.jobforge]` already, or any file it would
write that exists, refuses the whole run before anything is written. An existing pyproject.toml
gets the table appended; an existing .gitignore gets the line appended.

It writes only inside the project folder and never through a link: a symlink at any path it would
write or append to (a broken one too), or a folder on the way that leads outside the project folder
(a symlinked `.github/`, `golden/`, package folder…), refuses the whole run before anything is
written, naming the path. Files are opened without following a symlink at their own name (a new
one with O_EXCL, an existing one for append with O_NOFOLLOW), should one appear meanwhile.
"""

from __future__ import annotations

import importlib.util
import keyword
import os
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Literal

from jobforge import errors
from jobforge.config import find_config
from jobforge.contracts import discover
from jobforge.contracts.gate import lock_project

#: The example runner's id (its job type) and its golden case.
RUNNER_ID = "example.triage"
CASE = "urgent-enterprise"
DEFAULT_PACKAGE = "runners"
#: What .gitignore gets: the development server's data (`jobforge db start`).
IGNORED = ".jobforge/"

_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: The longest --package: a folder name, well within every file system's 255 bytes.
MAX_PACKAGE = 100

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
    _check_name(package)
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


def _check_name(package: str) -> None:
    """A module name (a folder name too, short enough for any file system) that is not taken by
    a module imported already or built in."""
    if len(package) > MAX_PACKAGE:
        raise errors.ConfigurationError(
            f"--package {package[:20]!r}... is {len(package)} characters long: a module name of "
            f"at most {MAX_PACKAGE}, please"
        )
    if not _PACKAGE.fullmatch(package) or keyword.iskeyword(package):
        raise errors.ConfigurationError(f"--package {package!r} is not a Python module name")
    if package in sys.modules or package in sys.builtin_module_names:
        raise errors.ConfigurationError(
            f"--package {package!r}: a module of that name exists already; pick another name"
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
    """A new file (never over one, nor through a symlink), or `text` appended to the file as it
    is (never through a symlink at its name)."""
    if action == "kept":
        return
    how = os.O_CREAT | os.O_EXCL if action == "wrote" else os.O_APPEND
    handle = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | how, 0o666)
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
        out.write(text)


def _check_places(root: Path, appended: list[str], written: list[str]) -> None:
    """Refuse (`ConfigurationError`, nothing written yet) a path `init` would append to that is
    not a regular file of its own (a symlink, a broken one too; a folder; a FIFO), and any path
    whose folder is not a folder or resolves outside `root` (a symlinked `.github/`, say). A
    symlink at a new file's own name is refused as an existing file ("would overwrite")."""
    here = _resolved(root)
    for name in appended:
        path = root / name
        if path.is_symlink():
            raise errors.ConfigurationError(
                f"{name} is a symlink: jobforge init appends only to a regular file in the "
                "project folder, never through a link: nothing written"
            )
        if path.exists() and not path.is_file():
            raise errors.ConfigurationError(f"{name} is not a regular file: nothing written")
    for name in appended + written:
        folder = root
        for part in Path(name).parent.parts:
            folder = folder / part
            if _exists(folder) and not folder.is_dir():
                raise errors.ConfigurationError(
                    f"cannot write {name}: {folder.relative_to(root).as_posix()} is not a "
                    "folder: nothing written"
                )
        where = _resolved((root / name).parent)
        if not where.is_relative_to(here):
            raise errors.ConfigurationError(
                f"refusing to write {name}: a symlink on its way leads outside the project "
                f"folder (to {where}): nothing written"
            )


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise errors.ConfigurationError(f"cannot resolve {path}: {exc}") from None


def init_project(root: Path, package: str = DEFAULT_PACKAGE) -> list[Step]:
    """Start a runner repository in `root` (created when missing). Refuses (a
    `ConfigurationError`, nothing written) rather than overwrite anything."""
    if root.exists() and not root.is_dir():
        raise errors.ConfigurationError(f"{root} is not a folder")
    _check_name(package)  # before it names a path
    files = _files(package)
    lock = f"contracts/{RUNNER_ID}.json"
    _check_places(root, ["pyproject.toml", ".gitignore"], [f.path for f in files] + [lock])
    check_package(package, root)
    pyproject, pyproject_action, pyproject_note = _pyproject(root, package)
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
