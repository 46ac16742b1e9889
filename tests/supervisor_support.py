"""A contact centre for the supervisor socket's tests: two queues (general for the web chat,
billing for messages that say "invoice"), agents for each, and two team leads: lin leads
every queue and has carol's agent account for take_over; gail leads general only."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from harness import Client, RunningGateway, connect, make_config, running

ADMIN_TOKEN = "secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def centre_tables(**overrides: Any) -> dict[str, Any]:
    tables: dict[str, Any] = {
        "admin": {"token": ADMIN_TOKEN},
        "queues": [
            {"name": "general", "channels": ["webchat"], "skills": {"general": 1}},
            {"name": "billing", "channels": [], "skills": {"billing": 1}},
        ],
        "rules": [{"name": "billing", "keywords": ["invoice"], "queue": "billing"}],
        "agents": [
            {
                "id": "alice",
                "name": "Alice",
                "token": "tok-alice",
                "skills": {"general": 1},
                "capacity": {"webchat": 2},
            },
            {
                "id": "bob",
                "name": "Bob",
                "token": "tok-bob",
                "skills": {"billing": 1},
                "capacity": {"webchat": 2},
            },
            {
                "id": "carol",
                "name": "Carol",
                "token": "tok-carol",
                "skills": {"general": 1},
                "capacity": {"webchat": 2},
            },
        ],
        "supervisors": [
            {"id": "lin", "name": "Lin", "token": "tok-lin", "agent": "carol"},
            {"id": "gail", "token": "tok-gail", "queues": ["general"]},
        ],
        "supervisor": {"wallboard_min_interval_ms": 50},
    }
    tables.update(overrides)
    return tables


@contextlib.asynccontextmanager
async def centre(tenant: str, redis_url: str, **overrides: Any) -> AsyncIterator[RunningGateway]:
    async with running(make_config(tenant, **centre_tables(**overrides)), redis_url) as gw:
        yield gw


@contextlib.asynccontextmanager
async def lead(gw: RunningGateway, token: str) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    """A signed-in lead's socket and their welcome (the first wallboard is left unread)."""
    async with connect(gw.ws_url("/supervisor/ws")) as client:
        await client.send(type="hello", token=token, protocol=1)
        welcome = await client.expect("welcome")
        yield client, welcome


async def admin_get(gw: RunningGateway, path: str) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.get(gw.admin_base + path, headers=ADMIN) as reply,
    ):
        assert reply.status == 200, await reply.text()
        return await reply.json()


async def until_frame(
    client: Client,
    type_: str,
    check: Any,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> dict[str, Any]:
    """The first frame of this type (read from now on) for which check(frame) holds."""
    import asyncio

    async with asyncio.timeout(timeout):
        while True:
            frame = await client.expect(type_, timeout=timeout)
            if check(frame):
                return frame
