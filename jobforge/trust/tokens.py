"""Policy tokens: what lets a job of an action runner (one that declares `requires_scopes`) run.

A token is a compact JWS (RFC 7515/7519) signed with HMAC-SHA256 (`HS256`, PyJWT), its header
naming the secret it was made with (`kid`), so several secrets verify at once and one can be
rotated out. Its claims:

    jti  a unique id; the worker records it as used by the job (jobforge.token_uses): once
    iat  issued at (seconds since the epoch)       exp  expires at
    tid  the tenant                               pid  the project (optional: any project)
    act  the action: the job type (runner id) it authorizes
    scp  the scopes it grants (a list of strings): a superset of the runner's required scopes
    aud  the deployment it is meant for (the worker's audience, `jobforge` unless configured)
    res  optional: binds the token to one input, `sha256:<hex>` of its RFC 8785 form

Times are checked with a skew of 60 s either way. A token is a bearer credential until it is
used: it is stored in the job's envelope so the worker can verify it, and run records and
replay bundles show its claims and its SHA-256, never the token or a secret.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from jobforge import errors
from jobforge.trust.keys import from_b64url

Refusal = errors.JobRefused

#: Allowed clock difference between the token's issuer and the worker.
SKEW_S = 60
DEFAULT_AUDIENCE = "jobforge"
#: Shortest secret accepted: HMAC-SHA256's own output length (RFC 7518 §3.2).
MIN_SECRET_BYTES = 32
_REQUIRED = ["jti", "iat", "exp", "aud", "tid", "act", "scp"]


@dataclass(frozen=True)
class TokenKeys:
    """The HMAC secrets by id: every one verifies; `signing` (the first given) issues."""

    secrets: Mapping[str, bytes]
    signing: str
    audience: str = DEFAULT_AUDIENCE

    @classmethod
    def parse(cls, spec: str, audience: str | None = None, *, where: str = "") -> TokenKeys:
        """`kid:base64url-secret[,kid:secret...]` (the first issues). One line on bad input."""
        secrets: dict[str, bytes] = {}
        for part in (p.strip() for p in spec.split(",")):
            kid, sep, text = part.partition(":")
            if not sep or not kid or not text:
                raise errors.ConfigurationError(f"{where}token keys must be kid:base64url-secret,"
                                                " separated by commas")  # fmt: skip
            try:
                secret = from_b64url(text)
            except ValueError:
                raise errors.ConfigurationError(f"{where}token key {kid!r}: the secret is not "
                                                "base64url") from None  # fmt: skip
            if len(secret) < MIN_SECRET_BYTES:
                raise errors.ConfigurationError(f"{where}token key {kid!r}: the secret is "
                                                f"{len(secret)} bytes; use at least "
                                                f"{MIN_SECRET_BYTES}")  # fmt: skip
            if kid in secrets:
                raise errors.ConfigurationError(f"{where}token key {kid!r} is given twice")
            secrets[kid] = secret
        return cls(secrets, next(iter(secrets)), audience or DEFAULT_AUDIENCE)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TokenKeys | None:
        """From JOBFORGE_TOKEN_KEYS (and JOBFORGE_TOKEN_AUDIENCE); None when unset."""
        env = os.environ if env is None else env
        spec = env.get("JOBFORGE_TOKEN_KEYS", "").strip()
        if not spec:
            return None
        audience = env.get("JOBFORGE_TOKEN_AUDIENCE", "").strip() or None
        return cls.parse(spec, audience, where="JOBFORGE_TOKEN_KEYS: ")


@dataclass(frozen=True)
class TokenClaims:
    """A verified token's claims, and the SHA-256 of the token (what records may show)."""

    jti: str
    iat: int
    exp: int
    tid: str
    act: str
    scp: tuple[str, ...]
    aud: str
    pid: str | None = None
    res: str | None = None
    kid: str = ""
    sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def shown(self) -> dict[str, Any]:
        """What a run record or a bundle may show of the token: claims and hash, no token."""
        shown = {"jti": self.jti, "kid": self.kid, "iat": self.iat, "exp": self.exp,
                 "tid": self.tid, "act": self.act, "scp": list(self.scp), "aud": self.aud,
                 "token_sha256": self.sha256}  # fmt: skip
        if self.pid is not None:
            shown["pid"] = self.pid
        if self.res is not None:
            shown["res"] = self.res
        return shown


