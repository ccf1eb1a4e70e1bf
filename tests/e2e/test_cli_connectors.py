"""`jobforge connectors set|list|test|rm` as subprocesses: a tenant's connector configs set
from a flag, a file or an environment variable, listed with every secret value shown as
[redacted] (text and JSON), tested (the config as the runners read it, and its URL through
the SSRF guard), removed; another tenant sees none of them; one-line errors, exit 2 for bad
input (told before any connection) and 1 for a failed test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jobforge.provision import Database
from tests.e2e.conftest import Cli, Run

pytestmark = pytest.mark.slow

#: No server answers here: a value checked before connecting never reaches it.
NOWHERE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TOKEN = "tok-LIVE-5e1f"


class _Ok(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def site() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hooks"
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()


def one_line_error(run: Run, code: int = 2) -> str:
    assert run.code == code, run.out + run.err
    assert run.err.startswith("error:"), run.err
    assert len(run.err.strip().splitlines()) == 1, run.err
    return run.err


def connectors(cli: Cli, url: str, *args: str, tenant: str = "acme",
               env: dict[str, str] | None = None) -> Run:  # fmt: skip
    return cli("connectors", *args, "--database-url", url, "--tenant", tenant, env=env)


def test_set_list_test_and_remove(
    cli: Cli, jobforge_db: Database, project: Path, site: str
) -> None:
    dsn = jobforge_db.dsn
    run = connectors(cli, dsn, "set", "hooks", "--set", f"url={site}", "--secret-env",
                     "secret=HOOK_SECRET", env={"HOOK_SECRET": SECRET})  # fmt: skip
    assert run.code == 0, run.err
    assert "connector hooks set" in run.out
    assert '"secret": "[redacted]"' in run.out
    (project / "api.json").write_text(json.dumps(
        {"allow_hosts": ["api.example.com"], "headers": {"authorization": f"Bearer {TOKEN}"}}
    ))  # fmt: skip
    assert connectors(cli, dsn, "set", "api", "--config-file", "api.json").code == 0

    listed = connectors(cli, dsn, "list")
    assert listed.code == 0, listed.err
    assert "hooks" in listed.out
    assert "api" in listed.out
    as_json = connectors(cli, dsn, "list", "--json")
    rows = {r["name"]: r["config"] for r in json.loads(as_json.out)["connectors"]}
    assert rows == {
        "api": {"allow_hosts": ["api.example.com"], "headers": {"authorization": "[redacted]"}},
        "hooks": {"secret": "[redacted]", "url": site},
    }
    for run in (listed, as_json):
        assert SECRET.removeprefix("whsec_") not in run.out + run.err
        assert TOKEN not in run.out + run.err

    # the receiver answers through the guard once its host is allowed, as a worker's would
    tested = connectors(cli, dsn, "test", "hooks", "--http-allow-host", "127.0.0.1")
    assert tested.code == 0, tested.out + tested.err
    assert "ok   config" in tested.out
    assert "answered 204" in tested.out
    # without it, the guard refuses the loopback address: the test fails, with the reason
    refused = connectors(cli, dsn, "test", "hooks", "--json")
    assert refused.code == 1, refused.out + refused.err
    report = json.loads(refused.out)
    assert report["ok"] is False
    detail = report["checks"][1]["detail"]
    assert "a loopback address" in detail
    assert "--http-allow-host 127.0.0.1 to jobforge connectors test" in detail

    # another tenant sees none of acme's connectors
    other = connectors(cli, dsn, "list", tenant="other")
    assert (other.code, other.out.strip()) == (0, "no connectors")
    missing = connectors(cli, dsn, "test", "hooks", tenant="other")
    assert "connector 'hooks' not found" in one_line_error(missing, 1)

    assert connectors(cli, dsn, "rm", "api").code == 0
    assert "connector 'api' not found" in one_line_error(connectors(cli, dsn, "rm", "api"), 1)


def test_a_config_the_runners_would_refuse_fails_its_test(cli: Cli, jobforge_db: Database) -> None:
    dsn = jobforge_db.dsn
    with jobforge_db.connect() as conn:  # written by the owner, past the CLI's own checks
        conn.execute(
            "INSERT INTO jobforge.connector_configs VALUES ('acme', 'old', %s, now())",
            (json.dumps({"secret": "not-a-whsec", "headers": {"x-tenant": "acme"}}),),
        )
    run = connectors(cli, dsn, "test", "old")
    assert run.code == 1, run.out + run.err
    assert "FAIL config" in run.out
    assert "whsec_<base64>" in run.out
    assert "x-tenant would be recorded in clear" in run.out
    assert "not-a-whsec" not in run.out


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("set", "Bad Name", "--set", "a=b"), None, "connector name 'Bad Name' is invalid"),
        (("set", "hooks"), None, "give the config: --config JSON"),
        (("set", "hooks", "--config", "[1]"), None, "the config must be a JSON object, not list"),
        (("set", "hooks", "--set", "novalue"), None, "--set 'novalue': write KEY=VALUE"),
        (
            ("set", "hooks", "--secret-env", "secret=UNSET_VAR"),
            None,
            "--secret-env secret=UNSET_VAR: UNSET_VAR is not set",
        ),
        (
            ("set", "hooks", "--set", "secret=plain"),
            None,
            "connector hooks: the secret must be written whsec_<base64>",
        ),
        (
            ("set", "hooks", "--config", '{"allow_hosts": "x"}'),
            None,
            "allow_hosts must be a list of host names",
        ),
        (
            ("set", "hooks", "--config", '{"x": "' + "y" * 70000 + '"}'),
            None,
            "over the limit of 65536",
        ),
        (
            ("set", "hooks", "--secret-env", "secret=HOOK_SECRET"),
            {"HOOK_SECRET": SECRET},
            "connector hooks: it names no host to sign for: give it allow_hosts",
        ),
        (("test", "hooks", "--url", "ftp://x"), None, "--url 'ftp://x': must be an absolute"),
    ],
)
def test_bad_input_is_one_line_before_any_connection(
    cli: Cli, args: tuple[str, ...], env: dict[str, str] | None, message: str
) -> None:
    run = connectors(cli, NOWHERE, *args, env=env)
    assert message in one_line_error(run), run.err
    assert "secret=plain" not in run.err.replace("--set secret=plain", "")


def test_a_tenant_is_required(cli: Cli) -> None:
    run = cli("connectors", "list", "--database-url", NOWHERE)
    assert "tenant" in one_line_error(run)
