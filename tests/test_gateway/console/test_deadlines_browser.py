"""A graded complaint's deadlines in the console, in real Chromium against a real gateway:
the agent's conversation list shows the first reply's due time, then an overdue badge once
it is missed; the lead's board lists the complaint with its badge, and selecting it watches
it. Deadlines of a second or two; every wait is Playwright's expect()."""

from __future__ import annotations

import re

import pytest
from browser_support import NewPage
from harness import customer
from supervisor_support import centre, centre_tables

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the Python package playwright is missing"
)
expect = playwright_api.expect
expect.set_options(timeout=10_000)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def tables() -> dict:
    base = centre_tables()
    return {
        "queues": [dict(q, auto_accept=True) for q in base["queues"]],
        "grades": [
            {
                "name": "A",
                "priority": 9,
                "sla_s": 30.0,
                "first_response_s": 2.0,
                "resolve_s": 600.0,
                "remind_before_s": 1.0,
            }
        ],
        "rules": [{"name": "投诉", "keywords": ["投诉"], "grade": "A"}, *base["rules"]],
        "routing": {"sweep_interval_s": 0.05},
    }


async def sign_in(page, gw, token: str, connection: str) -> None:
    await page.goto(f"{gw.base}/console/")
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator(connection)).to_have_text("Connected")


async def test_due_time_then_overdue_badge_for_the_agent_and_the_lead(
    tenant, redis_url, new_page: NewPage
):
    async with centre(tenant, redis_url, **tables()) as gw:
        agent_page = await new_page()
        await sign_in(agent_page, gw, "tok-alice", "#connection")
        lead_page = await new_page()
        await sign_in(lead_page, gw, "tok-gail", "#lead-connection")
        async with customer(gw) as visitor:
            await visitor.send(type="message", text="我要投诉")
            conversations = agent_page.get_by_role("navigation", name="Conversations")
            item = conversations.get_by_role("button")
            await expect(item).to_have_count(1)
            # Missed within 2 s of the opening: "due" first (or straight overdue on a slow
            # machine), then overdue, in the list's own badge.
            await expect(item.locator(".due")).to_have_text(re.compile("first reply"))
            await expect(item.locator(".due.overdue")).to_have_text("first reply overdue")

            alerts = lead_page.get_by_role("list", name="Complaint deadlines")
            alert = alerts.get_by_role("button")
            await expect(alert).to_have_count(1)
            await expect(alert).to_contain_text("first reply overdue")
            await expect(alert).to_contain_text("general")
            await expect(alert).to_contain_text("Alice")
            await alert.click()
            await expect(lead_page.locator("#watch-title")).to_contain_text(re.compile(".+"))
