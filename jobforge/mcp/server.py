"""The MCP server: the tools registered on the SDK's `MCPServer`, each call resolved to its
connection's binding, and the two transports (stdio; streamable HTTP with bearer tokens).

A tool's failure the queue names (a `JobforgeError`: unknown runner, invalid input, a job not
found, a lost lease) is a tool error with that one line; so is an argument the tool's schema
refuses. Nothing an agent sends reaches it as a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import anyio.to_thread
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import AnyHttpUrl, AwareDatetime, Field, ValidationError

from jobforge import errors, validation
from jobforge.mcp import results as r
from jobforge.mcp.binding import Binding, Tokens
from jobforge.mcp.tools import DEFAULT_LEASE_S, Queue, ServerConfig

T = TypeVar("T")
#: What a tool tells a client about itself: reads change nothing; the worker calls and enqueue do.
READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
#: The arguments several tools share (module level: the SDK evaluates the annotations here).
Id = Annotated[int, Field(ge=1, le=2**63 - 1, description="the job's id")]
Token = Annotated[str, Field(description="the lease_token the claim returned")]
LeaseS = Annotated[float, Field(gt=0, le=3600, description="how long the lease lasts, seconds")]

INSTRUCTIONS = """\
jobforge's job queue, for one tenant: the one this connection is bound to (by the server's \
configuration or your bearer token; no tool takes a tenant). Enqueue jobs of catalogued runners \
(their input is checked against the runner's contract), check and list them, resume a session \
by its correlation id, read the audit trail and the queue's health, and replay a recorded run. \
To work jobs yourself: claim, heartbeat before the lease expires, then complete (with evidence) \
or fail; release what you will not finish. Everything you do is recorded with your actor name."""


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    tokens: Tokens | None = None


#: The addresses served without tokens: exactly those the SDK's DNS-rebinding guard protects (a
#: page rebound to 127.0.0.2 would reach a server on it unguarded).
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _loopback(host: str) -> bool:
    return host in LOOPBACK


class _TokenVerifier:
    """The SDK's bearer-token check, against the tokens file: a known token's binding travels
    in the access token's claims to the tool call."""

    def __init__(self, tokens: Tokens) -> None:
        self._tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        bound = self._tokens.find(token)
        if bound is None:
            return None
        return AccessToken(token=token, client_id=bound.actor, scopes=[],
                           claims={"tenant": bound.tenant, "actor": bound.actor})  # fmt: skip


class _Server(MCPServer):
    """The SDK's server, with a refused argument told in one line: the SDK's message is
    pydantic's, several lines with a link per field."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                why = validation.summary(exc.__cause__, limit=3)
                raise ToolError(f"{name}: invalid arguments: {_one_line(why)}") from None
            raise


def build(
    config: ServerConfig, fixed: Binding | None, http: HttpSettings | None = None
) -> MCPServer:
    """The server with every tool; `fixed`: the binding of a connection without a token (stdio,
    or HTTP without a tokens file); `http`: the HTTP settings, for bearer-token auth."""
    queue = Queue(config)
    auth: dict[str, Any] = {}
    if http is not None and http.tokens is not None:
        url = f"http://{http.host}:{http.port}"
        auth = {
            "token_verifier": _TokenVerifier(http.tokens),
            "auth": AuthSettings(
                issuer_url=AnyHttpUrl(url),
                resource_server_url=AnyHttpUrl(f"{url}/mcp"),
                validate_token_resource=False,
            ),
        }
    server = _Server("jobforge", instructions=INSTRUCTIONS, **auth)

    def bound() -> Binding:
        token = get_access_token()
        if token is not None and token.claims:
            return Binding(str(token.claims["tenant"]), str(token.claims["actor"]))
        if fixed is None:
            raise ToolError("this connection is bound to no tenant: send a bearer token")
        return fixed

    async def call(fn: Callable[..., T], *args: Any) -> T:
        who = bound()
        try:
            return await anyio.to_thread.run_sync(functools.partial(fn, who, *args))
        except errors.JobforgeError as exc:
            raise ToolError(_one_line(str(exc) or type(exc).__name__)) from None
        except ValidationError as exc:
            raise ToolError(_one_line(validation.summary(exc, limit=3))) from None

    @server.tool(
        description=(
            "Enqueue a job of a catalogued runner; its input is validated "
            "against the runner's contract (the catalogue's input schema)."
        ),
        annotations=WRITES,
    )
    async def enqueue(
        runner_id: Annotated[str, Field(min_length=1, max_length=200)],
        input: dict[str, Any],
        correlation_id: Annotated[
            str | None,
            Field(description="groups the jobs of one session (resume_session finds them)"),
        ] = None,
        idempotency_key: Annotated[str | None, Field(min_length=1, max_length=255)] = None,
        priority: Annotated[int, Field(ge=0, le=32767, description="0 is most urgent")] = 0,
        max_attempts: Annotated[int | None, Field(ge=1, le=1000)] = None,
        run_at: Annotated[
            AwareDatetime | None,
            Field(description="not before this instant (ISO 8601 with an offset)"),
        ] = None,
    ) -> r.Enqueued:
        return await call(queue.enqueue, runner_id, input, correlation_id, idempotency_key,
                          priority, run_at, max_attempts)  # fmt: skip

    @server.tool(
        description="A job: its state, result once it succeeded, and its events.", annotations=READS
    )
    async def check(job_id: Id) -> r.Checked:
        return await call(queue.check, job_id)

    @server.tool(
        description="The tenant's jobs, newest first, by status and type.", annotations=READS
    )
    async def list_jobs(
        status: list[str] | None = None,
        type: list[str] | None = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
        before: Annotated[int | None, Field(ge=1, description="next_before of a page")] = None,
    ) -> r.Listed:
        return await call(queue.list_jobs, status, type, limit, before)

    @server.tool(
        description=(
            "Claim due jobs of the tenant to work them yourself (of these "
            "types only, when given); each comes with a lease_token."
        ),
        annotations=WRITES,
    )
    async def claim(
        types: list[str] | None = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 1,
        lease_seconds: LeaseS = DEFAULT_LEASE_S,
    ) -> r.Claimed:
        return await call(queue.claim, types, limit, lease_seconds)

    @server.tool(
        description="Renew a claimed job's lease (and report progress).", annotations=WRITES
    )
    async def heartbeat(
        job_id: Id,
        lease_token: Token,
        lease_seconds: LeaseS = DEFAULT_LEASE_S,
        progress_pct: Annotated[float | None, Field(ge=0, le=100)] = None,
        message: Annotated[str | None, Field(max_length=1000)] = None,
    ) -> r.Heartbeat:
        return await call(queue.heartbeat, job_id, lease_token, lease_seconds, progress_pct,
                          message)  # fmt: skip

    @server.tool(
        description="Finish a claimed job as succeeded, with its output (checked "
        "against the runner's output schema when catalogued) and the evidence.",
        annotations=WRITES,
    )
    async def complete(
        job_id: Id,
        lease_token: Token,
        output: Any,
        evidence: Annotated[
            list[Any],
            Field(description="what shows the work was done: links, checks run, excerpts"),
        ] = [],  # noqa: B006
    ) -> r.Finished:
        return await call(queue.complete, job_id, lease_token, output, evidence)

    @server.tool(
        description=(
            "Finish a claimed job as failed: retried with backoff while "
            "attempts remain (retry=true), or at once for good (retry=false)."
        ),
        annotations=WRITES,
    )
    async def fail(
        job_id: Id,
        lease_token: Token,
        message: Annotated[str, Field(min_length=1, max_length=2000)],
        retry: bool = True,
        details: Any = None,
    ) -> r.Finished:
        return await call(queue.fail, job_id, lease_token, message, retry, details)

    @server.tool(
        description="Give a claimed job back: due again, keeping its attempt count.",
        annotations=WRITES,
    )
    async def release(job_id: Id, lease_token: Token) -> r.Released:
        return await call(queue.release, job_id, lease_token)

    @server.tool(
        description=(
            "A session's unfinished jobs by correlation id, each marked: "
            "stale (running, lease expired), blocked (runner disabled), waiting (not due "
            "yet), running or queued."
        ),
        annotations=READS,
    )
    async def resume_session(
        correlation_id: Annotated[str, Field(min_length=1, max_length=200)],
    ) -> r.Session:
        return await call(queue.resume_session, correlation_id)

    @server.tool(
        description="The tenant's queue health: due, running, expired leases, dead.",
        annotations=READS,
    )
    async def health() -> r.Health:
        return await call(queue.health)

    @server.tool(
        description="The audit trail: who enqueued, claimed, finished, canceled what. "
        "summary: counts per kind and actor; detail: the events, newest first.",
        annotations=READS,
    )
    async def audit_log(
        mode: Literal["summary", "detail"] = "summary",
        since: Annotated[str, Field(description="30m, 1h, 2d back, or an ISO 8601 date")] = "24h",
        kind: list[str] | None = None,
        actor: str | None = None,
        job_id: Annotated[int | None, Field(ge=1)] = None,
        limit: Annotated[int, Field(ge=1, le=10_000)] = 100,
    ) -> r.AuditLog:
        return await call(queue.audit_log, mode, since, kind, actor, job_id, limit)

    @server.tool(
        description=(
            "Replay a job's recorded run against the current runner code on "
            "a throwaway database; the divergence report per attempt."
        ),
        annotations=READS,
    )
    async def replay_run(
        job_id: Id, attempt: Annotated[int | None, Field(ge=1)] = None
    ) -> r.Replayed:
        return await call(queue.replay_run, job_id, attempt)

    return server


def _one_line(message: str) -> str:
    return " ".join(message.split())[:1000]


def serve_stdio(config: ServerConfig, fixed: Binding) -> None:
    build(config, fixed).run("stdio")


def serve_http(config: ServerConfig, fixed: Binding | None, http: HttpSettings) -> None:
    """Streamable HTTP at http://HOST:PORT/mcp. Off the loopback interface only with a tokens
    file: a server that binds every caller to one tenant must not be reachable by everyone."""
    if http.tokens is None and not _loopback(http.host):
        raise errors.ConfigurationError(
            f"--host {http.host} is not a loopback address: serving it needs --tokens (bearer "
            "tokens bound to tenants and actors)"
        )
    if http.tokens is None and fixed is None:
        raise errors.ConfigurationError("no tenant to bind connections to: give --tenant, or "
                                        "--tokens for bearer tokens")  # fmt: skip
    build(config, fixed, http).run("streamable-http", host=http.host, port=http.port)


__all__ = ["HttpSettings", "build", "serve_http", "serve_stdio"]
