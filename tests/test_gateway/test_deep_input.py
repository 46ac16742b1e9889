"""JSON nested ten thousand deep, sent to every entry point that reads JSON from outside:
the agent, web chat and supervisor sockets, the review webhook and the admin API. Each
answers with an error frame or a 400 that names the problem, keeps serving, and logs no
traceback (decoding it used to raise RecursionError: a traceback and a 503)."""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest
from harness import (
    agent,
    agent_client,
    connect,
    customer,
    make_config,
    review_headers,
    running,
)

DEEP_ARRAY = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a":' * 10_000 + "1" + "}" * 10_000
ADMIN = {"Authorization": "Bearer secret"}
SECRET = "s3cret-for-tests"


@pytest.fixture
def config(tenant):
    return make_config(
        tenant,
        admin={"token": "secret"},
        agents=[agent("alice"), agent("carol")],
        queues=[{"name": "general"}],
        supervisors=[{"id": "lin", "token": "tok-lin", "agent": "carol"}],
        reviews={"feeds": [{"name": "shop", "webhook_secret": SECRET}]},
        webchat={"max_frame_bytes": 65536},  # room for 10,000 levels in one frame
    )


@pytest.fixture
def no_tracebacks(caplog):
    caplog.set_level(logging.INFO)
    yield
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not noisy, [r.getMessage() for r in noisy]


def nested_too_deeply(text: str) -> bool:
    return "nested too deeply" in text


@pytest.mark.parametrize("deep", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
async def test_sockets_answer_an_error_frame_and_keep_serving(
    config, redis_url, no_tracebacks, deep
):
    async with running(config, redis_url) as gw:
        async with agent_client(gw, "alice") as alice:
            await alice.ws.send(deep)
            error = await alice.expect("error")
            assert error["code"] == "bad_frame" and nested_too_deeply(error["detail"])
            await alice.send(type="set_status", status="away")
            await alice.expect("status")

        async with customer(gw) as visitor:
            await visitor.ws.send(deep)
            error = await visitor.expect("error")
            assert nested_too_deeply(error["detail"])
            await visitor.send(type="message", text="still here", client_msg_id="m1")
            await visitor.expect(("message", "queue"))

        async with connect(gw.ws_url("/supervisor/ws")) as lin:
            await lin.send(type="hello", token="tok-lin", protocol=1)
            await lin.expect("welcome")
            await lin.ws.send(deep)
            error = await lin.expect("error")
            assert error["code"] == "bad_frame" and nested_too_deeply(error["detail"])

        # Even as the very first frame, where a hello is expected.
        async with connect(gw.ws_url("/agent/ws")) as early:
            await early.ws.send(deep)
            error = await early.expect("error")
            assert nested_too_deeply(error["detail"])


async def test_a_deep_body_is_400_at_the_review_webhook_and_the_admin_api(
    config, redis_url, no_tracebacks
):
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        for deep in (DEEP_ARRAY, DEEP_OBJECT):
            body = deep.encode()
            headers = review_headers(SECRET, body)
            async with http.post(f"{gw.base}/reviews/shop", data=body, headers=headers) as reply:
                assert reply.status == 400
                assert nested_too_deeply(await reply.text())
        # The admin API takes 16 KB: deep enough all the same (the interpreter gives up at 1,000).
        url = f"{gw.admin_base}/api/agents/alice/status"
        for deep in ("[" * 5_000 + "]" * 5_000, '{"a":' * 2_000 + "1" + "}" * 2_000):
            async with http.put(url, data=deep.encode(), headers=ADMIN) as reply:
                assert reply.status == 400
                assert nested_too_deeply(json.loads(await reply.text())["detail"])
        # Text that merely looks deep is still taken: brackets inside strings do not count.
        body = json.dumps({"status": "[" * 64}).encode()
        async with http.put(url, data=body, headers=ADMIN) as reply:
            assert not nested_too_deeply(await reply.text())
