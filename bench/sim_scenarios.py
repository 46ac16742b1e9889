"""The contact centres the simulation can run: queues with skill needs, agents with skills.

A ``Scenario`` is everything a run depends on, seed included, so that a result can be
reproduced and every routing strategy can be compared on the very same customers. Two shapes:
one queue of interchangeable agents (the Erlang C setting) and two queues that need different
skills, served by specialists and generalists.
"""

from __future__ import annotations

import msgspec

CHANNEL = "webchat"
STRATEGIES = ("least_loaded", "longest_idle", "round_robin")


class AgentDef(msgspec.Struct, frozen=True):
    id: str
    skills: dict[str, int]
    capacity: dict[str, int]


class QueueDef(msgspec.Struct, frozen=True):
    name: str
    skills: dict[str, int]
    share: float  # of all arrivals
    strategy: str = "least_loaded"


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    queues: list[QueueDef]
    agents: list[AgentDef]
    rate: float  # arrivals per second, all queues together
    handle_s: float
    arrivals: int
    warmup: int
    seed: int
    accept_delay_s: float = 0.0
    sla_s: float = 20.0

    @property
    def strategy(self) -> str:
        return "/".join(sorted({q.strategy for q in self.queues}))

    @property
    def capacity(self) -> int:
        return sum(n for a in self.agents for n in a.capacity.values())


def single_skill(
    agents: int,
    rate: float,
    handle_s: float,
    arrivals: int,
    warmup: int,
    seed: int,
    strategy: str = "least_loaded",
    accept_delay_s: float = 0.0,
    sla_s: float = 20.0,
    capacity: int = 1,
) -> Scenario:
    """One queue, no skill requirement, N interchangeable agents: the Erlang C setting."""
    return Scenario(
        name="single-skill",
        queues=[QueueDef("general", {}, 1.0, strategy)],
        agents=[AgentDef(f"a{i:04d}", {}, {CHANNEL: capacity}) for i in range(agents)],
        rate=rate,
        handle_s=handle_s,
        arrivals=arrivals,
        warmup=warmup,
        seed=seed,
        accept_delay_s=accept_delay_s,
        sla_s=sla_s,
    )


def two_skill(
    strategy: str,
    rate: float,
    handle_s: float,
    arrivals: int,
    warmup: int,
    seed: int,
    agents: tuple[int, int, int] = (14, 8, 12),
    billing_share: float = 0.3,
    accept_delay_s: float = 0.0,
    sla_s: float = 20.0,
    capacity: int = 1,
) -> Scenario:
    """Queue "general" needs general >= 1, queue "billing" needs billing >= 3."""
    return Scenario(
        name="two-skill",
        queues=[
            QueueDef("general", {"general": 1}, 1.0 - billing_share, strategy),
            QueueDef("billing", {"billing": 3}, billing_share, strategy),
        ],
        agents=two_skill_agents(*agents, capacity=capacity),
        rate=rate,
        handle_s=handle_s,
        arrivals=arrivals,
        warmup=warmup,
        seed=seed,
        accept_delay_s=accept_delay_s,
        sla_s=sla_s,
    )


def two_skill_agents(general: int, billing: int, both: int, capacity: int = 1) -> list[AgentDef]:
    """General-only agents, billing specialists and generalists who hold both skills."""
    cap = {CHANNEL: capacity}
    agents = [AgentDef(f"g{i:03d}", {"general": 2}, cap) for i in range(general)]
    agents += [AgentDef(f"b{i:03d}", {"billing": 4}, cap) for i in range(billing)]
    agents += [AgentDef(f"x{i:03d}", {"general": 2, "billing": 3}, cap) for i in range(both)]
    return agents
