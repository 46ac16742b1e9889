"""The ``[[webhooks]]`` entries and their checks. A webhook's secret may come from the
environment (``ZHONGTAI_WEBHOOK_SECRET_<NAME>``) like every other secret, so that the file
can be shared."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import msgspec

from gateway.config_errors import ConfigError, did_you_mean, entry, quote
from router.events import EVENT_TYPES, RESERVED_EVENT_TYPES, EventsConfig

_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")


class WebhookConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One receiver of lifecycle events. ``events``: the types it gets ("*": all).
    ``enabled = false`` pauses it: its events wait in the stream (as long as the stream
    keeps them) and go out when it is enabled again."""

    name: str
    url: str
    enabled: bool = True
    secret: str | None = None
    events: list[str] = msgspec.field(default_factory=lambda: ["*"])
    timeout_s: float = 10.0
    retry_for_s: float = 3600.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    # A delivery pending this long on a process that stopped answering is claimed by another.
    claim_after_s: float = 60.0
    batch: int = 50
    concurrency: int = 8
    # How often an idle process looks for new events (no blocking read: commands share one
    # multiplexed connection, which a blocked read would hold).
    poll_interval_s: float = 0.2


def secret_variable(name: str) -> str:
    return "ZHONGTAI_WEBHOOK_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def apply_webhook_secrets(webhooks: list[WebhookConfig], env: Mapping[str, str]) -> None:
    for hook in webhooks:
        if secret := env.get(secret_variable(hook.name)):
            hook.secret = secret


def check_webhooks(webhooks: list[WebhookConfig], events: EventsConfig, file: str) -> None:
    if events.max_len < 1:
        raise ConfigError(file, "events", "max_len", "must be at least 1")
    if events.max_age_s < 0:
        raise ConfigError(file, "events", "max_age_s", "cannot be negative (0: no age limit)")
    known = (*EVENT_TYPES, *RESERVED_EVENT_TYPES)
    seen: set[str] = set()
    for i, hook in enumerate(webhooks):
        where = entry("webhooks", i, hook.name)
        if not _NAME.match(hook.name):
            raise ConfigError(file, where, "name", "use letters, digits, _ . -")
        if hook.name in seen:
            raise ConfigError(file, where, "name", f"webhook {quote(hook.name)} is listed twice")
        seen.add(hook.name)
        parts = urlsplit(hook.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(file, where, "url", "an http:// or https:// URL")
        if hook.enabled and not hook.secret:
            problem = f"set secret, or {secret_variable(hook.name)} in the environment"
            raise ConfigError(file, where, "secret", problem)
        if hook.enabled and not events.enabled:
            raise ConfigError(file, where, "events", "[events] enabled = false: nothing to send")
        for kind in hook.events:
            if kind != "*" and kind not in known:
                problem = f"unknown event type {quote(kind)}{did_you_mean(kind, known)}"
                raise ConfigError(file, where, "events", problem)
        for key in (
            "timeout_s", "backoff_initial_s", "backoff_max_s", "claim_after_s", "poll_interval_s",
        ):  # fmt: skip
            if getattr(hook, key) <= 0:
                raise ConfigError(file, where, key, "must be greater than 0")
        if hook.retry_for_s < 0:
            raise ConfigError(file, where, "retry_for_s", "cannot be negative")
        if hook.backoff_max_s + hook.timeout_s >= hook.claim_after_s:
            problem = "backoff_max_s + timeout_s must be below claim_after_s (a retrying "
            problem += "delivery would be claimed by another process)"
            raise ConfigError(file, where, "claim_after_s", problem)
        if not 1 <= hook.batch <= 1000:
            raise ConfigError(file, where, "batch", "runs from 1 to 1000")
        if not 1 <= hook.concurrency <= 100:
            raise ConfigError(file, where, "concurrency", "runs from 1 to 100")
