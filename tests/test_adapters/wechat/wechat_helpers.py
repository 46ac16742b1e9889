"""Helpers of the WeChat channel's tests: credentials, a [wechat] table pointing at the fake
platform (three Official Accounts, "main" in safe mode, "mixed" in compatible mode and "plain"
in plaintext mode, and one WeCom corp "shop"), and posting callbacks the way WeChat does."""

from __future__ import annotations

from typing import Any

import aiohttp
from fake_wechat_api import FakeWeChat, oa_callback, with_query
from harness import RunningGateway, agent, make_config

APP_ID, APP_SECRET = "wx1234567890abcdef", "app-secret-main"
PLAIN_APP_ID, PLAIN_SECRET = "wxplain000000000000", "app-secret-plain"
TOKEN = "zhongtaiToken42"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP_ID, CORP_SECRET = "ww0123456789abcdef", "corp-kf-secret"
KF_TOKEN, KF_AES_KEY = "kfToken2024", "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
OPEN_KFID = "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw"


def wechat_table(fake: FakeWeChat, **overrides: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "accounts": [
            {
                "name": "main",
                "app_id": APP_ID,
                "app_secret": APP_SECRET,
                "token": TOKEN,
                "aes_key": AES_KEY,
                "api_base": fake.mp_base,
            },
            {
                "name": "mixed",
                "app_id": APP_ID,
                "app_secret": APP_SECRET,
                "token": TOKEN,
                "aes_key": AES_KEY,
                "mode": "compatible",
                "api_base": fake.mp_base,
            },
            {
                "name": "plain",
                "app_id": PLAIN_APP_ID,
                "app_secret": PLAIN_SECRET,
                "token": TOKEN,
                "api_base": fake.mp_base,
            },
        ],
        "kf": [
            {
                "name": "shop",
                "corp_id": CORP_ID,
                "secret": CORP_SECRET,
                "token": KF_TOKEN,
                "aes_key": KF_AES_KEY,
                "api_base": fake.work_base,
            }
        ],
        "retry_backoff_s": 0.01,
        "window_sweep_s": 0.05,
        "kf_sweep_s": 0.05,
        "request_timeout_s": 5.0,
    }
    table.update(overrides)
    return table


def wechat_config(
    tenant: str, fake: FakeWeChat, redis: dict[str, Any] | None = None, **overrides: Any
):
    return make_config(
        tenant,
        agents=[agent("alice", capacity=0) | {"capacity": {"wechat": 5}}],
        queues=[{"name": "general"}],
        wechat=wechat_table(fake, **overrides),
        webchat=None,
        redis=redis,
    )


async def post_callback(
    gw: RunningGateway,
    xml: str,
    *,
    account: str = "main",
    safe: bool | None = None,
    compatible: bool = False,
    token: str = TOKEN,
) -> tuple[int, str]:
    """POST a message to /wechat/{account} as WeChat would; (status, body)."""
    if safe is None:
        safe = account in ("main", "mixed")
    query, body = oa_callback(
        token,
        xml,
        aes_key=AES_KEY if safe else None,
        app_id=APP_ID,
        compatible=compatible,
    )
    return await post_raw(gw, f"/wechat/{account}", query, body)


async def post_raw(
    gw: RunningGateway, path: str, query: dict[str, str], body: bytes
) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(with_query(gw.base + path, query), data=body) as response,
    ):
        return response.status, await response.text()
