"""Driving a real gateway with fuzz input, without ever waiting forever: every operation has
its own deadline (a previous attempt sent a ping after each input and waited on it with no
deadline, and hung), and a socket the gateway closes for bad input is a valid outcome: the
driver connects again and goes on. What it saw is counted in Outcomes; what must never
happen (a 5xx, an ``internal`` error frame, close code 1011, no answer in time) is listed
in ``problems``."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import websockets
from harness import RunningGateway, agent_client, customer

OP_S = 10.0
# 1011: the server failed; None: the connection dropped without a close frame.
BAD_CLOSE_CODES = {1011, None}

Frame = dict[str, Any]


class Outcomes:
    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.problems: list[str] = []

    def problem(self, what: str, data: object) -> None:
        import logging

        logging.getLogger("fuzzdebug").warning("PROBLEM %s", what)
        self.problems.append(f"{what} after {str(data)[:200]!r}")


class SocketDriver:
    """One websocket entry point: ``hello`` opens a session (answered ``welcome``); after
    each input ``probe(n)`` is sent, and frames are read until ``is_reply(frame, n)`` says
    one answers that probe (n is unique, so a late answer to an earlier one is not taken).
    Every ``fresh_every``-th input goes first on a new socket, before the hello."""

    def __init__(
        self,
        url: str,
        hello: Frame,
        probe: Callable[[int], Frame],
        is_reply: Callable[[Frame, int], bool],
        outcomes: Outcomes,
        fresh_every: int = 10,
    ) -> None:
        self.url, self.hello, self.probe, self.is_reply = url, hello, probe, is_reply
        self.outcomes, self.fresh_every = outcomes, fresh_every
        self.ws: websockets.ClientConnection | None = None

    async def _open(self) -> websockets.ClientConnection:
        return await websockets.connect(self.url, open_timeout=OP_S, close_timeout=2, max_size=None)

    async def _read_until(
        self, ws: websockets.ClientConnection, done: Callable[[Frame], bool], data: object
    ) -> None:
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == "error":
                self.outcomes.counts[f"error {frame.get('code')}"] += 1
                if frame.get("code") == "internal":
                    self.outcomes.problem("an internal error frame", data)
            if done(frame):
                return

    async def session(self) -> websockets.ClientConnection:
        if self.ws is None:
            ws = await self._open()
            async with asyncio.timeout(OP_S):
                await ws.send(json.dumps(self.hello))
                await self._read_until(ws, lambda f: f.get("type") == "welcome", "hello")
            self.ws = ws
        return self.ws

    async def feed(self, data: str | bytes, index: int) -> None:
        ws: websockets.ClientConnection | None = None
        try:
            async with asyncio.timeout(OP_S):
                if index % self.fresh_every == 0:  # before any hello, on a socket of its own
                    ws = await self._open()
                    await ws.send(data)
                    await ws.send(json.dumps(self.hello))
                    await self._read_until(ws, lambda f: f.get("type") == "welcome", data)
                    await ws.close()
                else:
                    ws = await self.session()
                    await ws.send(data)
                    await ws.send(json.dumps(self.probe(index)))
                    await self._read_until(ws, lambda f: self.is_reply(f, index), data)
            self.outcomes.counts["answered"] += 1
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            self.outcomes.counts[f"closed {code}"] += 1
            if code in BAD_CLOSE_CODES:
                mode = "before hello" if index % self.fresh_every == 0 else "in session"
                self.outcomes.problem(
                    f"input {index} ({mode}): closed with {code} {closed!r}",
                    data,
                )
            await self._drop(ws)
        except TimeoutError:
            self.outcomes.problem(f"input {index}: no answer in {OP_S} s", data)
            await self._drop(ws)

    async def _drop(self, ws: websockets.ClientConnection | None) -> None:
        """Close the socket an input went to (the session's, or one of its own)."""
        if ws is None:
            return
        if ws is self.ws:
            self.ws = None
        async with asyncio.timeout(OP_S):
            await ws.close()

    async def close(self) -> None:
        await self._drop(self.ws)


async def http_status(
    http: aiohttp.ClientSession, method: str, url: str, outcomes: Outcomes, **kwargs: Any
) -> int | None:
    """One request under its own deadline; counted by status, a 5xx or no answer a problem."""
    try:
        async with asyncio.timeout(OP_S), http.request(method, url, **kwargs) as reply:
            await reply.read()
            status = reply.status
    except TimeoutError:
        outcomes.problem(f"no answer in {OP_S} s", (method, url, kwargs.get("data")))
        return None
    except aiohttp.ClientError as exc:  # the gateway hung up: an answer too, if not a crash
        outcomes.counts[f"hung up {type(exc).__name__}"] += 1
        return None
    outcomes.counts[str(status)] += 1
    if status >= 500:
        outcomes.problem(f"{status}", (method, url, kwargs.get("data")))
    return status


async def normal_conversation(gw: RunningGateway) -> None:
    """After the fuzz, on the same gateway: a customer writes, an agent takes it (closing
    any conversation the fuzz left waiting first), replies, the customer reads it, it closes."""
    async with asyncio.timeout(90), agent_client(gw, "carol") as carol, customer(gw) as visitor:
        await visitor.send(type="message", text="after the fuzz", client_msg_id="e2e")
        echo = await visitor.expect("message", client_msg_id="e2e")
        ours = echo["conversation_id"]
        while True:
            offer = await carol.expect("offer", timeout=60)
            await carol.send(type="accept", offer_id=offer["offer_id"])
            taken = offer["conversation"]["id"]
            if taken == ours:
                break
            await carol.send(type="close", conversation_id=taken)
        while (await carol.expect("assigned"))["conversation"]["id"] != ours:
            pass
        await carol.send(
            type="reply", conversation_id=ours, text="hello from carol", client_msg_id="r1"
        )
        while (await visitor.expect("message"))["message"].get("text") != "hello from carol":
            pass
        await carol.send(type="close", conversation_id=ours)
        await visitor.expect("closed")
