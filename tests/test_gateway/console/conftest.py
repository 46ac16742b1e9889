"""Real Chromium for the console's browser tests, one per module, a fresh context per page.

Chromium comes from the Debian package (``/usr/bin/chromium``), driven by the Python
package ``playwright``; the tests are skipped, saying which is missing, when one is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from browser_support import NewPage

try:
    from playwright.async_api import Browser, Page, async_playwright
except ImportError:  # the test extra brings it
    async_playwright = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

HAVE_CHROMIUM = CHROMIUM.exists()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    if async_playwright is None:
        pytest.skip("the Python package playwright is missing: pip install playwright")
    if not HAVE_CHROMIUM:
        pytest.skip("no /usr/bin/chromium: apt-get install chromium (Debian package chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def new_page(browser: Browser) -> AsyncIterator[NewPage]:
    """Pages in contexts of their own (their own sessionStorage), closed after the test."""
    contexts = []

    async def make(locale: str = "en-US", width: int = 1280, height: int = 800) -> Page:
        context = await browser.new_context(
            locale=locale, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return await context.new_page()

    try:
        yield make
    finally:
        for context in contexts:
            await context.close()
