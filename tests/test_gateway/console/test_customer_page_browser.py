"""The customers' web chat page in real Chromium: after a reload it names the agent, never the
agent's id, and a close shows a sentence (the deployment's own where configured), not a code."""

from __future__ import annotations

import pytest
from browser_support import NewPage
from harness import agent, agent_client, make_config, running

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the Python package playwright is missing"
)
expect = playwright_api.expect
expect.set_options(timeout=10_000)

pytestmark = pytest.mark.asyncio(loop_scope="module")

OWN_SENTENCE = "Thanks for talking to Example Shop. Write again any time."


async def test_the_page_names_the_agent_after_a_reload_and_says_why_it_closed(
    tenant, redis_url, new_page: NewPage
):
    close_messages = {"closed_by_agent": {"en": OWN_SENTENCE}}
    config = make_config(
        tenant,
        agents=[agent("alice", capacity=2, name="Alice Wang")],
        webchat={"close_messages": close_messages},
    )
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        page = await new_page()
        await page.goto(f"{gw.base}/webchat/?lang=en")
        await page.get_by_label("Message").fill("where is my parcel?")
        await page.get_by_role("button", name="Send").click()
        offer = await alice.expect("offer")
        conversation_id = offer["conversation"]["id"]
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")
        await alice.send(
            type="reply", conversation_id=conversation_id, text="On its way", client_msg_id="r1"
        )
        await expect(page.get_by_text("On its way")).to_be_visible()

        await page.reload()
        await expect(page.get_by_text("On its way")).to_be_visible()
        await expect(page.get_by_text("Alice Wang").first).to_be_visible()
        assert "alice ·" not in await page.locator("body").inner_text()

        await alice.send(type="close", conversation_id=conversation_id)
        await expect(page.get_by_text(OWN_SENTENCE)).to_be_visible()
        assert "closed_by_agent" not in await page.locator("body").inner_text()


async def test_a_language_not_configured_keeps_the_pages_own_sentence(
    tenant, redis_url, new_page: NewPage
):
    close_messages = {"closed_by_agent": {"en": OWN_SENTENCE}}
    config = make_config(
        tenant, agents=[agent("alice", capacity=2)], webchat={"close_messages": close_messages}
    )
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        page = await new_page(locale="zh-CN")
        await page.goto(f"{gw.base}/webchat/?lang=zh")
        await page.locator("textarea, input[type=text]").first.fill("你好")
        await page.keyboard.press("Enter")
        offer = await alice.expect("offer")
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")
        await alice.send(type="close", conversation_id=offer["conversation"]["id"])
        await expect(page.get_by_text("客服已结束本次会话", exact=False)).to_be_visible()
