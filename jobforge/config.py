"""`[tool.jobforge]` of a runner repository: the table in its pyproject.toml, read and checked.

Read by the pytest plugin, the CLI and `jobforge certify` alike; importing the runner modules it
names is `jobforge.contracts.discovery`'s work, not this module's."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from jobforge import errors


@dataclass(frozen=True)
class ProjectConfig:
    """`[tool.jobforge]` of a runner repository."""

    root: Path
    runners: tuple[str, ...] = ()
    golden_dir: str = "golden"
    contracts_dir: str = "contracts"
    bundles_dir: str = "bundles"  #: replay bundles `jobforge certify` replays
    #: hosts golden runs, `jobforge replay` and `jobforge certify` treat as allowed, as the
    #: worker's `--http-allow-host` did (the worker itself takes only its command line)
    http_allow_hosts: tuple[str, ...] = ()
    #: the keys the table sets itself (not a default): a folder named there must exist
    configured: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def folder(self, key: FolderKey) -> Path:
        """The folder `key` names, under `root`. One the table names explicitly that is not a
        folder is a configuration error: a typo would otherwise turn off, in silence, every check
        of what it holds. A default folder that is not there is simply empty."""
        value: str = getattr(self, key)
        path = self.root / value
        if key in self.configured and not path.is_dir():
            state = "not a folder" if path.exists() else "no such folder"
            hint = did_you_mean(path.name, _folders_in(path.parent))
            default = next(f.default for f in fields(ProjectConfig) if f.name == key)
            raise errors.ConfigurationError(
                f"{self.root / 'pyproject.toml'}: [tool.jobforge] {key} = {value!r}: {state} "
                f"{path.resolve()}{hint}; fix the name, create the folder, or remove the key "
                f"(default {default!r})"
            )
        return path


def _folders_in(parent: Path) -> list[str]:
    try:
        return [p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []


#: The `[tool.jobforge]` keys that name a folder under the project root.
FolderKey = Literal["golden_dir", "contracts_dir", "bundles_dir"]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when one of `candidates` is spelt nearly as `name` (difflib)."""
    close = close_match(name, candidates)
    return f" (did you mean {close!r}?)" if close else ""


def close_match(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate spelt most nearly as `name`, if one is close enough (difflib's 0.6)."""
    found = difflib.get_close_matches(name, sorted(set(candidates) - {name}), n=1, cutoff=0.6)
    return found[0] if found else None


def find_config(start: Path | None = None) -> ProjectConfig | None:
    """The nearest pyproject.toml with a [tool.jobforge] table, from `start` upwards."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_bytes().decode("utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise errors.ConfigurationError(f"cannot read {candidate}: {exc}") from None
            tool = data.get("tool", {})
            if not isinstance(tool, dict):
                raise errors.ConfigurationError(f"{candidate}: [tool] must be a table")
            table = tool.get("jobforge")
            if table is None:
                continue
            return _parse(folder, candidate, table)
    return None


def _parse(root: Path, path: Path, table: Any) -> ProjectConfig:
    if not isinstance(table, dict):
        raise errors.ConfigurationError(f"{path}: [tool.jobforge] must be a table")
    known = {"runners", "golden_dir", "contracts_dir", "bundles_dir", "http_allow_hosts"}
    runners = table.get("runners", [])
    if not isinstance(runners, list) or not all(isinstance(r, str) for r in runners):
        raise errors.ConfigurationError(
            f"{path}: [tool.jobforge] runners must be a list of module names"
        )
    hosts = table.get("http_allow_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h.strip() for h in hosts):
        raise errors.ConfigurationError(
            f"{path}: [tool.jobforge] http_allow_hosts must be a list of host names or addresses"
        )
    for key in ("golden_dir", "contracts_dir", "bundles_dir"):
        if key in table and not isinstance(table[key], str):
            raise errors.ConfigurationError(f"{path}: [tool.jobforge] {key} must be a string")
    unknown = sorted(k for k in table if k not in known)
    if unknown:  # a misspelt key would otherwise be ignored in silence
        raise errors.ConfigurationError(_unknown_key(path, unknown[0]))
    return ProjectConfig(
        root=root,
        runners=tuple(runners),
        golden_dir=table.get("golden_dir", "golden"),
        contracts_dir=table.get("contracts_dir", "contracts"),
        bundles_dir=table.get("bundles_dir", "bundles"),
        http_allow_hosts=tuple(h.strip() for h in hosts),
        configured=frozenset(table),
    )


def _unknown_key(path: Path, key: str) -> str:
    """One line: the key, a likely intended one, and every key there is."""
    keys = [f.name for f in fields(ProjectConfig) if f.name not in ("root", "configured")]
    hint = did_you_mean(key, keys)
    return (f"{path}: [tool.jobforge] has no key {key!r}{hint}; its keys are "
            f"{', '.join(keys)}")  # fmt: skip
