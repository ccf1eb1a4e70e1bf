"""The dashboard as an ASGI app (Starlette, Jinja2 templates rendered on the server, no script).

Glue over the library: every page reads through a `QueueClient` bound to the session's tenant
(row-level security binds every query), every action goes through the client's bulk retry and
cancel acting as the session's actor with the reason given (the audit trail of migrations/0014),
and replay is `jobforge.replay` on a throwaway database from the provisioning session.

What the browser gets is escaped text: templates autoescape, nothing is marked safe, the
Content-Security-Policy allows no script at all, and artifacts download as attachments, never
rendered. Every POST carries the session's CSRF token; the session cookie is SameSite=Strict.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from jobforge import errors
from jobforge.config import ProjectConfig, find_config
from jobforge.contracts import RunnerDef, discover
from jobforge.dashboard import figures, reads
from jobforge.dashboard.auth import COOKIE, Identity, Session, Sessions, same_token
from jobforge.dashboard.auth import identity_for_token as token_identity
from jobforge.queue import QueueClient, audit, bulk
from jobforge.queue.store import PostgresStore
from jobforge.replay.engine import ReplayResult
from jobforge.states import JobState

#: What a page may load: its own stylesheet, nothing else (no script anywhere).
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")  # fmt: skip
#: At most this many jobs in one action from the dashboard (the CLI's bulk commands take more).
MAX_SELECTED = 1000


@dataclass
class DashboardConfig:
    """How the dashboard runs: its database, who its sessions are (`tenant` for one tenant, or
    `tokens` for the token login), the runner repository replay imports, and where replay's
    throwaway database comes from."""

    database_url: str
    tenant: Identity | None = None
    tokens: dict[str, Identity] | None = None
    #: one-tenant mode behind a proxy: the actor is this header's value, required on every request
    actor_header: str | None = None
    project_root: Path = field(default_factory=Path.cwd)
    #: the runners replay runs (default: those `[tool.jobforge] runners` of the project declare)
    runners: Callable[[], Mapping[str, RunnerDef]] | None = None
    #: where replay's throwaway Postgres comes from (a `jobforge.provision.session.Settings`)
    replay_database_url: str | None = None
    replay_provider: str | None = None
    secure_cookies: bool = False
    pool_size: int = 4
    #: the Host header values served (None: any). A page on 127.0.0.1 that answers any Host can
    #: be read by another site through DNS rebinding, CSRF token and all.
    allowed_hosts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.tenant is None) == (self.tokens is None):
            raise errors.ConfigurationError(
                "the dashboard needs exactly one of: a tenant (--tenant) or a tokens file "
                "(--tokens)"
            )


class _State:
    """What the app holds across requests."""

    def __init__(self, config: DashboardConfig) -> None:
        self.config = config
        self.sessions = Sessions()
        self.client = QueueClient.connect(config.database_url, max_size=config.pool_size)
        self._provision: Any = None
        self.replay_lock = threading.Lock()

    def client_for(self, identity: Identity) -> QueueClient:
        return QueueClient(self.client.pool, tenant=identity.tenant, actor=identity.actor,
                           project=identity.project)  # fmt: skip

    def provision(self) -> Any:
        """The provisioning session replays run on (made at the first replay, kept: its
        server and migrated template serve every later one)."""
        from jobforge.provision.session import ProvisionSession, Settings

        if self._provision is None:
            c = self.config
            self._provision = ProvisionSession(
                Settings(c.replay_database_url, c.replay_provider, None, None)
            )
        return self._provision

    def runners(self) -> Mapping[str, RunnerDef]:
        if self.config.runners is not None:
            return self.config.runners()
        return discover(find_config(self.config.project_root))

    def close(self) -> None:
        self.client.close()
        if self._provision is not None:
            self._provision.close()


templates = Jinja2Templates(
    env=Environment(loader=PackageLoader("jobforge.dashboard", "templates"), autoescape=True)
)


def _ago(at: datetime | None, now: datetime | None = None) -> str:
    if at is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - at).total_seconds())
    if seconds < 0:
        return f"in {_span(-seconds)}"
    return f"{_span(seconds)} ago"


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _error_line(error: Any) -> str:
    """A job's error in one line: `Type: message` for the worker's shape, else its JSON."""
    if isinstance(error, dict) and ("type" in error or "message" in error):
        return f"{error.get('type', '')}: {error.get('message', '')}"
    return reads.pretty(error)


templates.env.filters["ago"] = _ago
templates.env.filters["error_line"] = _error_line
templates.env.filters["pretty"] = reads.pretty
templates.env.filters["compact"] = reads.compact
templates.env.filters["snapshot"] = reads.snapshot


def _state(request: Request) -> _State:
    state: _State = request.app.state.dashboard
    return state


class _Security(BaseHTTPMiddleware):
    """The session (made or found) on `request.state`, its cookie, and the headers every
    response carries."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        state = _state(request)
        sid = request.cookies.get(COOKIE)
        session = state.sessions.get(sid)
        new_sid = None
        if session is None:
            made = state.config.tenant  # one tenant: every new session is it
            new_sid, session = state.sessions.new(made)
        request.state.session = session
        request.state.sid = new_sid or sid
        response = await call_next(request)
        if new_sid is not None:
            _set_cookie(response, new_sid, state.config.secure_cookies)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response


