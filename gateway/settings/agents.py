"""``[[agents]]`` and ``[presence]``: who may sign in as an agent, what routing knows of
them, and how their presence starts and lapses. The token check lives here because team
leads' tokens (gateway/settings/supervisors.py) are checked the same way."""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from gateway.config_errors import ConfigError, unique_entries
from gateway.settings.strict import Strict
from presence.agents import AgentSpec
from router.config import Interval, Seconds

AgentStatus = Literal["available", "away", "offline"]

# What customers see for an agent with neither shown_as nor name, unless configured.
DEFAULT_UNNAMED_AGENT = "Agent"
# Names shown to customers: one line (an email's From carries it), at most this long.
MAX_SHOWN_NAME = 80


class AgentConfig(AgentSpec):
    """An ``[[agents]]`` entry: what routing knows of the agent (AgentSpec: id, skills,
    capacity, max_total, auto_accept) plus how they sign in and are shown."""

    name: str | None = None
    # What customers see as the agent's name; unset: ``name``, else [conversations]
    # unnamed_agent (filled in when the config is read). Never the id: an id is an account
    # name, not something to show a customer.
    shown_as: str | None = None
    token: str | None = None
    token_sha256: str | None = None

    @property
    def display_name(self) -> str:
        """The name colleagues and team leads see: ``name``, else the id."""
        return self.name or self.id

    @property
    def shown_to_customers(self) -> str:
        return self.shown_as or self.name or DEFAULT_UNNAMED_AGENT

    def token_matches(self, presented: str) -> bool:
        return token_matches(self.token, self.token_sha256, presented)


def token_matches(token: str | None, token_sha256: str | None, presented: str) -> bool:
    """Whether ``presented`` is the configured token (or hashes to token_sha256), compared
    in constant time: the one check for agents' and supervisors' tokens alike."""
    if token is not None:
        return hmac.compare_digest(token.encode(), presented.encode())
    if token_sha256 is not None:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        return hmac.compare_digest(digest, token_sha256.lower())
    return False


class PresenceConfig(Strict):
    initial_status: AgentStatus = "available"
    grace_s: Seconds = 60.0
    node_ttl_s: Seconds = 15.0
    heartbeat_interval_s: Interval = 5.0


def check_presence(presence: PresenceConfig, file: str) -> None:
    """A heartbeat that does not come within node_ttl_s lets the other processes take this
    one for dead between two beats, and take over its agents' work."""
    if presence.heartbeat_interval_s >= presence.node_ttl_s:
        problem = f"must be below [presence] node_ttl_s ({presence.node_ttl_s})"
        raise ConfigError(file, "presence", "heartbeat_interval_s", problem)


def check_agents(agents: list[AgentConfig], file: str) -> None:
    wheres = unique_entries("agents", (agent.id for agent in agents), "agent id", file)
    for agent, where in zip(agents, wheres, strict=True):
        if agent.token is None and agent.token_sha256 is None:
            raise ConfigError(file, where, "token", "set token or token_sha256")
        for skill, level in agent.skills.items():
            if not 1 <= level <= 5:
                raise ConfigError(file, where, f"skills.{skill}", "skill levels run from 1 to 5")
        for channel, cap in agent.capacity.items():
            if cap < 0:
                raise ConfigError(file, where, f"capacity.{channel}", "cannot be negative")
        if agent.max_total is not None and agent.max_total < 0:
            raise ConfigError(file, where, "max_total", "cannot be negative")
        for key in ("name", "shown_as"):
            value = getattr(agent, key)
            if value is not None and not one_line(value):
                problem = f"1 to {MAX_SHOWN_NAME} characters on one line (customers see it)"
                raise ConfigError(file, where, key, problem)


def one_line(name: str) -> bool:
    return bool(name.strip()) and len(name) <= MAX_SHOWN_NAME and not set("\r\n") & set(name)
