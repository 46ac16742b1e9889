"""The gateway's configuration: one TOML file decoded into msgspec Structs.

Core tables are decoded strictly here. A table named after an adapter (``[webchat]``,
``[wechat]``...) is handed raw to that adapter's own Config Struct, so that adapter packages
validate their keys the same strict way without this module knowing them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from gateway.agents.protocol import PLACEHOLDERS, placeholders_in
from gateway.config_check import check_channel_names, check_redis_url, check_server
from gateway.config_errors import ConfigError, convert, did_you_mean, entry, quote
from gateway.events.config import WebhookConfig, apply_webhook_secrets, check_webhooks
from gateway.quality_config import CsatConfig, QaConfig, check_quality
from presence.agents import AgentSpec
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

AgentStatus = Literal["available", "away", "offline"]

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

# Close-reason labels of the closed-conversations metric besides the configured reasons.
CLOSE_REASON_LABELS = ("none", "other")
MAX_CLOSE_REASON = 200


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = 8080
    admin_port: int = 9180
    tenant: str = "default"
    data_dir: str = "./var"
    node_id: str | None = None
    max_frame_bytes: int = 65536
    heartbeat_s: float = 20.0
    shutdown_timeout_s: float = 10.0
    # The admin port's own address: loopback unless asked, so that a public --host does
    # not put /metrics and the admin API on the internet too.
    admin_host: str = "127.0.0.1"
    # Proxies whose X-Forwarded-For names the client, for the per-address connection cap.
    trusted_proxies: list[str] = []
    # Open requests and sockets on the public port (gateway/guard/caps.py); 0: no cap.
    max_connections: int = 10000
    max_connections_per_address: int = 500
    # A connection that has not sent its headers, or its body, in this time is closed
    # (gateway/guard/deadlines.py); 0: no deadline.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0


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


class AgentConfig(AgentSpec):
    """An ``[[agents]]`` entry: what routing knows of the agent (AgentSpec: id, skills,
    capacity, max_total, auto_accept) plus how they sign in and are shown."""

    name: str | None = None
    token: str | None = None
    token_sha256: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id

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


class PresenceConfig(Strict):
    initial_status: AgentStatus = "available"
    grace_s: float = 60.0
    node_ttl_s: float = 15.0
    heartbeat_interval_s: float = 5.0


class AdminConfig(Strict):
    token: str | None = None
    # Bearer token for /metrics; None: /metrics is open to whoever reaches the admin port.
    metrics_token: str | None = None


class LoggingConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json: bool = False


class ConversationsConfig(Strict):
    """The ``[conversations]`` table: what agents may give as a close reason, and how long a
    customer's earlier conversations are kept for the agents who serve them next."""

    close_reasons: list[str] = []
    history_days: float = 90.0
    history_limit: int = 20


class CannedReplyConfig(Strict):
    """A ``[[canned_replies]]`` entry; ``queues`` empty: offered in every queue."""

    id: str
    text: str
    title: str | None = None
    queues: list[str] = []


class HistoryConfig(Strict):
    """The ``[history]`` table: the admin API's list and search of kept conversations
    (how long they are kept is ``[routing] closed_retention_s``)."""

    # The most conversations one list request reads; past it the answer has a cursor.
    max_scan: int = 5000


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
    seen: dict[str, int] = {}
    for i, agent in enumerate(core.agents):
        where = entry("agents", i, agent.id)
        if agent.id in seen:
            raise ConfigError(file, where, "id", _duplicate("agent id", agent.id, seen, i))
        seen[agent.id] = i
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
    try:
        check_routing_tables(core.queues, core.rules, core.grades, core.hours)
    except NamedError as exc:
        raise ConfigError(file, _named(exc.table, core), exc.key, exc.problem) from None
    check_channel_names(core, file, channels)
    names = {queue.name for queue in core.queues}
    default = core.routing.default_queue
    if default is not None and core.queues and default not in names:
        raise ConfigError(file, "routing", "default_queue", _no_queue(default, names))
    if core.routing.offer_timeout_s <= 0:
        raise ConfigError(file, "routing", "offer_timeout_s", "must be greater than 0")
    reserved = {"available", "away", "offline"} & set(core.routing.not_ready_reasons)
    if reserved:
        raise ConfigError(file, "routing", "not_ready_reasons", f"{sorted(reserved)} are built in")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", core.server.tenant):
        raise ConfigError(file, "server", "tenant", "use letters, digits, _ . -")
    check_server(core.server, file)
    _check_supervisors(core, file, names)
    check_webhooks(core.webhooks, core.events, file)
    if not 1 <= core.history.max_scan <= 1_000_000:
        raise ConfigError(file, "history", "max_scan", "runs from 1 to 1000000")
    _check_conversations(core.conversations, file)
    _check_canned(core.canned_replies, names, file)
    check_quality(core.csat, core.qa, file)


