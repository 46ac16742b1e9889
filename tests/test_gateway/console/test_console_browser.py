"""The agent console in real Chromium against a real gateway: sign-in, offers, replies,
refusals, reconnects, replacement and both languages. Controls are found by role and
accessible name, as an agent's screen reader finds them; every wait is Playwright's
auto-waiting expect() with a deadline, never a sleep."""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser_support import NewPage, screenshot_path
from harness import agent, agent_client, customer, make_config, running, start_gateway
from helpers import wait_until

from adapters.contract import Attachment
from adapters.fake import FakeAdapter

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the Python package playwright is missing"
)
expect = playwright_api.expect
expect.set_options(timeout=10_000)

pytestmark = pytest.mark.asyncio(loop_scope="module")

IMAGE = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='160' height='90'%3E"
    "%3Crect width='160' height='90' fill='%23cfe3f7'/%3E%3Ctext x='20' y='52' "
    "font-size='20'%3Ereceipt%3C/text%3E%3C/svg%3E"
)


def console_config(tenant: str, **tables: Any):
    agents = [
        agent("alice") | {"name": "Alice", "capacity": {"webchat": 3, "fake": 3, "wechat": 3}},
        agent("bob") | {"name": "Bob", "capacity": {"webchat": 3, "fake": 3}},
    ]
    return make_config(
        tenant,
        agents=agents,
        routing={"offer_timeout_s": 120.0},
        fake={},
        **tables,
    )


def fake_of(gw) -> FakeAdapter:
    adapter = gw.services.adapters["fake"]
    assert isinstance(adapter, FakeAdapter)
    return adapter


async def sign_in(page, gw, agent_id: str = "alice", lang: str | None = None) -> None:
    await page.goto(f"{gw.base}/console/" + (f"?lang={lang}" if lang else ""))
    await page.get_by_label("Token").fill(f"tok-{agent_id}")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#connection")).to_have_text("Connected")


def offer_card(page):
    return page.get_by_role("article", name=re.compile("^Offer"))


async def accept_offer(page) -> None:
    card = offer_card(page).first
    await card.get_by_role("button", name="Accept", exact=True).click()
    await expect(card).to_have_count(0)


async def test_sign_in_offer_accept_reply_and_the_answer(tenant, redis_url, new_page: NewPage):
    config = console_config(tenant)
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        page = await new_page()
        await sign_in(page, gw)
        await expect(page.get_by_label("Status")).to_have_value("available")

        await visitor.send(type="message", text="My parcel is late", client_msg_id="c1")
        await visitor.expect("message")
        card = offer_card(page)
        await expect(card).to_contain_text("webchat")
        await expect(card).to_contain_text("My parcel is late")
        timer = card.get_by_role("timer")
        await expect(timer).to_have_text(re.compile(r"Expires in \d+ (s|min)"))
        shown = await timer.text_content()
        await expect(timer).not_to_have_text(shown or "")  # it counts down by itself

        await accept_offer(page)
        thread = page.get_by_role("log")
        await expect(thread).to_contain_text("My parcel is late")
        conversations = page.get_by_role("navigation", name="Conversations")
        await expect(conversations.get_by_role("button")).to_have_count(1)
        await expect(conversations.get_by_role("button")).to_contain_text("waiting")

        box = page.get_by_label("Reply")
        await box.fill("Let me check")
        await box.press("Enter")
        await expect(box).to_have_value("")
        answer = await visitor.expect("message")
        assert answer["message"]["text"] == "Let me check"
        await expect(thread).to_contain_text("Let me check")
        await expect(thread.get_by_text("Sending…")).to_have_count(0)

        await box.type("line one")
        await box.press("Shift+Enter")
        await box.type("line two")
        await page.get_by_role("button", name="Send", exact=True).click()
        answer = await visitor.expect("message")
        assert answer["message"]["text"] == "line one\nline two"

        await visitor.send(type="message", text="Thanks, order 4471")
        await expect(thread).to_contain_text("Thanks, order 4471")

        # A second conversation, accepted, takes the thread; the first counts what is unread.
        async with customer(gw) as other:
            await other.send(type="message", text="Opening hours?")
            await accept_offer(page)
            await expect(thread).to_contain_text("Opening hours?")
            await visitor.send(type="message", text="Are you there?")
            first = conversations.get_by_role("button").first
            await expect(first.locator(".unread")).to_have_text("1")
            await first.click()
            await expect(thread).to_contain_text("Are you there?")
            await expect(first.locator(".unread")).to_be_hidden()


