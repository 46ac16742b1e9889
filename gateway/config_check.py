"""Checks of a configuration that its types cannot state: channel names, the Redis URL, and
the warnings about a file that is valid but will not work as its author hopes.

A misspelt channel (``capacity = { webchta = 2 }``) decodes fine and silently means "never
offered web chat", so channel names are errors. The names are the installed adapters'
channels (the reviews adapter's messages are on "review", not "reviews"); learning them
imports the installed adapters, and one that fails to import counts by its entry-point name.

Warnings (a queue nobody can serve, a channel no queue takes, placeholder secrets such as the
example's ``change-me-alice``) leave the file valid: `check-config` prints them and exits 0,
or 2 with ``--strict``; `serve` prints them as it starts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

import msgspec

from adapters.webchat.limits import networks
from gateway.config_errors import ENTRY_KEYS, ConfigError, entry, quote, unknown
from router.config import QueueConfig
from router.eligibility import share

REDIS_SCHEMES = ("redis", "rediss", "unix")
PLACEHOLDERS = ("change-me", "changeme")
# Fields that hold a secret, by name: tokens, passwords, keys, and URLs that may carry one.
_SECRET_FIELD = re.compile(r"(token|token_sha256|secret|password|passwd|aes_key|api_key|url)$")
# Where a real secret can come from instead of the file, by table.
_ENV_VARS = {
    "agents": "ZHONGTAI_AGENT_TOKEN_",
    "supervisors": "ZHONGTAI_SUPERVISOR_TOKEN_",
    "webhooks": "ZHONGTAI_WEBHOOK_SECRET_",
}


def installed_channels() -> set[str]:
    """The channel of every installed adapter."""
    from adapters import registry

    channels: set[str] = set()
    for name in registry.available():
        try:
            adapter = registry.load(name)
        except registry.AdapterLoadError:
            channels.add(name)  # serve reports it if it is configured
        else:
            channels.add(adapter.channel or name)
    return channels


def adapter_channels(adapter_names: Iterable[str]) -> dict[str, str]:
    """Configured adapter table -> the channel its messages are on."""
    from adapters import registry

    found: dict[str, str] = {}
    for name in adapter_names:
        try:
            found[name] = registry.load(name).channel or name
        except registry.AdapterLoadError:
            found[name] = name
    return found


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL for the gateway, or None: the one check of check-config
    and serve (file, ZHONGTAI_REDIS_URL and --redis-url alike)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        return "not a URL: write redis://host:6379/0, rediss://... or unix:///path"
    if scheme not in REDIS_SCHEMES:
        # The password may follow the scheme: name only the scheme.
        problem = f"scheme {quote(scheme)} is not one of " + ", ".join(map(quote, REDIS_SCHEMES))
        if "cluster" in scheme:
            problem += " (for Redis Cluster, set [redis] cluster_nodes)"
        elif "sentinel" in scheme:
            problem += " (for Redis Sentinel, set [redis] sentinels and sentinel_master)"
        return problem
    from redis.connection import parse_url

    try:
        parse_url(url)
    except ValueError as exc:
        return str(exc)
    return None


def check_redis_url(url: str | None, file: str, table: str | None, key: str) -> None:
    if url is not None and (problem := redis_url_problem(url)):
        raise ConfigError(file, table, key, problem)


def check_channel_names(core: Any, file: str, known: Collection[str] | None) -> None:
    """Every channel named in agents, queues and rules is one an installed adapter carries."""
    named = {c for agent in core.agents for c in agent.capacity}
    named |= {c for item in [*core.queues, *core.rules] for c in item.channels}
    if not named:
        return  # nothing to learn the installed channels for
    names = set(installed_channels() if known is None else known)
    for i, agent in enumerate(core.agents):
        for channel in agent.capacity:
            if channel not in names:
                where = entry("agents", i, agent.id)
                raise ConfigError(file, where, f"capacity.{channel}", _unknown(channel, names))
    for table, items in (("queues", core.queues), ("rules", core.rules)):
        for i, item in enumerate(items):
            for j, channel in enumerate(item.channels):
                if channel not in names:
                    where = entry(table, i, item.name)
                    raise ConfigError(file, where, f"channels[{j}]", _unknown(channel, names))


def _unknown(channel: str, names: Collection[str]) -> str:
    return unknown("channel", channel, names)


def located(file: str, table: str | None, key: str | None, problem: str) -> str:
    return str(ConfigError(file, table, key, problem))


def config_warnings(config: Any, channels: Mapping[str, str] | None = None) -> list[str]:
    """What is valid but will not work: each as ``file: [table] key: problem``.
    ``channels``: configured adapter table -> its channel; default from the registry."""
    core, file = config.core, config.source
    # As gateway.config.enabled_adapters, which this module cannot import (it imports us).
    enabled = [n for n, c in config.adapters.items() if getattr(c, "enabled", True)]
    channels = dict(channels) if channels is not None else adapter_channels(enabled)
    found = list(_unservable_queues(core, file))
    served = {n: channels.get(n, n) for n in enabled}
    found += _untaken_channels(core, file, served)
    found += _unserved_queue_channels(core, file, served)
    found += _placeholder_secrets(config)
    return found


def _unservable_queues(core: Any, file: str) -> Iterator[str]:
    if not core.agents:
        if core.queues:
            yield located(file, "agents", None, "no agents: no queue can be served")
        return
    queues = {queue.name: queue for queue in core.queues}
    for i, queue in enumerate(core.queues):
        if any(_can_serve(agent, queue, queues) for agent in core.agents):
            continue
        needs = ", ".join(f"{skill} >= {level}" for skill, level in queue.skills.items())
        on = ", ".join(queue.channels) or "any channel"
        problem = "no configured agent can ever serve this queue: it needs " + (
            f"skills {needs} and capacity on {on}" if needs else f"capacity on {on}"
        )
        yield located(file, entry("queues", i, queue.name), None, problem)


def _can_serve(agent: Any, queue: QueueConfig, queues: Mapping[str, QueueConfig]) -> bool:
    """Whether routing could ever offer the agent the queue's conversations: with its own
    skills, with those an escalation step sets or relaxes, or as an overflow queue's agent."""
    if share(agent, queue) is not None:
        return True
    for step in queue.escalation:
        if step.relax_skills or step.skills is not None:
            skills = {} if step.relax_skills else dict(step.skills or {})
            if share(agent, msgspec.structs.replace(queue, skills=skills)) is not None:
                return True
        overflow = queues.get(queue.overflow or "")
        if step.overflow and overflow is not None and share(agent, overflow) is not None:
            return True
    return False