def _set_cookie(response: Response, sid: str, secure: bool) -> None:
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=secure, path="/")


def _identity(request: Request) -> Identity:
    """Who the request acts as; 401 (one tenant behind a proxy, without the header) or a
    redirect to the login (token mode, not signed in) otherwise."""
    state = _state(request)
    session: Session = request.state.session
    if session.identity is None:
        raise HTTPException(303, headers={"Location": "/login"})
    header = state.config.actor_header
    if header is None:
        request.state.identity = session.identity
        return session.identity
    actor = request.headers.get(header)
    if not actor:
        raise HTTPException(401, f"no {header} header: the dashboard expects its proxy to "
                            "authenticate the user")  # fmt: skip
    try:
        audit.acting(actor, None)
    except errors.ConfigurationError as exc:
        raise HTTPException(400, f"{header}: {exc}") from None
    acting = Identity(session.identity.tenant, actor, session.identity.project)
    request.state.identity = acting
    return acting


async def _form(request: Request) -> FormData:
    """The POST's form, once its CSRF token is the session's (403 otherwise)."""
    form = await request.form(max_files=0, max_fields=MAX_SELECTED + 10)
    token = form.get("csrf")
    if not same_token(token if isinstance(token, str) else None, request.state.session.csrf):
        raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page")
    return form


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    session: Session = request.state.session
    notice, session.notice = session.notice, None
    identity = getattr(request.state, "identity", session.identity)
    base = {"csrf": session.csrf, "identity": identity, "notice": notice,
            "token_login": _state(request).config.tokens is not None}  # fmt: skip
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


async def _threaded(fn: Callable[..., Any], *args: Any) -> Any:
    return await run_in_threadpool(fn, *args)


# --- pages ---------------------------------------------------------------------------------


async def overview(request: Request) -> Response:
    identity = _identity(request)
    client = _state(request).client_for(identity)
    view: reads.Overview = await _threaded(reads.overview, client)
    bars, peak = figures.bars(view.minutes)
    by_type = view.stats.by_type()
    return _page(request, "overview.html", {
        "view": view, "by_type": by_type, "states": _STATS_STATES, "bars": bars, "peak": peak,
        "chart": (figures.WIDTH, figures.HEIGHT), "now": view.stats.at,
    })  # fmt: skip


#: The overview's columns (`jobforge.queue.stats.STATES`) and what the jobs page filters for each.
_STATS_STATES = (("due", "queued"), ("scheduled", "queued"), ("retry_scheduled", "queued"),
                 ("running", "running"), ("succeeded", "succeeded"), ("failed", "failed"),
                 ("dead", "dead"), ("canceled", "canceled"))  # fmt: skip


