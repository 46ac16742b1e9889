"""Names the console's browser tests import: the page factory's type and where screenshots
go. They live here, not in a conftest, because several test folders have a conftest.py and
``from conftest import ...`` would find whichever was imported first."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "console"

NewPage = Callable[..., Awaitable["Page"]]


def screenshot_path(name: str) -> Path | None:
    """Where to write a screenshot for docs/console.md, only when ZHONGTAI_SCREENSHOTS=1, so
    that ordinary runs leave the tree clean."""
    if os.environ.get("ZHONGTAI_SCREENSHOTS") != "1":
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name
