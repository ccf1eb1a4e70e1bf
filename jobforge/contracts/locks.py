"""Lock files `contracts/<runner_id>.json`: read, written (deterministically, atomically), and
read as they were at a git revision.

Every problem with a lock is a configuration error (exit 2) naming the file: a gate that cannot
read its baseline must not pass, and must not look like drift either.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from jobforge import errors
from jobforge.contracts.model import Contract
from jobforge.jsonfile import write_atomic


def render(contract: Contract) -> str:
    """The lock file's bytes: sorted keys, indent 2, a trailing newline (diffs stay small)."""
    return json.dumps(contract.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def parse(text: str, where: str, runner_id: str) -> Contract:
    """A lock file's contract; `where` names it in errors, `runner_id` is its file name's stem."""
    try:
        lock = Contract.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or "(file)"
        raise errors.ConfigurationError(
            f"invalid lock file {where}: {loc}: {first.get('msg', 'invalid')}"
        ) from None
    if lock.runner_id != runner_id:
        raise errors.ConfigurationError(
            f"invalid lock file {where}: it is for {lock.runner_id!r}, not {runner_id!r}"
        )
    return lock


def read_lock(path: Path, label: str | None = None) -> Contract:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.ConfigurationError(f"cannot read lock file {label or path}: {exc}") from None
    return parse(text, label or str(path), path.stem)


def read_locks(directory: Path, root: Path | None = None) -> dict[str, Contract]:
    """Every lock in `directory` by runner id (none when the folder does not exist)."""
    if not directory.is_dir():
        return {}
    return {
        path.stem: read_lock(path, _relative(path, root))
        for path in sorted(directory.glob("*.json"))
    }


def write_lock(directory: Path, contract: Contract) -> Path:
    """Write `contract`'s lock atomically (a temporary file renamed over the old one)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{contract.runner_id}.json"
    write_atomic(target, render(contract))
    return target


def locks_at(revision: str, directory: Path) -> dict[str, Contract]:
    """The locks in `directory` as committed at git `revision`."""
    top = _git(["rev-parse", "--show-toplevel"], directory,
               f"--against {revision}: {directory} is not in a git repository")  # fmt: skip
    toplevel = Path(top.strip()).resolve()
    commit = _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], toplevel,
                  f"--against {revision}: unknown revision").strip()  # fmt: skip
    try:
        folder = PurePosixPath(directory.resolve().relative_to(toplevel).as_posix())
    except ValueError:
        raise errors.ConfigurationError(
            f"--against {revision}: {directory} is outside the git repository {toplevel}"
        ) from None
    listing = _git(["ls-tree", "--name-only", commit, "--", f"{folder}/"], toplevel,
                   f"--against {revision}: cannot list {folder}")  # fmt: skip
    locks: dict[str, Contract] = {}
    for name in sorted(listing.splitlines()):
        path = PurePosixPath(name)
        if path.suffix != ".json" or path.parent != folder:
            continue
        text = _git(["show", f"{commit}:{path}"], toplevel,
                    f"--against {revision}: cannot read {path}")  # fmt: skip
        locks[path.stem] = parse(text, f"{path} at {revision}", path.stem)
    return locks


def _git(args: list[str], cwd: Path, failure: str) -> str:
    while not cwd.is_dir():  # a contracts folder that does not exist (yet) in the work tree
        cwd = cwd.parent
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise errors.ConfigurationError(f"{failure}: git is not installed") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()
        raise errors.ConfigurationError(failure + (f" ({detail[-1]})" if detail else ""))
    return done.stdout


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)
