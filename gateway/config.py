"""The gateway's configuration: one TOML file decoded into msgspec Structs.

Core tables are decoded strictly here. A table named after an adapter (``[webchat]``,
``[wechat]``...) is handed raw to that adapter's own Config Struct, so that adapter packages
validate their keys the same strict way without this module knowing them.

Each core table's Struct lives with its concept's checks: routing in router/config.py,
agents, team leads, the process's tables and conversations in gateway/settings/, CSAT and QA
in gateway/quality_config.py, webhooks in gateway/events/config.py. ``[redis]`` stays here,
next to the environment overrides and URL check it goes with. Every name is importable from
this module, which is what the rest of the gateway does.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from gateway.config_check import check_channel_names, check_redis_url, check_server
from gateway.config_errors import ConfigError, convert, did_you_mean, entry, no_queue
from gateway.events.config import WebhookConfig, apply_webhook_secrets, check_webhooks
from gateway.quality_config import CsatConfig, QaConfig, check_quality
from gateway.settings.agents import (
    AgentConfig,
    AgentStatus,
    PresenceConfig,
    check_agents,
    check_presence,
    token_matches,
)
from gateway.settings.conversations import (
    CLOSE_REASON_LABELS,
    MAX_CLOSE_REASON,
    CannedReplyConfig,
    ConversationsConfig,
    HistoryConfig,
    check_canned,
    check_conversations,
    check_history,
)
from gateway.settings.process import AdminConfig, LoggingConfig, ServerConfig
from gateway.settings.strict import Strict
from gateway.settings.supervisors import SupervisorConfig, SupervisorSettings, check_supervisors
from router.config import (
    GradeConfig,
    HoursConfig,
    NamedError,
    QueueConfig,
    RoutingConfig,
    RuleConfig,
    check_routing_tables,
)
from router.events import EventsConfig

__all__ = [
    "CLOSE_REASON_LABELS",
    "CORE_TABLES",
    "MAX_CLOSE_REASON",
    "AdminConfig",
    "AgentConfig",
    "AgentStatus",
    "CannedReplyConfig",
    "Config",
    "ConfigError",
    "ConversationsConfig",
    "CoreConfig",
    "GradeConfig",
    "HistoryConfig",
    "HoursConfig",
    "LoggingConfig",
    "PresenceConfig",
    "QueueConfig",
    "RedisConfig",
    "RoutingConfig",
    "RuleConfig",
    "ServerConfig",
    "Strict",
    "SupervisorConfig",
    "SupervisorSettings",
    "apply_environment",
    "enabled_adapters",
    "load_config",
    "parse_config",
    "token_matches",
    "with_defaults",
]

CORE_TABLES = (
    "server",
    "redis",
    "agents",
    "queues",
    "rules",
    "grades",
    "hours",
    "routing",
    "presence",
    "admin",
    "logging",
    "supervisors",
    "supervisor",
    "conversations",
    "canned_replies",
    "csat",
    "qa",
    "events",
    "webhooks",
    "history",
)


class RedisConfig(Strict):
    url: str | None = None
    pool_size: int = 64
    socket_timeout_s: float = 5.0
    connect_timeout_s: float = 5.0
    # Redis Sentinel (gateway/redis/failover.py): the master is asked of these, "host:port".
    sentinels: list[str] = []
    sentinel_master: str = "mymaster"
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    # Redis Cluster (gateway/redis/cluster.py): any of its nodes, "host:port"; the tenant's
    # slot is found, and followed through a reshard, from there.
    cluster_nodes: list[str] = []
    # WAIT for this many replicas before a message is acknowledged (gateway/redis/acks.py).
    min_replica_acks: int = 0
    min_replica_timeout_ms: int = 1000


class CoreConfig(Strict):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    agents: list[AgentConfig] = []
    queues: list[QueueConfig] = []
    rules: list[RuleConfig] = []
    grades: list[GradeConfig] = []
    hours: dict[str, HoursConfig] = {}
    routing: RoutingConfig = msgspec.field(default_factory=RoutingConfig)
    presence: PresenceConfig = msgspec.field(default_factory=PresenceConfig)
    admin: AdminConfig = msgspec.field(default_factory=AdminConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    supervisors: list[SupervisorConfig] = []
    supervisor: SupervisorSettings = msgspec.field(default_factory=SupervisorSettings)
    conversations: ConversationsConfig = msgspec.field(default_factory=ConversationsConfig)
    canned_replies: list[CannedReplyConfig] = []
    csat: CsatConfig = msgspec.field(default_factory=CsatConfig)
    qa: QaConfig = msgspec.field(default_factory=QaConfig)
    events: EventsConfig = msgspec.field(default_factory=EventsConfig)
    webhooks: list[WebhookConfig] = []
    history: HistoryConfig = msgspec.field(default_factory=HistoryConfig)


class Config(msgspec.Struct, kw_only=True):
    """The whole configuration: core tables plus each configured adapter's decoded table."""

    core: CoreConfig
    adapters: dict[str, msgspec.Struct]
    source: str = "<built-in>"

    @property
    def server(self) -> ServerConfig:
        return self.core.server

    @property
    def redis(self) -> RedisConfig:
        return self.core.redis

    @property
    def routing(self) -> RoutingConfig:
        return self.core.routing

    @property
    def presence(self) -> PresenceConfig:
        return self.core.presence

    @property
    def agents(self) -> list[AgentConfig]:
        return self.core.agents

    @property
    def queues(self) -> list[QueueConfig]:
        return self.core.queues


