"""A five-star review edited into a one-star complaint while it waits gets its grade's
deadlines (超时提醒) then, counted from the edit, through the review webhook."""

from __future__ import annotations

from datetime import datetime

from harness import running
from reviews_helpers import SECRET, post_signed, reviews_config, states
from test_reviews_regrade import REGRADING

PUSHED = [{"name": "shop", "webhook_secret": SECRET}]
WITH_DEADLINES = {
    **REGRADING,
    "grades": [
        {"name": "A", "priority": 8, "sla_s": 3600, "first_response_s": 600, "resolve_s": 7200},
        {"name": "B", "priority": 7, "sla_s": 7200},
    ],
}


async def test_an_edit_into_a_complaint_starts_its_deadlines(tenant, redis_url):
    config = reviews_config(tenant, PUSHED, **WITH_DEADLINES)
    async with running(config, redis_url) as gw:
        review = {"id": "r1", "author": "Bob", "rating": 5, "text": "Works well"}
        status, _ = await post_signed(gw, "shop", review)
        assert status == 202
        conv = (await states(gw))["r1"].conversation
        assert conv and (await gw.services.router.conversation(conv)).deadlines == []

        before = datetime.now().timestamp() - 0.001  # the gateway counts in whole ms
        status, body = await post_signed(gw, "shop", {**review, "rating": 1, "text": "Broke"})
        assert (status, body["results"][0]["outcome"]) == (202, "edited")
        conversation = await gw.services.router.conversation(conv)
        assert conversation.grade == "A"
        due = {d.kind: d.due_at.timestamp() for d in conversation.deadlines}
        assert set(due) == {"first_response", "resolve"}
        assert due["first_response"] >= before + 600  # from the edit, not the opening
        assert due["resolve"] - due["first_response"] == 6600
