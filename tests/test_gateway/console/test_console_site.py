"""The console's files on the public port: types, caching, the redirect, and nothing served
from outside static/."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import aiohttp
import pytest
import yarl
from harness import make_config, running

from gateway.console.site import STATIC_DIR, resolve

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def config(tenant: str):
    return make_config(tenant, agents=[])


async def test_page_redirect_types_and_revalidation(config, redis_url):
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        async with http.get(f"{gw.base}/console", allow_redirects=False) as r:
            assert r.status == 308
            assert r.headers["Location"] == "/console/"
        async with http.get(f"{gw.base}/console/") as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "text/html; charset=utf-8"
            assert '<script type="module" src="app.js">' in await r.text()
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        async with http.get(f"{gw.base}/console/app.js") as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "text/javascript; charset=utf-8"
            # No content hash in module URLs: the browser must ask every time.
            assert r.headers["Cache-Control"] == "no-cache"
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            etag = r.headers["ETag"]
        async with http.get(f"{gw.base}/console/app.js", headers={"If-None-Match": etag}) as r:
            assert r.status == 304
            assert await r.read() == b""
        async with http.get(f"{gw.base}/console/console.css") as r:
            assert r.headers["Content-Type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize(
    "path",
    [
        "/console/nothing.js",
        "/console/%2e%2e/site.py",
        "/console/..%2fsite.py",
        "/console/%2e%2e/%2e%2e/app.py",
        "/console/static/app.js",
        "/console/.hidden.js",
    ],
)
async def test_unknown_files_and_climbing_out_are_404(config, redis_url, path):
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        async with http.get(yarl.URL(gw.base + path, encoded=True)) as r:
            assert r.status == 404


def test_resolve_keeps_to_the_static_folder(tmp_path: Path):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "a.js").write_text("")
    (tmp_path / "static" / "notes.md").write_text("")
    (tmp_path / "secret.js").write_text("")
    (tmp_path / "static" / "link.js").symlink_to(tmp_path / "secret.js")
    root = (tmp_path / "static").resolve()
    assert resolve(root, "a.js") == root / "a.js"
    for bad in ["../secret.js", "/etc/passwd", "link.js", "notes.md", "a\\..\\x.js", "./a.js", ""]:
        assert resolve(root, bad) is None, bad


def test_package_data_ships_every_static_file():
    """A non-editable install carries only what [tool.setuptools.package-data] names."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["gateway.console"]
    root = STATIC_DIR.parent
    files = [p.relative_to(root).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert missing == []
