"""A gateway running in the test process on real sockets and the suite's real Redis, and
small websocket clients for customers and agents that speak the JSON frames directly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import websockets
from aiohttp import web
from helpers import free_port, wait_until

from adapters import registry
from adapters.reviews.webhook import sign as sign_review
from gateway.app import build_apps, public_site
from gateway.config import Config, parse_config
from gateway.services import SERVICES, Services

FRAME_TIMEOUT_S = 10.0


def make_config(tenant: str, **tables: Any) -> Config:
    """A config from TOML-shaped dicts; the web chat channel is on unless told otherwise."""
    data: dict[str, Any] = {"server": {"tenant": tenant, "heartbeat_s": 5.0}}
    data["webchat"] = {"messages_per_minute": 0, "new_visitors_per_minute": 0}
    for name, value in tables.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **value}
        else:
            data[name] = value
    data = {k: v for k, v in data.items() if v is not None}
    names = [n for n in data if n in registry.available()]
    return parse_config(data, "<test>", registry.config_types(names), env={})


def review_headers(secret: str, body: bytes) -> dict[str, str]:
    """The headers of a review push signed now with the feed's ``webhook_secret``."""
    stamp = str(int(time.time()))
    return {
        "X-Zhongtai-Timestamp": stamp,
        "X-Zhongtai-Signature": sign_review(secret, stamp, body),
        "Content-Type": "application/json",
    }


def agent(agent_id: str, capacity: int = 3, **fields: Any) -> dict[str, Any]:
    return {"id": agent_id, "token": f"tok-{agent_id}", "capacity": {"webchat": capacity}, **fields}


class RunningGateway:
    def __init__(
        self,
        app: web.Application,
        runner: web.AppRunner,
        admin: web.AppRunner,
        port: int,
        admin_port: int,
    ) -> None:
        self.app, self.runner, self.admin_runner = app, runner, admin
        self.port, self.admin_port = port, admin_port

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_base(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.admin_runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    site = next(iter(runner.sites))
    server = site._server  # aiohttp keeps the listening socket here
    assert server is not None
    return server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]


class TestClock:
    """Simulated time for a gateway's flows: now stands still until the test moves it, so a
    scripted day's durations are exactly those the test chose (every flow, timer and script
    takes its now from this one clock)."""

    __test__ = False  # not a test class, whatever pytest's name rules say

    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> int:
        self.now_ms += round(seconds * 1000)
        return self.now_ms


async def start_gateway(
    config: Config, redis_url: str, port: int = 0, clock: TestClock | None = None
) -> RunningGateway:
    """A gateway on a free port, or on ``port`` (to restart one where its clients expect it);
    with ``clock``, on the test's simulated time."""
    classes = {name: registry.load(name) for name in config.adapters}
    app, admin = build_apps(config, redis_url, classes, **({"clock": clock} if clock else {}))
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    admin_runner = web.AppRunner(admin)
    await runner.setup()
    await admin_runner.setup()
    await public_site(runner, "127.0.0.1", port).start()
    await web.TCPSite(admin_runner, "127.0.0.1", 0).start()
    return RunningGateway(app, runner, admin_runner, _bound_port(runner), _bound_port(admin_runner))


@contextlib.asynccontextmanager
async def running(
    config: Config, redis_url: str, clock: TestClock | None = None
) -> AsyncIterator[RunningGateway]:
    gateway = await start_gateway(config, redis_url, clock=clock)
    try:
        yield gateway
    finally:
        await gateway.stop()


