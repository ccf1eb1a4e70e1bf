"""Who a dashboard session is: its tenant, its actor, and the CSRF token its forms carry.

A tenant is never chosen by a request. It is fixed when the dashboard starts, one of two ways:

- **one tenant** (`jobforge dashboard --tenant acme`): every session is that tenant; the actor is
  `--actor` (default: the OS login), or, behind an authenticating reverse proxy, the user the
  proxy forwards in a header (`--actor-header X-Forwarded-User`; a request without it is refused).
- **token login** (`--tokens FILE`): a JSON file maps the sha256 of each token to a tenant, an
  actor and optionally a project; a browser signs in once with its token, and its session is
  bound to that entry until it signs out or the session expires.

Sessions live in the dashboard process (a random id in an HttpOnly, SameSite=Strict cookie; a
restart signs everyone out). Each has its own CSRF token, checked on every POST.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from jobforge import errors
from jobforge.provision.target import TENANT_ID
from jobforge.queue import audit, projects

#: The session cookie's name.
COOKIE = "jobforge_session"
#: How long a session lasts after it was made (seconds).
SESSION_TTL_S = 12 * 3600.0
#: At most this many live sessions; the oldest goes first (a flood of cookie-less requests
#: cannot grow the process without bound).
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class Identity:
    """Who acts: the tenant every query is scoped to, the actor the audit trail names, and the
    project scope (None: every project of the tenant)."""

    tenant: str
    actor: str
    project: str | None = None


@dataclass(slots=True)
class Session:
    identity: Identity | None  #: None: not signed in yet (token login)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    made: float = field(default_factory=time.monotonic)
    #: one message shown on the next page (what an action did)
    notice: str | None = None


def checked_identity(tenant: object, actor: object, project: object = None,
                     *, where: str) -> Identity:  # fmt: skip
    """An identity from a configuration, or one line naming what is wrong with it."""
    if not isinstance(tenant, str) or not TENANT_ID.fullmatch(tenant):
        raise errors.ConfigurationError(
            f"{where}: tenant {tenant!r} is not a tenant id (1 to 128 of A-Z a-z 0-9 . _ : -)"
        )
    if not isinstance(actor, str):
        raise errors.ConfigurationError(f"{where}: actor must be a string, not {actor!r}")
    if project is not None and not isinstance(project, str):
        raise errors.ConfigurationError(f"{where}: project must be a string, not {project!r}")
    try:
        audit.acting(actor, None)
        scope = projects.checked(project)
    except errors.ConfigurationError as exc:
        raise errors.ConfigurationError(f"{where}: {exc}") from None
    return Identity(tenant, actor, scope)


def token_digest(token: str) -> str:
    """`sha256:<hex>` of a token, as the tokens file lists it."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_tokens(path: Path) -> dict[str, Identity]:
    """The tokens file: `{"tokens": [{"sha256": "sha256:<hex>", "tenant": …, "actor": …,
    "project": …}]}`, keyed by digest; one line naming the problem otherwise. The file holds
    digests, never tokens, so reading it does not let anyone sign in."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise errors.ConfigurationError(f"--tokens {path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise errors.ConfigurationError(f"--tokens {path}: not a JSON file ({exc})") from None
    entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise errors.ConfigurationError(
            f'--tokens {path}: expected {{"tokens": [{{"sha256": …, "tenant": …, "actor": …}}]}}'
        )
    found: dict[str, Identity] = {}
    for i, entry in enumerate(entries):
        where = f"--tokens {path}: tokens[{i}]"
        if not isinstance(entry, dict):
            raise errors.ConfigurationError(f"{where} is not an object")
        unknown = sorted(set(entry) - {"sha256", "tenant", "actor", "project"})
        if unknown:
            raise errors.ConfigurationError(f"{where}: unknown key {unknown[0]!r}")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise errors.ConfigurationError(
                f"{where}: sha256 must be 'sha256:' and 64 lowercase hex digits "
                "(printf %s TOKEN | sha256sum)"
            )
        if digest in found:
            raise errors.ConfigurationError(f"{where}: the same token is listed twice")
        found[digest] = checked_identity(
            entry.get("tenant"), entry.get("actor"), entry.get("project"), where=where
        )
    return found


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class Sessions:
    """The live sessions of the process, by their random id."""

    def __init__(self, ttl_s: float = SESSION_TTL_S, limit: int = MAX_SESSIONS) -> None:
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.ttl_s = ttl_s
        self.limit = limit

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._by_id.get(sid)
            if session is not None and time.monotonic() - session.made > self.ttl_s:
                del self._by_id[sid]
                return None
            return session

    def new(self, identity: Identity | None) -> tuple[str, Session]:
        """A fresh session (a new id: signing in never keeps the id a browser came with)."""
        sid = secrets.token_urlsafe(32)
        session = Session(identity)
        with self._lock:
            while len(self._by_id) >= self.limit:
                # the oldest anonymous session first: a flood of cookie-less requests (each
                # makes one) must not sign everyone out; a signed-in one only when none is left
                anonymous = (k for k, v in self._by_id.items() if v.identity is None)
                del self._by_id[next(anonymous, next(iter(self._by_id)))]
            self._by_id[sid] = session
        return sid, session

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)


def same_token(given: str | None, expected: str) -> bool:
    """A CSRF token check in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def identity_for_token(tokens: dict[str, Identity], token: str) -> Identity | None:
    """The identity a token signs in as (None: no such token); compared by digest."""
    digest = token_digest(token)
    for known, identity in tokens.items():
        if hmac.compare_digest(known, digest):
            return identity
    return None
