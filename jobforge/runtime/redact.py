"""Redaction of secrets in what jobforge stores (run records, golden files, bundles), made so that
a redacted value can still be compared.

What is secret: a value under a key whose normalized name (lowercase, letters and digits only) is
in the denylist or ends with one of its suffixes (`password`, `api_key`, `next_page_token`), plus
the keys a runner declares with `@runner(secret_keys=...)`; minus the keys it declares with
`@runner(public_keys=...)` (a `next_page_token` that is no secret is then stored and compared as
is). `None` is never redacted.

What is stored instead:
- With a redaction key (`JOBFORGE_REDACTION_KEY`, at least 16 bytes), the marker
  `[redacted:<key id>:<mac>]`: an HMAC-SHA256 of the value's canonical JSON under that key (128
  bits, hex) and the key's id (the first 8 hex of a hash of the key). Anyone without the key learns
  nothing about the value, not even a guessable one (a plain hash would give a short password
  away); anyone with it can tell whether the value changed.
- Without one, the marker `[redacted]`: such a value cannot be compared with a later run, and the
  reports say which paths were not compared (`not_compared`).

A marker is never masked again: a replay hands a runner what the recording stored (a marker in
place of an `access_token` it received), and what the runner does with it (returns it, sends it
back) is stored as that same marker, so it compares equal with the recording.

Bodies (`redact_body`): a JSON body has the values of its secret-named keys masked at any depth,
an `application/x-www-form-urlencoded` body the values of its secret-named fields; a body that is
neither (or does not parse) is left as it is.

Redaction applies only to what is written (database, files). Runs are compared on the values in
memory, unredacted (`jobforge.golden.check`), so a secret-looking field never hides a difference.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from jobforge import canonical, errors

REDACTED = "[redacted]"
KEY_ENV = "JOBFORGE_REDACTION_KEY"
MIN_KEY_BYTES = 16

#: Normalized key names that hold secrets, and suffixes that mark one (`db_password`, `apiToken`,
#: `aws_secret_access_key`).
DEFAULT_SECRET_KEYS = frozenset({
    "password", "passwd", "secret", "token", "apikey", "accesstoken", "refreshtoken",
    "authorization", "cookie", "privatekey", "clientsecret", "accesskey", "secretkey",
    "credentials", "sessiontoken",
})  # fmt: skip
DEFAULT_SECRET_SUFFIXES = (
    "password", "secret", "token", "apikey", "privatekey", "credentials", "accesskey", "secretkey",
    "authorization",
)  # fmt: skip

_MARKER = re.compile(r"\[redacted(?::([0-9a-f]{8}):([0-9a-f]{32}))?\]")


def key_from_env() -> bytes | None:
    """The redaction key of this process (`JOBFORGE_REDACTION_KEY`), or None when unset."""
    text = os.environ.get(KEY_ENV)
    if not text:
        return None
    key = text.encode()
    if len(key) < MIN_KEY_BYTES:
        raise errors.ConfigurationError(
            f"{KEY_ENV} must be at least {MIN_KEY_BYTES} bytes (it is {len(key)}): a short key "
            "lets anyone holding a golden file or bundle guess the redacted values"
        )
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"jobforge.redaction-key-id\x00" + key).hexdigest()[:8]


class Redactor:
    """Replaces secret values by markers; `Redactor.none()` keeps everything (in-memory copies)."""

    def __init__(
        self,
        keys: Iterable[str] = DEFAULT_SECRET_KEYS,
        suffixes: Iterable[str] = DEFAULT_SECRET_SUFFIXES,
        *,
        extra: Iterable[str] = (),
        public: Iterable[str] = (),
        key: bytes | bool | None = True,
    ) -> None:
        """`key=True` (the default) reads `JOBFORGE_REDACTION_KEY`; None or False: plain markers."""
        self.keys = frozenset(_normal(k) for k in (*keys, *extra))
        self.suffixes = tuple(_normal(s) for s in suffixes)
        self.public = frozenset(_normal(k) for k in public)
        self.key: bytes | None = key_from_env() if key is True else (key or None)
        self._key_id = key_id(self.key) if self.key else None
        self.enabled = True
        self._blank = False

    @classmethod
    def none(cls) -> Redactor:
        """Redacts nothing: for the copies of a run that stay in memory to be compared."""
        redactor = cls(keys=(), suffixes=(), key=None)
        redactor.enabled = False
        return redactor

    def for_runner(self, secret_keys: Iterable[str], public_keys: Iterable[str]) -> Redactor:
        """This redactor with a runner's own declarations added."""
        if not self.enabled:
            return self
        other = Redactor(keys=(), suffixes=(), key=self.key or None)
        other.keys = self.keys | {_normal(k) for k in secret_keys}
        other.suffixes = self.suffixes
        other.public = self.public | {_normal(k) for k in public_keys}
        other._blank = self._blank
        return other

    def blanked(self) -> Redactor:
        """This redactor's names, every secret value (a marker too) masked as plain
        `[redacted]`: a form that depends neither on the key nor on the secret, for matching
        requests (`jobforge.runtime.http` hashes request bodies in this form)."""
        other = Redactor(keys=(), suffixes=(), key=None)
        other.keys, other.suffixes, other.public = self.keys, self.suffixes, self.public
        other.enabled = self.enabled
        other._blank = True
        return other

    def is_secret(self, key: str) -> bool:
        if not self.enabled:
            return False
        name = _normal(key)
        if name in self.public:
            return False
        return name in self.keys or name.endswith(self.suffixes)

    def mask(self, value: Any) -> Any:
        """The marker stored in place of a secret `value`; a marker stays as it is."""
        if value is None or not self.enabled:
            return value
        if self._blank:
            return REDACTED
        if marker(value) is not None:
            return value
        if self.key is None:
            return REDACTED
        body = canonical.canonical_bytes(canonical.jsonable(value))
        mac = hmac.new(self.key, body, hashlib.sha256).hexdigest()[:32]
        return f"[redacted:{self._key_id}:{mac}]"

    def __call__(self, value: Any) -> Any:
        if not self.enabled:
            return value
        if isinstance(value, dict):
            return {k: (self.mask(v) if self.is_secret(k) else self(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


def redact_body(body: bytes, content_type: str | None, redactor: Redactor) -> bytes | None:
    """`body` with its secrets masked (see the module docstring), or None when it has none to
    mask (then it is kept byte for byte). A `blanked` redactor rewrites every body with a secret
    field, so two bodies that differ only in their secrets come out the same."""
    if not redactor.enabled or not body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        redacted = _redact_form(text, redactor)
    elif text.lstrip()[:1] in ("{", "["):
        redacted = _redact_json(text, redactor)
    else:
        redacted = None
    return None if redacted is None else redacted.encode("utf-8")


def _redact_json(text: str, redactor: Redactor) -> str | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None  # not JSON after all (or nested past the parser): kept as it is
    try:
        masked, hits = _masked(value, redactor)
        if not hits or (masked == value and not redactor._blank):
            return None
        return json.dumps(masked, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:  # parsed, but too deep to walk: it cannot be told safe, so drop it
        return json.dumps(REDACTED)


def _masked(value: Any, redactor: Redactor) -> tuple[Any, int]:
    """`value` with the values of secret-named keys masked, at any depth; how many were."""
    if isinstance(value, dict):
        hits = 0
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is not None and redactor.is_secret(key):
                out[key] = redactor.mask(item)
                hits += 1
            else:
                out[key], found = _masked(item, redactor)
                hits += found
        return out, hits
    if isinstance(value, list):
        items = [_masked(item, redactor) for item in value]
        return [item for item, _ in items], sum(found for _, found in items)
    return value, 0


def _redact_form(text: str, redactor: Redactor) -> str | None:
    parts = []
    hits = 0
    changed = False
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if eq and redactor.is_secret(unquote_plus(name)):
            hits += 1
            replaced = quote_plus(str(redactor.mask(unquote_plus(value))))
            changed = changed or unquote_plus(replaced) != unquote_plus(value)
            parts.append(f"{name}={replaced}")
        else:
            parts.append(part)
    if not hits or (not changed and not redactor._blank):
        return None
    return "&".join(parts)


def marker(value: Any) -> tuple[str | None, str | None] | None:
    """(key id, mac) of a redaction marker (both None for a plain `[redacted]`); None otherwise."""
    if not isinstance(value, str):
        return None
    match = _MARKER.fullmatch(value)
    return None if match is None else (match.group(1), match.group(2))


def comparable(expected: Any, actual: Any) -> bool:
    """Whether a stored expectation can be held against a new value at the same path: a plain
    `[redacted]`, or a marker made under another key, cannot."""
    want = marker(expected)
    if want is None:
        return True
    got = marker(actual)
    return want[0] is not None and got is not None and got[0] == want[0]


def _normal(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())
