"""A new user's mistakes in the plugin's options, each answered in one line before anything runs.

A value of a `--jobforge-*` option (or of its ini twin) that cannot mean anything is a pytest
usage error (exit code 4, pytest's convention for a bad command line): the option, the value and
what is allowed. A `golden/` folder in a project without `[tool.jobforge]` gets a hint in the
terminal summary instead of a silent "no tests ran". Only the standard library and pytest are
imported here unless an option that needs more is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

_YES = ("yes", "true", "on", "1")
_NO = ("no", "false", "off", "0")


def _given(config: pytest.Config, name: str) -> tuple[str, str] | None:
    """The value of --jobforge-NAME, or else of its ini twin, and how to name it in a message."""
    value = config.getoption(f"jobforge_{name}")
    if value:
        return str(value), f"--jobforge-{name.replace('_', '-')}"
    value = config.getini(f"jobforge_{name}")
    if value:
        return str(value), f"ini option jobforge_{name}"
    return None


def check_options(config: pytest.Config) -> None:
    """Raise `pytest.UsageError` naming the first option whose value is not valid."""
    for name in ("fresh", "strict"):
        if (given := _given(config, name)) and given[0].strip().lower() not in (*_YES, *_NO):
            _refuse(given, "use yes or no")
    if given := _given(config, "runs"):
        try:
            runs = int(given[0])
        except ValueError:
            runs = 0
        if runs < 1:
            _refuse(given, "use a whole number of runs, 1 or more")
    if given := _given(config, "golden_dir"):
        folder = Path(given[0]).resolve()
        if not folder.is_dir():
            _refuse(given, f"no such folder ({folder})")
    for name in ("refresh", "refresh_failures"):  # pytest's own bool ini parsing raises
        try:
            config.getini(f"jobforge_{name}")
        # "invalid truth value 'maybe'": a ValueError up to pytest 9.1, a UsageError since 9.2,
        # and neither names the option
        except (ValueError, pytest.UsageError) as exc:
            if "unknown configuration value" not in str(exc):
                raise pytest.UsageError(
                    f"jobforge: ini option jobforge_{name}: {exc}; use true or false"
                ) from None
    if given := _given(config, "provider"):
        from jobforge.errors import ConfigurationError
        from jobforge.provision.choose import PROVIDERS, resolve_provider

        try:
            resolve_provider(given[0])
        except ConfigurationError:
            _refuse(given, f"use one of {', '.join(PROVIDERS)}")
    if given := _given(config, "database_url"):
        from jobforge.db import describe
        from jobforge.errors import ConfigurationError

        try:
            describe(given[0])
        except ConfigurationError as exc:  # the message never shows a password
            raise pytest.UsageError(f"jobforge: {given[1]}: {exc}") from None


def bundles_folder(folder: Path, value: str) -> None:
    """--jobforge-bundles names a folder that must exist (as resolved against the project)."""
    if not folder.is_dir():
        _refuse((value, "--jobforge-bundles"), f"no such folder ({folder})")


def _refuse(given: tuple[str, str], allowed: str) -> None:
    value, where = given
    raise pytest.UsageError(f"jobforge: {where} {value!r} is not valid: {allowed}")


class UnconfiguredHint:
    """Registered when a project has golden cases but no `[tool.jobforge]`: says so at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.section("jobforge")
        terminalreporter.write_line(
            f"jobforge: {self.folder.name}/ holds golden cases, but pyproject.toml has no "
            "[tool.jobforge] table, so none were collected: add [tool.jobforge] with runners = "
            '["your.runner.module"] (see the README)'
        )


def golden_without_config(root: Path) -> Path | None:
    """`golden/` under `root` when it holds a `<runner_id>/<case>.json` (looked for without
    reading the whole tree: a few folders at most)."""
    folder = root / "golden"
    if not folder.is_dir():
        return None
    try:
        for count, runner_dir in enumerate(p for p in folder.iterdir() if p.is_dir()):
            if count >= 20:
                break
            if any(runner_dir.glob("*.json")):
                return folder
    except OSError:
        return None
    return None
