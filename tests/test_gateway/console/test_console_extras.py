"""The console's canned replies, internal notes, close reasons and the customer's earlier
conversations, in real Chromium against a real gateway. Controls are found by role and
accessible name; every wait is Playwright's auto-waiting expect() with a deadline."""

from __future__ import annotations

import re

import pytest
from browser_support import NewPage
from harness import agent, agent_client, make_config, running
from obs_support import scrape_text

from adapters.fake import FakeAdapter

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the Python package playwright is missing"
)
expect = playwright_api.expect
expect.set_options(timeout=10_000)

pytestmark = pytest.mark.asyncio(loop_scope="module")

CANNED = [
    {"id": "hi", "title": "Greeting", "text": "Hello {customer_name}, this is {agent_name}."},
    {"id": "wait", "title": "Please wait", "text": "One moment please, {customer_name}."},
    {"id": "bill", "title": "Invoice", "text": "Invoice sent.", "queues": ["billing"]},
]


def extras_config(tenant: str, **tables):
    agents = [
        agent("alice") | {"name": "Alice", "shown_as": "小美", "capacity": {"fake": 3}},
        agent("bob") | {"name": "Bob", "capacity": {"fake": 3}},
    ]
    tables.setdefault("conversations", {"close_reasons": ["resolved", "spam"]})
    return make_config(
        tenant,
        agents=agents,
        routing={"offer_timeout_s": 120.0},
        fake={},
        queues=[{"name": "general"}, {"name": "billing"}],
        canned_replies=CANNED,
        **tables,
    )


def fake_of(gw) -> FakeAdapter:
    adapter = gw.services.adapters["fake"]
    assert isinstance(adapter, FakeAdapter)
    return adapter


async def sign_in(page, gw, agent_id: str = "alice") -> None:
    await page.goto(f"{gw.base}/console/")
    await page.get_by_label("Token").fill(f"tok-{agent_id}")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#connection")).to_have_text("Connected")


async def accept_offer(page) -> None:
    card = page.get_by_role("article", name=re.compile("^Offer")).first
    await card.get_by_role("button", name="Accept", exact=True).click()
    await expect(card).to_have_count(0)


async def test_slash_opens_canned_replies_and_inserts_one_filled_in(
    tenant, redis_url, new_page: NewPage
):
    async with running(extras_config(tenant), redis_url) as gw:
        page = await new_page()
        await sign_in(page, gw)
        fake = fake_of(gw)
        await fake.receive("hello?", customer_id="c1", customer_name="Zhang Wei")
        await accept_offer(page)
        # The queue's SLA deadline shows for a conversation without a grade of its own.
        details = page.locator("#conversation-details")
        await expect(details).to_contain_text("SLA due")
        await expect(details).to_contain_text("target 1 min 0 s")
        box = page.get_by_label("Reply", exact=True)
        await box.press_sequentially("Hi! /")
        canned = page.get_by_role("listbox", name="Canned replies")
        await expect(canned).to_be_visible()
        # Only this queue's replies: the billing one is not offered in "general".
        await expect(canned.get_by_role("option")).to_have_count(2)
        await box.press_sequentially("wa")
        await expect(canned.get_by_role("option")).to_have_count(1)
        await box.press("Escape")
        await expect(canned).to_be_hidden()
        await expect(box).to_have_value("Hi! /wa")

        await box.fill("")
        await box.press_sequentially("/")
        await expect(canned.get_by_role("option")).to_have_count(2)
        await box.press("ArrowDown")
        await box.press("ArrowUp")
        await box.press("ArrowDown")
        await expect(canned.get_by_role("option", selected=True)).to_contain_text("Please wait")
        await box.press("Enter")  # inserts, does not send
        await expect(canned).to_be_hidden()
        await expect(box).to_have_value("One moment please, Zhang Wei.")
        assert not fake.sent
        await box.press("Enter")  # now it sends
        sent = await fake.next_sent()
        assert sent.text == "One moment please, Zhang Wei."

        await box.press_sequentially("/gree")
        await box.press("Enter")
        await expect(box).to_have_value("Hello Zhang Wei, this is 小美.")


