"""Playwright (pytest-playwright) driving the system's Chromium: no browser download.

The browser is Debian's `chromium` (`apt-get install chromium`), found on PATH or by
$JOBFORGE_CHROMIUM. Without one the browser tests skip in one line, unless
$JOBFORGE_REQUIRE_BROWSER=1 (set by CI), where a missing browser fails them. Screenshots go to
$JOBFORGE_SCREENSHOTS (default: `dashboard-screenshots` under pytest's basetemp).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

#: Where a chromium executable may be, beside $JOBFORGE_CHROMIUM and PATH.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str | None:
    given = os.environ.get("JOBFORGE_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch arguments, with the system's Chromium as the executable."""
    pytest.importorskip("playwright", reason="playwright is not installed (the dev extra)")
    found = chromium()
    if found is None:
        why = "no chromium on this machine (apt-get install chromium, or set JOBFORGE_CHROMIUM)"
        if os.environ.get("JOBFORGE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"JOBFORGE_REQUIRE_BROWSER=1 but {why}", pytrace=False)
        pytest.skip(why)
    return {**browser_type_launch_args, "executable_path": found,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}  # fmt: skip


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder screenshots of each page are kept in (a CI job uploads it)."""
    given = os.environ.get("JOBFORGE_SCREENSHOTS")
    folder = Path(given) if given else tmp_path_factory.getbasetemp() / "dashboard-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