def _when(value: str | None, name: str) -> datetime | None:
    """A time from a filter field (ISO 8601; without an offset: UTC), or 400 naming it."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise errors.ConfigurationError(
            f"{name} {value[:40]!r} is not a time (e.g. 2026-03-01T09:30)"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _filter(request: Request, statuses: tuple[str, ...] | None = None) -> reads.JobFilter:
    q = request.query_params
    before = q.get("before")
    if before and not (before.isdigit() and len(before) <= 19):
        raise errors.ConfigurationError(f"before {before[:40]!r} is not a job id")
    return reads.JobFilter(
        statuses=statuses if statuses is not None
        else reads.check_statuses([s for s in q.getlist("state") if s]),
        types=tuple(t for t in q.getlist("type") if t),
        since=_when(q.get("since"), "since"),
        until=_when(q.get("until"), "until"),
        before=int(before) if before else None,
    )  # fmt: skip


def _next_url(path: str, flt: reads.JobFilter, before: int, dead: bool) -> str:
    params: list[tuple[str, str]] = []
    if not dead:
        params += [("state", s) for s in flt.statuses]
    params += [("type", t) for t in flt.types]
    params += [(k, v.isoformat()) for k, v in (("since", flt.since), ("until", flt.until)) if v]
    params.append(("before", str(before)))
    return f"{path}?{urlencode(params)}"


async def jobs(request: Request) -> Response:
    return await _listing(request, dead=False)


async def dead_letters(request: Request) -> Response:
    return await _listing(request, dead=True)


async def _listing(request: Request, *, dead: bool) -> Response:
    identity = _identity(request)
    client = _state(request).client_for(identity)
    flt = _filter(request, ("dead",) if dead else None)
    page: reads.JobsPage = await _threaded(reads.jobs_page, client, flt)
    path = request.url.path
    return _page(request, "jobs.html", {
        "page": page, "flt": flt, "dead": dead, "states": [s.value for s in JobState],
        "next_url": None if page.next_before is None
        else _next_url(path, flt, page.next_before, dead),
        "back": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        "since_value": "" if flt.since is None else flt.since.strftime("%Y-%m-%dT%H:%M"),
        "until_value": "" if flt.until is None else flt.until.strftime("%Y-%m-%dT%H:%M"),
    })  # fmt: skip


_DONE = {"retry": "retried", "cancel": "canceled"}


async def job_action(request: Request) -> Response:
    """Retry or cancel the selected jobs (the bulk operations, by id), acting as the session's
    actor with the reason given; back to the page the form was on, with what it did."""
    identity = _identity(request)
    form = await _form(request)
    action = form.get("action")
    if action not in ("retry", "cancel"):
        raise errors.ConfigurationError("action must be retry or cancel")
    reason = str(form.get("reason") or "").strip()
    if not reason:
        raise errors.ConfigurationError(f"say why you {action} these jobs (the reason is kept "
                                        "in the audit trail)")  # fmt: skip
    raw = form.getlist("job")
    if not raw:
        raise errors.ConfigurationError(f"select the jobs to {action}")
    if len(raw) > MAX_SELECTED or not all(isinstance(v, str) and v.isdigit() and len(v) <= 19
                                          for v in raw):  # fmt: skip
        raise errors.ConfigurationError(f"the selection must be 1-{MAX_SELECTED} job ids")
    ids = sorted({int(str(v)) for v in raw})
    client = _state(request).client_for(identity).acting_as(identity.actor, reason=reason)
    done: bulk.BulkResult = await _threaded(_act, client, action, ids)
    left = len(ids) - done.changed
    note = f"{_DONE[action]} {done.changed} of {len(ids)} selected jobs"
    if left:
        note += f" ({left} not in a state that allows it, or busy)"
    request.state.session.notice = note
    return RedirectResponse(_local(str(form.get("back") or "")), status_code=303)


def _act(client: QueueClient, action: bulk.Action, ids: list[int]) -> bulk.BulkResult:
    """The bulk action on the selected ids (`jobforge.queue.bulk`: one transaction, jobs other
    transactions hold tried again for a while). A retry resets the attempts: a dead job has
    used them all, and retrying it means giving it a fresh set."""
    flt = bulk.Filter(statuses=bulk.STATUSES[action])

    def one(after_id: int, busy: Any) -> bulk.Batch:
        chosen = ids if busy is None else busy
        return client.bulk_batch(action, flt, after_id=after_id, limit=len(chosen), ids=chosen,
                                 reset_attempts=action == "retry")  # fmt: skip

    return bulk.run(action, one, dry_run=False, batch=len(ids))


def _local(url: str) -> str:
    """Where to go after an action: a path of this site only (never `//host` or a URL)."""
    if url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return "/jobs"


async def job(request: Request) -> Response:
    identity = _identity(request)
    client = _state(request).client_for(identity)
    job_id = _id(request, "job_id")

    def read() -> dict[str, Any]:
        found = client.get(job_id)
        return {"job": found, "attempts": client.attempts(job_id),
                "events": client.events(job_id), "result": client.result(job_id),
                "runs": client.find_runs(job_ids=[job_id], limit=1000)}  # fmt: skip

    return _page(request, "job.html", await _threaded(read))


def _id(request: Request, name: str) -> int:
    value: int = request.path_params[name]
    if not 1 <= value <= 2**63 - 1:
        raise HTTPException(404, "no such id")
    return value


async def run(request: Request) -> Response:
    identity = _identity(request)
    client = _state(request).client_for(identity)
    run_id = _id(request, "run_id")

    def read() -> dict[str, Any]:
        row = reads.run(client, run_id)
        stored = [a for a in client.job_artifacts(row.job_id) if a.run_id == row.id]
        return {"row": row, "record": row.record, "stored": stored}

    return _page(request, "run.html", await _threaded(read))


async def artifact(request: Request) -> Response:
    """One artifact of a run, as an attachment (never rendered: it is the runner's bytes)."""
    identity = _identity(request)
    client = _state(request).client_for(identity)
    run_id, name = _id(request, "run_id"), request.path_params["name"]

    def read() -> bytes:
        row = reads.run(client, run_id)
        for ref in client.job_artifacts(row.job_id):
            if ref.run_id == row.id and ref.name == name:
                return PostgresStore(client).get(row.tenant_id, ref.sha256)
        raise errors.ArtifactNotFound(f"run {run_id} has no stored artifact {name!r}")

    data = await _threaded(read)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:120] or "artifact"
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{safe}"',
    })  # fmt: skip


