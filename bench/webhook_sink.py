"""A webhook receiver for benchmarks: answers every POST 200 at once and counts them, so
that `load.py` can run with a `[[webhooks]]` entry pointing here. On SIGTERM (or SIGINT) it
prints one JSON line: events received, by type, and the span they arrived in.

    .venv/bin/python bench/webhook_sink.py --port 8099 &
    .venv/bin/python bench/load.py --rate 500 --config-extra "$(cat <<'TOML'
    [[webhooks]]
    name = "sink"
    url = "http://127.0.0.1:8099/"
    secret = "bench"
    TOML
    )"
    kill %1
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import signal
import time

from aiohttp import web

with contextlib.suppress(ImportError):
    import uvloop

    uvloop.install()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    kinds: collections.Counter[str] = collections.Counter()
    span: list[float] = []

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        kinds[request.headers.get("X-Zhongtai-Event-Type", "?")] += 1
        now = time.monotonic()
        if not span:
            span.append(now)
        span[1:] = [now]
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    total = sum(kinds.values())
    seconds = span[-1] - span[0] if len(span) > 1 else 0.0
    print(json.dumps({"events": total, "seconds": round(seconds, 2), "by_type": kinds}))


if __name__ == "__main__":
    asyncio.run(main())