async def test_attachments_are_shown_and_a_refused_reply_says_why(
    tenant, redis_url, new_page: NewPage
):
    async with running(console_config(tenant), redis_url) as gw:
        page = await new_page()
        await sign_in(page, gw)
        fake = fake_of(gw)
        attachments = [
            Attachment(name="receipt.svg", content_type="image/svg+xml", url=IMAGE),
            Attachment(name="invoice.pdf", content_type="application/pdf", size=2048, url=IMAGE),
        ]
        await fake.receive(
            "Here is the receipt",
            customer_id="c1",
            customer_name="Zhang Wei",
            attachments=attachments,
        )
        await expect(offer_card(page)).to_contain_text("Zhang Wei")
        await accept_offer(page)
        thread = page.get_by_role("log")
        await expect(thread.get_by_role("img", name="receipt.svg")).to_be_visible()
        await expect(thread.get_by_role("link", name=re.compile("invoice.pdf"))).to_be_visible()

        fake.fail_next_send("45015", "the customer-service window has closed")
        box = page.get_by_label("Reply")
        await box.fill("Sorry for the wait")
        await box.press("Enter")
        await expect(thread).to_contain_text(
            "Not sent: channel_error: 45015: the customer-service window has closed"
        )
        assert fake.sent == []
        await thread.get_by_role("button", name="Retry").click()
        await expect(thread.get_by_text("Not sent")).to_have_count(0)
        assert (await fake.next_sent(timeout=5)).text == "Sorry for the wait"


async def test_decline_with_a_reason_moves_the_offer_on(tenant, redis_url, new_page: NewPage):
    async with running(console_config(tenant), redis_url) as gw:
        page = await new_page()
        await sign_in(page, gw)
        async with agent_client(gw, "bob") as bob, customer(gw) as visitor:
            await visitor.send(type="message", text="hello")
            card = offer_card(page)
            await card.get_by_label("Decline reason (optional)").fill("in training")
            await card.get_by_role("button", name="Decline", exact=True).click()
            await expect(card).to_have_count(0)
            offer = await bob.expect("offer")
            assert offer["conversation"]["messages"][0]["text"] == "hello"


async def test_transfer_with_a_note_and_close(tenant, redis_url, new_page: NewPage):
    async with running(console_config(tenant), redis_url) as gw:
        page = await new_page()
        await sign_in(page, gw)
        async with agent_client(gw, "bob") as bob:
            fake = fake_of(gw)
            await fake.receive("refund please", customer_id="c1")
            await accept_offer(page)
            await expect(page.get_by_role("button", name="Add note")).to_be_enabled()
            await page.get_by_role("button", name="Transfer", exact=True).click()
            dialog = page.get_by_role("dialog")
            await dialog.get_by_label("To agent (id)").fill("bob")
            await dialog.get_by_label("Note for the next agent").fill("wants a refund")
            await dialog.get_by_role("button", name="Confirm transfer").click()
            offer = await bob.expect("offer")
            assert offer["conversation"]["transfer_note"] == "wants a refund"
            assert offer["conversation"]["transferred_from"] == "alice"
            conversations = page.get_by_role("navigation", name="Conversations")
            await expect(conversations.get_by_role("button")).to_have_count(0)

            await fake.receive("another question", customer_id="c2")
            await accept_offer(page)
            await page.get_by_role("button", name="Close conversation").click()
            await expect(conversations.get_by_role("button")).to_have_count(0)
            event = None
            while event is None or event.kind != "closed":
                event = await fake.next_event(timeout=5)


async def test_reconnects_after_a_restart_with_the_draft_kept(tenant, redis_url, new_page):
    config = console_config(tenant)
    gw = await start_gateway(config, redis_url)
    try:
        page = await new_page()
        await sign_in(page, gw)
        async with customer(gw) as visitor:
            token = visitor.frames[0]["visitor_token"]
            await visitor.send(type="message", text="before the restart")
            await accept_offer(page)
        box = page.get_by_label("Reply")
        await box.fill("half-written answer")

        port = gw.port
        await gw.stop()
        connection = page.locator("#connection")
        await expect(connection).to_have_text(re.compile("Connection lost"))
        gw = await start_gateway(config, redis_url, port=port)
        await expect(connection).to_have_text("Connected", timeout=30_000)
        await expect(box).to_have_value("half-written answer")

        async with customer(gw, visitor_token=token) as visitor:
            await visitor.send(type="message", text="after the restart")
            thread = page.get_by_role("log")
            await expect(thread).to_contain_text("after the restart")
            await expect(thread).to_contain_text("before the restart")

        await page.reload()  # the token and the draft live in the tab's sessionStorage
        await expect(connection).to_have_text("Connected")
        await expect(page.get_by_label("Reply")).to_have_value("half-written answer")
    finally:
        await gw.stop()


