"""The team lead's QA list in real Chromium: a complaint closed in the lead's queue shows in
the list with why it was picked; the lead scores it item by item in a dialog, a refusal
names the item left out, and a saved score leaves the list (the admin API has it)."""

from __future__ import annotations

import pytest
from browser_support import NewPage
from harness import accept_offer, agent_client, customer
from supervisor_support import admin_get, centre
from test_lead_browser import sign_in_lead

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the Python package playwright is missing"
)
expect = playwright_api.expect
expect.set_options(timeout=10_000)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_lead_scores_a_complaint_from_the_qa_list(tenant, redis_url, new_page: NewPage):
    async with (
        centre(
            tenant,
            redis_url,
            grades=[{"name": "A", "priority": 8, "sla_s": 30}],
            rules=[{"name": "complaint", "keywords": ["投诉"], "grade": "A"}],
            qa={"scorecard": [{"name": "greeting"}, {"name": "accuracy", "weight": 3}]},
        ) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="我要投诉")
        conversation_id = await accept_offer(alice)
        await alice.send(type="close", conversation_id=conversation_id)
        await alice.expect("closed", conversation_id=conversation_id)

        page = await new_page()
        await sign_in_lead(page, gw, "tok-gail")
        qa = page.get_by_role("region", name="Quality inspection")
        entry = qa.get_by_role("button", name=f"Score conversation …{conversation_id[-6:]}")
        await expect(entry).to_contain_text("complaint")
        await entry.click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_label("greeting (weight 1), 0 to 100").fill("90")
        await dialog.get_by_role("button", name="Save score").click()
        await expect(dialog.get_by_role("alert")).to_contain_text("accuracy")
        await dialog.get_by_label("accuracy (weight 3), 0 to 100").fill("70")
        await dialog.get_by_label("Note (optional)").fill("apologised, solved it")
        await dialog.get_by_role("button", name="Save score").click()
        await expect(dialog).to_be_hidden()
        await expect(qa.get_by_text("Nothing to score.")).to_be_visible()
        scored = await admin_get(gw, f"/api/qa/{conversation_id}")
        assert (scored["score"], scored["scored_by"]) == (75.0, "gail")
