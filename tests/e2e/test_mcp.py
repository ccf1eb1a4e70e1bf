"""`jobforge mcp` driven by the MCP SDK's own client: over stdio (the server a subprocess the
client spawns) and over streamable HTTP (a server on a free port with bearer tokens), against a
migrated database whose logins are bound to tenants (jobforge.tenant_logins). Every tool's happy
path and its bad input; an agent of one tenant against another's jobs; resume_session and the
audit summary against a hand count."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobforge.cli.app import main
from jobforge.provision import Database, Server, Template
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

DIGEST = "sha256:" + "0" * 64
SCAN_IN = {"type": "object", "properties": {"target": {"type": "string"}},
           "required": ["target"], "additionalProperties": False}  # fmt: skip
SCAN_OUT = {"type": "object", "properties": {"findings": {"type": "array"}},
            "required": ["findings"]}  # fmt: skip
TOOLS = {"enqueue", "check", "list_jobs", "claim", "heartbeat", "complete", "fail", "release",
         "resume_session", "health", "audit_log", "replay_run"}  # fmt: skip


@contextlib.contextmanager
def _login(db: Database, tenants: list[str]) -> Iterator[str]:
    """A login that may act as a worker (the server's leases) and for `tenants` only."""
    name = f"jf_mcp_{secrets.token_hex(4)}"
    role = sql.Identifier(name)
    with db.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE jobforge_app, jobforge_worker")
                      .format(role))  # fmt: skip
        admin.execute("INSERT INTO jobforge.tenant_logins (login, tenants) VALUES (%s, %s)",
                      (name, tenants))  # fmt: skip
    try:
        yield make_conninfo(db.dsn, user=name)
    finally:
        with db.connect() as admin:
            admin.execute("DELETE FROM jobforge.tenant_logins WHERE login = %s", (name,))
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))


@pytest.fixture(scope="module")
def queue_db(jobforge_template: Template) -> Iterator[Database]:
    """One migrated database for the module, its runners catalogued."""
    database = jobforge_template.create()
    with database.connect() as admin:
        for runner_id in ("mcp.scan", "mcp.off"):
            schemas = (json.dumps(SCAN_IN), json.dumps(SCAN_OUT))
            admin.execute("SELECT jobforge.catalogue_sync_v1(%s, '1.0.0', %s, %s, %s)",
                          (runner_id, *schemas, DIGEST))  # fmt: skip
        admin.execute("SELECT jobforge.catalogue_enable_v1('mcp.off', false)")
    yield database
    jobforge_template.drop(database)


@pytest.fixture(scope="module")
def acme_login(queue_db: Database) -> Iterator[str]:
    with _login(queue_db, ["acme"]) as url:
        yield url


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFORGE_")}
    return {**env, "JOBFORGE_DATABASE_URL": url, **extra}


