"""A live web chat for the high-availability tests: a customer who keeps sending, an agent
whose socket is read as a console reads it, and what the gateway says it stored."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from harness import Client, RunningGateway
from sentinel_support import DEADLINE_S


async def readyz(gateway: RunningGateway) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gateway.admin_base}/readyz") as response,
    ):
        return response.status, await response.json()


async def unready(gateway: RunningGateway) -> Any:
    """/readyz's body while it answers 503, else False (for wait_until)."""
    status, body = await readyz(gateway)
    return status == 503 and body


async def stored_texts(gateway: RunningGateway, conversation_id: str, token: str) -> set[str]:
    """The texts stored in a conversation, as the admin API gives them."""
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{gateway.admin_base}/api/conversations/{conversation_id}"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    return {m["text"] for m in body["conversation"]["messages"]}


class Traffic:
    """The customer sends one message after another, each answered by its echo (stored and
    acknowledged) or an error frame; what the agent receives is counted too."""

    def __init__(self, visitor: Client) -> None:
        self.visitor = visitor
        self.acked: list[str] = []
        # When each echo arrived (time.monotonic()): where a loss falls against a failover.
        self.acked_at: dict[str, float] = {}
        self.refused: list[dict[str, Any]] = []
        self.stop = asyncio.Event()

    async def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            cmid, text = f"c{i}", f"message {i}"
            await self.visitor.send(type="message", text=text, client_msg_id=cmid)
            frame = await self.visitor.expect(
                ("message", "error"), timeout=DEADLINE_S, client_msg_id=cmid
            )
            if frame["type"] == "message":
                self.acked.append(text)
                self.acked_at[text] = time.monotonic()
                await asyncio.sleep(0.005)  # a busy chat, not a flood
            else:
                self.refused.append(frame)
                await asyncio.sleep(0.05)  # a client's pause before it sends again


async def keep_reading(client: Client) -> None:
    """Read the agent's frames as a console does (a socket nobody reads stops answering
    pings, and the gateway closes it); they stay readable by expect afterwards."""
    while True:
        client.frames.append(json.loads(await client.ws.recv()))


async def send_until_stored(client: Client, text: str, cmid: str) -> None:
    """Send as the web chat page does: again, with the same client_msg_id, until echoed."""
    async with asyncio.timeout(DEADLINE_S):
        while True:
            await client.send(type="message", text=text, client_msg_id=cmid)
            frame = await client.expect(("message", "error"), client_msg_id=cmid)
            if frame["type"] == "message":
                return
            assert frame["code"] == "not_replicated", frame
            await asyncio.sleep(0.1)


async def expect_text(client: Client, text: str) -> dict[str, Any]:
    async with asyncio.timeout(DEADLINE_S):
        while True:
            frame = await client.expect("message", timeout=DEADLINE_S)
            if frame["message"]["text"] == text:
                return frame