def _duplicate(what: str, value: str, seen: Mapping[str, int], index: int) -> str:
    return f"duplicate {what} {quote(value)} (entries {seen[value] + 1} and {index + 1})"


def _no_queue(name: str, names: Iterable[str]) -> str:
    return f"no queue named {quote(name)}{did_you_mean(name, names)}"


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


def _check_supervisors(core: CoreConfig, file: str, queue_names: set[str]) -> None:
    if core.supervisor.wallboard_min_interval_ms < 0:
        raise ConfigError(file, "supervisor", "wallboard_min_interval_ms", "cannot be negative")
    agents = {agent.id for agent in core.agents}
    agent_tokens = {agent.token for agent in core.agents if agent.token is not None}
    seen: dict[str, int] = {}
    for i, lead in enumerate(core.supervisors):
        where = entry("supervisors", i, lead.id)
        if lead.id in seen:
            raise ConfigError(file, where, "id", _duplicate("supervisor id", lead.id, seen, i))
        seen[lead.id] = i
        if (lead.token is None) == (lead.token_sha256 is None):
            raise ConfigError(file, where, "token", "set exactly one of token or token_sha256")
        if lead.token is not None and lead.token in agent_tokens:
            # One token, one person: a single sign-in form must tell an agent from a lead.
            raise ConfigError(file, where, "token", "an agent already has this token")
        for j, queue in enumerate(lead.queues):
            if queue not in queue_names:
                raise ConfigError(file, where, f"queues[{j}]", _no_queue(queue, queue_names))
        if lead.agent is not None and lead.agent not in agents:
            problem = f"no agent {quote(lead.agent)}{did_you_mean(lead.agent, agents)}"
            raise ConfigError(file, where, "agent", problem)


def _check_conversations(conversations: ConversationsConfig, file: str) -> None:
    reasons = conversations.close_reasons
    for reason in reasons:
        if not reason.strip() or len(reason) > MAX_CLOSE_REASON:
            problem = f"a close reason is 1 to {MAX_CLOSE_REASON} characters"
            raise ConfigError(file, "conversations", "close_reasons", problem)
        if reason in CLOSE_REASON_LABELS:
            problem = f"{reason!r} is the metric's own label; pick another name"
            raise ConfigError(file, "conversations", "close_reasons", problem)
    if len(set(reasons)) != len(reasons):
        raise ConfigError(file, "conversations", "close_reasons", "a reason is listed twice")
    if conversations.history_days < 0:
        raise ConfigError(file, "conversations", "history_days", "cannot be negative")
    if not 1 <= conversations.history_limit <= 100:
        raise ConfigError(file, "conversations", "history_limit", "runs from 1 to 100")


def _check_canned(replies: list[CannedReplyConfig], queues: set[str], file: str) -> None:
    seen: dict[str, int] = {}
    for i, reply in enumerate(replies):
        where = entry("canned_replies", i, reply.id.strip())
        if not reply.id.strip():
            raise ConfigError(file, where, "id", "cannot be empty")
        if reply.id in seen:
            raise ConfigError(file, where, "id", _duplicate("canned reply id", reply.id, seen, i))
        seen[reply.id] = i
        if not reply.text.strip():
            raise ConfigError(file, where, "text", "cannot be empty")
        unknown = sorted(set(placeholders_in(reply.text)) - set(PLACEHOLDERS))
        if unknown:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            problem = f"unknown placeholder {{{unknown[0]}}}; the placeholders are {known}"
            raise ConfigError(file, where, "text", problem)
        for queue in reply.queues:
            if queue not in queues:
                raise ConfigError(file, where, "queues", _no_queue(queue, queues))


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