def _untaken_channels(core: Any, file: str, channels: Mapping[str, str]) -> Iterator[str]:
    default = next((q for q in core.queues if q.name == core.routing.default_queue), None)
    for table, channel in channels.items():
        listed = any(channel in queue.channels for queue in core.queues)
        ruled = any(channel in rule.channels and rule.queue for rule in core.rules)
        # A default queue that lists no channel is the catch-all: it takes this one too.
        if not (listed or ruled or default is None or not default.channels):
            yield located(
                file,
                table,
                None,
                f"no queue takes channel {quote(channel)}: no [[queues]] lists it in channels,"
                f" so its conversations fall to the default queue {quote(default.name)},"
                f" which lists only {', '.join(default.channels)}",
            )
        if core.agents and not any(agent.capacity.get(channel, 0) > 0 for agent in core.agents):
            yield located(
                file,
                table,
                None,
                f"no agent has capacity on channel {quote(channel)}: its conversations are"
                " never offered",
            )


def _unserved_queue_channels(core: Any, file: str, served: Mapping[str, str]) -> Iterator[str]:
    """A queue listing a channel no enabled adapter carries never gets its conversations:
    usually the adapter's table is missing or has enabled = false."""
    tables = {channel: table for table, channel in served.items()}
    for i, queue in enumerate(core.queues):
        for channel in queue.channels:
            if channel not in tables:
                table = _adapter_table(channel)
                problem = (
                    f"queue {quote(queue.name)} takes channel {quote(channel)} but no"
                    f" [{table}] adapter is configured (or it has enabled = false)"
                )
                yield located(file, entry("queues", i, queue.name), "channels", problem)