class Client:
    """A websocket peer that keeps every frame it reads, so tests can wait for a frame of a
    type (and matching fields) without losing the ones that came before it."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def expect(
        self,
        type_: str | tuple[str, ...],
        timeout: float = FRAME_TIMEOUT_S,  # noqa: ASYNC109
        **match: Any,
    ) -> dict[str, Any]:
        """The first frame of this type (or of one of these types) whose fields match and that
        no expect returned yet; frames read past stay readable by later expects."""
        types = (type_,) if isinstance(type_, str) else type_
        async with asyncio.timeout(timeout):
            index = 0
            while True:
                while index < len(self.frames):
                    frame = self.frames[index]
                    index += 1
                    if (
                        not frame.get("_read")
                        and frame.get("type") in types
                        and all(frame.get(k) == v for k, v in match.items())
                    ):
                        frame["_read"] = True
                        return frame
                self.frames.append(json.loads(await self.ws.recv()))

    async def expect_closed(self, timeout: float = FRAME_TIMEOUT_S) -> int:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    self.frames.append(json.loads(await self.ws.recv()))
        assert self.ws.close_code is not None
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()


@contextlib.asynccontextmanager
async def connect(url: str, **kwargs: Any) -> AsyncIterator[Client]:
    async with websockets.connect(url, open_timeout=FRAME_TIMEOUT_S, **kwargs) as ws:
        yield Client(ws)


@contextlib.asynccontextmanager
async def agent_client(gateway: RunningGateway, agent_id: str) -> AsyncIterator[Client]:
    async with connect(gateway.ws_url("/agent/ws")) as client:
        await client.send(type="hello", token=f"tok-{agent_id}", protocol=1)
        await client.expect("welcome")
        yield client


@contextlib.asynccontextmanager
async def customer(
    gateway: RunningGateway, visitor_token: str | None = None
) -> AsyncIterator[Client]:
    async with connect(gateway.ws_url("/webchat/ws")) as client:
        await client.send(type="hello", visitor_token=visitor_token)
        await client.expect("welcome")
        yield client


async def told_to_send_again(
    gateway: RunningGateway,
    visitor: Client,
    agent_socket: Client,
    conversation: str,
    review_secret: str,
    timeout: float = FRAME_TIMEOUT_S,  # noqa: ASYNC109
) -> None:
    """While Redis takes no writes (loading, demoted): a customer's message, every try, an
    agent's reply and a push to the review feed ``shop`` are each told to send again (the
    code ``unavailable``; 503 with Retry-After), not that something broke."""
    for _ in range(3):
        await visitor.send(type="message", text="are you there", client_msg_id="m2")
        error = await visitor.expect("error", timeout=timeout)
        assert (error["code"], error.get("client_msg_id")) == ("unavailable", "m2"), error
    reply = {"conversation_id": conversation, "text": "one moment"}
    await agent_socket.send(type="reply", client_msg_id="r1", **reply)
    error = await agent_socket.expect("error", timeout=timeout)
    assert error["code"] == "unavailable", error
    body = b'{"id": "rv1", "author": "Lin", "rating": 5, "text": "great"}'
    headers = review_headers(review_secret, body)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.base}/reviews/shop", data=body, headers=headers) as answer,
    ):
        assert answer.status == 503, await answer.text()
        assert answer.headers["Retry-After"].isdigit()


async def accept_offer(agent_socket: Client, timeout: float = 30.0) -> str:  # noqa: ASYNC109
    """Accept the next offer on an agent's socket; the id of the conversation assigned.

    On a busy machine an accept can arrive after a short offer timeout: the offer is then
    revoked and the conversation offered again, so this takes the next offer until one is
    assigned (what an agent would do) instead of depending on how fast the machine is."""
    async with asyncio.timeout(timeout):
        while True:
            offer = await agent_socket.expect("offer", timeout=timeout)
            await agent_socket.send(type="accept", offer_id=offer["offer_id"])
            conversation = offer["conversation"]["id"]
            while True:
                frame = await agent_socket.expect(("assigned", "offer_revoked"), timeout=timeout)
                if frame["type"] == "assigned" and frame["conversation"]["id"] == conversation:
                    return conversation
                if frame["type"] == "offer_revoked" and frame["offer_id"] == offer["offer_id"]:
                    break


async def admin_ready(admin_port: int) -> bool:
    """Whether the gateway on this admin port answers /readyz with 200 (for wait_until)."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{admin_port}/readyz") as response,
        ):
            return response.status == 200
    except aiohttp.ClientError:
        return False


class GatewayProcess:
    """A `zhongtai serve` subprocess with a config of the test's; [server] is written here.
    ``python``: the interpreter to run it with (another environment's); default, this one."""

    def __init__(
        self,
        directory: Path,
        tenant: str,
        redis_url: str,
        node: str,
        toml: str,
        python: str = sys.executable,
    ) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.config = directory / f"{node}.toml"
        self.config.write_text(
            f'[server]\ntenant = "{tenant}"\nport = {self.port}\n'
            f'admin_port = {self.admin_port}\nnode_id = "{node}"\n\n'
            f'[redis]\nurl = "{redis_url}"\n\n{toml}'
        )
        self.process = subprocess.Popen(
            [python, "-m", "gateway", "serve", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def ready(self) -> None:
        # A start-up takes seconds on a busy machine; a process that exits fails at once.
        def up() -> bool:
            if self.process.poll() is not None:
                output = (
                    self.process.stdout.read().decode(errors="replace")
                    if self.process.stdout
                    else ""
                )
                raise AssertionError(f"{self.config.stem} exited at start-up:\n{output}")
            return admin_ready(self.admin_port)

        await wait_until(up, timeout=120, message=f"{self.config.stem} ready")

    async def stop(self) -> int:
        """SIGTERM, and the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.process.wait, 30)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
