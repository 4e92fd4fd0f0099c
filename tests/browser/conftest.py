"""Headless Chromium (Debian's package, driven by Playwright) against a real uvicorn and arq worker."""

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.conftest import env, spawn, start_web, start_worker  # noqa: F401  (fixtures shared with e2e)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    # Per test: Playwright's sync API holds an event loop while it runs, which would break the async tests that
    # the same xdist process runs next.
    if not shutil.which(CHROMIUM):
        pytest.fail("Chromium is not installed: `apt-get install chromium` (.ci/run does it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    yield context.new_page()
    context.close()
