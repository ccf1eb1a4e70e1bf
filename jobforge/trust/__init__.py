"""Who may run what: ed25519-signed jobs and HMAC policy tokens (docs/trust.md).

No I/O here: the signing payload and its bytes (`payload`), keys and signatures (`keys`),
the checks a worker runs before a handler (`verify`), and policy tokens (`tokens`). The worker
(`jobforge.worker.admission`) reads the signing keys from the database and the token secrets
from its configuration, and calls these.
"""

from __future__ import annotations

from jobforge.trust import keys, payload, tokens, verify
from jobforge.trust.keys import (
    generate_private_key,
    key_id_of,
    load_private_key,
    load_public_key,
    public_key_bytes,
    sign_bytes,
    write_private_key,
)
from jobforge.trust.payload import SIGNING_FORMAT, SignedFields, signing_bytes, signing_payload
from jobforge.trust.tokens import TokenClaims, TokenKeys, issue_token, verify_token
from jobforge.trust.verify import KeyRecord, Refusal, verify_signatures

__all__ = [
    "SIGNING_FORMAT",
    "KeyRecord",
    "Refusal",
    "SignedFields",
    "TokenClaims",
    "TokenKeys",
    "generate_private_key",
    "issue_token",
    "key_id_of",
    "keys",
    "load_private_key",
    "load_public_key",
    "payload",
    "public_key_bytes",
    "sign_bytes",
    "signing_bytes",
    "signing_payload",
    "tokens",
    "verify",
    "verify_signatures",
    "verify_token",
    "write_private_key",
]
