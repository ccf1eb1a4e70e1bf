"""ed25519 keys and signatures (`cryptography`), and the files a private key is kept in.

A private key file is PKCS#8 PEM, unencrypted, written with mode 0600 (created so, never
widened after the fact); a public key file is SubjectPublicKeyInfo PEM. Either may also be given
as the raw 32 bytes in base64url (what `jobforge keys list` prints). A key id defaults to
`ed25519:` and the first 16 hex digits of the SHA-256 of the raw public key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from pathlib import Path

import nacl.exceptions
import nacl.signing
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from jobforge import errors

__all__ = [
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "b64url",
    "from_b64url",
    "generate_private_key",
    "key_id_of",
    "load_private_key",
    "load_public_key",
    "public_key_bytes",
    "sign_bytes",
    "verify_bytes",
    "write_private_key",
]


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 4648 §5), as signatures are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """The bytes of base64url text, padded or not; ValueError when it is not base64url."""
    if not isinstance(text, str) or not text.isascii() or "=" in text.rstrip("="):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of the public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public: bytes) -> str:
    """The default key id of a raw public key: `ed25519:<16 hex of its SHA-256>`."""
    return "ed25519:" + hashlib.sha256(public).hexdigest()[:16]


def sign_bytes(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def verify_bytes(public: bytes, signature: bytes, data: bytes) -> bool:
    """Whether `signature` is `public`'s ed25519 signature of `data` (RFC 8032; libsodium's
    verify, which also refuses non-canonical signatures and small-order keys). libsodium through
    PyNaCl, not `cryptography`: on this project's reference machine its verify takes ~54 µs
    against OpenSSL's ~103 µs, and it is the worker's hot path for a signed job (keys, files and
    signing stay with `cryptography`)."""
    try:
        _loaded(public).verify(data, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _loaded(public: bytes) -> nacl.signing.VerifyKey:
    """A public key loaded once (a worker verifies many jobs of few keys)."""
    return nacl.signing.VerifyKey(public)


def write_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write a new private key file, mode 0600; an existing file is never overwritten."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise errors.ConfigurationError(f"{path} exists: a key file is never overwritten") from None
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def write_public_key(key: Ed25519PrivateKey, path: Path) -> None:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        with path.open("xb") as out:
            out.write(pem)
    except FileExistsError:
        raise errors.ConfigurationError(f"{path} exists: a key file is never overwritten") from None
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot write {path}: {exc.strerror}") from None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The ed25519 private key in a PEM file; one line naming the file when it holds none."""
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        why = str(exc).splitlines()[0] if str(exc) else "not a PEM private key"
        raise errors.ConfigurationError(
            f"{path}: not an unencrypted PEM private key ({why})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise errors.ConfigurationError(f"{path}: not an ed25519 key ({type(key).__name__})")
    return key


def load_public_key(text_or_path: str) -> bytes:
    """The raw public key of a PEM file (public or private), or of base64url raw bytes."""
    path = Path(text_or_path)
    if path.is_file():
        data = _read(path)
        if b"PRIVATE KEY" in data:
            return public_key_bytes(load_private_key(path))
        try:
            public = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            why = str(exc).splitlines()[0] if str(exc) else "not a PEM public key"
            raise errors.ConfigurationError(f"{path}: not a PEM public key ({why})") from None
        if not isinstance(public, Ed25519PublicKey):
            raise errors.ConfigurationError(f"{path}: not an ed25519 key ({type(public).__name__})")
        return public_key_bytes(public)
    try:
        raw = from_b64url(text_or_path)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise errors.ConfigurationError(
            f"{text_or_path!r} is neither a key file nor a base64url ed25519 public key (32 bytes)"
        )
    return raw


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
