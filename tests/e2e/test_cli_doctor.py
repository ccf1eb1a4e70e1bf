"""`jobforge doctor` and the CLI's usage errors."""

from __future__ import annotations

import json

import pytest

from jobforge import migrate
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow


def test_doctor_provisions_and_reports(cli: Cli) -> None:
    result = cli("doctor")
    assert result.code == 0, result.out + result.err
    assert "local" in result.out
    assert "fresh database" in result.out
    assert "all good" in result.out


def test_doctor_json(cli: Cli) -> None:
    result = cli("doctor", "--format", "json")
    report = json.loads(result.out)
    assert report["ok"] is True
    assert report["provider"] == "local"
    assert report["figures"]["server_start_s"] > 0


def test_doctor_without_starting(cli: Cli) -> None:
    result = cli("doctor", "--no-start", "--format", "json")
    assert result.code == 0
    assert json.loads(result.out)["figures"] == {}


def test_doctor_with_an_unknown_provider(cli: Cli) -> None:
    result = cli("doctor", "--provider", "nope")
    assert result.code == 2
    assert "unknown provider 'nope'" in result.out


def test_doctor_with_an_unreachable_url(cli: Cli) -> None:
    result = cli("doctor", env={"JOBFORGE_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
    assert result.code == 1
    assert "127.0.0.1:1" in result.out


def test_doctor_reports_migrations_of_the_urls_database(cli: Cli) -> None:
    assert cli("db", "start").code == 0  # which migrates it (pending ones: test_cli_unready_db)
    url = cli("db", "url").out.strip()
    doctor = cli("doctor", env={"JOBFORGE_DATABASE_URL": url})
    assert doctor.code == 0, doctor.out
    shipped = migrate.discover()
    assert f"{len(shipped)} applied, up to date (latest {shipped[-1].name})" in doctor.out


def test_unknown_command_is_a_usage_error(cli: Cli) -> None:
    assert cli("nosuch").code == 2
    assert cli("--help").code == 0