async def test_a_resync_welcome_replaces_the_state_and_keeps_one_keep_alive(
    tenant, redis_url, new_page: NewPage
):
    async with running(console_config(tenant), redis_url) as gw:
        page = await new_page()
        await page.clock.install()
        sent: list[str] = []
        welcomes: list[str] = []

        def watch(ws: Any) -> None:
            ws.on("framesent", lambda payload: sent.append(str(payload)))
            ws.on(
                "framereceived",
                lambda payload: (
                    welcomes.append(str(payload)) if '"welcome"' in str(payload) else None
                ),
            )

        page.on("websocket", watch)
        await sign_in(page, gw)
        async with customer(gw) as visitor:
            await visitor.send(type="message", text="before the resync")
            await accept_offer(page)
            thread = page.get_by_role("log")
            await expect(thread).to_contain_text("before the resync")

            gw.services.sessions.resync_all()  # what the node bus coming back does
            await wait_until(lambda: len(welcomes) == 2, timeout=20, message="a fresh welcome")
            await expect(page.locator("#connection")).to_have_text("Connected")
            await expect(thread.get_by_text("before the resync")).to_have_count(1)

            await page.clock.run_for(3 * 15_000)  # three keep-alive periods
            await wait_until(lambda: sum('"ping"' in f for f in sent) >= 3, timeout=20)
            await page.evaluate("1")  # the frames sent so far have been reported
            assert sum('"ping"' in f for f in sent) == 3, "one keep-alive, not one per welcome"


async def test_signing_in_elsewhere_stops_the_first_tab(tenant, redis_url, new_page: NewPage):
    async with running(console_config(tenant), redis_url) as gw:
        first = await new_page()
        await first.clock.install()
        sockets: list[object] = []
        first.on("websocket", lambda ws: sockets.append(ws))
        await sign_in(first, gw)
        second = await new_page()
        await sign_in(second, gw)

        await expect(first.get_by_role("alert")).to_contain_text("You signed in elsewhere")
        await expect(first.locator("#connection")).to_have_text("Disconnected")
        await first.clock.run_for(120_000)  # past any backoff: no reconnect was scheduled
        assert len(sockets) == 1
        await expect(second.locator("#connection")).to_have_text("Connected")

        await first.get_by_role("button", name="Use this tab again").click()
        await expect(first.locator("#connection")).to_have_text("Connected")
        await expect(second.locator("#connection")).to_have_text("Disconnected")


async def test_a_refused_token_goes_back_to_sign_in(tenant, redis_url, new_page: NewPage):
    async with running(console_config(tenant), redis_url) as gw:
        page = await new_page()
        await page.goto(f"{gw.base}/console")
        await page.get_by_label("Token").fill("wrong")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("refused this token")
        await expect(page.get_by_label("Token")).to_be_visible()


async def test_the_pure_parts(tenant, redis_url, new_page: NewPage):
    """Backoff, language choice, waiting time and the WeChat window, in the browser."""
    async with running(console_config(tenant), redis_url) as gw:
        page = await new_page()
        await page.goto(f"{gw.base}/console/")
        result = await page.evaluate(
            """async () => {
              const c = await import("./connection.js");
              const i = await import("./i18n.js");
              const l = await import("./conversations.js");
              const th = await import("./thread.js");
              const m = (direction, at, author = null, kind = "text") =>
                ({ direction, sent_at: new Date(at).toISOString(), author, kind });
              const now = Date.parse("2026-05-14T12:00:00Z");
              const wechat = (messages, notices = []) =>
                ({ conversation: { channel: "wechat" }, messages, notices });
              return {
                backoff: [0, 1, 10].map(
                  (n) => [c.backoffDelay(n, () => 0), c.backoffDelay(n, () => 1)]),
                langs: [i.pickLanguage("?lang=zh", ["en"]), i.pickLanguage("", ["zh-CN"]),
                        i.pickLanguage("?lang=en", ["zh-TW"]), i.pickLanguage("", ["fr"])],
                waiting: [
                  l.waitingSince([m("in", 1000), m("in", 2000)]),
                  l.waitingSince([m("in", 1000), m("out", 2000, "alice")]),
                  l.waitingSince([m("in", 1000), m("out", 2000, "system"), m("in", 3000)]),
                  l.waitingSince([m("in", 1000), m("out", 2000, "alice"), m("in", 3000)]),
                ],
                open: th.wechatWindow(wechat([m("in", now - 3600e3)]), now),
                shut: th.wechatWindow(wechat([m("in", now - 49 * 3600e3)]), now),
                told: th.wechatWindow(wechat([m("in", now - 3600e3)],
                  [{ code: "wechat_window_closed", at: now - 60e3 }]), now),
                other: th.wechatWindow(
                  { conversation: { channel: "webchat" }, messages: [], notices: [] }, now),
              };
            }"""
        )
    assert result["backoff"] == [[250, 500], [500, 1000], [15000, 30000]]
    assert result["langs"] == ["zh", "zh", "en", "en"]
    assert result["waiting"] == [1000, None, 1000, 3000]
    assert result["open"]["open"] and result["open"]["closesAt"] == 1778760000000 + 47 * 3600e3
    assert result["shut"] == {"open": False} and result["told"] == {"open": False}
    assert result["other"] is None