async def replay_list(request: Request) -> Response:
    identity = _identity(request)
    client = _state(request).client_for(identity)
    rows = await _threaded(lambda: client.find_runs(limit=reads.PAGE))
    return _page(request, "replay_list.html", {"rows": rows})


async def replay_run(request: Request) -> Response:
    """Replay one recorded run against the current code on a throwaway database, and show the
    first divergent decision and the output side by side."""
    identity = _identity(request)
    await _form(request)
    state = _state(request)
    client = state.client_for(identity)
    run_id = _id(request, "run_id")
    result, row = await _threaded(_replay, state, client, run_id)
    record = row.record
    recorded_trace = record.get("trace") or []
    replayed_trace = (result.record or {}).get("trace") or []
    recorded_out = reads.pretty(reads.snapshot(record.get("output")))
    replayed_out = reads.pretty(reads.snapshot((result.record or {}).get("output")))
    steps = []
    for i in range(max(len(recorded_trace), len(replayed_trace))):
        steps.append((i, recorded_trace[i] if i < len(recorded_trace) else None,
                      replayed_trace[i] if i < len(replayed_trace) else None))  # fmt: skip
    return _page(request, "replay.html", {
        "row": row, "result": result, "steps": steps,
        "divergent": None if result.step is None else result.step.index,
        "diff": figures.side_by_side(recorded_out, replayed_out),
        "same_output": recorded_out == replayed_out,
    })  # fmt: skip


