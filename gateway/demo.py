"""The --demo configuration: two agents, a team lead who leads the demo's queues, an admin
token and the web chat, with no file at all.

The tokens are made at the first start and kept in the data dir (demo-secrets.json, mode
0600), so that agents' clients, the lead's socket and admin scripts keep working after a
restart; delete the file for new ones.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import msgspec

from gateway.config import (
    AdminConfig,
    AgentConfig,
    CannedReplyConfig,
    Config,
    ConversationsConfig,
    CoreConfig,
    QueueConfig,
    SupervisorConfig,
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
SECRETS_FILE = "demo-secrets.json"


class DemoSecrets(msgspec.Struct, kw_only=True):
    """The demo's tokens by person: what demo-secrets.json holds."""

    agents: dict[str, str] = {}
    supervisors: dict[str, str] = {}
    admin: str | None = None


def _token(owner: str) -> str:
    return f"{owner}-{secrets.token_urlsafe(8)}"


def demo_config() -> Config:
    agents = [
        AgentConfig(
            id=agent_id,
            name=name,
            token=_token(agent_id),
            skills={"general": 3},
            capacity=dict(DEMO_CAPACITY),
        )
        for agent_id, name in (("alice", "Alice"), ("bob", "Bob"))
    ]
    queues = [QueueConfig(name="general", skills={"general": 1})]
    # Lin leads every demo queue; without an agent account of her own, take_over is off.
    lead = SupervisorConfig(
        id="lin",
        name="Lin",
        token=_token("lin"),
        queues=[q.name for q in queues],
    )
    core = with_defaults(
        CoreConfig(
            agents=agents,
            queues=queues,
            supervisors=[lead],
            canned_replies=list(DEMO_CANNED),
            conversations=ConversationsConfig(close_reasons=list(DEMO_CLOSE_REASONS)),
            admin=AdminConfig(token=_token("admin")),
        )
    )
    from adapters.webchat import WebChatAdapter

    return Config(core=core, adapters={"webchat": WebChatAdapter.Config()}, source="--demo")


def keep_demo_secrets(config: Config, data_dir: Path) -> Path:
    """Give the demo the tokens kept in ``data_dir`` and keep any it has no token for yet
    there; returns the file. The caller holds the data dir (gateway.datadir)."""
    path = data_dir / SECRETS_FILE
    kept = DemoSecrets()
    with contextlib.suppress(OSError, msgspec.ValidationError, msgspec.DecodeError):
        kept = msgspec.json.decode(path.read_bytes(), type=DemoSecrets)
    core = config.core
    before = msgspec.json.encode(kept)
    for agent in core.agents:
        agent.token = kept.agents.setdefault(agent.id, agent.token or _token(agent.id))
    for lead in core.supervisors:
        lead.token = kept.supervisors.setdefault(lead.id, lead.token or _token(lead.id))
    if kept.admin is None:
        kept.admin = core.admin.token or _token("admin")
    core.admin.token = kept.admin
    if msgspec.json.encode(kept) != before or not path.exists():
        _write_private(path, msgspec.json.format(msgspec.json.encode(kept)) + b"\n")
    return path


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, replacing any old one in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older partial file may have had other bits
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)