async def test_a_note_survives_a_transfer_and_never_reaches_the_customer(
    tenant, redis_url, new_page: NewPage
):
    async with running(extras_config(tenant), redis_url) as gw:
        alice, bob = await new_page(), await new_page()
        await sign_in(alice, gw, "alice")
        fake = fake_of(gw)
        await fake.receive("my parcel is broken", customer_id="c2", customer_name="Li")
        await accept_offer(alice)
        await alice.get_by_role("button", name="Add note").click()
        dialog = alice.get_by_role("dialog", name="Add an internal note")
        await dialog.get_by_label(re.compile("^Internal note")).fill("VIP: offer a refund")
        await dialog.get_by_role("button", name="Save note").click()
        thread = alice.get_by_role("log")
        note = thread.get_by_role("listitem", name="Internal note")
        await expect(note).to_contain_text("VIP: offer a refund")
        await expect(note).to_have_class(re.compile(r"\bnote\b"))

        await sign_in(bob, gw, "bob")
        await alice.get_by_role("button", name="Transfer", exact=True).click()
        transfer = alice.get_by_role("dialog", name="Transfer the conversation")
        await transfer.get_by_label("To agent (id)").fill("bob")
        await transfer.get_by_label("Note for the next agent").fill("he called twice")
        await transfer.get_by_role("button", name="Confirm transfer").click()
        await accept_offer(bob)
        notes = bob.get_by_role("log").get_by_role("listitem", name="Internal note")
        await expect(notes).to_have_count(2)
        await expect(notes.first).to_contain_text("VIP: offer a refund")
        await expect(notes.first).to_contain_text("Alice")
        await expect(notes.last).to_contain_text("he called twice")
        assert not [o for o in fake.sent if "VIP" in o.text or "twice" in o.text]


async def test_close_asks_for_the_reason_and_the_metric_shows_it(
    tenant, redis_url, new_page: NewPage
):
    async with running(extras_config(tenant), redis_url) as gw:
        page = await new_page()
        await sign_in(page, gw)
        await fake_of(gw).receive("spam spam spam", customer_id="c3")
        await accept_offer(page)
        await page.get_by_role("button", name="Close conversation").click()
        dialog = page.get_by_role("dialog", name="Close the conversation")
        await dialog.get_by_label("Close reason").select_option("spam")
        await dialog.get_by_role("button", name="Confirm close").click()
        conversations = page.get_by_role("navigation", name="Conversations")
        await expect(conversations.get_by_role("button")).to_have_count(0)
        metrics = await scrape_text(gw.admin_base)
        closed = r'zhongtai_conversations_closed_total\{[^}]*close_reason="spam"[^}]*\} 1'
        assert re.search(closed, metrics)


async def test_without_reasons_close_is_one_click(tenant, redis_url, new_page: NewPage):
    async with running(extras_config(tenant, conversations={}), redis_url) as gw:
        page = await new_page()
        await sign_in(page, gw)
        await fake_of(gw).receive("thanks, bye", customer_id="c4")
        await accept_offer(page)
        await page.get_by_role("button", name="Close conversation").click()
        conversations = page.get_by_role("navigation", name="Conversations")
        await expect(conversations.get_by_role("button")).to_have_count(0)
        await expect(page.get_by_role("dialog")).to_have_count(0)


async def test_a_bad_reason_is_refused_naming_the_field(tenant, redis_url, new_page: NewPage):
    async with running(extras_config(tenant), redis_url) as gw:
        page = await new_page()
        await sign_in(page, gw)
        await fake_of(gw).receive("hm", customer_id="c5")
        await accept_offer(page)
        # A reason the list does not have (an outdated page, say): the gateway's error shows.
        await page.get_by_role("button", name="Close conversation").click()
        dialog = page.get_by_role("dialog", name="Close the conversation")
        await dialog.locator("select").evaluate(
            "s => { s.add(new Option('lunch', 'lunch')); s.value = 'lunch'; }"
        )
        await dialog.get_by_role("button", name="Confirm close").click()
        await expect(page.get_by_role("alert").filter(has_text="bad_close_reason")).to_be_visible()
        conversations = page.get_by_role("navigation", name="Conversations")
        await expect(conversations.get_by_role("button")).to_have_count(1)
        await expect(page.get_by_role("button", name="Close conversation")).to_be_enabled()


async def test_history_shows_the_customers_earlier_conversation(
    tenant, redis_url, new_page: NewPage
):
    async with running(extras_config(tenant), redis_url) as gw:
        fake = fake_of(gw)
        async with agent_client(gw, "bob") as bob:
            await fake.receive("where is order 4471?", customer_id="c6", customer_name="Wang")
            offer = await bob.expect("offer")
            await bob.send(type="accept", offer_id=offer["offer_id"])
            conv = (await bob.expect("assigned"))["conversation"]["id"]
            await bob.send(
                type="reply", conversation_id=conv, text="It ships today", client_msg_id="1"
            )
            await bob.expect("reply_ack")
            await bob.send(type="close", conversation_id=conv, reason="resolved")
            await bob.expect("closed")
            await bob.send(type="set_status", status="away")
            await bob.expect("status")
        page = await new_page()
        await sign_in(page, gw)
        await fake.receive("it did not come", customer_id="c6", customer_name="Wang")
        await accept_offer(page)
        history = page.get_by_role("region", name="Earlier conversations")
        await expect(history.get_by_role("listitem")).to_have_count(1)
        item = history.get_by_role("listitem").first
        for text in ("Bob", "resolved", "2 messages", "It ships today", "fake"):
            await expect(item).to_contain_text(text)

        await fake.receive("first time", customer_id="c7")
        await accept_offer(page)
        await expect(history).to_contain_text("No earlier conversations")
