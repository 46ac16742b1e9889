"""longest_idle, and the tie-break of least_loaded, rank agents by when they were last
ASSIGNED work (docs/routing.md, "Strategies"): an accepted offer, a direct assignment with
auto-accept, or a transfer accepted either way. An offer counts as an assignment while it is
pending, so that one dispatch (or the next, before the agent answers) turns to other agents
first; once it is declined, times out or is taken back, it stops counting, and the agent is as
idle as if it had never been made."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.model import Customer, Message
from gateway.config import AgentConfig, CoreConfig, with_defaults
from presence.registry import Presence
from router.config import QueueConfig
from router.engine import Router
from router.ids import new_id
from router.results import Placement

NOW = 1_800_000_000_000
TIMEOUT_MS = 30_000  # [routing] offer_timeout_s, the default
AGENTS = ["alice", "bob", "carol"]


class Centre:
    """One longest_idle web chat queue (or whatever ``queue`` says) and agents with room for
    five chats each, on a clock the test moves."""

    def __init__(self, redis, tenant, agents=AGENTS, auto_agents=(), **queue) -> None:
        core = with_defaults(
            CoreConfig(
                agents=[
                    AgentConfig(
                        id=a, token="x", capacity={"webchat": 5}, auto_accept=a in auto_agents
                    )
                    for a in agents
                ],
                queues=[QueueConfig(name="general", **{"strategy": "longest_idle", **queue})],
            )
        )
        self.core = core
        self.router = Router(redis, tenant, core.queues, core.routing, core.routing.default_queue)
        self.presence = Presence(redis, tenant)
        self.now = NOW
        self.customers = 0

    async def open(self) -> None:
        await self.router.sync_queues()
        await self.presence.sync_agents(self.core.agents)
        for a in self.core.agents:
            await self.presence.connect(a.id, "node-1", f"conn-{a.id}", "available")

    def tick(self, ms: int = 1_000) -> int:
        self.now += ms
        return self.now

    async def arrive(self) -> str:
        self.customers += 1
        customer = f"c{self.customers}"
        at = self.tick()
        sent_at = datetime.fromtimestamp(at / 1000, UTC)
        message = Message(id=new_id("m", at), direction="in", text="hi", sent_at=sent_at)
        result = await self.router.ingest(
            "webchat",
            "default",
            f"{customer}-{at}",
            Customer(id=customer),
            message,
            at,
            Placement(queue="general", priority=0),
        )
        return result.conversation_id

    async def dispatch(self):
        return await self.router.dispatch(self.tick())

    async def offer_one(self):
        """A new conversation, and the one decision dispatch makes about it."""
        conv = await self.arrive()
        [made] = await self.dispatch()
        assert made.conversation_id == conv
        return made

    async def serve(self, agent: str) -> None:
        """``agent`` is assigned a conversation now (the others are away meanwhile)."""
        others = [a.id for a in self.core.agents if a.id != agent]
        for a in others:
            await self.presence.set_status(a, "away")
        made = await self.offer_one()
        assert made.agent == agent
        if not made.assigned:
            await self.router.accept(made.offer_id, agent, self.tick())
        for a in others:
            await self.presence.set_status(a, "available")


@pytest.fixture
async def centre(redis, tenant):
    c = Centre(redis, tenant)
    await c.open()
    return c


@pytest.mark.parametrize("outcome", ["declined", "timed out", "closed by the customer"])
async def test_an_unanswered_offer_leaves_the_agent_longest_idle(centre, outcome):
    await centre.serve("alice")
    await centre.serve("bob")  # assigned after alice
    await centre.serve("carol")
    made = await centre.offer_one()
    assert made.agent == "alice"  # assigned longest ago
    if outcome == "declined":
        await centre.router.decline(made.offer_id, "alice", centre.tick())
    elif outcome == "timed out":
        [released] = await centre.router.expire_offers(centre.tick(TIMEOUT_MS))
        assert released.offer_id == made.offer_id
    else:
        await centre.router.close(made.conversation_id, None, centre.tick())
    # The offer was no assignment: alice is still idle longest, ahead of bob, who was assigned
    # after her (but before her offer).
    if outcome != "closed by the customer":
        await centre.router.close(made.conversation_id, None, centre.tick())  # customer left
    assert (await centre.offer_one()).agent == "alice"
    assert (await centre.offer_one()).agent == "bob"


async def test_an_accepted_offer_makes_the_agent_the_most_recently_assigned(centre):
    await centre.serve("alice")
    await centre.serve("carol")
    await centre.serve("bob")
    made = await centre.offer_one()
    assert made.agent == "alice"
    # carol is assigned work again while alice's offer is pending, then alice accepts: the
    # accept, not the offer, is alice's last assignment, so she is now the most recent.
    await centre.serve("carol")
    await centre.router.accept(made.offer_id, "alice", centre.tick())
    order = [(await centre.offer_one()).agent for _ in range(3)]
    assert order == ["bob", "carol", "alice"]


async def test_a_direct_assignment_counts_as_one(redis, tenant):
    centre = Centre(redis, tenant, auto_agents={"alice"})
    await centre.open()
    first = await centre.offer_one()
    assert (first.agent, first.assigned) == ("alice", True)  # all idle: by agent id
    second = await centre.offer_one()
    assert (second.agent, second.assigned) == ("bob", False)
    await centre.router.decline(second.offer_id, "bob", centre.tick())
    await centre.router.close(second.conversation_id, None, centre.tick())
    # bob's declined offer does not count; alice's direct assignment does.
    order = [(await centre.offer_one()).agent for _ in range(3)]
    assert order == ["bob", "carol", "alice"]


async def test_an_auto_accept_queue_ranks_by_direct_assignments(redis, tenant):
    centre = Centre(redis, tenant, auto_accept=True)
    await centre.open()
    await centre.serve("bob")
    order = [(await centre.offer_one()) for _ in range(4)]
    assert [(m.agent, m.assigned) for m in order] == [
        ("alice", True),
        ("carol", True),
        ("bob", True),
        ("alice", True),
    ]


@pytest.mark.parametrize("answer", ["accepts", "declines"])
async def test_a_transfer_counts_when_the_target_accepts_it(centre, answer):
    await centre.serve("alice")
    await centre.serve("bob")
    await centre.serve("carol")
    # alice hands a conversation she holds to bob, who is offered it first.
    [held] = await centre.router.agent_conversation_ids("alice")
    await centre.router.transfer(held, "alice", centre.tick(), to_agent="bob")
    [made] = await centre.dispatch()
    assert (made.conversation_id, made.agent) == (held, "bob")
    if answer == "accepts":
        await centre.router.accept(made.offer_id, "bob", centre.tick())
        expected = ["alice", "carol", "bob"]
    else:
        await centre.router.decline(made.offer_id, "bob", centre.tick())
        await centre.router.close(held, None, centre.tick())
        expected = ["alice", "bob", "carol"]
    assert [(await centre.offer_one()).agent for _ in range(3)] == expected


async def test_pending_offers_turn_one_dispatch_to_the_other_agents(centre):
    for _ in range(7):
        await centre.arrive()
    made = await centre.dispatch()
    # Each offer counts at once: nobody is offered twice before everyone is offered once.
    assert [m.agent for m in made] == ["alice", "bob", "carol", "alice", "bob", "carol", "alice"]


async def test_a_pending_offer_counts_until_it_is_answered(centre):
    await centre.serve("alice")
    await centre.serve("bob")
    await centre.serve("carol")
    first = await centre.offer_one()
    assert first.agent == "alice"
    # While alice has not answered, the next dispatch turns to the others, as in one call.
    assert [(await centre.offer_one()).agent for _ in range(2)] == ["bob", "carol"]
    await centre.router.accept(first.offer_id, "alice", centre.tick())
    # bob and carol still have their offers pending, from before alice's accept.
    assert (await centre.offer_one()).agent == "bob"


async def test_offers_answered_out_of_order_leave_the_right_time(centre):
    """alice has two offers pending; the first is declined, then the second: she is as idle
    as before both, not as of the first offer."""
    await centre.serve("alice")
    await centre.serve("bob")
    await centre.presence.set_status("bob", "away")
    await centre.presence.set_status("carol", "away")
    early, late = await centre.offer_one(), await centre.offer_one()
    assert early.agent == late.agent == "alice"
    await centre.presence.set_status("bob", "available")
    await centre.presence.set_status("carol", "available")
    for made in (early, late):
        await centre.router.decline(made.offer_id, "alice", centre.tick())
        await centre.router.close(made.conversation_id, None, centre.tick())
    # carol was never assigned anything; alice was assigned before bob.
    assert [(await centre.offer_one()).agent for _ in range(3)] == ["carol", "alice", "bob"]


async def test_least_loaded_ties_go_to_the_agent_assigned_longest_ago(redis, tenant):
    centre = Centre(redis, tenant, agents=["alice", "bob"], strategy="least_loaded")
    await centre.open()
    await centre.serve("alice")
    await centre.serve("bob")
    made = await centre.offer_one()
    assert made.agent == "alice"  # 1 of 5 each: alice was assigned longest ago
    await centre.router.decline(made.offer_id, "alice", centre.tick())
    await centre.router.close(made.conversation_id, None, centre.tick())
    assert (await centre.offer_one()).agent == "alice"  # the declined offer does not count
