"""The job types a runner repository handles, for the commands that can catch a mistake with
them: `enqueue` refuses a type no runner or handler of the repository knows (and checks the
payload against the runner's input model), `doctor` counts queued jobs of unknown types.

"The repository" is the nearest pyproject.toml with a `[tool.jobforge]` table, from the working
directory up: its runner modules (with any plain `@handler`s they register) and the installed
`jobforge.runners` entry points, as `jobforge worker` would load them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobforge.config import close_match, find_config
from jobforge.contracts import RunnerDef, discover
from jobforge.runners import MODULES as FIRST_PARTY

#: Keys of a golden case file (`jobforge.golden/1`); a payload is none of these files.
_CASE_KEYS = frozenset({"format", "input", "environment", "expect"})


@dataclass(frozen=True)
class KnownTypes:
    pyproject: Path  #: where the runners are declared
    runners: Mapping[str, RunnerDef]
    types: frozenset[str]  #: runners and plain handlers

    def closest(self, job_type: str) -> str | None:
        return close_match(job_type, self.types)

    def unknown_message(self, job_type: str, *, catalogued: bool = False) -> str:
        """One line: the type, what this repository declares, and the way out. `catalogued`:
        the runner catalogue was asked too, and does not hold it either."""
        close = self.closest(job_type)
        module = FIRST_PARTY.get(job_type)
        if module is not None:  # jobforge's own runner: declaring its module is the fix
            way = (f"it is jobforge's own runner: add {module!r} to [tool.jobforge] runners, "
                   "or pass --allow-unknown-type")  # fmt: skip
        elif catalogued:
            way = ("for a worker elsewhere, sync its runners into the catalogue (jobforge runners "
                   "sync, in their repository) or pass --allow-unknown-type")  # fmt: skip
        else:
            way = "for a worker elsewhere, pass --allow-unknown-type"
        return (
            f"no runner or handler of this repository handles job type {job_type!r}"
            + (f" (did you mean {close!r}?)" if close else "")
            + (", nor does the runner catalogue" if catalogued else "")
            + f": {way} (declared in {self.pyproject}: {_listed(self.types)})"
        )


def known_types(start: Path | None = None) -> KnownTypes | None:
    """The types of the runner repository around `start` (default: the working directory);
    None outside one."""
    config = find_config(start)
    if config is None:
        return None
    runners = discover(config)
    from jobforge.worker.loading import load_handlers  # the worker loads only in a repository

    registry = load_handlers((), search_path=config.root)
    return KnownTypes(config.root / "pyproject.toml", runners, frozenset(registry.types()))


def _listed(types: Iterable[str]) -> str:
    names = sorted(types)
    if not names:
        return "none"
    shown = ", ".join(names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def not_a_payload(value: dict[str, Any], definition: RunnerDef | None) -> str | None:
    """Why `value` is a jobforge file (a golden case, a bundle, a run record, a lock) rather
    than a job's payload; None when it may be a payload."""
    kind = value.get("format")
    if isinstance(kind, str) and kind.startswith("jobforge."):
        return f"a {kind} file, not a payload" + (
            ': its payload is its "input"' if "input" in value else ""
        )
    if definition is not None and "input" in definition.input.model_fields:
        return None  # the runner's input has a field named input: take it at its word
    keys = set(value)
    if "input" in keys and keys <= _CASE_KEYS and keys & {"expect", "environment"}:
        return 'a golden case, not a payload: its payload is its "input"'
    return None
