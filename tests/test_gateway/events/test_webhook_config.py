"""[events] and [[webhooks]] as the configuration takes them: the secret from the
environment, and each mistake refused naming the entry and the key."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import parse_config
from gateway.config_errors import ConfigError


def config(env: dict[str, str] | None = None, **tables: Any):
    return parse_config(tables, "<test>", {}, env=env or {}, channels=["webchat"])


def hook(**fields: Any) -> dict[str, Any]:
    return {"name": "crm", "url": "https://crm.example.com/hook", "secret": "s", **fields}


def test_defaults_and_the_secret_from_the_environment():
    core = config(
        env={"ZHONGTAI_WEBHOOK_SECRET_CRM_EU": "from-env"},
        webhooks=[hook(name="crm.eu", secret=None)],
    ).core
    assert core.events.enabled and core.events.max_len == 1_000_000
    (webhook,) = core.webhooks
    assert webhook.secret == "from-env" and webhook.events == ["*"]
    assert webhook.retry_for_s == 3600.0 and webhook.enabled


@pytest.mark.parametrize(
    ("tables", "key", "problem"),
    [
        ({"webhooks": [hook(secret=None)]}, "secret", "ZHONGTAI_WEBHOOK_SECRET_CRM"),
        ({"webhooks": [hook(url="ftp://x")]}, "url", "http:// or https://"),
        ({"webhooks": [hook(events=["mesage_in"])]}, "events", 'did you mean "message_in"'),
        ({"webhooks": [hook(), hook()]}, "name", "listed twice"),
        ({"webhooks": [hook(name="a b")]}, "name", "letters, digits"),
        ({"webhooks": [hook(claim_after_s=5.0)]}, "claim_after_s", "below claim_after_s"),
        ({"webhooks": [hook(batch=0)]}, "batch", "1 to 1000"),
        ({"webhooks": [hook()], "events": {"enabled": False}}, "events", "nothing to send"),
        ({"events": {"max_len": 0}}, "max_len", "at least 1"),
        ({"events": {"max_age_s": -1}}, "max_age_s", "cannot be negative"),
        ({"history": {"max_scan": 0}}, "max_scan", "1 to 1000000"),
    ],
)
def test_mistakes_name_the_key(tables, key, problem):
    with pytest.raises(ConfigError) as raised:
        config(**tables)
    assert raised.value.key == key
    assert problem in str(raised.value)


def test_a_paused_webhook_needs_no_secret():
    (webhook,) = config(webhooks=[hook(secret=None, enabled=False)]).core.webhooks
    assert not webhook.enabled
