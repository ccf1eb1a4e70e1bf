"""Who a connection acts for: a tenant and an actor, fixed by whoever starts the server.

Over stdio the process serves one agent, bound by the server's options (`--tenant`, `--actor`,
or $JOBFORGE_TENANT, $JOBFORGE_ACTOR). Over HTTP each request carries a bearer token; the tokens
file maps the token's SHA-256 to a tenant and an actor, so the file holds no usable secret and
one server serves many agents, each held to its own tenant. No tool takes a tenant or an actor:
an agent cannot act for another tenant by asking, and every event it causes names its actor
(migrations/0014).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jobforge import errors, validation
from jobforge.queue import audit

#: A tenant name, as jobs.tenant_id takes it.
_TENANT = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SHA256 = re.compile(r"^(sha256:)?[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Binding:
    """The tenant and actor one connection (or one HTTP request's token) acts for."""

    tenant: str
    actor: str

    @property
    def worker(self) -> str:
        """The worker name of the agent's leases (jobs.lease_holder, the attempts' worker)."""
        return f"mcp:{self.actor}"[:200]


def binding(tenant: str | None, actor: str | None, *, source: str) -> Binding:
    """A checked binding; one line naming what is missing or malformed, and where from."""
    if not tenant:
        raise errors.ConfigurationError(f"{source}: no tenant to bind the connection to")
    if not _TENANT.match(tenant):
        raise errors.ConfigurationError(
            f"{source}: tenant {tenant[:60]!r} is not 1-128 characters of A-Z a-z 0-9 . _ : -"
        )
    if not actor:
        raise errors.ConfigurationError(f"{source}: no actor to name in the audit trail")
    audit.acting(actor, None)  # 1-200 printable characters, else one line
    return Binding(tenant, actor)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str = Field(description="SHA-256 of the bearer token, hex (sha256: prefix allowed)")
    tenant: str
    actor: str

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("must be 64 lowercase hex digits, optionally prefixed sha256:")
        return value.removeprefix("sha256:")


class _TokensFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[_Entry]


class Tokens:
    """The bearer tokens an HTTP server accepts, each bound to a tenant and an actor."""

    def __init__(self, entries: dict[str, Binding]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, path: Path) -> Tokens:
        """The tokens file: `{"tokens": [{"sha256": "<hex>", "tenant": "...", "actor": "..."}]}`;
        one line naming the problem when it cannot be read or is malformed."""
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise errors.ConfigurationError(f"tokens file {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise errors.ConfigurationError(f"tokens file {path}: not JSON ({exc})") from None
        try:
            parsed = _TokensFile.model_validate(raw)
        except ValidationError as exc:
            raise errors.ConfigurationError(
                f"tokens file {path}: {validation.summary(exc, limit=1)}"
            ) from None
        entries: dict[str, Binding] = {}
        for n, entry in enumerate(parsed.tokens):
            if entry.sha256 in entries:
                raise errors.ConfigurationError(f"tokens file {path}: token {n} is listed twice")
            entries[entry.sha256] = binding(entry.tenant, entry.actor,
                                            source=f"tokens file {path}, token {n}")  # fmt: skip
        if not entries:
            raise errors.ConfigurationError(f"tokens file {path}: no tokens")
        return cls(entries)

    def find(self, token: str) -> Binding | None:
        """The binding of `token`, compared by its digest in constant time (None: unknown)."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        found = None
        for known, bound in self._entries.items():
            if hmac.compare_digest(known, digest):
                found = bound
        return found