def issue_token(
    keys: TokenKeys,
    *,
    tenant: str,
    action: str,
    scopes: Sequence[str],
    ttl_s: float = 300,
    project: str | None = None,
    resource: str | None = None,
    audience: str | None = None,
    jti: str | None = None,
    now: float | None = None,
) -> str:
    """A new token signed with the issuing secret."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "jti": jti or uuid.uuid4().hex, "iat": issued, "exp": issued + max(1, int(ttl_s)),
        "tid": tenant, "act": action, "scp": sorted(set(scopes)),
        "aud": audience or keys.audience,
    }  # fmt: skip
    if project is not None:
        claims["pid"] = project
    if resource is not None:
        claims["res"] = resource
    return jwt.encode(claims, keys.secrets[keys.signing], algorithm="HS256",
                      headers={"kid": keys.signing})  # fmt: skip


def verify_token(
    token: object,
    keys: TokenKeys,
    *,
    tenant: str,
    project: str,
    action: str,
    required_scopes: Sequence[str],
    resource: str | None = None,
    skew_s: float = SKEW_S,
) -> TokenClaims:
    """The token's claims when it authorizes this job; `JobRefused` naming why not."""
    if token is None:
        raise Refusal(f"{action} requires a policy token with scopes "
                      f"{', '.join(required_scopes)}, and the job carries none",
                      reason="token_missing")  # fmt: skip
    if not isinstance(token, str) or len(token) > 8192:
        raise Refusal("the policy token is not a compact JWS", reason="token_malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Refusal("the policy token is not a compact JWS", reason="token_malformed") from None
    kid = header.get("kid")
    if header.get("alg") != "HS256":
        raise Refusal(f"policy token algorithm {str(header.get('alg'))[:20]!r} is not HS256",
                      reason="token_malformed")  # fmt: skip
    if not isinstance(kid, str) or kid not in keys.secrets:
        raise Refusal(f"the policy token's key {str(kid)[:64]!r} is not one of this "
                      "deployment's", reason="token_unknown_key")  # fmt: skip
    try:
        claims = jwt.decode(token, keys.secrets[kid], algorithms=["HS256"],
                            audience=keys.audience, leeway=skew_s,
                            options={"require": _REQUIRED})  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise Refusal("the policy token has expired", reason="token_expired") from None
    except jwt.ImmatureSignatureError:
        raise Refusal("the policy token was issued in the future",
                      reason="token_not_yet_valid") from None  # fmt: skip
    except jwt.InvalidAudienceError:
        raise Refusal(f"the policy token is not meant for audience {keys.audience!r}",
                      reason="token_audience") from None  # fmt: skip
    except jwt.InvalidSignatureError:
        raise Refusal("the policy token's signature does not match",
                      reason="token_bad_signature") from None  # fmt: skip
    except jwt.PyJWTError as exc:
        raise Refusal(f"the policy token is invalid: {exc}", reason="token_malformed") from None
    parsed = _claims(claims, kid, token)
    if parsed.tid != tenant:
        raise Refusal(f"the policy token is for tenant {parsed.tid[:130]!r}, not the job's",
                      reason="token_tenant")  # fmt: skip
    if parsed.pid is not None and parsed.pid != project:
        raise Refusal(f"the policy token is for project {parsed.pid[:130]!r}, not the job's",
                      reason="token_project")  # fmt: skip
    if parsed.act != action:
        raise Refusal(f"the policy token authorizes {parsed.act[:200]!r}, not {action}",
                      reason="token_action")  # fmt: skip
    if missing := sorted(set(required_scopes) - set(parsed.scp)):
        raise Refusal(f"the policy token lacks scope {', '.join(missing)} that {action} "
                      "requires", reason="token_scope")  # fmt: skip
    if parsed.res is not None and parsed.res != resource:
        raise Refusal("the policy token is bound to another input (res)",
                      reason="token_resource")  # fmt: skip
    return parsed


def _claims(claims: dict[str, Any], kid: str, token: str) -> TokenClaims:
    jti, tid, act, scp = (claims.get(k) for k in ("jti", "tid", "act", "scp"))
    pid, res, aud = claims.get("pid"), claims.get("res"), claims.get("aud")
    if not (isinstance(jti, str) and 1 <= len(jti) <= 200 and jti.isprintable()):
        raise Refusal("the policy token's jti must be 1-200 printable characters",
                      reason="token_malformed")  # fmt: skip
    texts_ok = all(isinstance(v, str) for v in (tid, act, aud)) and all(
        v is None or isinstance(v, str) for v in (pid, res)
    )
    if not texts_ok or not (isinstance(scp, list) and all(isinstance(s, str) for s in scp)):
        raise Refusal("the policy token's tid, act, aud, pid, res must be strings and scp a "
                      "list of strings", reason="token_malformed")  # fmt: skip
    iat, exp = claims["iat"], claims["exp"]
    digest = "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    return TokenClaims(jti=jti, iat=int(iat), exp=int(exp), tid=tid, act=act,  # type: ignore[arg-type]
                       scp=tuple(scp), aud=aud, pid=pid, res=res, kid=kid,  # type: ignore[arg-type]
                       sha256=digest)  # fmt: skip


def precheck_token(
    token: str | None,
    *,
    action: str,
    required_scopes: Sequence[str],
    tenant: str | None = None,
    audience: str | None = None,
    now: float | None = None,
    skew_s: float = SKEW_S,
) -> None:
    """What a producer can check of a token without the secret (the worker checks it all):
    present, for this action, tenant and audience, with the scopes, not expired. `JobRefused`
    naming the first problem; the signature and the jti are the worker's to check."""
    if token is None:
        raise Refusal(f"{action} requires a policy token with scopes "
                      f"{', '.join(required_scopes)} (jobforge tokens issue)",
                      reason="token_missing")  # fmt: skip
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise Refusal("the policy token is not a compact JWS", reason="token_malformed") from None
    clock = time.time() if now is None else now
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or clock > exp + skew_s:
        raise Refusal("the policy token has expired", reason="token_expired")
    if tenant is not None and claims.get("tid") != tenant:
        raise Refusal(f"the policy token is for tenant {str(claims.get('tid'))[:130]!r}, not "
                      f"{tenant!r}", reason="token_tenant")  # fmt: skip
    if audience is not None and claims.get("aud") != audience:
        raise Refusal(f"the policy token is not meant for audience {audience!r}",
                      reason="token_audience")  # fmt: skip
    if claims.get("act") != action:
        raise Refusal(f"the policy token authorizes {str(claims.get('act'))[:200]!r}, not "
                      f"{action}", reason="token_action")  # fmt: skip
    scp = claims.get("scp")
    scopes: list[Any] = scp if isinstance(scp, list) else []
    if missing := sorted(set(required_scopes) - set(scopes)):
        raise Refusal(f"the policy token lacks scope {', '.join(missing)} that {action} "
                      "requires", reason="token_scope")  # fmt: skip
