"""The --demo configuration: two agents and the web chat, with no file at all."""

from __future__ import annotations

import secrets

from gateway.config import AgentConfig, Config, CoreConfig, QueueConfig, with_defaults

DEMO_CAPACITY = {"webchat": 3, "wechat": 3, "email": 10, "review": 10}


def demo_config() -> Config:
    agents = [
        AgentConfig(
            id=agent_id,
            name=name,
            token=f"{agent_id}-{secrets.token_urlsafe(8)}",
            skills={"general": 3},
            capacity=dict(DEMO_CAPACITY),
        )
        for agent_id, name in (("alice", "Alice"), ("bob", "Bob"))
    ]
    core = with_defaults(
        CoreConfig(agents=agents, queues=[QueueConfig(name="general", skills={"general": 1})])
    )
    from adapters.webchat import WebChatAdapter

    return Config(core=core, adapters={"webchat": WebChatAdapter.Config()}, source="--demo")