class Agent:
    """A client session: `ok` returns a tool's structured result, `error` its one-line error."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def ok(self, tool: str, **args: Any) -> Any:
        result = await self.session.call_tool(tool, args)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        assert not result.is_error, f"{tool}: {text}"
        return result.structured_content

    async def error(self, tool: str, **args: Any) -> str:
        result = await self.session.call_tool(tool, args)
        assert result.is_error, (tool, result.structured_content)
        (content,) = result.content
        text: str = content.text  # type: ignore[union-attr]
        assert "\n" not in text, text
        assert "Traceback" not in text, text
        return text


@contextlib.asynccontextmanager
async def stdio_agent(url: str, tenant: str, actor: str) -> AsyncIterator[Agent]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "jobforge.cli.app", "mcp"],
        env=_env(url, JOBFORGE_TENANT=tenant, JOBFORGE_ACTOR=actor), cwd=str(Path.cwd()),
    )  # fmt: skip
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield Agent(session)


def test_every_tool_over_stdio(queue_db: Database, acme_login: str) -> None:
    async def scenario() -> None:
        async with stdio_agent(acme_login, "acme", "agent-s") as agent:
            listed = await agent.session.list_tools()
            assert {t.name for t in listed.tools} == TOOLS
            assert all(t.output_schema for t in listed.tools)  # structured results
            hints = {t.name: t.annotations.read_only_hint for t in listed.tools if t.annotations}
            assert hints["check"] is True
            assert hints["claim"] is False

            # enqueue: by runner id, input checked against the catalogue's schema
            made = [await agent.ok("enqueue", runner_id="mcp.scan", input={"target": f"h{i}"},
                                   correlation_id="sess-1") for i in range(4)]  # fmt: skip
            await agent.ok("enqueue", runner_id="mcp.scan", input={"target": "x"},
                                   correlation_id="sess-2")  # fmt: skip
            assert [m["created"] for m in made] == [True] * 4
            later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
            waiting = await agent.ok("enqueue", runner_id="mcp.scan", input={"target": "w"},
                                     correlation_id="sess-1", run_at=later)  # fmt: skip
            assert "run_at" in await agent.error("enqueue", runner_id="mcp.scan",
                                                 input={"target": "w"}, run_at="soon")  # fmt: skip
            again = await agent.ok("enqueue", runner_id="mcp.scan", input={"target": "h0"},
                                   idempotency_key="k1")  # fmt: skip
            same = await agent.ok("enqueue", runner_id="mcp.scan", input={"target": "h0"},
                                  idempotency_key="k1")  # fmt: skip
            assert same["job_id"] == again["job_id"]
            assert same["created"] is False
            assert "target" in await agent.error("enqueue", runner_id="mcp.scan", input={})
            assert "not in the runner catalogue" in await agent.error(
                "enqueue", runner_id="mcp.nope", input={"target": "x"}
            )
            assert "disabled" in await agent.error("enqueue", runner_id="mcp.off",
                                                   input={"target": "x"})  # fmt: skip
            assert "idempotency" in (await agent.error(
                "enqueue", runner_id="mcp.scan", input={"target": "other"}, idempotency_key="k1"
            )).lower()  # fmt: skip
            assert "priority" in await agent.error("enqueue", runner_id="mcp.scan",
                                                   input={"target": "x"}, priority=-1)  # fmt: skip

            # check and list
            first = made[0]["job_id"]
            checked = await agent.ok("check", job_id=first)
            assert checked["job"]["status"] == "queued"
            assert checked["job"]["correlation_id"] == "sess-1"
            assert [e["kind"] for e in checked["events"]] == ["created"]
            assert checked["events"][0]["actor"] == "agent-s"
            assert "not found" in await agent.error("check", job_id=10**9)
            page = await agent.ok("list_jobs", status=["queued"], limit=3)
            assert len(page["jobs"]) == 3
            assert page["next_before"] is not None
            rest = await agent.ok("list_jobs", status=["queued"], before=page["next_before"])
            assert len(page["jobs"]) + len(rest["jobs"]) == 7
            assert "unknown status" in await agent.error("list_jobs", status=["nope"])

            # claim, heartbeat, complete with evidence, fail, release: leases and tokens
            claimed = (await agent.ok("claim", types=["mcp.scan"], limit=3,
                                      lease_seconds=60))["leases"]  # fmt: skip
            assert len(claimed) == 3
            assert all(c["job"]["lease_holder"] == "mcp:agent-s" for c in claimed)
            (a, b, c) = claimed
            beat = await agent.ok("heartbeat", job_id=a["job"]["id"], lease_token=a["lease_token"],
                                  progress_pct=50, message="half")  # fmt: skip
            assert beat["state"] == "ok"
            assert (
                await agent.ok(
                    "heartbeat", job_id=a["job"]["id"], lease_token=str(__import__("uuid").uuid4())
                )
            )["state"] == "lost"
            assert "not a UUID" in await agent.error("heartbeat", job_id=a["job"]["id"],
                                                     lease_token="nope")  # fmt: skip
            assert "lease_seconds" in await agent.error("claim", lease_seconds=0)
            bad_output = await agent.error(
                "complete", job_id=a["job"]["id"], lease_token=a["lease_token"], output={"x": 1}
            )
            assert "findings" in bad_output
            assert "keeps running" in bad_output
            done = await agent.ok("complete", job_id=a["job"]["id"], lease_token=a["lease_token"],
                                  output={"findings": ["open port"]},
                                  evidence=["nmap -p 22 h0: open"])  # fmt: skip
            assert done["state"] == "succeeded"
            result = (await agent.ok("check", job_id=a["job"]["id"]))["result"]
            assert result == {"output": {"findings": ["open port"]},
                              "evidence": ["nmap -p 22 h0: open"]}  # fmt: skip
            assert (
                await agent.ok(
                    "complete",
                    job_id=a["job"]["id"],
                    lease_token=a["lease_token"],
                    output={"findings": []},
                )
            )["state"] == "lost"  # fenced
            failed = await agent.ok("fail", job_id=b["job"]["id"], lease_token=b["lease_token"],
                                    message="host unreachable", retry=False)  # fmt: skip
            assert failed["state"] == "failed"
            assert "message" in await agent.error(
                "fail", job_id=b["job"]["id"], lease_token=b["lease_token"], message=""
            )
            released = await agent.ok("release", job_id=c["job"]["id"],
                                      lease_token=c["lease_token"])  # fmt: skip
            assert released["state"] == "released"
            assert "not a UUID" in await agent.error("release", job_id=1, lease_token="x")

            # resume_session, by hand: sess-1 has 5 jobs; a succeeded and b failed are done,
            # c was released and made[3] never claimed (queued), one is not due (waiting)
            session = await agent.ok("resume_session", correlation_id="sess-1")
            done_ids = {a["job"]["id"], b["job"]["id"]}
            unfinished = {m["job_id"] for m in [*made, waiting]} - done_ids
            assert {j["job"]["id"] for j in session["jobs"]} == unfinished
            assert session["unfinished"] == 3
            assert session["counts"] == {"queued": 2, "waiting": 1}
            marks = {j["job"]["id"]: (j["mark"], j["stale"], j["blocked"]) for j in session["jobs"]}
            assert marks[waiting["job_id"]] == ("waiting", False, False)
            assert (await agent.ok("resume_session", correlation_id="sess-2"))["unfinished"] == 1
            assert (await agent.ok("resume_session", correlation_id="none"))["jobs"] == []
            assert "correlation_id" in await agent.error("resume_session", correlation_id="")

            health = await agent.ok("health")
            assert health["tenant"] == "acme"
            assert health["actor"] == "agent-s"
            assert health["totals"]["failed"] == 1

            # the audit trail, by hand: 7 created (5 + sess-2 + k1 once), 3 claimed, 1
            # progress, 1 succeeded, 1 failed, 1 released: all by agent-s
            summary = await agent.ok("audit_log", mode="summary", since="1h")
            counts = {(s["kind"], s["actor"]): s["count"] for s in summary["summary"]}
            assert counts == {
                ("created", "agent-s"): 7,
                ("claimed", "agent-s"): 3,
                ("progress", "agent-s"): 1,
                ("succeeded", "agent-s"): 1,
                ("failed", "agent-s"): 1,
                ("released", "agent-s"): 1,
            }, counts
            assert summary["total"] == 14
            detail = await agent.ok("audit_log", mode="detail", job_id=a["job"]["id"])
            assert [e["kind"] for e in detail["events"]] == [
                "succeeded",
                "progress",
                "claimed",
                "created",
            ]
            assert "since" in await agent.error("audit_log", since="yesterday-ish")
            assert "unknown event kind" in await agent.error("audit_log", kind=["nope"])

            assert "no recorded run" in await agent.error("replay_run", job_id=first)

    anyio.run(scenario)


def test_a_login_bound_to_one_tenant_cannot_serve_another(acme_login: str) -> None:
    """The server's own login is held to its tenants by the database, whatever the server is
    told: started for globex on acme's login, every tool is refused in one line."""

    async def scenario() -> None:
        async with stdio_agent(acme_login, "globex", "intruder") as agent:
            assert "may not act for tenant" in await agent.error("list_jobs")
            assert "may not act for tenant" in await agent.error("claim")

    anyio.run(scenario)


