"""A close whose process died before following it up (the Lua close stored, the CSAT
question not asked, the QA pick not made) is followed up by any process's sweep: the
customer is asked and the conversation picked, once."""

from __future__ import annotations

from harness import accept_offer, agent, agent_client, customer, make_config, running
from helpers import wait_until

from gateway.flows.aftercare import SWEEP_GRACE_MS


async def test_the_sweep_follows_up_a_close_left_behind(tenant, redis_url):
    config = make_config(
        tenant, agents=[agent("alice")], queues=[{"name": "general", "qa_sample": 1.0}]
    )
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        router = gw.services.router
        await wait_until(lambda: router.redis.exists(router.keys.followup_mark))
        await visitor.send(type="message", text="hello")
        conversation_id = await accept_offer(alice)
        # What a process killed right after the Lua close leaves behind.
        await router.close(conversation_id, "alice")
        assert await router.csat_of(conversation_id) is None

        board = gw.services.switchboard
        real = board.aftercare.clock
        board.aftercare.clock = lambda: real() + SWEEP_GRACE_MS + 1
        request = await visitor.expect("csat_request")
        assert request["conversation_id"] == conversation_id
        [picked] = await router.qa_records([conversation_id])
        assert (picked.reasons, picked.agent) == (["sample"], "alice")
        record = await router.csat_of(conversation_id)
        assert record.asked and record.agent == "alice"
        # A sweep over the same closes again asks nobody again.
        await router.redis.set(router.keys.followup_mark, 0)
        assert await board.aftercare.sweep() == 0
