"""The CLI's error contract without a server: exit 2, one `error:` line on stderr, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli

NARROW = {"COLUMNS": "30"}  # an error line must not be wrapped, however narrow the terminal


def _one_error_line(err: str) -> str:
    assert err.startswith("error: "), err
    assert err.endswith("\n"), err
    assert err.count("\n") == 1, f"not one line: {err!r}"
    return err


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        pytest.param(("db", "url"), {}, "not running", id="db-url-stopped"),
        pytest.param(("migrate",), {}, "no database", id="migrate-no-target"),
        pytest.param(
            ("migrate", "--database-url", "postgresql://u@127.0.0.1:1/x"),
            {},
            "127.0.0.1:1/x",
            id="migrate-option-unreachable",
        ),
        pytest.param(
            ("migrate",),
            {"JOBFORGE_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"},
            "127.0.0.1:1/x",
            id="migrate-env-unreachable",
        ),
        pytest.param(
            ("migrate", "--database-url", "nonsense"),
            {},
            "invalid database URL",
            id="migrate-malformed-url",
        ),
        pytest.param(
            ("certify", str(Path(__file__).resolve().parents[2] / "examples")),
            {"JOBFORGE_REDACTION_KEY": "too-short"},
            "JOBFORGE_REDACTION_KEY must be at least 16 bytes (it is 9)",
            id="certify-short-redaction-key",
        ),
    ],
)
def test_errors_are_one_line_on_stderr(
    cli: Cli, args: tuple[str, ...], env: dict[str, str], names: str
) -> None:
    result = cli(*args, env={**NARROW, **env})
    assert result.code == 2, result
    assert result.out == ""
    assert names in _one_error_line(result.err)


def test_a_worker_refuses_a_short_redaction_key_before_it_starts(cli: Cli) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    result = cli("worker", "--database-url", "postgresql://u@127.0.0.1:1/x", "--exit-when-idle",
                 env={"JOBFORGE_REDACTION_KEY": "too-short"}, cwd=examples)  # fmt: skip
    assert result.code == 2, result
    assert "JOBFORGE_REDACTION_KEY must be at least 16 bytes (it is 9)" in _one_error_line(
        result.err
    )


@pytest.mark.parametrize("port", ["0", "65536"])
def test_an_impossible_port_is_a_usage_error_before_anything_is_created(
    cli: Cli, project: Path, port: str
) -> None:
    result = cli("db", "start", "--port", port)
    assert result.code == 2, result
    assert "--port" in result.err
    assert not (project / ".jobforge").exists()  # no initdb ran for a request that cannot work


def test_an_unknown_provider_from_the_environment(cli: Cli) -> None:
    result = cli("doctor", "--no-start", "--format", "json", env={"JOBFORGE_PROVIDER": "nope"})
    assert result.code == 2
    report = json.loads(result.out)
    assert report["ok"] is False
    assert report["provider"] is None
    assert "JOBFORGE_PROVIDER" in report["checks"][0]["detail"]


def test_brackets_in_a_url_do_not_crash_the_error_message(cli: Cli) -> None:
    result = cli("migrate", "--database-url", "postgresql://[/]x")  # asserts: no traceback
    assert result.code == 2


def test_brackets_in_a_url_are_printed_as_given(cli: Cli) -> None:
    # (an unreadable URL is never quoted back: libpq's words would show its password)
    result = cli("migrate", "--database-url", "host=[bold]h port=1 dbname=x")
    assert result.code == 2
    assert "[bold]h" in result.err


def test_a_malformed_url_does_not_echo_its_password(cli: Cli) -> None:
    result = cli("migrate", "--database-url", "postgresql://u:s3cret@[::1/x")
    assert result.code == 2
    assert "invalid database URL" in result.err
    assert "s3cret" not in result.err
