"""The team lead's view of the console in real Chromium against a real gateway: a lead signs
in with their token on the same page as agents, sees the wallboard of their own queues only
(its numbers those of the admin API), finds a live chat, watches it as it happens, transfers
it, takes one over, closes one and sets an agent's status. Agents and customers are real
sockets; every wait is Playwright's expect() or a frame awaited with a deadline."""

from __future__ import annotations

import re

import pytest
from browser_support import NewPage, screenshot_path
from harness import accept_offer, agent_client, customer
from supervisor_support import admin_get, centre

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the Python package playwright is missing"
)
expect = playwright_api.expect
expect.set_options(timeout=10_000)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def sign_in_lead(page, gw, token: str, lang: str | None = None) -> None:
    await page.goto(f"{gw.base}/console/" + (f"?lang={lang}" if lang else ""))
    await page.get_by_label("Token" if lang != "zh" else "令牌").fill(token)
    await page.get_by_role("button", name="Sign in" if lang != "zh" else "登录").click()
    await expect(page.locator("#lead-connection")).to_have_text(
        "Connected" if lang != "zh" else re.compile(".+")
    )


def queue_row(page, name: str):
    table = page.get_by_role("table", name="Queues")
    return table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))


def agent_row(page, name: str):
    table = page.get_by_role("table", name="Agents")
    return table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))


async def say(visitor, text: str) -> str:
    await visitor.send(type="message", text=text)
    return (await visitor.expect("message"))["conversation_id"]


async def test_a_lead_sees_only_their_queues_and_an_unknown_token_is_refused(
    tenant, redis_url, new_page: NewPage
):
    async with centre(tenant, redis_url) as gw:
        page = await new_page()
        await page.goto(f"{gw.base}/console/")
        await page.get_by_label("Token").fill("nobody's token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert").first).to_contain_text("refused")

        await sign_in_lead(page, gw, "tok-gail")
        await expect(
            page.get_by_role("heading", name=re.compile("Team lead console"))
        ).to_be_visible()
        queues = page.get_by_role("table", name="Queues")
        await expect(queues.get_by_role("rowheader")).to_have_text(["general"])
        agents = page.get_by_role("table", name="Agents")
        await expect(agents.get_by_role("rowheader")).to_have_text(
            [re.compile("Alice"), re.compile("Carol")]
        )
        # The agent workspace stays hidden: its controls are not there for a lead.
        await expect(page.get_by_label("Reply")).to_be_hidden()

        await page.reload()  # the tab remembers the lead: straight back to the wallboard
        await expect(queues.get_by_role("rowheader", name="general")).to_be_visible()
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_label("Token")).to_be_visible()


