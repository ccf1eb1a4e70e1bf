"""Declared runners into the runner catalogue: what `jobforge runners sync` does.

The catalogue (`jobforge.queue.catalogue`, migrations/0019) holds each runner's id, version,
input and output JSON Schemas and a hash of its contract, taken from the runners the repo
declares (`[tool.jobforge] runners`), so producers without the runner's code can validate
requests. Syncing is an explicit step, like `jobforge limits apply`: a deploy decides when the
schemas producers validate against change, never a worker starting up.

It sits above `contracts` (which never reaches the database) and `queue`, beside `produce`.
"""

from __future__ import annotations

from collections.abc import Mapping

from jobforge import canonical, db
from jobforge.contracts import Contract, RunnerDef
from jobforge.contracts.model import contract_of
from jobforge.queue.catalogue import Declared, Synced, sync_runners

#: Parts of a contract that describe the machine that wrote it, not the runner: left out of
#: the hash, so syncing the same runner from two machines (other pydantic builds) is unchanged.
_NOT_HASHED = frozenset({"generator", "fingerprints"})


def contract_hash(contract: Contract) -> str:
    """`sha256:<hex>` of the contract's canonical JSON, without what differs between machines."""
    body = {k: v for k, v in contract.model_dump(mode="json").items() if k not in _NOT_HASHED}
    return canonical.hash_of(body)


def declared(definition: RunnerDef) -> Declared:
    """The catalogue entry a runner's declaration states."""
    contract = contract_of(definition)
    return Declared(definition.id, contract.version, contract.input_schema,
                    contract.output_schema, contract_hash(contract),
                    definition.max_attempts)  # fmt: skip


def sync_declared(conn: db.Connection, runners: Mapping[str, RunnerDef], *, force: bool = False,
                  acting: db.Acting = db.NOBODY) -> list[Synced]:  # fmt: skip
    """Every runner's contract into the catalogue, in id order, in one transaction."""
    entries = [declared(runners[rid]) for rid in sorted(runners)]
    return sync_runners(conn, entries, force=force, acting=acting)
