"""The agents' console: a browser workspace served at /console/ on the public port.

The page is plain ES modules with no build step, so the browser fetches each module by its
own URL, without a content hash in it. Every file is therefore sent ``no-cache`` with an
ETag: the browser keeps its copy but asks each time, and a gateway upgrade is seen on the
next load instead of a mix of old and new modules. Only files under static/ with a known
type are served; anything else, a path that climbs out of static/ included, is a 404.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/console"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Images that customers send are shown inline from wherever their channel keeps them,
    # hence the open img-src; scripts, styles and sockets stay on this origin.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; "
        "img-src 'self' data: blob: https: http:; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'"
    ),
}


def add_console_routes(app: web.Application, static_dir: Path = STATIC_DIR) -> None:
    """GET /console (a redirect), /console/ (the page) and /console/<file>."""
    root = static_dir.resolve()

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPPermanentRedirect(f"{PREFIX}/")

    async def page(request: web.Request) -> web.StreamResponse:
        return await _serve(request, root, "index.html")

    async def static_file(request: web.Request) -> web.StreamResponse:
        return await _serve(request, root, request.match_info["path"])

    app.router.add_get(PREFIX, redirect)
    app.router.add_get(f"{PREFIX}/", page)
    app.router.add_get(PREFIX + "/{path:.+}", static_file)


def resolve(root: Path, relative: str) -> Path | None:
    """The file under root that relative names, or None: no absolute paths, no '..', no
    hidden files, no symlinks out of root, and only types the console serves."""
    parts = relative.split("/")
    if not relative or "\\" in relative:
        return None
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    path = root.joinpath(*parts).resolve()
    if root not in path.parents or path.suffix not in CONTENT_TYPES:
        return None
    return path


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


async def _serve(request: web.Request, root: Path, relative: str) -> web.StreamResponse:
    path = resolve(root, relative)
    body = None if path is None else await asyncio.to_thread(_read, path)
    if path is None or body is None:
        raise web.HTTPNotFound(text="not found", headers={"Cache-Control": "no-cache"})
    etag = hashlib.sha256(body).hexdigest()[:32]
    headers = {**HEADERS, "ETag": f'"{etag}"'}
    if etag in _etags(request.headers.get("If-None-Match", "")):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={**headers, "Content-Type": CONTENT_TYPES[path.suffix]})


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()}