def _adapter_table(channel: str) -> str:
    """The table of the installed adapter that carries ``channel`` (review: [reviews])."""
    from adapters import registry

    found = adapter_channels(registry.available())
    return next((table for table, carried in found.items() if carried == channel), channel)


def _placeholder_secrets(config: Any) -> Iterator[str]:
    file = config.source
    for table, key, value, owner in _secrets(config):
        if key == "token_sha256":
            if not _hashes_a_placeholder(str(value), owner):
                continue
            problem = "the SHA-256 of a placeholder token: set a real secret"
        elif any(p in str(value).lower() for p in PLACEHOLDERS):
            problem = f"{quote(value)} is a placeholder secret: set a real one"
        else:
            continue
        yield located(file, table, key, problem + _from_environment(table, key, owner))


def _from_environment(table: str, key: str, owner: str | None) -> str:
    if table == "admin" and key == "token":
        return " (or ZHONGTAI_ADMIN_TOKEN)"
    if table == "redis" and key == "url":
        return " (or ZHONGTAI_REDIS_URL)"
    prefix = _ENV_VARS.get(table.split(" ", 1)[0].split("[", 1)[0])
    if prefix and owner and key.startswith(("token", "secret")):
        return f" (or {prefix}{re.sub(r'[^A-Za-z0-9]', '_', owner).upper()})"
    return ""


def _hashes_a_placeholder(digest: str, owner: str | None) -> bool:
    candidates = [*PLACEHOLDERS, *(f"{p}-{owner}" for p in PLACEHOLDERS if owner)]
    return digest.lower() in {hashlib.sha256(c.encode()).hexdigest() for c in candidates}


def _secrets(config: Any) -> Iterator[tuple[str, str, object, str | None]]:
    """(table, key, value, owning entry's id) of every secret-looking string field."""
    core = config.core
    for field in msgspec.structs.fields(core):
        value = getattr(core, field.name)
        if isinstance(value, list) and field.name in ENTRY_KEYS:
            name_key = ENTRY_KEYS[field.name]
            for i, item in enumerate(value):
                name = getattr(item, name_key, None)
                where = entry(field.name, i, name)
                yield from _walk(item, where, None, name)
        elif isinstance(value, msgspec.Struct):
            yield from _walk(value, field.name, None, None)
    for name, adapter_config in config.adapters.items():
        yield from _walk(adapter_config, name, None, None)


def _walk(
    value: object, table: str, prefix: str | None, owner: str | None
) -> Iterator[tuple[str, str, object, str | None]]:
    if isinstance(value, msgspec.Struct):
        for field in msgspec.structs.fields(value):
            key = f"{prefix}.{field.name}" if prefix else field.name
            inner = getattr(value, field.name)
            if isinstance(inner, str) and _SECRET_FIELD.search(field.name):
                yield table, key, inner, owner
            else:
                yield from _walk(inner, table, key, owner)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, table, f"{prefix}[{i}]", owner)
    elif isinstance(value, dict):
        for k, item in value.items():
            yield from _walk(item, table, f"{prefix}.{k}", owner)


def port_problem(port: int) -> str | None:
    """What is wrong with a port to listen on, or None. A number past 65535 is not refused by
    the socket layer but wraps around (70000 listens on 4464 while the start-up line says
    70000), and 0 listens on a port nobody is told: both are refused."""
    if not 1 <= port <= 65535:
        return f"{port} is not a port: use 1 to 65535"
    return None


def check_server(server: Any, file: str) -> None:
    """[server]: ports that exist, trusted proxies that parse, caps and deadlines that are
    not negative."""
    for key in ("port", "admin_port"):
        if problem := port_problem(getattr(server, key)):
            raise ConfigError(file, "server", key, problem)
    try:
        networks(server.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(file, "server", "trusted_proxies", str(exc).partition(": ")[2]) from None
    for key in ("max_connections", "max_connections_per_address"):
        if getattr(server, key) < 0:
            raise ConfigError(file, "server", key, "cannot be negative (0: no cap)")
    for key in ("header_timeout_s", "body_timeout_s", "hello_timeout_s"):
        if getattr(server, key) < 0:
            raise ConfigError(file, "server", key, "cannot be negative (0: no deadline)")
