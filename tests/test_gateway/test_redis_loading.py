"""While Redis loads its data after a restart (it answers LOADING to every command), a
customer's message gets a retryable error frame, an agent's reply likewise, a channel
callback gets 503 with Retry-After, and nothing logs a traceback; once loading is done the
same conversation goes on as before.

Loading is made long and ended at will, so nothing here depends on the machine's speed: the
RDB holds incompressible filler values, ``key-load-delay`` makes each key take 10 ms (30 s
for all), the server answers between keys (``loading-process-events-interval-bytes``), and
``CONFIG SET key-load-delay 0`` (allowed while loading) lets it finish at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from harness import (
    accept_offer,
    agent,
    agent_client,
    customer,
    make_config,
    running,
    told_to_send_again,
)
from helpers import free_port, poll_until, wait_until

from gateway.redis.embedded import find_redis_server

FILLER_KEYS = 3000
SECRET = "s3cret-for-tests"


class Server:
    """A redis-server of this test's, on one port and one directory across restarts."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--save", "", "--appendonly", "no", *extra]
        self.process = subprocess.Popen(
            [find_redis_server() or "redis-server", *args], stdout=subprocess.DEVNULL
        )

    def command(self, *words: str) -> bytes:
        """One command on a raw socket: the answer's first line (LOADING included)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(
                b"*%d\r\n" % len(words)
                + b"".join(b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode()) for w in words)
            )
            return s.recv(4096).split(b"\r\n")[0]

    def answers(self) -> bytes | None:
        try:
            return self.command("PING")
        except OSError:
            return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def server(tmp_path: Path, tenant: str) -> Iterator[Server]:
    if find_redis_server() is None:
        pytest.skip("redis-server not found: apt-get install redis-server")
    found = Server(tmp_path)
    found.start()
    try:
        poll_until(lambda: found.answers() == b"+PONG", timeout=20)
        client = redis.Redis(port=found.port)
        pipe = client.pipeline(transaction=False)
        for i in range(FILLER_KEYS):
            pipe.set(f"{{{tenant}}}:filler:{i}", os.urandom(2048))
        pipe.execute()
        client.close()
        yield found
    finally:
        found.stop()


def restart_loading(server: Server) -> None:
    """Save, stop, and start again on the same data, loading slowly until told."""
    assert server.command("SAVE") == b"+OK"
    server.stop()
    server.start("--key-load-delay", "10000", "--loading-process-events-interval-bytes", "1024")
    poll_until(lambda: (server.answers() or b"").startswith(b"-LOADING"), timeout=20)


def finish_loading(server: Server) -> None:
    assert server.command("CONFIG", "SET", "key-load-delay", "0") == b"+OK"
    poll_until(lambda: server.answers() == b"+PONG", timeout=30)


async def test_loading_is_a_retryable_error_everywhere_and_then_all_goes_on(server, tenant, caplog):
    caplog.set_level(logging.INFO)
    config = make_config(
        tenant,
        agents=[agent("alice")],
        reviews={"feeds": [{"name": "shop", "webhook_secret": SECRET}]},
        redis={"socket_timeout_s": 2.0},  # how long a command waits out LOADING
    )
    url = f"redis://127.0.0.1:{server.port}/0"
    async with running(config, url) as gw, agent_client(gw, "alice") as alice:
        async with customer(gw) as visitor:
            await visitor.send(type="message", text="hello", client_msg_id="m1")
            conversation = await accept_offer(alice)
            await visitor.expect("agent")  # the join is told before Redis goes away
            await asyncio.to_thread(restart_loading, server)

            # The customer, the agent and a channel callback are each told to send again.
            await told_to_send_again(gw, visitor, alice, conversation, SECRET, timeout=30)

            await asyncio.to_thread(finish_loading, server)

            # The same message again, as the page sends it: taken, and shown to the agent, live
            # or in the fresh welcome the agent gets once the node bus is back.
            async def delivered() -> bool:
                await visitor.send(type="message", text="are you there", client_msg_id="m2")
                with contextlib.suppress(TimeoutError):
                    frame = await alice.expect(("message", "welcome"), timeout=2)
                    if frame["type"] == "message":
                        return frame["conversation_id"] == conversation
                    return any(
                        m.get("text") == "are you there"
                        for c in frame["conversations"]
                        if c["id"] == conversation
                        for m in c["messages"]
                    )
                return False

            await wait_until(delivered, timeout=60, interval=0.5)
    # The background loops say once, with the traceback, that Redis is away (adapters/loops.py).
    noisy = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        or (r.exc_info and "retrying with backoff" not in r.getMessage())
    ]
    assert not noisy, [f"{r.name}: {r.getMessage()}" for r in noisy]