LABELS = {
    "en": [
        "Token",
        "Sign in",
        "Status",
        "Accept",
        "Decline",
        "Reply",
        "Send",
        "Transfer",
        "Add note",
        "Close conversation",
    ],
    "zh": ["令牌", "登录", "状态", "接受", "拒绝", "回复", "发送", "转接", "添加备注", "关闭会话"],
}


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_labels_in_both_languages_and_screenshots(lang, tenant, redis_url, new_page: NewPage):
    token, sign, status, accept, decline, reply, send, transfer, note, close = LABELS[lang]
    config = console_config(
        tenant,
        rules=[{"name": "complaints", "keywords": ["投诉", "complaint"], "grade": "A"}],
        grades=[{"name": "A", "priority": 9, "sla_s": 600}],
    )
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        # Only ?lang= decides here: the browser itself asks for the other language.
        page = await new_page(locale="zh-CN" if lang == "en" else "en-US")
        await page.goto(f"{gw.base}/console/?lang={lang}")
        await page.get_by_label(token, exact=True).fill("tok-alice")
        await page.get_by_role("button", name=sign, exact=True).click()
        await expect(page.get_by_label(status, exact=True)).to_have_value("available")

        fake = fake_of(gw)
        await fake.receive(
            "Here is the receipt for order 4471",
            customer_id="zhang.wei@example.com",
            customer_name="Zhang Wei",
            attachments=[Attachment(name="receipt.svg", content_type="image/svg+xml", url=IMAGE)],
        )
        card = page.get_by_role("article").first
        await card.get_by_role("button", name=accept, exact=True).click()
        await expect(card).to_have_count(0)
        await visitor.send(type="message", text="你好，我的快递 4471 还没到")
        card = page.get_by_role("article").first
        await expect(card.get_by_role("button", name=decline, exact=True)).to_be_enabled()
        await card.get_by_role("button", name=accept, exact=True).click()
        await expect(card).to_have_count(0)
        box = page.get_by_label(reply, exact=True)
        await box.fill("您好，我查一下，请稍等。")
        await page.get_by_role("button", name=send, exact=True).click()
        await visitor.expect("agent")
        await visitor.expect("message", timeout=10)
        thread = page.get_by_role("log")
        await expect(thread).to_contain_text("您好，我查一下")
        await visitor.send(type="message", text="好的，谢谢！上周一寄出的。")
        await expect(thread).to_contain_text("上周一寄出的")
        await fake.receive("Any news?", customer_id="zhang.wei@example.com")
        await fake.receive("我要投诉：包裹破损了", customer_id="c-9", customer_name="王芳")
        await expect(page.get_by_role("article")).to_have_count(1)
        await expect(page.get_by_role("article")).to_contain_text("A")
        await box.fill("快递已经在派送中，" if lang == "zh" else "It left the depot this morning,")

        for name in (transfer, close):
            await expect(page.get_by_role("button", name=name, exact=True)).to_be_enabled()
        await expect(page.get_by_role("button", name=note, exact=True)).to_be_enabled()

        path = screenshot_path(f"agent-{lang}.png")
        if path is not None:
            await page.screenshot(path=str(path))
            if lang == "en":
                await page.set_viewport_size({"width": 820, "height": 1180})
                await page.screenshot(path=str(path.with_name("agent-tablet.png")))
