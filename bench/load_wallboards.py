"""Team leads' wallboards during a load run: supervisor sockets that stay open and count the
wallboard frames the gateway pushes, so a run can show what live wallboards cost the gateway
(its CPU and the offer latency, with and without them)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator

import msgspec
from load_wire import connect

LEAD_TOKEN = "bench-lead-{i:03d}"


def lead_config(wallboards: int) -> str:
    """``[[supervisors]]`` tables for the generated config, one per wallboard (every queue)."""
    return "".join(
        f'[[supervisors]]\nid = "lead{i:03d}"\ntoken = "{LEAD_TOKEN.format(i=i)}"\n'
        for i in range(wallboards)
    )


class _Frame(msgspec.Struct):
    type: str


@dataclasses.dataclass
class WallboardStats:
    frames: int = 0
    bytes: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


@contextlib.asynccontextmanager
async def wallboards_open(url: str, count: int, stats: WallboardStats) -> AsyncIterator[None]:
    """``count`` supervisor sockets signed in and reading until the block ends."""
    decoder = msgspec.json.Decoder(_Frame)

    async def watch(i: int) -> None:
        async with connect(url, False) as ws:
            hello = {"type": "hello", "token": LEAD_TOKEN.format(i=i), "protocol": 1}
            await ws.send(json.dumps(hello))
            async for data in ws:
                frame = decoder.decode(data)
                if frame.type == "wallboard":
                    stats.frames += 1
                    stats.bytes += len(data)
                elif frame.type == "error":
                    stats.errors.append(str(data)[:200])

    tasks = [asyncio.create_task(watch(i)) for i in range(count)]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