def test_bad_configuration_is_one_line(
    queue_db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each refusal before the server starts: exit 2 and one line (in-process: `main` is what
    the `jobforge` script runs, and each case stops before anything is served)."""
    for name in [k for k in os.environ if k.startswith("JOBFORGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("JOBFORGE_DATABASE_URL", queue_db.dsn)
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": [{"sha256": "abc", "tenant": "acme", "actor": "a"}]}')
    digest = hashlib.sha256(b"t").hexdigest()
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"tokens": [{"sha256": digest, "tenant": "acme", "actor": "a"}]}))
    spaced = tmp_path / "spaced.json"
    spaced.write_text(json.dumps({"tokens": [{"sha256": digest, "tenant": "ac me", "actor": "a"}]}))
    cases = [
        ([], "no tenant"),
        (["--transport", "http", "--host", "0.0.0.0", "--tenant", "acme"], "needs --tokens"),
        (["--transport", "http", "--tokens", str(tokens)], "64 lowercase hex"),
        (["--transport", "http", "--tokens", str(tmp_path / "none.json")], "No such file"),
        (["--transport", "http", "--tokens", str(good), "--tenant", "acme"], "leave out --tenant"),
        (["--tokens", str(good)], "--tokens is for --transport http"),
        (["--tenant", "acme", "--actor", "a\u200bb"], "printable"),
        (["--tenant", "ac me"], "is not a tenant id"),
        (["--transport", "http", "--tokens", str(spaced)], "token 0: tenant 'ac me' is not"),
        (["--tenant", "acme", "--project", str(tmp_path / "nope")], "no such folder"),
    ]
    for args, expected in cases:
        assert main(["mcp", *args]) == 2, args
        err = capsys.readouterr().err
        assert expected in err, (args, err)
        assert err.count("\n") == 1, err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def http_server(queue_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`jobforge mcp --transport http` with two tokens: acme's agent-a and globex's agent-b, on
    a login bound to those two tenants."""
    folder = tmp_path_factory.mktemp("mcp")
    tokens = folder / "tokens.json"
    entries = [{"sha256": hashlib.sha256(t.encode()).hexdigest(), "tenant": tenant, "actor": actor}
               for t, tenant, actor in (("token-a", "acme", "agent-a"),
                                        ("token-b", "globex", "agent-b"))]  # fmt: skip
    tokens.write_text(json.dumps({"tokens": entries}))
    port = _free_port()
    log = folder / "server.log"
    with _login(queue_db, ["acme", "globex"]) as url, log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobforge.cli.app", "mcp", "--transport", "http",
             "--port", str(port), "--tokens", str(tokens)],
            env=_env(url), stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log.read_text()
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                    break
                assert time.monotonic() < deadline, "the HTTP server did not start"
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            proc.terminate()
            proc.wait(10)


