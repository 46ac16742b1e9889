"""The web chat page in real Chromium asks for a rating when the conversation closes: five
score buttons (a radio group named by the question, each named by its score and meaning, the
arrow keys moving between them), an optional comment, and a thank-you once it is stored; the
agent's console lists the ratings of the conversations it closed."""

from __future__ import annotations

import pytest
from browser_support import NewPage
from harness import agent, agent_client, customer, make_config, running
from test_console_browser import accept_offer, sign_in

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the Python package playwright is missing"
)
expect = playwright_api.expect
expect.set_options(timeout=10_000)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_page_asks_for_a_rating_with_five_accessible_buttons(
    tenant, redis_url, new_page: NewPage
):
    config = make_config(tenant, agents=[agent("alice", capacity=2)])
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        page = await new_page()
        await page.goto(f"{gw.base}/webchat/?lang=en")
        await page.get_by_label("Message").fill("where is my parcel?")
        await page.get_by_role("button", name="Send", exact=True).click()
        offer = await alice.expect("offer")
        conversation_id = offer["conversation"]["id"]
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")
        await alice.send(type="close", conversation_id=conversation_id)

        group = page.get_by_role("radiogroup", name="How satisfied are you with this conversation?")
        await expect(group).to_be_visible()
        scores = group.get_by_role("radio")
        await expect(scores).to_have_count(5)
        await expect(scores.nth(0)).to_have_accessible_name("1 of 5: Very unsatisfied")
        await expect(scores.nth(4)).to_have_accessible_name("5 of 5: Very satisfied")

        await page.get_by_role("button", name="Send rating").click()
        await expect(page.get_by_text("Choose a score from 1 to 5 first.")).to_be_visible()
        await scores.nth(2).click()
        await page.keyboard.press("ArrowRight")  # from 3 to 4, as a radio group does
        await expect(scores.nth(3)).to_be_checked()
        await expect(scores.nth(3)).to_be_focused()
        await expect(page.get_by_text("Choose a score from 1 to 5 first.")).to_have_count(0)
        await page.get_by_label("Comment (optional)").fill("quick, thanks")
        await page.get_by_role("button", name="Send rating").click()

        rated = await alice.expect("csat", conversation_id=conversation_id)
        assert (rated["score"], rated["comment"]) == (4, "quick, thanks")
        await expect(page.get_by_text("Thank you for your rating.")).to_be_visible()
        await expect(group).to_have_count(0)


async def test_the_agents_console_lists_the_ratings_of_its_closed_conversations(
    tenant, redis_url, new_page: NewPage
):
    config = make_config(tenant, agents=[agent("alice", capacity=2, name="Alice")])
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        page = await new_page()
        await sign_in(page, gw)
        await visitor.send(type="message", text="refund please")
        await accept_offer(page)
        await page.get_by_role("button", name="Close conversation").click()
        request = await visitor.expect("csat_request")
        await visitor.send(
            type="csat", conversation_id=request["conversation_id"], score=2, comment="too slow"
        )
        await visitor.expect("csat_thanks")
        ratings = page.get_by_role("region", name="Ratings")
        await expect(ratings).to_be_visible()
        await expect(ratings.get_by_role("listitem")).to_have_count(1)
        await expect(ratings.get_by_role("listitem")).to_contain_text("2/5")
        await expect(ratings.get_by_role("listitem")).to_contain_text("too slow")
