"""Recorded HTTP to an allowed IP literal, as subprocesses: `jobforge worker --http-allow-host
127.0.0.1` records a runner's exchange with a server on 127.0.0.1; the run, exported as a bundle
and as a golden case, then replays identically through `jobforge replay`, `jobforge certify` and
the pytest plugin's golden items, without any allow-host setting (a recorded exchange opens no
socket) and with one (`--http-allow-host`, `--jobforge-http-allow-host`, `[tool.jobforge]
http_allow_hosts`), and never reaches the server again. A request the recording does not have is
refused offline, and the refusal names the setting of the command that ran it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

import jobforge
from jobforge.provision import Database, Server
from tests.e2e.conftest import Cli, Run

PYPROJECT = """\
[tool.jobforge]
runners = ["rates"]
"""

RUNNER = """\
from pydantic import BaseModel

from jobforge import RunContext, runner


class RateIn(BaseModel):
    base: str
    currency: str


class RateOut(BaseModel):
    rate: float


@runner("e2e.rate", version="1.0.0", input=RateIn, output=RateOut, trace_keys=["rate"])
def rate(inp: RateIn, ctx: RunContext) -> RateOut:
    answer = ctx.http.get(f"{inp.base}/PATH", params={"currency": inp.currency})
    return RateOut(rate=ctx.decide("rate", answer.json()["rate"], source="rates api"))
"""


class _Rates(BaseHTTPRequestHandler):
    calls: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.calls.append(self.path)
        body = json.dumps({"rate": 1.0825}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def rates_api() -> Iterator[str]:
    _Rates.calls = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Rates)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()


def _write_runner(project: Path, path: str = "v1/rate") -> None:
    (project / "rates.py").write_text(RUNNER.replace("PATH", path))
    for cached in project.rglob("__pycache__"):
        for file in cached.iterdir():
            file.unlink()


@pytest.fixture
def recorded(cli: Cli, project: Path, jobforge_db: Database, jobforge_server: Server,
             rates_api: str) -> dict[str, Any]:  # fmt: skip
    """One run recorded by `jobforge worker --http-allow-host 127.0.0.1`, exported as a bundle
    and as a golden case, the contract locked."""
    (project / "pyproject.toml").write_text(PYPROJECT)
    _write_runner(project)
    url = jobforge_db.dsn
    payload = json.dumps({"base": rates_api, "currency": "EUR"})
    enqueued = cli("enqueue", "e2e.rate", payload, "--database-url", url,
                   env={"JOBFORGE_TENANT": "acme"})  # fmt: skip
    assert enqueued.code == 0, enqueued.err
    worker = cli("worker", "--exit-when-idle", "--database-url", url,
                 "--http-allow-host", "127.0.0.1")  # fmt: skip
    assert worker.code == 0, worker.out + worker.err
    assert _Rates.calls == ["/v1/rate?currency=EUR"]
    listed = cli("runs", "list", "--database-url", url, "--json")
    (run,) = json.loads(listed.out)
    assert run["status"] == "succeeded", run
    exported = cli("runs", "export", "--type", "e2e.rate", "--database-url", url)
    assert exported.code == 0, exported.out + exported.err
    promoted = cli("runs", "export", "--type", "e2e.rate", "--to", "golden", "--database-url", url)
    assert promoted.code == 0, promoted.out + promoted.err
    (bundle,) = sorted((project / "bundles").glob("*.json"))
    assert "127.0.0.1" in bundle.read_text()
    (case,) = sorted((project / "golden" / "e2e.rate").glob("*.json"))
    locked = cli("contracts", "lock")
    assert locked.code == 0, locked.out + locked.err
    return {"server": {"JOBFORGE_SCRATCH_DATABASE_URL": jobforge_server.dsn},
            "scratch": jobforge_server.dsn, "case": case}  # fmt: skip


def _pytest(project: Path, scratch: str, *args: str) -> Run:
    """The pytest plugin's golden items of the project, in a subprocess (jobforge under test)."""
    here = str(Path(jobforge.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFORGE_") and k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    env["COLUMNS"] = "400"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:benchmark",
         f"--jobforge-database-url={scratch}", "--jobforge-runs", "1", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return Run(result.returncode, result.stdout, result.stderr)


def test_a_recording_to_an_allowed_ip_literal_replays_everywhere_without_the_flag(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    server = recorded["server"]
    replayed = cli("replay", "bundles", env=server)
    assert replayed.code == 0, replayed.out + replayed.err
    certified = cli("certify", ".", env=server)
    assert certified.code == 0, certified.out + certified.err
    golden = _pytest(project, recorded["scratch"])
    assert golden.code == 0, golden.out + golden.err
    assert "1 passed" in golden.out
    assert _Rates.calls == ["/v1/rate?currency=EUR"]  # none of them reached the server


def test_the_allow_host_setting_is_accepted_by_replay_certify_and_pytest(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    server = recorded["server"]
    replayed = cli("replay", "bundles", "--http-allow-host", "127.0.0.1",
                   "--http-allow-host", "10.0.0.1", env=server)  # fmt: skip
    assert replayed.code == 0, replayed.out + replayed.err
    certified = cli("certify", ".", "--http-allow-host", "127.0.0.1", env=server)
    assert certified.code == 0, certified.out + certified.err
    golden = _pytest(project, recorded["scratch"], "--jobforge-http-allow-host", "127.0.0.1")
    assert golden.code == 0, golden.out + golden.err
    (project / "pyproject.toml").write_text(PYPROJECT + 'http_allow_hosts = ["127.0.0.1"]\n')
    assert cli("replay", "bundles", env=server).code == 0
    assert _pytest(project, recorded["scratch"]).code == 0
    assert _Rates.calls == ["/v1/rate?currency=EUR"]


def test_an_unrecorded_request_is_refused_naming_each_commands_own_setting(
    cli: Cli, project: Path, recorded: dict[str, Any]
) -> None:
    server = recorded["server"]
    _write_runner(project, path="v2/rate")  # the code now asks for what was never recorded

    replayed = cli("replay", "bundles", env=server)
    assert replayed.code == 1, replayed.out + replayed.err
    assert "pass --http-allow-host 127.0.0.1 to jobforge replay" in replayed.out, replayed.out
    assert "HttpPolicy" not in replayed.out

    certified = cli("certify", ".", "--no-fresh", env=server)
    assert certified.code == 1, certified.out + certified.err
    assert "pass --http-allow-host 127.0.0.1 to jobforge certify" in certified.out, certified.out

    golden = _pytest(project, recorded["scratch"], "--jobforge-fresh", "no")
    assert golden.code == 1, golden.out + golden.err
    assert "pass --jobforge-http-allow-host 127.0.0.1 to pytest" in golden.out, golden.out

    # with the host allowed, as the worker had it: an unrecorded request, not a refusal
    allowed = cli("replay", "bundles", "--http-allow-host", "127.0.0.1", env=server)
    assert allowed.code == 1
    assert "no recorded HTTP exchange matches GET http://127.0.0.1:" in allowed.out, allowed.out
    assert "refused" not in allowed.out
    assert _Rates.calls == ["/v1/rate?currency=EUR"]
