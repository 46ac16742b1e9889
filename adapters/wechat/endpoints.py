"""WeChat's and WeCom's endpoints that the channel calls, each a small function over
:class:`adapters.wechat.api.Api`. Paths are relative to the account's ``api_base``, so a
proxy or a test server can stand in for the platform."""

from __future__ import annotations

from typing import Any

import msgspec

from adapters.inputs import decode_json
from adapters.wechat.api import Api, WeChatError, media_form, url
from adapters.wechat.tokens import TokenCache

# Official Account (api.weixin.qq.com).


async def stable_token(
    api: Api, base: str, app_id: str, secret: str, force: bool
) -> tuple[str, float]:
    """POST /cgi-bin/stable_token: the stable access token, isolated from /cgi-bin/token,
    so that nothing else calling /cgi-bin/token invalidates ours."""
    answer = await api.call(
        "POST",
        url(base, "/cgi-bin/stable_token"),
        json={
            "grant_type": "client_credential",
            "appid": app_id,
            "secret": secret,
            "force_refresh": force,
        },
        idempotent=True,
    )
    return _token(answer)


async def custom_send(api: Api, tokens: TokenCache, base: str, payload: dict[str, Any]) -> None:
    """POST /cgi-bin/message/custom/send: one customer-service message. Not idempotent:
    WeChat has no idempotency key for it, so an unanswered attempt is not repeated."""
    await api.with_token(
        tokens,
        lambda token: api.call(
            "POST",
            url(base, "/cgi-bin/message/custom/send"),
            params={"access_token": token},
            json=payload,
            idempotent=False,
        ),
    )


async def user_info(api: Api, tokens: TokenCache, base: str, openid: str) -> dict[str, Any]:
    """GET /cgi-bin/user/info: a follower's profile (unionid, the operator's remark; WeChat
    no longer returns nicknames here)."""
    return await api.with_token(
        tokens,
        lambda token: api.call(
            "GET",
            url(base, "/cgi-bin/user/info"),
            params={"access_token": token, "openid": openid, "lang": "zh_CN"},
            idempotent=True,
        ),
    )


# Both platforms: temporary media.


async def upload_media(
    api: Api,
    tokens: TokenCache,
    base: str,
    media_type: str,
    data: bytes,
    filename: str,
    content_type: str,
) -> str:
    """POST /cgi-bin/media/upload?type=...: a temporary media file (3 days); its media_id."""
    form = media_form(data, filename, content_type)
    answer = await api.with_token(
        tokens,
        lambda token: api.call(
            "POST",
            url(base, "/cgi-bin/media/upload"),
            params={"access_token": token, "type": media_type},
            form=form,
            idempotent=True,  # a repeated upload only makes another temporary file
        ),
    )
    media_id = answer.get("media_id")
    if not isinstance(media_id, str) or not media_id:
        raise WeChatError(-1, f"the upload answer has no media_id: {answer!r}")
    return media_id


async def get_media(
    api: Api, tokens: TokenCache, base: str, media_id: str, limit: int
) -> tuple[bytes, str]:
    """GET /cgi-bin/media/get: a temporary media file's bytes and type. WeChat answers
    errors as JSON with status 200; a token error is retried once with a new token."""

    async def fetch(token: str) -> dict[str, Any]:
        target = url(base, "/cgi-bin/media/get")
        async with api.session.get(
            target, params={"access_token": token, "media_id": media_id}
        ) as response:
            if response.status != 200:
                raise WeChatError(-response.status, f"HTTP {response.status}")
            if (response.content_length or 0) > limit:
                raise WeChatError(-413, "the media file is too large to relay")
            data = await response.content.read(limit + 1)
            if len(data) > limit:
                raise WeChatError(-413, "the media file is too large to relay")
            ctype = response.content_type
        if ctype in ("application/json", "text/plain"):
            answer = api_json(data)
            if answer.get("errcode"):
                raise WeChatError(int(answer["errcode"]), str(answer.get("errmsg") or ""))
            if isinstance(answer.get("video_url"), str):
                return {"redirect": answer["video_url"]}
        return {"data": data, "type": ctype}

    answer = await api.with_token(tokens, fetch)
    if "redirect" in answer:
        return b"", "redirect:" + answer["redirect"]
    return answer["data"], answer["type"]


def api_json(data: bytes) -> dict[str, Any]:
    try:
        answer = decode_json(msgspec.json.decode, data)
    except msgspec.DecodeError:
        return {}
    return answer if isinstance(answer, dict) else {}


# WeCom (qyapi.weixin.qq.com): 微信客服.


async def wecom_token(api: Api, base: str, corp_id: str, secret: str) -> tuple[str, float]:
    """GET /cgi-bin/gettoken: WeCom has no stable-token endpoint; repeated calls within the
    validity return the same token, so it is safe to share and refetch."""
    answer = await api.call(
        "GET",
        url(base, "/cgi-bin/gettoken"),
        params={"corpid": corp_id, "corpsecret": secret},
        idempotent=True,
    )
    return _token(answer)


async def kf_sync_msg(
    api: Api, tokens: TokenCache, base: str, open_kfid: str, cursor: str, sync_token: str
) -> dict[str, Any]:
    """POST /cgi-bin/kf/sync_msg: the next page of messages and events after cursor."""
    body: dict[str, Any] = {"open_kfid": open_kfid, "limit": 1000, "voice_format": 0}
    if cursor:
        body["cursor"] = cursor
    if sync_token:
        body["token"] = sync_token
    return await api.with_token(
        tokens,
        lambda token: api.call(
            "POST",
            url(base, "/cgi-bin/kf/sync_msg"),
            params={"access_token": token},
            json=body,
            idempotent=True,  # reading from a cursor changes nothing
        ),
    )


async def kf_send_msg(api: Api, tokens: TokenCache, base: str, payload: dict[str, Any]) -> None:
    """POST /cgi-bin/kf/send_msg: one message to a 微信客服 customer."""
    await api.with_token(
        tokens,
        lambda token: api.call(
            "POST",
            url(base, "/cgi-bin/kf/send_msg"),
            params={"access_token": token},
            json=payload,
            idempotent=False,
        ),
    )


async def kf_customer(
    api: Api, tokens: TokenCache, base: str, external_userid: str
) -> dict[str, Any]:
    """POST /cgi-bin/kf/customer/batchget for one customer: nickname, unionid."""
    answer = await api.with_token(
        tokens,
        lambda token: api.call(
            "POST",
            url(base, "/cgi-bin/kf/customer/batchget"),
            params={"access_token": token},
            json={"external_userid_list": [external_userid], "need_enter_session_context": 0},
            idempotent=True,
        ),
    )
    for customer in answer.get("customer_list") or []:
        if isinstance(customer, dict) and customer.get("external_userid") == external_userid:
            return customer
    return {}


def _token(answer: dict[str, Any]) -> tuple[str, float]:
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise WeChatError(-1, "the token answer has no access_token")
    try:
        expires_in = float(answer.get("expires_in") or 7200)
    except (TypeError, ValueError):
        expires_in = 7200.0
    return token, expires_in
