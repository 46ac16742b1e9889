"""CSAT on WeChat, through the fake platform: the close sends the question as a
customer-service message; the customer's "５" (a full-width digit, as Chinese keyboards type
it) is the rating, thanked, and opens no conversation, nor does its redelivery or a second
digit; "0" is an ordinary message, and so is a digit after the window."""

from __future__ import annotations

import time

from fake_wechat_api import oa_xml
from harness import agent_client, running
from helpers import wait_until
from test_wechat_send import start_conversation
from wechat_helpers import post_callback


def texts(fake) -> list[str]:
    return [m["text"]["content"] for m in fake.sent if m.get("msgtype") == "text"]


async def closed_and_asked(gw, alice, fake, openid: str) -> str:
    """A conversation of openid's that alice closed, once the question went out; its id."""
    conversation_id = await start_conversation(gw, alice, openid=openid)
    await alice.send(type="close", conversation_id=conversation_id)
    await alice.expect("closed", conversation_id=conversation_id)
    await wait_until(lambda: any("one digit from 1" in t for t in texts(fake)), timeout=10)
    return conversation_id


async def test_a_digit_answers_the_question_and_opens_nothing(config, redis_url, fake):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await closed_and_asked(gw, alice, fake, "o-csat")

        xml = oa_xml("o-csat", "text", Content="５", MsgId=int(time.time() * 1000))
        assert await post_callback(gw, xml, account="plain") == (200, "success")
        # WeChat's retry of the same callback, and a second digit: the same rating, no message.
        assert await post_callback(gw, xml, account="plain") == (200, "success")
        again = oa_xml("o-csat", "text", Content="3", MsgId=int(time.time() * 1000) + 7)
        assert await post_callback(gw, again, account="plain") == (200, "success")
        rated = await alice.expect("csat", conversation_id=conversation_id)
        assert rated["score"] == 5
        await wait_until(lambda: "Thank you for your rating." in texts(fake), timeout=10)
        router = gw.services.router
        assert await router.open_conversation_id("wechat", "plain", "o-csat") is None

        xml = oa_xml("o-csat", "text", Content="0", MsgId=int(time.time() * 1000) + 1)
        assert await post_callback(gw, xml, account="plain") == (200, "success")
        offer = await alice.expect("offer")
        assert offer["conversation"]["id"] != conversation_id
        assert [m["text"] for m in offer["conversation"]["messages"]] == ["0"]
        assert (await router.csat_of(conversation_id)).score == 5


async def test_a_digit_after_the_window_is_a_message(config, redis_url, fake):
    # [csat] window_s after the close, a digit rates nothing: the customer is writing again.
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await closed_and_asked(gw, alice, fake, "o-late")
        aftercare = gw.services.switchboard.aftercare
        real, window_ms = aftercare.clock, int(config.core.csat.window_s * 1000)
        aftercare.clock = lambda: real() + window_ms + 1  # the gateway's clock, past the window

        xml = oa_xml("o-late", "text", Content="5", MsgId=int(time.time() * 1000))
        assert await post_callback(gw, xml, account="plain") == (200, "success")
        offer = await alice.expect("offer")
        assert offer["conversation"]["messages"][-1]["text"] == "5"
        assert (await gw.services.router.csat_of(conversation_id)).score is None
        assert "Thank you for your rating." not in texts(fake)
