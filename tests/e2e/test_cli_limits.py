"""`jobforge limits set|list|clear` as a subprocess against a migrated throwaway database: the
round trip, one-line errors for bad values (told before any connection), and a login that may
not manage limits."""

from __future__ import annotations

import json

import pytest

from jobforge.provision import Database
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

#: No server answers here: a value checked before connecting never reaches it.
NOWHERE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"


def test_set_list_clear(cli: Cli, jobforge_db: Database) -> None:
    url = ("--database-url", jobforge_db.dsn)
    made = cli("limits", "set", "type", "ops.scan", "--max-running", "4", "--rate", "2.5", *url)
    assert made.code == 0, made.err
    assert "ops.scan" in made.out
    assert cli("limits", "set", "tenant", "acme", "--max-running", "10", *url).code == 0
    listed = json.loads(cli("limits", "list", "--json", *url).out)
    assert listed == [
        {"scope": "tenant", "key": "acme", "max_running": 10, "rate_per_s": None, "burst": None},
        {"scope": "type", "key": "ops.scan", "max_running": 4, "rate_per_s": 2.5, "burst": 2.5},
    ]
    cleared = cli("limits", "clear", "type", "ops.scan", *url)
    assert (cleared.code, cleared.out.strip()) == (0, "cleared the limits of type ops.scan")
    again = cli("limits", "clear", "type", "ops.scan", *url)
    assert again.out.strip() == "type ops.scan had no limits"
    assert [x["key"] for x in json.loads(cli("limits", "list", "--json", *url).out)] == ["acme"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "planet", "x", "--max-running", "1"),
         "error: unknown limit scope 'planet': choose one of type, tenant"),
        (("set", "type", "ops.scan", "--max-running", "0"),
         "error: --max-running 0 is out of range: give 1-1000000"),
        (("set", "type", "ops.scan", "--max-running", "-2"),
         "error: --max-running -2 is out of range: give 1-1000000"),
        (("set", "type", "ops.scan", "--rate", "0"),
         "error: --rate 0 is out of range: give 0.000001-1000000"),
        (("set", "type", "ops.scan", "--rate", "-1"),
         "error: --rate -1 is out of range: give 0.000001-1000000"),
        (("set", "type", "ops.scan", "--rate", "5e-324"),
         "error: --rate 4.94066e-324 is out of range: give 0.000001-1000000"),
        (("set", "tenant", "acme", "--rate", "5"),
         "error: --rate is per job type: a tenant takes --max-running"),
        (("set", "type", "ops.scan"), "error: a limit needs --max-running or --rate (or both)"),
        (("set", "type", "ops.scan", "--max-running", "1", "--burst", "3"),
         "error: --burst needs --rate"),
        (("clear", "planet", "x"),
         "error: unknown limit scope 'planet': choose one of type, tenant"),
    ],
)  # fmt: skip
def test_a_bad_value_is_one_line_before_any_connection(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    run = cli("limits", *args, "--database-url", NOWHERE)
    assert run.code == 2, run.out + run.err
    assert run.err.strip() == message


def test_the_database_refuses_a_bad_key_in_one_line(cli: Cli, jobforge_db: Database) -> None:
    run = cli("limits", "set", "type", "Not A Type", "--max-running", "1",
              "--database-url", jobforge_db.dsn)  # fmt: skip
    assert run.code == 2, run.out + run.err
    assert run.err.strip() == "error: limit key 'Not A Type' is not a valid job type"


def test_an_app_login_may_not_manage_limits(cli: Cli, app_login: str) -> None:
    for args in (("set", "tenant", "acme", "--max-running", "1000"), ("list",)):
        run = cli("limits", *args, "--database-url", app_login)
        assert run.code == 2, run.out + run.err
        assert run.err.startswith(
            "error: only a superuser or a member of jobforge_worker may manage queue limits ("
        )
        assert len(run.err.strip().splitlines()) == 1
