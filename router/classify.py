"""The queue a conversation joins when no classification rule names one: the first queue
that takes the message's channel, else the default queue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ChannelQueue(Protocol):
    name: str
    channels: list[str]


def queue_for_channel(channel: str, queues: Sequence[ChannelQueue], default: str) -> str:
    for queue in queues:
        if channel in queue.channels:
            return queue.name
    return default