def _replay(state: _State, client: QueueClient, run_id: int) -> tuple[ReplayResult, Any]:
    from jobforge.golden.compare import require_deepdiff
    from jobforge.golden.execute import replay_policy
    from jobforge.replay.batch import replay_on_throwaway
    from jobforge.replay.run import targets_of_runs

    require_deepdiff("replay from the dashboard")
    row = reads.run(client, run_id)
    root = state.config.project_root
    policy = replay_policy(find_config(root) or ProjectConfig(root=root), (),
                           "list it in [tool.jobforge] http_allow_hosts")  # fmt: skip
    runners = state.runners()
    with state.replay_lock:  # one throwaway replay at a time: they share the server
        (result,) = replay_on_throwaway(targets_of_runs([row]), runners,
                                        session=state.provision(), http_policy=policy)  # fmt: skip
    return result, row


# --- sign in and out (token mode) ----------------------------------------------------------


async def login_page(request: Request) -> Response:
    return _page(request, "login.html", {"failed": False})


async def login(request: Request) -> Response:
    state = _state(request)
    form = await _form(request)
    if state.config.tokens is None:
        return RedirectResponse("/", status_code=303)
    token = str(form.get("token") or "")
    identity = token_identity(state.config.tokens, token) if token else None
    if identity is None:
        return _page(request, "login.html", {"failed": True}, status=401)
    state.sessions.drop(request.state.sid)
    sid, _ = state.sessions.new(identity)  # a new id: a fixed session id is never promoted
    response = RedirectResponse("/", status_code=303)
    _set_cookie(response, sid, state.config.secure_cookies)
    return response


async def logout(request: Request) -> Response:
    await _form(request)
    _state(request).sessions.drop(request.state.sid)
    response = RedirectResponse("/login" if _state(request).config.tokens else "/",
                                status_code=303)  # fmt: skip
    response.delete_cookie(COOKIE, path="/")
    return response


async def stylesheet(request: Request) -> Response:
    css = templates.env.loader.get_source(templates.env, "dashboard.css")[0]  # type: ignore[union-attr]
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


# --- errors --------------------------------------------------------------------------------


def _error(status: int, message: str) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        return _error_page(request, status, str(exc) or message)

    return handle


def _error_page(request: Request, status: int, message: str) -> Response:
    if getattr(request.state, "session", None) is None:
        return PlainTextResponse(message, status_code=status)
    return _page(request, "error.html", {"status": status, "message": message}, status=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (301, 302, 303, 307, 308):
        return RedirectResponse(exc.headers["Location"] if exc.headers else "/",
                                status_code=exc.status_code)  # fmt: skip
    return _error_page(request, exc.status_code, exc.detail)


def create_app(config: DashboardConfig) -> Starlette:
    """The dashboard app; its database pool opens now (an unreachable database is one line
    here) and closes when the server shuts down."""
    state = _State(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        state.close()

    routes = [
        Route("/", overview),
        Route("/jobs", jobs),
        Route("/dead", dead_letters),
        Route("/jobs/action", job_action, methods=["POST"]),
        Route("/jobs/{job_id:int}", job),
        Route("/runs/{run_id:int}", run),
        Route("/runs/{run_id:int}/artifacts/{name:str}", artifact),
        Route("/replay", replay_list),
        Route("/runs/{run_id:int}/replay", replay_run, methods=["POST"]),
        Route("/login", login_page),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/static/dashboard.css", stylesheet),
    ]
    hosts = [] if config.allowed_hosts is None else [
        Middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts))
    ]  # fmt: skip
    app = Starlette(
        routes=routes,
        middleware=[*hosts, Middleware(_Security)],
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,
            errors.JobNotFound: _error(404, "not found"),
            errors.RunNotFound: _error(404, "not found"),
            errors.ArtifactNotFound: _error(404, "not found"),
            errors.ConfigurationError: _error(400, "bad request"),
            errors.JobforgeError: _error(500, "the dashboard failed"),
        },
    )
    app.state.dashboard = state
    return app


def serve(config: DashboardConfig, host: str, port: int) -> None:
    """Serve the dashboard with uvicorn until interrupted (forwarded headers are not trusted:
    the actor header, when configured, is the only thing a proxy tells the app)."""
    import uvicorn

    uvicorn.run(create_app(config), host=host, port=port, log_level="warning",
                proxy_headers=False)  # fmt: skip


__all__ = ["DashboardConfig", "create_app", "serve"]