@contextlib.asynccontextmanager
async def http_agent(url: str, token: str | None) -> AsyncIterator[Agent]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield Agent(session)


def test_http_agents_are_held_to_their_tenants(http_server: str) -> None:
    async def scenario() -> None:
        async with http_agent(http_server, "token-a") as a, http_agent(http_server, "token-b") as b:
            assert {t.name for t in (await a.session.list_tools()).tools} == TOOLS
            mine = await a.ok("enqueue", runner_id="mcp.scan", input={"target": "a"},
                              correlation_id="shared")  # fmt: skip
            theirs = await b.ok("enqueue", runner_id="mcp.scan", input={"target": "b"},
                                correlation_id="shared")  # fmt: skip
            assert "target" in await b.error("enqueue", runner_id="mcp.scan", input={"t": 1})
            a_job = mine["job_id"]
            # B sees nothing of A's: not by id, not in lists, not by correlation id
            assert "not found" in await b.error("check", job_id=a_job)
            listed = await b.ok("list_jobs", limit=500)
            assert a_job not in {j["id"] for j in listed["jobs"]}
            session = await b.ok("resume_session", correlation_id="shared")
            assert [j["job"]["id"] for j in session["jobs"]] == [theirs["job_id"]]
            # B's claim takes only B's jobs; B cannot touch A's job with any token
            leases = (await b.ok("claim", limit=100))["leases"]
            assert {le["job"]["id"] for le in leases} == {theirs["job_id"]}
            token = leases[0]["lease_token"]
            for tool, extra in (("heartbeat", {}), ("release", {}),
                                ("complete", {"output": {"findings": []}}),
                                ("fail", {"message": "x"})):  # fmt: skip
                assert "not found" in await b.error(tool, job_id=a_job, lease_token=token, **extra)
            # A's job is untouched and claimable by A, whose trail names A's actor only
            a_leases = (await a.ok("claim", limit=100))["leases"]
            assert a_job in {le["job"]["id"] for le in a_leases}
            assert (await a.ok("check", job_id=a_job))["job"]["lease_holder"] == "mcp:agent-a"
            trail = await a.ok("audit_log", mode="detail", job_id=a_job)
            assert {e["actor"] for e in trail["events"]} == {"agent-a"}
            b_summary = await b.ok("audit_log")
            assert {s["actor"] for s in b_summary["summary"]} == {"agent-b"}
            assert (await b.ok("health"))["tenant"] == "globex"
            done = await b.ok("complete", job_id=theirs["job_id"], lease_token=token,
                              output={"findings": []}, evidence=[{"checked": "b"}])  # fmt: skip
            assert done["state"] == "succeeded"

    anyio.run(scenario)


