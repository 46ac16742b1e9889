"""on_agent_gone's default follows the queue's channels: a chat customer waits for an answer
now, an email or review customer is better answered by the agent who knows the case; the
scripts receive the decision, and a bad value is refused naming the key."""

from __future__ import annotations

import pytest
from harness import make_config

from gateway.config import ConfigError
from router.config import LIVE_CHANNELS, QueueConfig, on_agent_gone
from router.queues import queue_rules


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        (["webchat"], "requeue"),
        (["wechat"], "requeue"),
        (["email"], "keep"),
        (["review"], "keep"),
        (["email", "webchat"], "requeue"),  # a chat customer among them waits now
        ([], "requeue"),  # every channel, chats included
    ],
)
def test_the_default_follows_the_channels(channels, expected):
    queue = QueueConfig(name="q", channels=channels)
    assert on_agent_gone(queue) == expected
    assert queue_rules(queue)["on_agent_gone"] == expected


def test_a_value_set_wins_over_the_channels():
    assert on_agent_gone(QueueConfig(name="q", channels=["webchat"], on_agent_gone="keep")) == (
        "keep"
    )
    assert on_agent_gone(QueueConfig(name="q", channels=["email"], on_agent_gone="requeue")) == (
        "requeue"
    )
    assert set(LIVE_CHANNELS) == {"webchat", "wechat"}


def test_a_bad_value_is_refused_naming_the_key(tenant):
    with pytest.raises(ConfigError, match="on_agent_gone"):
        make_config(tenant, queues=[{"name": "general", "on_agent_gone": "stay"}])
