"""The agents: websocket clients that accept every offer at once, reply once and close.

That is the shortest life a conversation can have, so a run measures routing rather than
agents. They record when each offer arrived (by its marker). They run in this process or,
with ``--agent-procs``, spread over separate processes, so that their socket work does not
delay the customer side's timestamps; those processes report their stats at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import signal
from collections.abc import AsyncIterator, Sequence
from multiprocessing.connection import Connection

from load_wire import (
    READY_TIMEOUT_S,
    AgentFrame,
    ErrorLog,
    agent_decoder,
    connect,
    encode,
    marker_in,
    now,
    run,
)
from websockets.asyncio.client import ClientConnection


@dataclasses.dataclass
class AgentStats(ErrorLog):
    offers: dict[str, float] = dataclasses.field(default_factory=dict)  # marker -> arrival
    closed: int = 0


@contextlib.asynccontextmanager
async def agents_running(
    urls: Sequence[str], tokens: Sequence[str], deflate: bool, stats: AgentStats
) -> AsyncIterator[None]:
    """Every agent connected (agent i to ``urls[i % len(urls)]``) and welcomed for the life of
    the block."""
    welcomed = [asyncio.Event() for _ in tokens]
    tasks = [
        asyncio.create_task(run_agent(urls[i % len(urls)], token, deflate, stats, event))
        for i, (token, event) in enumerate(zip(tokens, welcomed, strict=True))
    ]
    everyone = asyncio.gather(*(e.wait() for e in welcomed))
    try:
        # Done when every agent is welcomed, or as soon as one agent's task ends (failed).
        await asyncio.wait(
            [everyone, *tasks], timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        for task in tasks:
            if task.done():
                task.result()  # an agent that failed to connect ends the run with its error
        if not everyone.done():
            raise RuntimeError("not every agent was welcomed in time")
        for task in tasks:
            task.add_done_callback(lambda t: _agent_ended(t, stats))
        yield
    finally:
        everyone.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(everyone, *tasks, return_exceptions=True)


async def run_agent(
    url: str, token: str, deflate: bool, stats: AgentStats, welcomed: asyncio.Event
) -> None:
    async with connect(url, deflate) as ws:
        await ws.send(encode({"type": "hello", "token": token, "protocol": 1}), text=True)
        first = agent_decoder.decode(await ws.recv(decode=False))
        if first.type != "welcome":
            raise RuntimeError(f"agent hello refused: {first.code} {first.detail}")
        welcomed.set()
        while True:
            raw = await ws.recv(decode=False)
            at = now()
            await on_agent_frame(ws, agent_decoder.decode(raw), at, stats)


async def on_agent_frame(
    ws: ClientConnection, frame: AgentFrame, at: float, stats: AgentStats
) -> None:
    reply = answer(frame, at, stats)
    if reply is not None:
        await ws.send(reply, text=True)


def answer(frame: AgentFrame, at: float, stats: AgentStats) -> bytes | None:
    """Accept at once, reply once, close: the shortest life a conversation can have. Returns
    the frame to send back, if any; both agent kinds (websockets, lite) share this rule."""
    kind = frame.type
    if kind == "offer":
        marker = marker_in(frame.conversation)
        if marker is None:
            stats.error("offer without a load marker")
        else:
            stats.offers[marker] = at
        return encode({"type": "accept", "offer_id": frame.offer_id})
    if kind == "assigned" and frame.conversation is not None:
        conv = frame.conversation.id
        return encode(
            {"type": "reply", "conversation_id": conv, "text": "on it", "client_msg_id": conv}
        )
    if kind == "reply_ack":
        return encode({"type": "close", "conversation_id": frame.client_msg_id})
    if kind == "closed":
        stats.closed += 1
    elif kind in ("error", "offer_revoked"):
        stats.error(f"agent {kind}: {frame.code or frame.reason} {frame.detail or ''}".strip())
    return None


def _agent_ended(task: asyncio.Task[None], stats: AgentStats) -> None:
    if not task.cancelled():
        stats.error(f"agent socket ended: {task.exception()!r}")


@contextlib.asynccontextmanager
async def agent_processes(
    urls: Sequence[str],
    tokens: Sequence[str],
    procs: int,
    deflate: bool,
    stats: AgentStats,
    lite: bool = False,
) -> AsyncIterator[list[int]]:
    """The agents spread over processes (and over ``urls`` as in ``agents_running``); their
    stats merge into ``stats`` at the end."""
    ctx = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    workers = []
    for i in range(procs):
        ours, theirs = ctx.Pipe()
        # Agent j keeps its gateway, urls[j % len(urls)], whichever process runs it.
        mine = range(i, len(tokens), procs)
        part = ([urls[j % len(urls)] for j in mine], [tokens[j] for j in mine])
        proc = ctx.Process(target=agent_worker, args=(*part, deflate, lite, theirs), daemon=True)
        proc.start()
        theirs.close()  # so that a child that dies is an EOFError here, not a hang
        workers.append((proc, ours))
    try:
        for proc, conn in workers:
            ready = await asyncio.wait_for(
                loop.run_in_executor(None, conn.recv), READY_TIMEOUT_S + len(tokens) / 50
            )
            if ready != "ready":
                raise RuntimeError(f"agent process {proc.pid} failed to start")
        yield [proc.pid for proc, _ in workers if proc.pid is not None]
        for _, conn in workers:
            conn.send("stop")
        for _, conn in workers:
            part = await asyncio.wait_for(loop.run_in_executor(None, conn.recv), 30.0)
            stats.offers.update(part["offers"])
            stats.closed += part["closed"]
            stats.merge(part["errors"], part["samples"])
    finally:
        for proc, _ in workers:
            proc.join(5.0)
            if proc.is_alive():
                proc.terminate()


def agent_worker(
    urls: list[str], tokens: list[str], deflate: bool, lite: bool, conn: Connection
) -> None:
    """A separate agent process: connect, say "ready", run until "stop", send the stats."""

    async def main() -> None:
        from load_lite import lite_agents_running  # it imports this module

        stats = AgentStats()
        loop = asyncio.get_running_loop()
        # One url per token here: i % len(urls) keeps each agent's gateway.
        running = (
            lite_agents_running(urls, tokens, stats)
            if lite
            else agents_running(urls, tokens, deflate, stats)
        )
        async with running:
            conn.send("ready")
            await loop.run_in_executor(None, conn.recv)
        conn.send(dataclasses.asdict(stats))

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the run ends
    run(main())