def _check_semantics(core: CoreConfig, file: str, channels: Collection[str] | None) -> None:
    check_agents(core.agents, file)
    try:
        check_routing_tables(core.queues, core.rules, core.grades, core.hours)
    except NamedError as exc:
        raise ConfigError(file, _named(exc.table, core), exc.key, exc.problem) from None
    check_channel_names(core, file, channels)
    names = {queue.name for queue in core.queues}
    default = core.routing.default_queue
    if default is not None and core.queues and default not in names:
        raise ConfigError(file, "routing", "default_queue", no_queue(default, names))
    if core.routing.offer_timeout_s <= 0:
        raise ConfigError(file, "routing", "offer_timeout_s", "must be greater than 0")
    reserved = {"available", "away", "offline"} & set(core.routing.not_ready_reasons)
    if reserved:
        raise ConfigError(file, "routing", "not_ready_reasons", f"{sorted(reserved)} are built in")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", core.server.tenant):
        raise ConfigError(file, "server", "tenant", "use letters, digits, _ . -")
    check_server(core.server, file)
    check_presence(core.presence, file)
    check_supervisors(core.supervisors, core.supervisor, core.agents, names, file)
    check_webhooks(core.webhooks, core.events, file)
    check_history(core.history, file)
    check_conversations(core.conversations, file)
    check_canned(core.canned_replies, names, file)
    check_quality(core.csat, core.qa, file)


def _named(table: str, core: CoreConfig) -> str:
    """router.config names entries by index (``queues[0]``); errors name them by name."""
    match = re.fullmatch(r"(queues|rules|grades)\[(\d+)\]", table)
    if match is None:
        return table
    index = int(match.group(2))
    items: Sequence[QueueConfig | RuleConfig | GradeConfig] = {
        "queues": core.queues,
        "rules": core.rules,
        "grades": core.grades,
    }[match.group(1)]
    return entry(match.group(1), index, items[index].name)


def _check_addresses(addresses: list[str], file: str, key: str, example: str) -> None:
    for i, address in enumerate(addresses):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            problem = f'entry {i} ({address!r}) is not host:port, e.g. "{example}"'
            raise ConfigError(file, "redis", key, problem)


def _check_redis(redis: RedisConfig, file: str) -> None:
    _check_addresses(redis.sentinels, file, "sentinels", "10.0.0.5:26379")
    _check_addresses(redis.cluster_nodes, file, "cluster_nodes", "10.0.0.5:7000")
    if redis.sentinels and redis.cluster_nodes:
        problem = "cannot be used with sentinels: a Redis Cluster fails over by itself"
        raise ConfigError(file, "redis", "cluster_nodes", problem)
    if redis.sentinels and not redis.sentinel_master.strip():
        raise ConfigError(file, "redis", "sentinel_master", "cannot be empty")
    if redis.min_replica_acks < 0:
        raise ConfigError(file, "redis", "min_replica_acks", "cannot be negative")
    if redis.min_replica_timeout_ms <= 0:
        raise ConfigError(file, "redis", "min_replica_timeout_ms", "must be greater than 0")
    if redis.min_replica_acks and redis.min_replica_timeout_ms >= redis.socket_timeout_s * 1000:
        problem = "must be below socket_timeout_s (WAIT holds the connection while it waits)"
        raise ConfigError(file, "redis", "min_replica_timeout_ms", problem)


