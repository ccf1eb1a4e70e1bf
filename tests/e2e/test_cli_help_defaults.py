"""`--help` states each default where the README used to be the only place saying it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT = (
    "$JOBFORGE_DATABASE_URL, else the development server of this project (`jobforge db start`)"
)
COMMANDS = [
    ("migrate",), ("enqueue",), ("jobs", "list"), ("jobs", "show"), ("jobs", "cancel"),
    ("jobs", "retry"), ("runs", "list"), ("runs", "show"), ("runs", "artifacts"),
    ("runs", "export"), ("replay",),
    ("worker",), ("doctor",),
]  # fmt: skip


def _flat(text: str) -> str:
    """The help text with rich's panel borders and line breaks taken out."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_database_url_states_its_default(cli: Cli, command: tuple[str, ...]) -> None:
    result = cli(*command, "--help", env={"COLUMNS": "400"})
    assert result.code == 0, result.err
    assert "see README" not in result.out
    assert DEFAULT in _flat(result.out), result.out


def test_db_start_port_default_agrees_with_the_code(cli: Cli) -> None:
    text = _flat(cli("db", "start", "--help", env={"COLUMNS": "400"}).out)
    assert "default: $JOBFORGE_DEV_PORT, else 54329; a free one when that is taken" in text
    assert "default: a free one)" not in text


def test_exit_when_idle_says_a_later_retry_stays_queued(cli: Cli) -> None:
    text = _flat(cli("worker", "--help", env={"COLUMNS": "400"}).out)
    assert "a retry waiting out its backoff too, is left queued" in text


def test_readme_enqueue_and_replay_examples_name_a_tenant() -> None:
    text = README.read_text()
    synopsis = text[text.index("- `jobforge enqueue TYPE") :].split("`:", 1)[0]
    assert "--tenant T" in synopsis
    block = text[text.index("## Replay of recorded runs") :].split("```bash", 1)[1].split("```")[0]
    for line in block.splitlines():
        if "--database-url" in line:
            assert "--tenant" in line, line
