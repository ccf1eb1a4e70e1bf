"""``jobforge.webhook.deliver``: a signed webhook delivery, following Standard Webhooks
(https://www.standardwebhooks.com), signed with the `standardwebhooks` reference library.

The request: ``POST`` to ``url`` with the body
``{"data": <data>, "timestamp": "<RFC 3339 UTC>", "type": "<event_type>"}`` as compact canonical
JSON (RFC 8785: sorted keys, no whitespace; `jobforge.canonical`), ``content-type:
application/json``, and three headers:

- ``webhook-id``: the message id, the same on every attempt (the receiver's idempotency key):
  ``message_id`` from the input, else ``msg_`` and the first 32 hex digits of the SHA-256 of
  the canonical JSON of ``{"data", "type"}``;
- ``webhook-timestamp``: the attempt's time (``ctx.now()``), integer seconds since the epoch;
- ``webhook-signature``: ``v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``.

The key is the tenant's secret, named, never given in the input: the ``secret`` of the
connector config ``connector`` (`jobforge connectors set NAME --set secret=whsec_... --set
url=https://...`, or the worker's environment variable ``JOBFORGE_CONNECTOR_<NAME>`` holding
``{"secret": "whsec_...", "allow_hosts": [...], "tenants": [...]}``), written ``whsec_<base64 of
the key bytes>`` as Standard Webhooks does. The connector signs for the hosts it names (its
``allow_hosts``, else its ``url``'s host) and for no other: one that names neither refuses every
delivery (``["*"]`` signs for any host). The secret never reaches a
run record, bundle or log: the connector is recorded with it redacted, and the
``webhook-signature`` header is recorded as ``[redacted]``. A replay signs with the redaction
marker instead (its signature is not compared: the header is redacted in both).

Outcomes: a 2xx answer succeeds; 410 Gone fails the job at once (the receiver says the endpoint
is gone for good); any other answer, a redirect (not followed) and a network error are retried
with the runner's backoff until its attempts run out. Every attempt is a run record of its own,
with its attempt number, its exchange and a ``delivery`` decision (status, outcome:
``delivered``, ``retried`` or ``gone``): `jobforge runs` lists them. (The attempt number is the
record's, not the output's: a replay runs as one attempt and must come out the same.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, Field
from standardwebhooks import Webhook

from jobforge import canonical, errors
from jobforge.contracts import RetryPolicy, runner
from jobforge.runners.hosts import ANY_HOST, allowed, same_origin, signing_scope
from jobforge.runners.outcomes import Rejected, Retryable, network_error, refused
from jobforge.runners.secrets import key_of, secret_problem
from jobforge.runtime.context import RunContext
from jobforge.runtime.redact import marker


class WebhookIn(BaseModel):
    url: str = Field(min_length=1, max_length=2000)
    event_type: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
    data: dict[str, Any]
    #: The connector config holding the signing secret (key ``secret``).
    connector: str = Field(pattern=r"^[a-z0-9._-]{1,128}$")
    #: The ``webhook-id``; default: derived from the event type and data.
    message_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,200}$")


class WebhookOut(BaseModel):
    message_id: str
    status: int


@runner("jobforge.webhook.deliver", version="1.0.0", input=WebhookIn, output=WebhookOut,
        trace_keys=["delivery"], max_attempts=8,
        retry=RetryPolicy(base_s=1.0, cap_s=3600.0))  # fmt: skip
def deliver(inp: WebhookIn, ctx: RunContext) -> WebhookOut:
    signer = _signer(ctx, inp.connector)
    _check_destination(ctx.connector(inp.connector), inp.connector, inp.url)
    message_id = inp.message_id or default_message_id(inp.event_type, inp.data)
    sent_at = ctx.now()
    body = payload(inp.event_type, inp.data, sent_at)
    headers = signed_headers(signer, message_id, sent_at, body)
    what = f"webhook {message_id} to {ctx.http.policy.redacted_url(inp.url)}"
    try:
        response = ctx.http.request("POST", inp.url, content=body.encode(), headers=headers,
                                    follow_redirects=False)  # fmt: skip
    except errors.HttpRefused as exc:
        raise refused(exc) from None
    except httpx.RequestError as exc:
        ctx.decide("delivery", {"status": None, "outcome": "retried"}, error=type(exc).__name__)
        raise network_error(exc, what) from None
    status = response.status_code
    outcome = "delivered" if 200 <= status <= 299 else "gone" if status == 410 else "retried"
    ctx.decide("delivery", {"status": status, "outcome": outcome})
    if outcome == "gone":
        raise Rejected(f"{what}: the receiver answered 410 Gone; not retried")
    if outcome == "retried":
        raise Retryable(f"{what}: the receiver answered {status} (retried)")
    return WebhookOut(message_id=message_id, status=status)


def default_message_id(event_type: str, data: dict[str, Any]) -> str:
    """``msg_`` and 32 hex digits of the SHA-256 of ``{"data", "type"}`` in canonical JSON."""
    digest = canonical.sha256_of(canonical.canonical_bytes({"data": data, "type": event_type}))
    return "msg_" + digest.removeprefix("sha256:")[:32]


def payload(event_type: str, data: dict[str, Any], sent_at: datetime) -> str:
    """The body: compact canonical JSON (RFC 8785) of ``{"data", "timestamp", "type"}``."""
    stamp = sent_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return canonical.canonical_bytes(
        {"data": data, "timestamp": stamp, "type": event_type}
    ).decode()


def signed_headers(signer: Webhook, message_id: str, sent_at: datetime,
                   body: str) -> dict[str, str]:  # fmt: skip
    """The Standard Webhooks headers of one delivery."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signer.sign(message_id, sent_at.astimezone(UTC), body),
    }


def _check_destination(config: dict[str, Any], name: str, url: str) -> None:
    """A connector signs for what it names (`allow_hosts`, else the origin of its `url`: scheme,
    host and port) and for nothing else: otherwise any job of the tenant could have any data
    signed with the tenant's secret and sent wherever it liked, to be replayed to the real
    receiver. A connector that names neither signs for nothing (`["*"]` is the deliberate choice
    of any host), as an environment connector must name the tenants it serves."""
    try:
        scope = signing_scope(config, name)
    except errors.InvalidInput as exc:
        raise Rejected(str(exc)) from None
    if scope == ANY_HOST:
        return
    target = httpx.URL(url)
    if isinstance(scope, httpx.URL):
        if not same_origin(target, scope):
            origin = f"{scope.scheme}://{scope.netloc.decode('ascii')}"
            raise Rejected(
                f"refused delivery to {target.scheme}://{target.netloc.decode('ascii')}: "
                f"connector {name} signs for {origin} only"
            )
        return
    assert isinstance(scope, tuple)
    if not allowed(target.host, scope):
        raise Rejected(
            f"refused delivery to host {target.host!r}: connector {name} signs for "
            f"{', '.join(scope)} only"
        )


def _signer(ctx: RunContext, name: str) -> Webhook:
    """The signer with the connector's secret; a marker (a replay) signs as itself."""
    secret = ctx.connector(name).get("secret")
    if isinstance(secret, str) and marker(secret) is not None:
        return Webhook(secret.encode())
    problem = secret_problem(secret)
    if problem is not None:
        raise errors.NonRetryable(f"connector {name!r}: {problem}")
    assert isinstance(secret, str)
    return Webhook(key_of(secret))
