"""The dashboard in a real browser (Chromium through Playwright): the overview, the dead letters
filtered and two of them retried, a run record's trace, and the replay of a run whose runner
changed with its divergent step highlighted. One server and one browser for the module; a
screenshot of every page."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from jobforge.dashboard.app import create_app
from jobforge.provision import Database, Server
from tests.dashboard_support import HOSTILE, Seeded, config, seed, served

pytest.importorskip("playwright", reason="playwright is not installed (the dev extra)")
pytest.importorskip("pytest_playwright", reason="pytest-playwright is not installed (dev extra)")

from playwright.sync_api import Page, expect


@pytest.fixture(scope="module")
def site(jobforge_server: Server, request: pytest.FixtureRequest) -> Iterator[tuple[str, Seeded]]:
    """The dashboard of tenant acme on a fresh database of the session's server."""
    from jobforge.plugins.pytest.plugin import SESSION_KEY

    session = request.config.stash[SESSION_KEY]
    pool = session.pool(session.template())
    database: Database = pool.acquire()
    try:
        # in a thread: Playwright's sync API holds an event loop in this one, and the worker
        # that records the runs runs one of its own
        with ThreadPoolExecutor(1) as thread:
            seeded = thread.submit(seed, database.dsn).result()
        app = create_app(config(database.dsn, server_dsn=jobforge_server.dsn))
        with served(app) as url:
            yield url, seeded
    finally:
        pool.release(database)


def _shot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0


def test_overview_dead_letters_retry(
    page: Page, site: tuple[str, Seeded], screenshots: Path
) -> None:
    url, seeded = site
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    page.goto(url + "/")
    expect(page.get_by_test_id("tenant")).to_have_text("acme")
    expect(page.get_by_test_id("counts")).to_contain_text("dash.ledger")
    expect(page.locator("svg.chart")).to_be_visible()
    _shot(page, screenshots, "overview")

    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_test_id("state-filter").select_option("dead")
    page.get_by_test_id("apply-filter").click()
    rows = page.locator("table.jobs tbody tr")
    expect(rows).to_have_count(3)
    _shot(page, screenshots, "jobs-dead")

    for job_id in seeded.dead[:2]:
        page.get_by_label(f"select job {job_id}").check()
    page.get_by_placeholder("why (kept in the audit trail)").fill("ledger is back")
    page.get_by_test_id("retry").click()
    expect(page.get_by_role("status")).to_have_text("retried 2 of 2 selected jobs")
    expect(rows).to_have_count(1)  # still filtered to dead: only the third is left
    page.goto(url + f"/jobs/{seeded.dead[1]}")
    expect(page.get_by_test_id("state")).to_have_text("queued")
    expect(page.get_by_test_id("payload")).to_contain_text(HOSTILE)  # text, never run
    assert dialogs == []
    expect(page.get_by_test_id("events")).to_contain_text("ledger is back")
    _shot(page, screenshots, "job-retried")


def test_run_record_and_replay_divergence(
    page: Page, site: tuple[str, Seeded], screenshots: Path
) -> None:
    url, seeded = site
    page.goto(url + f"/jobs/{seeded.job_id}")
    page.get_by_role("link", name=f"run {seeded.run_id}").click()
    trace = page.get_by_test_id("trace")
    expect(trace.locator("li")).to_have_count(2)
    expect(trace).to_contain_text("bulk >= 10")
    expect(page.get_by_test_id("artifacts")).to_contain_text("quote.txt")
    _shot(page, screenshots, "run-record")

    page.get_by_test_id("replay").click()
    expect(page.get_by_test_id("verdict")).to_have_text("diverged", timeout=60_000)
    step = page.get_by_test_id("divergent-step")
    expect(step).to_contain_text("discount")
    expect(step).to_contain_text("bulk >= 5")
    expect(step).to_have_class("divergent")
    background = step.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(255, 224, 138)"  # highlighted
    expect(page.get_by_test_id("output-diff").locator("tr.replace")).to_have_count(1)
    _shot(page, screenshots, "replay")
