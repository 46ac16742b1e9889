"""The --demo configuration: two agents and the web chat, with no file at all."""

from __future__ import annotations

import secrets

from gateway.config import (
    AgentConfig,
    CannedReplyConfig,
    Config,
    ConversationsConfig,
    CoreConfig,
    QueueConfig,
    with_defaults,
)

DEMO_CAPACITY = {"webchat": 3, "wechat": 3, "email": 10, "review": 10}
DEMO_CANNED = [
    CannedReplyConfig(
        id="greeting",
        title="Greeting",
        text="Hello {customer_name}, this is {agent_name}. How can I help?",
    ),
    CannedReplyConfig(
        id="thanks",
        title="Thanks and goodbye",
        text="Thank you for contacting us, {customer_name}. Have a good day!",
    ),
]
DEMO_CLOSE_REASONS = ["resolved", "no_reply", "spam"]


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
        CoreConfig(
            agents=agents,
            queues=[QueueConfig(name="general", skills={"general": 1})],
            canned_replies=list(DEMO_CANNED),
            conversations=ConversationsConfig(close_reasons=list(DEMO_CLOSE_REASONS)),
        )
    )
    from adapters.webchat import WebChatAdapter

    return Config(core=core, adapters={"webchat": WebChatAdapter.Config()}, source="--demo")
