"""Building gateways with review feeds, and reading what the channel made of them."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
from harness import RunningGateway, make_config
from helpers import wait_until
from reviews_fake_feed import FakeFeedServer

from adapters.model import Conversation
from adapters.reviews import ReviewsAdapter
from adapters.reviews.poller import Poller
from adapters.reviews.store import ReviewState
from adapters.reviews.webhook import sign

SECRET = "s3cret-for-tests"
# Fast polls and short backoffs, so that tests wait tenths of a second, not minutes.
FAST = {"backoff_base_s": 0.05, "backoff_max_s": 0.4, "request_timeout_s": 5.0}
# The fake JSON API's own field names.
JSON_FIELDS = {
    "items": "data.reviews",
    "id": "review_id",
    "author": "user.name",
    "author_id": "user.id",
    "rating": "stars",
    "title": "headline",
    "text": "body",
    "time": "created_at",
    "product": "item",
    "deleted": "is_deleted",
    "next": "paging.next",
}


def review_agent(agent_id: str, capacity: int = 5, **fields: Any) -> dict[str, Any]:
    return {"id": agent_id, "token": f"tok-{agent_id}", "capacity": {"review": capacity}, **fields}


def json_feed(server: FakeFeedServer, name: str = "shop", **extra: Any) -> dict[str, Any]:
    feed = {
        "name": name,
        "kind": "json",
        "url": f"{server.base}/json",
        "poll_s": 0.1,
        "fields": JSON_FIELDS,
        "reply": {"url": f"{server.base}/reply/{{review_id}}"},
    }
    return {**feed, **extra}


def reviews_config(
    tenant: str,
    feeds: list[dict[str, Any]],
    *,
    agents: list[dict[str, Any]] | None = None,
    queues: list[dict[str, Any]] | None = None,
    rules: list[dict[str, Any]] | None = None,
    grades: list[dict[str, Any]] | None = None,
    routing: dict[str, Any] | None = None,
    redis: dict[str, Any] | None = None,
    **reviews: Any,
):
    return make_config(
        tenant,
        agents=agents if agents is not None else [review_agent("alice")],
        queues=queues or [{"name": "general", "channels": ["review"]}],
        rules=rules,
        grades=grades,
        routing=routing,
        redis=redis,
        reviews={"feeds": feeds, **FAST, **reviews},
        webchat=None,
    )


def adapter_of(gw: RunningGateway) -> ReviewsAdapter:
    adapter = gw.services.adapters["reviews"]
    assert isinstance(adapter, ReviewsAdapter)
    return adapter


def poller_of(gw: RunningGateway, feed: str = "shop") -> Poller:
    poller = adapter_of(gw)._feeds[feed].poller
    assert poller is not None
    return poller


async def polled(
    gw: RunningGateway, times: int, feed: str = "shop", within_s: float = 10.0
) -> None:
    """Wait until this gateway has finished this many polls of the feed."""
    poller = poller_of(gw, feed)
    await wait_until(lambda: poller.polls >= times, timeout=within_s, message=f"{times} polls")


async def states(gw: RunningGateway, feed: str = "shop") -> dict[str, ReviewState]:
    store = adapter_of(gw)._feeds[feed].store
    ids = await store.ids()
    found = await store.get_many(ids)
    return {i: s for i, s in zip(ids, found, strict=True) if s is not None}


async def conversation_of(gw: RunningGateway, review_id: str, feed: str = "shop") -> Conversation:
    state = (await states(gw, feed))[review_id]
    assert state.conversation, f"review {review_id} has no conversation"
    conversation = await gw.services.router.conversation(state.conversation)
    assert conversation is not None
    return conversation


async def post_signed(
    gw: RunningGateway,
    feed: str,
    payload: Any,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    body = raw if raw is not None else json.dumps(payload).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    sent = {
        "X-Zhongtai-Timestamp": stamp,
        "X-Zhongtai-Signature": sign(secret, stamp, body),
        "Content-Type": "application/json",
    }
    if headers is not None:
        sent = headers
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gw.base}/reviews/{feed}", data=body, headers=sent) as response,
    ):
        text = await response.text()
        try:
            data = json.loads(text)
        except ValueError:
            data = {"text": text}
        return response.status, data