def apply_environment(core: CoreConfig, env: Mapping[str, str]) -> CoreConfig:
    """Secrets from the environment override the file."""
    if url := env.get("ZHONGTAI_REDIS_URL"):
        core.redis.url = url
    if password := env.get("ZHONGTAI_REDIS_SENTINEL_PASSWORD"):
        core.redis.sentinel_password = password
    if token := env.get("ZHONGTAI_ADMIN_TOKEN"):
        core.admin.token = token
    if token := env.get("ZHONGTAI_METRICS_TOKEN"):
        core.admin.metrics_token = token
    for agent in core.agents:
        var = "ZHONGTAI_AGENT_TOKEN_" + re.sub(r"[^A-Za-z0-9]", "_", agent.id).upper()
        if token := env.get(var):
            agent.token, agent.token_sha256 = token, None
    for lead in core.supervisors:
        var = "ZHONGTAI_SUPERVISOR_TOKEN_" + re.sub(r"[^A-Za-z0-9]", "_", lead.id).upper()
        if token := env.get(var):
            lead.token, lead.token_sha256 = token, None
    apply_webhook_secrets(core.webhooks, env)
    return core


def with_defaults(core: CoreConfig) -> CoreConfig:
    """Give a config without queues one queue that takes every channel."""
    if not core.queues:
        core.queues = [QueueConfig(name=core.routing.default_queue or "general")]
    for agent in core.agents:
        agent.shown_as = agent.shown_as or agent.name or core.conversations.unnamed_agent
    if core.routing.default_queue is None:
        core.routing.default_queue = core.queues[0].name
    return core


def parse_config(
    data: dict[str, Any],
    file: str,
    adapter_configs: Mapping[str, type[msgspec.Struct]],
    env: Mapping[str, str] | None = None,
    channels: Collection[str] | None = None,
) -> Config:
    """Decode an already-parsed TOML document; adapter_configs maps table name to Struct.
    ``channels``: the channel names agents, queues and rules may use; default: those of the
    installed adapters."""
    data = dict(data)
    adapters: dict[str, msgspec.Struct] = {}
    for name in list(data):
        if name in CORE_TABLES:
            continue
        if name not in adapter_configs:
            from adapters import registry

            tables = sorted({*CORE_TABLES, *adapter_configs, *registry.names()})
            hint = did_you_mean(name, tables)
            known = ", ".join(tables)
            problem = f"unknown table{hint} (known tables: {known})"
            raise ConfigError(file, name, None, problem)
        adapters[name] = convert(data.pop(name), adapter_configs[name], file, name)
    core = convert(data, CoreConfig, file)
    env = os.environ if env is None else env
    core = apply_environment(core, env)
    url_key = "url (from ZHONGTAI_REDIS_URL)" if env.get("ZHONGTAI_REDIS_URL") else "url"
    check_redis_url(core.redis.url, file, "redis", url_key)
    core = with_defaults(core)
    _check_semantics(core, file, channels)
    _check_redis(core.redis, file)
    return Config(core=core, adapters=adapters, source=file)


def load_config(
    path: str | os.PathLike[str],
    adapter_configs: Mapping[str, type[msgspec.Struct]],
    env: Mapping[str, str] | None = None,
    channels: Collection[str] | None = None,
) -> Config:
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(file, None, None, f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(file, None, None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, None, None, f"invalid TOML: {exc}") from None
    return parse_config(data, file, adapter_configs, env, channels)


def enabled_adapters(config: Config) -> Iterable[tuple[str, msgspec.Struct]]:
    for name, adapter_config in config.adapters.items():
        if getattr(adapter_config, "enabled", True):
            yield name, adapter_config
