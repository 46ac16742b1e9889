"""A webhook receiver on a real socket, as a CRM would run one: it checks each request's
signature, keeps every event it acknowledged (and every attempt), and can be told to answer
500 for a while."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from adapters.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_matches

SECRET = "hook-secret"


class Receiver:
    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.failing = False
        # While set, requests wait for release (and are then refused): a delivery in flight.
        self.hanging = False
        self.released = asyncio.Event()
        self.accepted: list[dict[str, Any]] = []  # events answered 200, in arrival order
        self.attempts: list[str] = []  # every event id posted, answered 200 or not
        self.bad_signatures = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature_matches(self.secret, timestamp, body, signature):
            self.bad_signatures += 1
            return web.json_response({"error": "bad_signature"}, status=401)
        event = json.loads(body)
        assert request.headers["X-Zhongtai-Event-Id"] == event["id"]
        self.attempts.append(event["id"])
        if self.hanging:
            await self.released.wait()
            return web.json_response({"error": "held, then refused"}, status=503)
        if self.failing:
            return web.json_response({"error": "down for maintenance"}, status=500)
        self.accepted.append(event)
        return web.json_response({"ok": True})

    def types(self, conversation_id: str | None = None) -> list[str]:
        return [
            e["type"]
            for e in self.accepted
            if conversation_id is None or e["conversation_id"] == conversation_id
        ]

    def has(self, kind: str, conversation_id: str | None = None) -> bool:
        return kind in self.types(conversation_id)


@contextlib.asynccontextmanager
async def receiving(secret: str = SECRET) -> AsyncIterator[Receiver]:
    receiver = Receiver(secret)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def webhook(url: str, **fields: Any) -> dict[str, Any]:
    """A [[webhooks]] entry with fast retries, for tests."""
    return {
        "name": "crm",
        "url": url,
        "secret": SECRET,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
        "claim_after_s": 2.0,
        "timeout_s": 1.0,
        "poll_interval_s": 0.05,
        **fields,
    }
