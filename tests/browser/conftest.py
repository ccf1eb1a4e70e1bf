"""Playwright driving the system's Chromium: no browser download.

The browser is Debian's `chromium` (`apt-get install chromium`), found on PATH or by
$JOBFORGE_CHROMIUM. Without one the browser tests skip in one line, unless
$JOBFORGE_REQUIRE_BROWSER=1 (set by CI), where a missing browser fails them. Screenshots go to
$JOBFORGE_SCREENSHOTS (default: `dashboard-screenshots` under pytest's basetemp).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The system's Chromium, driven by Playwright for this module only.

    Not pytest-playwright's session-wide `playwright` and `browser`: between its calls Playwright's
    sync API marks an event loop as running in the thread that uses it, for as long as it lives,
    so every later test on the same xdist worker that calls `asyncio.run` (the worker, the MCP
    client, replay) failed with "cannot be called from a running event loop". Stopped at the
    module's end, it leaves nothing behind."""
    pytest.importorskip("playwright", reason="playwright is not installed (the dev extra)")
    from playwright.sync_api import sync_playwright

    found = chromium()
    if found is None:
        why = "no chromium on this machine (apt-get install chromium, or set JOBFORGE_CHROMIUM)"
        if os.environ.get("JOBFORGE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"JOBFORGE_REQUIRE_BROWSER=1 but {why}", pytrace=False)
        pytest.skip(why)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=found, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page for each test (cookies and storage of its own)."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder screenshots of each page are kept in (a CI job uploads it)."""
    given = os.environ.get("JOBFORGE_SCREENSHOTS")
    folder = Path(given) if given else tmp_path_factory.getbasetemp() / "dashboard-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
