"""A gateway whose Redis node was demoted to a replica (a failover elsewhere, or an operator's
REPLICAOF) keeps its data but answers READONLY to every write until it is a master again.
That is nobody's bad input and nothing ran: a customer's message, a new visitor's hello and
an agent's reply get the retryable ``unavailable`` error frame, a channel callback 503 with
Retry-After, and no message logs an ERROR or a traceback; once the node takes writes again
the same conversation goes on.

The replica's master is a port nothing listens on, so the node keeps its data while it
refuses writes, and ``REPLICAOF NO ONE`` ends the demotion at once."""

from __future__ import annotations

import contextlib
import logging

import pytest
import redis
from harness import (
    accept_offer,
    agent,
    agent_client,
    connect,
    customer,
    make_config,
    running,
    told_to_send_again,
)
from helpers import free_port, wait_until

from gateway.redis.embedded import RedisServer, find_redis_server

SECRET = "s3cret-for-tests"


@pytest.fixture
def node():
    if find_redis_server() is None:
        pytest.skip("redis-server not found: apt-get install redis-server")
    server = RedisServer(persistent=False).start()
    yield server
    server.stop()


async def test_a_demoted_node_is_a_retryable_error_everywhere_and_then_all_goes_on(
    node, tenant, caplog
):
    caplog.set_level(logging.INFO)
    config = make_config(
        tenant,
        agents=[agent("alice")],
        reviews={"feeds": [{"name": "shop", "webhook_secret": SECRET}]},
    )
    admin = redis.Redis.from_url(node.url)
    async with running(config, node.url) as gw, agent_client(gw, "alice") as alice:
        async with customer(gw) as visitor:
            await visitor.send(type="message", text="hello", client_msg_id="m1")
            conversation = await accept_offer(alice)
            await visitor.expect("agent")
            assert admin.replicaof("127.0.0.1", free_port())
            try:
                # The customer, the agent and a channel callback are each told to send again.
                await told_to_send_again(gw, visitor, alice, conversation, SECRET)
                # A new visitor: their hello writes too.
                async with connect(gw.ws_url("/webchat/ws")) as newcomer:
                    await newcomer.send(type="hello")
                    error = await newcomer.expect("error")
                    assert error["code"] == "unavailable", error
            finally:
                admin.replicaof("NO", "ONE")

            # The same message again, as the page sends it: taken and shown to the agent.
            async def delivered() -> bool:
                await visitor.send(type="message", text="are you there", client_msg_id="m2")
                with contextlib.suppress(TimeoutError):
                    frame = await alice.expect("message", timeout=2)
                    return frame["conversation_id"] == conversation
                return False

            await wait_until(delivered, timeout=30, interval=0.5)
    admin.close()
    # The background loops may say once, with the traceback, that Redis refuses (adapters/loops.py).
    noisy = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        or (r.exc_info and "retrying with backoff" not in r.getMessage())
    ]
    assert not noisy, [f"{r.name}: {r.getMessage()}" for r in noisy]