def test_http_refuses_a_missing_or_unknown_token(http_server: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        accept = {"Accept": "application/json, text/event-stream"}
        response = httpx2.post(http_server, headers={**headers, **accept},
                               json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                     "params": {}})  # fmt: skip
        assert response.status_code == 401, response.text


def test_without_the_sdk_the_command_says_what_to_install(queue_db: Database) -> None:
    """A core install has no MCP SDK: one line naming the extra, exit 2."""
    code = ("import sys; sys.modules['mcp'] = None; from jobforge.cli.app import main; "
            "sys.exit(main(['mcp', '--tenant', 'acme']))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env=_env(queue_db.dsn),
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == "error: jobforge mcp needs the MCP SDK: pip install 'jobforge[mcp]'\n"


PYPROJECT = '[tool.jobforge]\nrunners = ["pricing"]\n'
PRICING = """\
from pydantic import BaseModel

from jobforge import RunContext, runner


class PriceIn(BaseModel):
    sku: str
    qty: int = 1


class PriceOut(BaseModel):
    total: float


@runner("mcp.price", version="1.0.0", input=PriceIn, output=PriceOut, trace_keys=["unit"])
def price(inp: PriceIn, ctx: RunContext) -> PriceOut:
    unit = ctx.decide("unit", UNIT, source="catalog")
    return PriceOut(total=unit * inp.qty)
"""


def test_replay_run_reports_the_divergence(
    cli: Cli, project: Path, queue_db: Database, acme_login: str, jobforge_server: Server
) -> None:
    """A run the worker recorded, replayed by an agent: identical, then (the runner's code
    changed) diverging at its decision, with the report as the tool's result."""
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "pricing.py").write_text(PRICING.replace("UNIT", "10.0"))
    synced = cli("runners", "sync", "--database-url", queue_db.dsn)
    assert synced.code == 0, synced.err
    scratch = {"JOBFORGE_SCRATCH_DATABASE_URL": jobforge_server.dsn}

    async def agent_calls(steps: Any) -> Any:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "jobforge.cli.app", "mcp", "--project", str(project)],
            env=_env(acme_login, JOBFORGE_TENANT="acme", JOBFORGE_ACTOR="agent-r", **scratch),
            cwd=str(project),
        )  # fmt: skip
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await steps(Agent(session))

    async def record_and_replay(agent: Agent) -> tuple[int, Any, Any]:
        made = await agent.ok("enqueue", runner_id="mcp.price", input={"sku": "A", "qty": 3})
        worked = await anyio.to_thread.run_sync(
            lambda: cli(
                "worker", "--exit-when-idle", "--types", "mcp.price", "--database-url", queue_db.dsn
            )
        )
        assert worked.code == 0, worked.err
        same = await agent.ok("replay_run", job_id=made["job_id"])
        return made["job_id"], same, await agent.error("replay_run", job_id=10**9)

    job_id, same, missing = anyio.run(agent_calls, record_and_replay)
    # the runner's code changes; a server imports it once: a new one replays the new code
    for cached in project.rglob("__pycache__"):
        for file in cached.iterdir():
            file.unlink()
    (project / "pricing.py").write_text(PRICING.replace("UNIT", "12.0"))
    assert same["ok"] is True, same
    assert [r["outcome"] for r in same["runs"]] == ["passed"]
    assert "no recorded run" in missing

    async def diverged(agent: Agent) -> Any:
        return await agent.ok("replay_run", job_id=job_id, attempt=1)

    report = anyio.run(agent_calls, diverged)
    assert report["ok"] is False, report
    (run,) = report["runs"]
    assert run["outcome"] == "failed"
    assert any("unit" in f for f in run["findings"]), run