async def test_the_wallboard_shows_the_admin_apis_numbers_live(
    tenant, redis_url, new_page: NewPage
):
    async with (
        centre(tenant, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
        customer(gw) as one,
        customer(gw) as two,
    ):
        page = await new_page()
        await sign_in_lead(page, gw, "tok-lin")
        await bob.send(type="set_status", status="lunch")
        await bob.expect("status", status="lunch")
        await say(one, "first")
        await accept_offer(alice)
        await say(two, "my invoice")  # billing: bob is at lunch, so it waits

        await expect(queue_row(page, "billing").get_by_role("cell").first).to_have_text("1")
        queues = {q["name"]: q for q in (await admin_get(gw, "/api/queues"))["queues"]}
        agents = {a["id"]: a for a in (await admin_get(gw, "/api/agents"))["agents"]}
        for name, api in queues.items():
            cells = queue_row(page, name).get_by_role("cell")
            await expect(cells.nth(0)).to_have_text(str(api["depth"]))
            not_ready = sum(
                n for s, n in api["agents"].items() if s not in ("available", "offline")
            )
            await expect(cells.nth(6)).to_have_text(str(not_ready))
            available = int(await cells.nth(4).text_content() or "0")
            busy = int(await cells.nth(5).text_content() or "0")
            assert available + busy == api["agents"]["available"]
        await expect(agent_row(page, "Alice").get_by_role("cell").nth(0)).to_contain_text(
            "Available"
        )
        await expect(agent_row(page, "Alice").get_by_role("cell").nth(2)).to_have_text(
            f"webchat {agents['alice']['load']['webchat']}/{agents['alice']['capacity']['webchat']}"
        )
        await expect(agent_row(page, "Alice").get_by_role("cell").nth(3)).to_have_text(
            str(len(agents["alice"]["conversations"]))
        )
        await expect(agent_row(page, "Bob").get_by_role("cell").nth(0)).to_contain_text("Lunch")
        # Oldest wait advances by itself between frames.
        oldest = queue_row(page, "billing").get_by_role("cell").nth(1)
        shown = await oldest.text_content()
        await expect(oldest).not_to_have_text(shown or "")


async def test_a_lead_watches_a_live_chat_and_transfers_it(tenant, redis_url, new_page: NewPage):
    async with (
        centre(tenant, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "carol") as carol,
        customer(gw) as visitor,
    ):
        await carol.send(type="set_status", status="away")
        await carol.expect("status", status="away")
        conversation_id = await say(visitor, "My parcel never came")
        assert await accept_offer(alice) == conversation_id
        await carol.send(type="set_status", status="available")
        await carol.expect("status", status="available")

        page = await new_page()
        await sign_in_lead(page, gw, "tok-lin")
        await page.get_by_label("Search").fill("parcel")
        results = page.locator("#lead-results").get_by_role("button")
        await expect(results).to_have_count(1)
        await expect(results).to_contain_text("Alice")
        await results.click()

        watched = page.get_by_role("log")
        await expect(watched).to_contain_text("My parcel never came")
        await expect(page.get_by_text("Watching live, read-only")).to_be_visible()
        await say(visitor, "Order 4471")
        await expect(watched).to_contain_text("Order 4471")  # live, as it happens
        await alice.send(
            type="reply", conversation_id=conversation_id, text="Checking now", client_msg_id="r1"
        )
        await alice.expect("reply_ack")
        await expect(watched).to_contain_text("Checking now")

        await page.get_by_role("button", name="Transfer", exact=True).click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_label("To agent").select_option("carol")
        await dialog.get_by_label("Note for the next agent").fill("VIP, parcel lost twice")
        await dialog.get_by_role("button", name="Confirm transfer").click()
        await expect(dialog).to_be_hidden()
        closed = await alice.expect("closed", conversation_id=conversation_id)
        assert closed["reason"] == "transferred"
        offer = await carol.expect("offer")
        assert offer["conversation"]["id"] == conversation_id
        assert "VIP, parcel lost twice" in str(offer)
        await carol.send(type="accept", offer_id=offer["offer_id"])
        await carol.expect("assigned")
        await expect(page.get_by_role("status").filter(has_text="Transferred.")).to_have_count(1)
        details = page.locator("#watch-details")
        await expect(details).to_contain_text("Carol")
        await say(visitor, "Hello Carol")
        await expect(watched).to_contain_text("Hello Carol")

        # A lead of general only cannot see billing's conversations at all.
        async with customer(gw) as payer:
            await say(payer, "my invoice is wrong")
            other = await new_page()
            await sign_in_lead(other, gw, "tok-gail")
            await other.get_by_label("Search").fill("invoice")
            await other.get_by_role("button", name="Find").click()
            await expect(other.get_by_text("No open conversation matches.")).to_be_visible()


async def test_take_over_close_and_set_an_agents_status(tenant, redis_url, new_page: NewPage):
    async with (
        centre(tenant, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "carol") as carol,
        customer(gw) as first,
        customer(gw) as second,
    ):
        await carol.send(type="set_status", status="away")
        await carol.expect("status", status="away")
        taken = await say(first, "I want the manager")
        assert await accept_offer(alice) == taken
        closing = await say(second, "spam spam")
        assert await accept_offer(alice) == closing

        page = await new_page()
        await sign_in_lead(page, gw, "tok-lin")
        results = page.locator("#lead-results").get_by_role("button")
        await expect(results).to_have_count(2)

        await results.filter(has_text="manager").click()
        await expect(page.get_by_role("log")).to_contain_text("I want the manager")
        await carol.send(type="set_status", status="available")  # lin's own agent account
        await carol.expect("status", status="available")
        await page.get_by_role("button", name="Take over").click()
        await alice.expect("closed", conversation_id=taken)
        offer = await carol.expect("offer")
        assert offer["conversation"]["id"] == taken

        await results.filter(has_text="spam").click()
        await expect(page.get_by_role("log")).to_contain_text("spam spam")
        # A refusal is shown, with the gateway's code: bob is not signed in.
        await page.get_by_role("button", name="Transfer", exact=True).click()
        await page.get_by_role("dialog").get_by_label("To agent").select_option("bob")
        await page.get_by_role("button", name="Confirm transfer").click()
        await expect(page.locator("#lead-problems")).to_contain_text("agent_unavailable")
        await page.get_by_role("button", name="Close conversation").click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_label("Why (for the log, optional)").fill("abuse")
        await dialog.get_by_role("button", name="Confirm close").click()
        closed = await alice.expect("closed", conversation_id=closing)
        assert closed["reason"] == "closed_by_supervisor"
        await second.expect("closed")
        await expect(page.locator("#watch-state")).to_contain_text("Closed")
        await expect(page.get_by_role("button", name="Transfer", exact=True)).to_be_disabled()

        status = page.get_by_label("Status of Alice")
        await status.select_option("away")
        frame = await alice.expect("status", status="away")
        assert frame["reason"] == "set_by_supervisor"
        await expect(agent_row(page, "Alice").get_by_role("cell").nth(0)).to_contain_text("Away")
        await expect(status).to_have_value("away")


async def test_screenshots_of_the_wallboard_in_both_languages(tenant, redis_url, new_page: NewPage):
    async with (
        centre(tenant, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
        customer(gw) as one,
        customer(gw) as two,
        customer(gw) as three,
    ):
        await bob.send(type="set_status", status="lunch")
        await bob.expect("status", status="lunch")
        held = await say(one, "我的快递三天没到了")
        await accept_offer(alice)
        await alice.send(
            type="reply", conversation_id=held, text="您好，我马上帮您查询", client_msg_id="r1"
        )
        await alice.expect("reply_ack")
        await say(two, "Where is my refund?")
        await say(three, "invoice 2231 is wrong")
        for lang, name in (("en", "lead-en.png"), ("zh", "lead-zh.png")):
            page = await new_page(locale="zh-CN" if lang == "zh" else "en-US")
            await sign_in_lead(page, gw, "tok-lin", lang=lang)
            results = page.locator("#lead-results").get_by_role("button")
            await expect(results).to_have_count(3)
            await results.first.click()
            await expect(page.get_by_role("log").locator("li")).not_to_have_count(0)
            path = screenshot_path(name)
            if path is not None:
                await page.screenshot(path=str(path), full_page=True)
