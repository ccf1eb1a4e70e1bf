"""``jobforge.http.request``: one HTTP request as a job.

The request goes through ``ctx.http``: the SSRF guard (every address the host resolves to is
checked, on every redirect hop; a refusal fails the job without retry, with the reason), the
redaction of secret headers and query values, and the recording of every exchange (so the run
replays). On top of that the job may narrow where it goes:

- ``allow_hosts``: the hosts the request and each of its redirects may reach (exact names, or
  ``*.example.com`` for any subdomain); a hop elsewhere fails the job before anything is sent.
- ``connector``: a connector config of the tenant (`jobforge connectors set`) with
  ``allow_hosts`` (narrowing further: a host must be in both lists) and ``headers`` sent with
  the request, e.g. ``{"authorization": "Bearer ..."}``. A connector's headers are credentials:
  one whose name the recording would keep in clear is refused (name it so the policy redacts
  it: authorization, x-api-key, or a name with token, secret or signature in it).
- ``max_response_bytes``: a body larger than this fails the job (the worker's own cap, 10 MiB
  by default, is stopped while reading).

A 2xx answer (or one of ``ok_statuses``) succeeds; 429, 5xx and network errors are retried with
the runner's backoff; any other answer fails the job at once (`jobforge.runners.outcomes`).
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from jobforge import errors
from jobforge.contracts import RetryPolicy, runner
from jobforge.runners.hosts import allowed as _allowed
from jobforge.runners.hosts import patterns as _hosts
from jobforge.runners.outcomes import Rejected, Retryable, network_error, refused, retried
from jobforge.runtime.context import RunContext

#: The largest body the job may ask to read (the worker's own cap may be lower).
MAX_RESPONSE_BYTES = 10 * 1024 * 1024


class HttpRequestIn(BaseModel):
    url: str = Field(min_length=1, max_length=2000)
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    #: A JSON body (sent compact, with ``content-type: application/json``).
    json_body: Any = None
    #: A text body (UTF-8); not with `json_body`.
    body: str | None = None
    #: Hosts the request and its redirects may reach (empty: any the SSRF guard lets through).
    allow_hosts: list[str] = Field(default_factory=list, max_length=100)
    #: A connector config of the tenant: its ``allow_hosts`` and ``headers`` apply.
    connector: str | None = None
    follow_redirects: bool = True
    max_response_bytes: int = Field(default=1024 * 1024, ge=1, le=MAX_RESPONSE_BYTES)
    #: Statuses besides 2xx that count as success (e.g. [404] for "absent is fine").
    ok_statuses: list[int] = Field(default_factory=list, max_length=50)


class HttpRequestOut(BaseModel):
    status: int
    url: str
    redirects: int
    headers: dict[str, str]
    #: The body as UTF-8 text, or None when it is not UTF-8 (then `body_base64`).
    body: str | None
    body_base64: str | None = None


@runner("jobforge.http.request", version="1.0.0", input=HttpRequestIn, output=HttpRequestOut,
        trace_keys=["target", "answer"], max_attempts=5,
        retry=RetryPolicy(base_s=1.0, cap_s=300.0))  # fmt: skip
def http_request(inp: HttpRequestIn, ctx: RunContext) -> HttpRequestOut:
    if inp.json_body is not None and inp.body is not None:
        raise errors.InvalidInput("give json_body or body, not both")
    config = ctx.connector(inp.connector) if inp.connector else {}
    lists = [_hosts(inp.allow_hosts, "the job's allow_hosts")]
    if "allow_hosts" in config:
        lists.append(_hosts(config["allow_hosts"], f"connector {inp.connector}'s allow_hosts"))
    headers = dict(inp.headers)
    credentials = _connector_headers(config, inp.connector, ctx)
    if credentials and "allow_hosts" not in config:
        # a connector's credentials go to the connector's hosts only: without its own list,
        # any job of the tenant (an agent's too) could send them wherever its URL points
        raise errors.NonRetryable(
            f"connector {inp.connector} has headers but no allow_hosts: name the hosts its "
            "credentials may be sent to"
        )
    headers.update(credentials)
    target = httpx.URL(inp.url)
    ctx.decide("target", {"method": inp.method, "host": target.host},
               allow_hosts=[list(hosts) for _, hosts in lists if hosts])  # fmt: skip

    def check(request: httpx.Request) -> None:
        for label, hosts in lists:
            if hosts and not _allowed(request.url.host, hosts):
                raise Rejected(
                    f"refused {request.method} to host {request.url.host!r}: not in "
                    f"{label} ({', '.join(hosts)})"
                )

    what = f"{inp.method} {ctx.http.policy.redacted_url(target)}"
    try:
        response = ctx.http.request(
            inp.method, target, headers=headers, json=inp.json_body,
            content=inp.body.encode() if inp.body is not None else None,
            follow_redirects=inp.follow_redirects, before_hop=check,
        )  # fmt: skip
    except errors.HttpRefused as exc:
        raise refused(exc) from None
    except httpx.RequestError as exc:
        raise network_error(exc, what) from None
    status = response.status_code
    ctx.decide("answer", status, redirects=len(response.history))
    if not (200 <= status <= 299 or status in inp.ok_statuses):
        message = f"{what} answered {status}"
        raise Retryable(message + " (retried)") if retried(status) else Rejected(message)
    raw = response.content
    if len(raw) > inp.max_response_bytes:
        raise errors.HttpResponseTooLarge(
            f"the response to {what} is {len(raw)} bytes, over max_response_bytes "
            f"({inp.max_response_bytes})"
        )
    try:
        text: str | None = raw.decode("utf-8")
        encoded = None
    except UnicodeDecodeError:
        text, encoded = None, base64.b64encode(raw).decode("ascii")
    shown = {k.lower(): v for k, v in sorted(response.headers.items())}
    return HttpRequestOut(status=status, url=ctx.http.policy.redacted_url(response.url),
                          redirects=len(response.history), headers=shown, body=text,
                          body_base64=encoded)  # fmt: skip


def _connector_headers(config: dict[str, Any], name: str | None, ctx: RunContext) -> dict[str, str]:
    headers = config.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise errors.InvalidInput(f"connector {name}'s headers must map names to strings")
    clear = sorted(k for k in headers if not ctx.http.policy.redacts(k))
    if clear:
        raise errors.NonRetryable(
            f"connector {name}'s header(s) {', '.join(clear)} would be recorded in clear: name "
            "a credential header so it is redacted (authorization, x-api-key, *token*, "
            "*secret*, *signature*)"
        )
    return dict(headers)
