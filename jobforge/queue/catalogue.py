"""The runner catalogue (migrations/0019): the runners a deployment knows, synced from their
contracts, so a producer without a runner's code can still request its jobs safely.

A request by runner id (`client.request`) reads the runner's entry (cached for a few seconds,
`Cache`), refuses an unknown or disabled runner, and validates the input against the synced
input JSON Schema with jsonschema before anything is stored, naming the first bad field. The
database refuses a disabled runner's job in enqueue_v1 on its own, so a producer that skips
this check (its own SQL, an old client) still cannot request one; the cache only delays when a
client *says* so first.

Writes (sync, enable, disable) are an operator's: a superuser or a member of jobforge_worker, as
for limits and retention. Runners are code, deployed for every tenant: a tenant that could
switch one off would switch it off for all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from jobforge import db, errors
from jobforge.queue.models import NewJob

#: What a sync did to one runner's entry.
SyncAction = Literal["added", "changed", "unchanged"]

#: How long a client trusts an entry it read (seconds): short, so an operator's disable or a
#: new schema reaches every producer within seconds, while a burst of requests reads it once.
DEFAULT_TTL_S = 5.0

_COLUMNS = ("runner_id", "version", "input_schema", "output_schema", "contract_sha256",
            "enabled", "synced_at", "synced_by", "synced_actor", "changed_at", "changed_by",
            "changed_actor", "max_attempts")  # fmt: skip


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One runner as the catalogue holds it."""

    runner_id: str
    version: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    contract_sha256: str
    enabled: bool
    synced_at: datetime
    synced_by: str
    synced_actor: str | None = None
    changed_at: datetime | None = None
    changed_by: str | None = None
    changed_actor: str | None = None
    #: the runner's declared max_attempts, for producers without its code (None: not declared,
    #: or synced before migrations/0029)
    max_attempts: int | None = None

    def as_dict(self, *, schemas: bool = False) -> dict[str, Any]:
        """For `--json`; the schemas only when asked (they can be long)."""
        body: dict[str, Any] = {
            "runner": self.runner_id, "version": self.version, "enabled": self.enabled,
            "contract_sha256": self.contract_sha256, "synced_at": self.synced_at.isoformat(),
            "synced_by": self.synced_by, "synced_actor": self.synced_actor,
            "changed_at": None if self.changed_at is None else self.changed_at.isoformat(),
            "changed_by": self.changed_by, "changed_actor": self.changed_actor,
            "max_attempts": self.max_attempts,
        }  # fmt: skip
        if schemas:
            body.update(input_schema=self.input_schema, output_schema=self.output_schema)
        return body


def entry_of(row: Mapping[str, Any] | tuple[Any, ...]) -> CatalogueEntry:
    """An entry from a row of `catalogue_list`/`catalogue_get` (dict or tuple rows)."""
    values = row if isinstance(row, Mapping) else dict(zip(_COLUMNS, row, strict=True))
    return CatalogueEntry(**{name: values[name] for name in _COLUMNS})


@dataclass(frozen=True, slots=True)
class Synced:
    """What a sync did to one runner."""

    runner_id: str
    version: str
    action: SyncAction


# reads ------------------------------------------------------------------------------------------


def list_runners(conn: db.Connection) -> list[CatalogueEntry]:
    """Every catalogued runner, by id (any login may read the catalogue)."""
    with db.tenant_transaction(conn, None):
        return [entry_of(row) for row in db.execute(conn, "catalogue_list").fetchall()]


# writes (operators) -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Declared:
    """One runner's entry as its contract states it, for a sync."""

    runner_id: str
    version: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    contract_sha256: str
    max_attempts: int | None = None


def sync_runners(conn: db.Connection, declared: list[Declared], *, force: bool = False,
                 acting: db.Acting = db.NOBODY) -> list[Synced]:  # fmt: skip
    """Add or update each runner's entry from its contract, all in one transaction: a version
    downgrade, or another contract under the same version, is `CatalogueConflict` naming the
    runner unless `force`, and then nothing is synced. A sync never changes whether a runner
    is enabled."""
    done = []
    with db.tenant_transaction(conn, None, worker=True, acting=acting):
        for d in declared:
            params = {"id": d.runner_id, "version": d.version,
                      "input_schema": db.Jsonb(d.input_schema),
                      "output_schema": db.Jsonb(d.output_schema),
                      "contract_sha256": d.contract_sha256, "force": force,
                      "max_attempts": d.max_attempts}  # fmt: skip
            done.append(Synced(d.runner_id, d.version, db.scalar(conn, "catalogue_sync", params)))
    return done


