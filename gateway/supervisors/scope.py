"""What a team lead sees and may act on: the queues they lead (every queue when their entry
names none), the agents eligible for at least one of those queues (by the one eligibility
rule, router/eligibility.py), and the conversations of those queues. Every frame a lead
sends is checked against this before anything is read or done."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Config, SupervisorConfig
from router.eligibility import share


class Refused(Exception):
    """A lead's frame refused: its error frame's code, detail and field."""

    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code, self.detail, self.field = code, detail, field


@dataclass(frozen=True)
class Scope:
    lead: SupervisorConfig
    queues: tuple[str, ...]  # in the configuration's order
    agents: tuple[str, ...]  # in the configuration's order

    def sees_queue(self, queue: str | None) -> bool:
        return queue in self.queues

    def sees_agent(self, agent: str | None) -> bool:
        return agent in self.agents


def scope_of(config: Config, lead: SupervisorConfig) -> Scope:
    led = set(lead.queues)
    queues = [q for q in config.queues if not led or q.name in led]
    agents = tuple(
        agent.id for agent in config.agents if any(share(agent, q) is not None for q in queues)
    )
    return Scope(lead=lead, queues=tuple(q.name for q in queues), agents=agents)
