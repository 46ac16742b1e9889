"""A gateway process killed with SIGKILL while it delivers an event loses none: the event it
read and never had acknowledged is claimed by another process once idle, and the
conversation's later events wait for it, so they still arrive in order."""

from __future__ import annotations

import aiohttp
from harness import GatewayProcess, connect
from helpers import wait_until
from webhook_receiver import SECRET, receiving

TOKEN = "secret"


def config(url: str) -> str:
    return f"""
[admin]
token = "{TOKEN}"

[routing]
sweep_interval_s = 0.05

[webchat]
messages_per_minute = 0
new_visitors_per_minute = 0

[[webhooks]]
name = "crm"
url = "{url}"
secret = "{SECRET}"
timeout_s = 3
backoff_initial_s = 0.05
backoff_max_s = 0.2
claim_after_s = 4
poll_interval_s = 0.05
"""


async def test_a_process_killed_mid_delivery_loses_no_event(tenant, redis_url, tmp_path):
    async with receiving() as receiver:
        receiver.hanging = True
        first = GatewayProcess(tmp_path, tenant, redis_url, "first", config(receiver.url))
        second = None
        try:
            await first.ready()
            async with connect(first.ws_url("/webchat/ws")) as visitor:
                await visitor.send(type="hello", visitor_token=None)
                welcome = await visitor.expect("welcome")
                for text in ("one", "two", "three"):
                    await visitor.send(type="message", text=text)
                await visitor.expect("queue")
                # The first process holds the first event, its request hanging.
                await wait_until(lambda: receiver.attempts, timeout=60, message="a delivery")
                first.kill()  # SIGKILL: no shutdown, the event stays pending in its name
            receiver.hanging = False
            receiver.released.set()
            assert receiver.accepted == []

            second = GatewayProcess(tmp_path, tenant, redis_url, "second", config(receiver.url))
            await second.ready()
            await wait_until(
                lambda: len(receiver.types()) >= 5,
                timeout=120,
                message="the second process delivers what the first held",
            )
            conversation_id = receiver.accepted[0]["conversation_id"]
            # Once the customer is gone, a supervisor closes it on the second process.
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"http://127.0.0.1:{second.admin_port}/api/conversations/"
                    f"{conversation_id}/close",
                    json={},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as response,
            ):
                assert response.status == 200, await response.text()
            await wait_until(
                lambda: receiver.has("conversation_closed"), timeout=60, message="the close"
            )
            assert receiver.types(conversation_id) == [
                "conversation_created",
                "conversation_queued",
                "message_in",
                "message_in",
                "message_in",
                "conversation_closed",
            ]
            texts = [
                e["data"]["message"]["text"] for e in receiver.accepted if e["type"] == "message_in"
            ]
            assert texts == ["one", "two", "three"]
            ids = [e["id"] for e in receiver.accepted]
            assert len(ids) == len(set(ids))
            assert welcome["type"] == "welcome"
        finally:
            first.kill()
            if second is not None:
                await second.stop()