def set_enabled(conn: db.Connection, runner_id: str, enabled: bool, *,
                acting: db.Acting = db.NOBODY) -> bool:  # fmt: skip
    """Enable or disable a catalogued runner; whether that changed anything. An id the catalogue
    does not hold is `UnknownRunner`."""
    try:
        with db.tenant_transaction(conn, None, worker=True, acting=acting):
            return bool(db.scalar(conn, "catalogue_enable", {"id": runner_id, "enabled": enabled}))
    except errors.JobNotFound as exc:
        raise errors.UnknownRunner(str(exc)) from None


# requests by runner id ----------------------------------------------------------------------------


def unknown_message(runner_id: str) -> str:
    return (f"runner {runner_id!r} is not in the runner catalogue: an operator adds it with "
            "`jobforge runners sync` from the runner's repo")  # fmt: skip


def with_declared_attempts(entry: CatalogueEntry | None, job: NewJob, *, given: bool) -> NewJob:
    """The job with its runner's declared `max_attempts` (migrations/0029), for a producer
    without the runner's code, as the code would have applied it: unless the producer gave one
    (`given`). A signed job cannot be changed (its signatures cover what it carries): one that
    carries another number than its runner's is refused in one line (`InvalidJob`) naming the
    number to sign with, rather than run with a number of attempts its runner never declared."""
    if entry is None or entry.max_attempts is None or given:
        return job
    if job.signatures:
        if job.max_attempts != entry.max_attempts:
            raise errors.InvalidJob(
                f"runner {job.type} declares max_attempts={entry.max_attempts} and this signed"
                f" job carries {job.max_attempts}: sign it with max_attempts="
                f"{entry.max_attempts}, or give max_attempts to keep {job.max_attempts}"
            )
        return job
    return job.model_copy(update={"max_attempts": entry.max_attempts})


def check_request(entry: CatalogueEntry | None, runner_id: str, payload: Any) -> dict[str, Any]:
    """The payload, once the catalogue says the runner may be requested with it: known,
    enabled, and the input valid against the synced input schema. Otherwise one line naming the
    problem (`UnknownRunner`, `RunnerDisabled`, `InvalidJob` with the field's path)."""
    if entry is None:
        raise errors.UnknownRunner(unknown_message(runner_id))
    if not entry.enabled:
        raise errors.RunnerDisabled(
            f"runner {runner_id} is disabled (an operator enables it: jobforge runners enable "
            f"{runner_id})"
        )
    if not isinstance(payload, dict):
        raise errors.InvalidJob(
            f"the input of {runner_id} must be a JSON object, not {type(payload).__name__}"
        )
    problem = input_problem(entry, payload)
    if problem is not None:
        raise errors.InvalidJob(f"the input of {runner_id} {entry.version} is invalid: {problem}")
    return payload


def input_problem(entry: CatalogueEntry, payload: dict[str, Any]) -> str | None:
    """The most relevant problem of `payload` against the entry's input schema, as
    `path: message` (`(root)` for the object itself), or None when it is valid."""
    return _problem(entry, "input", entry.input_schema, payload)


def output_problem(entry: CatalogueEntry, output: Any) -> str | None:
    """`input_problem` for an output against the entry's output schema (an agent finishing a
    job through MCP is held to the runner's contract as a producer is)."""
    return _problem(entry, "output", entry.output_schema, output)


def _problem(entry: CatalogueEntry, side: str, schema: dict[str, Any], value: Any) -> str | None:
    from jsonschema.exceptions import best_match

    validator = _validator(entry.runner_id, entry.contract_sha256, side, schema)
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{path.lstrip('.') or '(root)'}: {_short(error.message)}"


def _short(message: str, limit: int = 300) -> str:
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


_VALIDATORS: dict[tuple[str, str, str], Any] = {}
_VALIDATORS_LOCK = threading.Lock()


def _validator(runner_id: str, contract_sha256: str, side: str, schema: dict[str, Any]) -> Any:
    """A compiled validator per (runner, contract, input or output): building one reads the
    whole schema."""
    from jsonschema.validators import validator_for

    key = (runner_id, contract_sha256, side)
    with _VALIDATORS_LOCK:
        found = _VALIDATORS.get(key)
        if found is None:
            cls = validator_for(schema)
            found = _VALIDATORS[key] = cls(schema)
        return found


@dataclass
class Cache:
    """Entries a client read, each trusted for `ttl_s` (a runner not in the catalogue too, so a
    typo does not read the table on every request). Thread-safe; shared by a client's copies."""

    ttl_s: float = DEFAULT_TTL_S
    _entries: dict[str, tuple[float, CatalogueEntry | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, runner_id: str) -> tuple[bool, CatalogueEntry | None]:
        """(found fresh, entry): the entry when read less than `ttl_s` ago."""
        with self._lock:
            hit = self._entries.get(runner_id)
        if hit is None or time.monotonic() - hit[0] >= self.ttl_s:
            return False, None
        return True, hit[1]

    def put(self, runner_id: str, entry: CatalogueEntry | None) -> None:
        with self._lock:
            self._entries[runner_id] = (time.monotonic(), entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
