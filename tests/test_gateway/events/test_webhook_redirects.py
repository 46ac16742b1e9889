"""A webhook receiver answering with a redirect (an http:// URL moved to https://, a CRM
moved) has not acknowledged the event: the contract takes only a 2xx. Followed, the
redirect would turn the POST into a GET without the event (as HTTP clients do for 301 and
302), and a page answering that GET with 200 would acknowledge an event nobody received."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from harness import agent, customer, make_config, running
from helpers import wait_until
from webhook_receiver import webhook

AUTH = {"Authorization": "Bearer secret"}


async def test_a_redirect_is_a_failure_and_the_event_is_parked_not_lost(tenant, redis_url):
    landed: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/landing")

    async def landing(request: web.Request) -> web.Response:
        landed.append(request.method)
        return web.Response(text="welcome")

    app = web.Application()
    app.router.add_post("/hook", moved)
    app.router.add_route("*", "/landing", landing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hook = webhook(f"http://127.0.0.1:{port}/hook", retry_for_s=0.3, events=["message_in"])
    config = make_config(
        tenant, admin={"token": "secret"}, agents=[agent("alice")], webhooks=[hook]
    )
    try:
        async with running(config, redis_url) as gw, customer(gw) as visitor:
            await visitor.send(type="message", text="hello")
            await visitor.expect("queue")

            async def parked() -> list[dict[str, Any]]:
                async with (
                    aiohttp.ClientSession(headers=AUTH) as http,
                    http.get(f"{gw.admin_base}/api/webhooks/crm/parked") as response,
                ):
                    return (await response.json())["parked"]

            (dead,) = await wait_until(parked, timeout=15, message="the event is parked")
            assert dead["event"]["type"] == "message_in"
            assert dead["last_error"].startswith("HTTP 301: redirected to /landing")
            assert landed == [], "the redirect was not followed"
    finally:
        await runner.cleanup()
