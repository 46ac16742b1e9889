"""CSAT on WeChat, through the fake platform: the close sends the question as a
customer-service message; the customer's "５" (a full-width digit, as Chinese keyboards type
it) is the rating, thanked, and opens no conversation, nor does its redelivery or a second
digit; "0" is an ordinary message."""

from __future__ import annotations

import time

from fake_wechat_api import oa_xml
from harness import agent_client, running
from helpers import wait_until
from test_wechat_send import start_conversation
from wechat_helpers import post_callback


def texts(fake) -> list[str]:
    return [m["text"]["content"] for m in fake.sent if m.get("msgtype") == "text"]


async def test_a_digit_answers_the_question_and_opens_nothing(config, redis_url, fake):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await start_conversation(gw, alice, openid="o-csat")
        await alice.send(type="close", conversation_id=conversation_id)
        await alice.expect("closed", conversation_id=conversation_id)
        await wait_until(lambda: any("one digit from 1" in t for t in texts(fake)), timeout=10)

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
