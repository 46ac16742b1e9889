"""``[[supervisors]]`` and ``[supervisor]``: the team leads who sign in on /supervisor/ws,
the queues each leads, and how their socket behaves. Checked against the agents and queues
because a lead's token must not be an agent's and their queues must exist."""

from __future__ import annotations

from gateway.config_errors import ConfigError, did_you_mean, no_queue, quote, unique_entries
from gateway.settings.agents import AgentConfig, token_matches
from gateway.settings.strict import Strict


class SupervisorConfig(Strict):
    """A ``[[supervisors]]`` entry: a team lead who signs in on /supervisor/ws and sees (and
    acts on) the queues they lead; no queues means every queue."""

    id: str
    name: str | None = None
    token: str | None = None
    token_sha256: str | None = None
    queues: list[str] = []
    agent: str | None = None  # their own agent account, which take_over assigns to

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def token_matches(self, presented: str) -> bool:
        return token_matches(self.token, self.token_sha256, presented)


class SupervisorSettings(Strict):
    """``[supervisor]``: how the supervisor socket behaves for every lead."""

    wallboard_min_interval_ms: int = 500


def check_supervisors(
    leads: list[SupervisorConfig],
    settings: SupervisorSettings,
    agents: list[AgentConfig],
    queue_names: set[str],
    file: str,
) -> None:
    if settings.wallboard_min_interval_ms < 0:
        raise ConfigError(file, "supervisor", "wallboard_min_interval_ms", "cannot be negative")
    agent_ids = {agent.id for agent in agents}
    agent_tokens = {agent.token for agent in agents if agent.token is not None}
    wheres = unique_entries("supervisors", (lead.id for lead in leads), "supervisor id", file)
    for lead, where in zip(leads, wheres, strict=True):
        if (lead.token is None) == (lead.token_sha256 is None):
            raise ConfigError(file, where, "token", "set exactly one of token or token_sha256")
        if lead.token is not None and lead.token in agent_tokens:
            # One token, one person: a single sign-in form must tell an agent from a lead.
            raise ConfigError(file, where, "token", "an agent already has this token")
        for j, queue in enumerate(lead.queues):
            if queue not in queue_names:
                raise ConfigError(file, where, f"queues[{j}]", no_queue(queue, queue_names))
        if lead.agent is not None and lead.agent not in agent_ids:
            problem = f"no agent {quote(lead.agent)}{did_you_mean(lead.agent, agent_ids)}"
            raise ConfigError(file, where, "agent", problem)
