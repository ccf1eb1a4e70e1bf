"""`jobforge keys`, `jobforge tokens` and `jobforge enqueue --sign/--token/--timeout` as a
subprocess: a key generated (0600), registered, used to sign a job the worker then runs,
revoked, rotated; a token issued and used; and the error paths, each one line with its exit
code (2 usage or configuration, 1 what was asked for is not there)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobforge.provision import Database
from tests.e2e.conftest import Cli, Run
from tests.integration.conftest import new_app_login

pytestmark = pytest.mark.slow

PYPROJECT = """\
[tool.jobforge]
runners = ["payments"]
"""

RUNNERS = """\
from pydantic import BaseModel

from jobforge import RunContext, runner


class PayIn(BaseModel):
    amount: int


class PayOut(BaseModel):
    paid: int


@runner("pay.signed", version="1.0.0", input=PayIn, output=PayOut, signed=True, timeout_s=30)
def signed(inp: PayIn, ctx: RunContext) -> PayOut:
    return PayOut(paid=inp.amount)


@runner("pay.refund", version="1.0.0", input=PayIn, output=PayOut,
        requires_scopes=["payments:refund"])
def refund(inp: PayIn, ctx: RunContext) -> PayOut:
    return PayOut(paid=-inp.amount)
"""

SECRET = "k1:" + "A" * 43  # 32 zero bytes, base64url


@pytest.fixture
def app_login(jobforge_db: Database) -> Iterator[str]:
    """A fresh app login (member of jobforge_app only): it may enqueue, not manage keys."""
    with new_app_login(jobforge_db) as url:
        yield url


@pytest.fixture
def repo(project: Path) -> Path:
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "payments.py").write_text(RUNNERS)
    return project


def _db(db: Database, *args: str) -> tuple[str, ...]:
    return (*args, "--database-url", db.dsn, "--tenant", "acme")


def _error(run: Run, code: int = 2) -> str:
    assert run.code == code, run.out + run.err
    assert run.err.startswith("error:"), run.err
    assert len(run.err.strip().splitlines()) == 1, run.err
    return run.err


def _jobs(cli: Cli, db: Database) -> dict[int, dict[str, Any]]:
    run = cli(*_db(db, "jobs", "list", "--json"))
    assert run.code == 0, run.err
    return {j["id"]: j for j in json.loads(run.out)["jobs"]}


def test_keys_sign_a_job_the_worker_runs_then_revocation_and_rotation(
    cli: Cli, repo: Path, jobforge_db: Database
) -> None:
    made = cli("keys", "generate", "k1", "--json")
    assert made.code == 0, made.err
    info = json.loads(made.out)
    assert stat.S_IMODE((repo / "k1").stat().st_mode) == 0o600
    assert (repo / "k1.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in made.out
    assert "exists" in _error(cli("keys", "generate", "k1"))

    added = cli(*_db(jobforge_db, "keys", "add", "k1.pub", "--owner", "billing"))
    assert added.code == 0, added.err
    assert added.out.strip() == f"key {info['key_id']} added"
    listed = json.loads(cli(*_db(jobforge_db, "keys", "list", "--json")).out)
    assert [(k["key_id"], k["public_key"]) for k in listed] == [(info["key_id"],
                                                                 info["public_key"])]  # fmt: skip

    assert "runs signed jobs only" in _error(cli(*_db(jobforge_db, "enqueue", "pay.signed",
                                                      '{"amount": 3}')))  # fmt: skip
    too_long = _db(jobforge_db, "enqueue", "pay.signed", '{"amount": 3}', "--sign", "k1",
                   "--timeout", "31")  # fmt: skip
    assert "above the runner's bound of 30 s" in _error(cli(*too_long))
    good = cli(*_db(jobforge_db, "enqueue", "pay.signed", '{"amount": 3}', "--sign", "k1",
                    "--timeout", "5", "--json"))  # fmt: skip
    assert good.code == 0, good.err
    job_id = json.loads(good.out)["job_id"]
    worker = cli("worker", "--exit-when-idle", "--database-url", jobforge_db.dsn)
    assert worker.code == 0, worker.err
    assert _jobs(cli, jobforge_db)[job_id]["status"] == "succeeded"

    revoked = cli(*_db(jobforge_db, "keys", "revoke", info["key_id"], "--reason", "leaked"))
    assert revoked.out.strip() == f"key {info['key_id']} revoked"
    again = cli(*_db(jobforge_db, "keys", "revoke", info["key_id"]))
    assert again.out.strip() == f"key {info['key_id']} was already revoked"
    late = cli(*_db(jobforge_db, "enqueue", "pay.signed", '{"amount": 4}', "--sign", "k1",
                    "--json"))  # fmt: skip
    late_id = json.loads(late.out)["job_id"]
    assert cli("worker", "--exit-when-idle", "--database-url", jobforge_db.dsn).code == 0
    refused = _jobs(cli, jobforge_db)[late_id]
    assert refused["status"] == "failed"
    assert refused["error"]["reason"] == "revoked_key"
    assert refused["error"]["key_id"] == info["key_id"]


def test_keys_rotate_and_the_registry_refusals(cli: Cli, repo: Path, jobforge_db: Database) -> None:
    for name in ("k1", "k2", "k3"):
        assert cli("keys", "generate", name).code == 0
    assert (
        cli(*_db(jobforge_db, "keys", "add", "k1.pub", "--owner", "a", "--key-id", "one")).code == 0
    )
    assert cli(*_db(jobforge_db, "keys", "revoke", "one")).code == 0
    assert "no signing key 'nope'" in _error(cli(*_db(jobforge_db, "keys", "revoke", "nope")), 1)
    assert "is revoked" in _error(cli(*_db(jobforge_db, "keys", "rotate", "one", "k2.pub")), 1)
    assert (
        cli(*_db(jobforge_db, "keys", "add", "k2.pub", "--owner", "b", "--key-id", "two")).code == 0
    )
    rotated = cli(*_db(jobforge_db, "keys", "rotate", "two", "k3.pub", "--key-id", "three",
                       "--overlap", "1h"))  # fmt: skip
    assert rotated.code == 0, rotated.err
    assert rotated.out.startswith("key three added; two valid until ")
    assert "never reused" in _error(cli(*_db(jobforge_db, "keys", "add", "k1.pub", "--owner", "x",
                                             "--key-id", "three")), 1)  # fmt: skip


def test_key_errors_are_one_line(cli: Cli, repo: Path, jobforge_db: Database,
                                 app_login: str) -> None:  # fmt: skip
    (repo / "junk.pem").write_text("not a key")
    assert "cannot read" in _error(cli(*_db(jobforge_db, "enqueue", "pay.signed",
                                            '{"amount": 1}', "--sign", "missing")))  # fmt: skip
    assert "not an unencrypted PEM private key" in _error(
        cli(*_db(jobforge_db, "enqueue", "pay.signed", '{"amount": 1}', "--sign", "junk.pem"))
    )
    assert "neither a key file nor a base64url" in _error(
        cli(*_db(jobforge_db, "keys", "add", "AAAA", "--owner", "x"))
    )
    assert cli("keys", "generate", "k1").code == 0
    denied = cli("keys", "add", "k1.pub", "--owner", "x", "--tenant", "acme",
                 "--database-url", app_login)  # fmt: skip
    assert "only a superuser or a member of jobforge_worker" in _error(denied)
    assert "--sign-key-id names more keys" in _error(
        cli(*_db(jobforge_db, "enqueue", "pay.signed", '{"amount": 1}', "--sign-key-id", "a"))
    )


def test_tokens_issue_and_enqueue_with_a_token(cli: Cli, repo: Path, jobforge_db: Database) -> None:
    made = cli("tokens", "secret", "--kid", "k9")
    assert made.code == 0
    assert made.out.startswith("k9:")
    unkeyed = cli("tokens", "issue", "--action", "pay.refund", "--scope", "payments:refund",
                  "--tenant", "acme")  # fmt: skip
    assert "no token keys" in _error(unkeyed)
    env = {"JOBFORGE_TOKEN_KEYS": SECRET, "JOBFORGE_TOKEN_AUDIENCE": "payments"}
    assert "at least 32" in _error(cli("tokens", "issue", "--action", "a", "--scope", "s",
                                       "--tenant", "acme",
                                       env={"JOBFORGE_TOKEN_KEYS": "k:AAAA"}))  # fmt: skip
    issued = cli("tokens", "issue", "--action", "pay.refund", "--scope", "payments:refund",
                 "--tenant", "acme", "--ttl", "10m", env=env)  # fmt: skip
    assert issued.code == 0, issued.err
    token = issued.out.strip()
    assert token.count(".") == 2

    assert "requires a policy token" in _error(cli(*_db(jobforge_db, "enqueue", "pay.refund",
                                                        '{"amount": 2}')))  # fmt: skip
    narrow = cli("tokens", "issue", "--action", "pay.refund", "--scope", "orders:read",
                 "--tenant", "acme", env=env).out.strip()  # fmt: skip
    assert "lacks scope payments:refund" in _error(
        cli(*_db(jobforge_db, "enqueue", "pay.refund", '{"amount": 2}', "--token", narrow))
    )
    good = cli(*_db(jobforge_db, "enqueue", "pay.refund", '{"amount": 2}', "--token", token,
                    "--json"))  # fmt: skip
    assert good.code == 0, good.err
    job_id = json.loads(good.out)["job_id"]
    worker = cli("worker", "--exit-when-idle", "--database-url", jobforge_db.dsn, env=env)
    assert worker.code == 0, worker.err
    assert _jobs(cli, jobforge_db)[job_id]["status"] == "succeeded"
    runs = cli(*_db(jobforge_db, "runs", "list", "--json"))
    assert token not in runs.out
    shown = cli(*_db(jobforge_db, "jobs", "show", str(job_id), "--json"))
    assert token not in shown.out
    envelope = json.loads(shown.out)["job"]["envelope"]
    assert envelope["token_sha256"].startswith("sha256:")
