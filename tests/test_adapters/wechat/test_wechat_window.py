"""The 48-hour window and the short event windows: what the agent is told before and when
the window closes, told once whatever the number of gateway processes."""

from __future__ import annotations

import time

from fake_wechat_api import oa_xml
from harness import agent_client, running
from helpers import wait_until
from wechat_helpers import post_callback, wechat_config

from adapters.contract import DeliveryError
from adapters.wechat import WeChatAdapter
from adapters.wechat.window import Windows


def adapter_of(gw) -> WeChatAdapter:
    adapter = gw.services.adapters["wechat"]
    assert isinstance(adapter, WeChatAdapter)
    return adapter


async def age_window(redis, windows: Windows, account: str, customer: str, age_s: float) -> None:
    """Make the customer's last message age_s old, with its timers where they belong."""
    at = int((time.time() - age_s) * 1000)
    closes = at + windows.window_ms
    await redis.hset(windows.state_key(account, customer), "msg_at", at)
    member = f"{account}|{customer}"
    await redis.zadd(
        windows.timers,
        {f"warn|{member}": closes - windows.warning_ms, f"closed|{member}": closes},
    )


async def test_the_agent_is_warned_before_the_window_closes_and_told_when_it_closed(
    tenant, fake, redis_url, redis
):
    config = wechat_config(tenant, fake)
    # Two processes sweep the same timers: each notice is told once.
    async with (
        running(config, redis_url) as gw,
        running(config, redis_url),
        agent_client(gw, "alice") as alice,
    ):
        xml = oa_xml("o-win", "text", Content="hi", MsgId=1)
        assert await post_callback(gw, xml, account="plain") == (200, "success")
        offer = await alice.expect("offer")
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")
        conversation_id = offer["conversation"]["id"]
        windows = adapter_of(gw).windows

        await age_window(redis, windows, "plain", "o-win", 47.5 * 3600)
        notice = await alice.expect("notice", conversation_id=conversation_id)
        assert notice["code"] == "wechat_window_closing"
        assert "closes in about 30 min" in notice["detail"]

        await age_window(redis, windows, "plain", "o-win", 48 * 3600 + 5)
        notice = await alice.expect("notice", conversation_id=conversation_id)
        assert notice["code"] == "wechat_window_closed"
        await wait_until(lambda: _zcard_is(redis, windows.timers, 0), message="timers claimed")
        notices = [f for f in alice.frames if f.get("type") == "notice"]
        assert [n["code"] for n in notices] == ["wechat_window_closing", "wechat_window_closed"]


async def _zcard_is(redis, key: str, n: int) -> bool:
    return await redis.zcard(key) == n


async def test_a_new_message_moves_the_timers(config, redis_url, redis):
    async with running(config, redis_url) as gw:
        windows = adapter_of(gw).windows
        await windows.record("plain", "o-move", "c1", "message", int(time.time() * 1000))
        first = await redis.zscore(windows.timers, "closed|plain|o-move")
        later = int(time.time() * 1000) + 60_000
        await windows.record("plain", "o-move", "c1", "message", later)
        assert (
            await redis.zscore(windows.timers, "closed|plain|o-move") == later + windows.window_ms
        )
        assert first < later + windows.window_ms
        # A redelivery of an older message does not move them back.
        await windows.record("plain", "o-move", "c1", "message", later - 1000, duplicate=True)
        assert (
            await redis.zscore(windows.timers, "closed|plain|o-move") == later + windows.window_ms
        )


async def test_menu_clicks_follows_and_scans_open_a_short_window(config, redis_url, redis):
    async with running(config, redis_url) as gw:
        windows = adapter_of(gw).windows
        click = oa_xml("o-click", "event", Event="CLICK", EventKey="HELP")
        assert await post_callback(gw, click, account="plain") == (200, "success")
        for _ in range(3):  # replies_per_event
            await windows.reserve("plain", "o-click", 1)
        try:
            await windows.reserve("plain", "o-click", 1)
            raise AssertionError("a fourth reply within the event window was allowed")
        except DeliveryError as refused:
            assert refused.code == "45047"
        # A VIEW opens nothing; after a minute the click's window is gone.
        view = oa_xml("o-view", "event", Event="VIEW", EventKey="https://x/")
        assert await post_callback(gw, view, account="plain") == (200, "success")
        try:
            await windows.reserve("plain", "o-view", 1)
            raise AssertionError("a VIEW opened a window")
        except DeliveryError as refused:
            assert refused.code == "45015"
        await redis.hset(windows.state_key("plain", "o-click"), "evt_at", 1)
        try:
            await windows.reserve("plain", "o-click", 1)
            raise AssertionError("the event window did not close")
        except DeliveryError as refused:
            assert refused.code == "45015"


async def test_after_unfollowing_replies_are_refused_until_they_follow_again(config, redis_url):
    async with running(config, redis_url) as gw:
        windows = adapter_of(gw).windows
        text = oa_xml("o-unf", "text", Content="hi", MsgId=77)
        assert await post_callback(gw, text, account="plain") == (200, "success")
        await windows.reserve("plain", "o-unf", 1)
        leave = oa_xml("o-unf", "event", Event="unsubscribe")
        assert await post_callback(gw, leave, account="plain") == (200, "success")
        try:
            await windows.reserve("plain", "o-unf", 1)
            raise AssertionError("a reply to someone who unfollowed was allowed")
        except DeliveryError as refused:
            assert refused.code == "45015" and "unfollowed" in refused.detail
        follow = oa_xml("o-unf", "event", Event="subscribe", EventKey="")
        assert await post_callback(gw, follow, account="plain") == (200, "success")
        await windows.reserve("plain", "o-unf", 1)
