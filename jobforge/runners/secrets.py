"""The webhook signing secret's form (Standard Webhooks: ``whsec_`` and base64), apart from the
runner: `jobforge connectors test` checks a secret without importing `jobforge.runners.webhook`,
whose import declares the runner (and would add it to every repository's discovered runners)."""

from __future__ import annotations

import binascii
from typing import Any

SECRET_PREFIX = "whsec_"


def key_of(secret: str) -> bytes:
    """The secret's key bytes (empty when its base64 does not decode)."""
    try:
        return binascii.a2b_base64(secret.removeprefix(SECRET_PREFIX).encode() + b"==")
    except binascii.Error:
        return b""


def secret_problem(secret: Any) -> str | None:
    """Why `secret` is not a signing secret (never showing it), or None."""
    if not isinstance(secret, str) or not secret:
        return "has no 'secret' (a whsec_<base64> string)"
    if not secret.startswith(SECRET_PREFIX):
        return "the secret must be written whsec_<base64> (Standard Webhooks)"
    if len(key_of(secret)) < 16:
        return "the secret after whsec_ must be base64 of at least 16 bytes"
    return None
