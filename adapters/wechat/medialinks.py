"""Links agents open to see a customer's WeChat media: signed and expiring, relayed by
callback.py, so that the gateway's media route serves only what it handed out. The keys
are derived from each account's secret, so that every process signs and checks alike
without sharing anything more."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlencode

from adapters.wechat.messages import MediaUrl

MEDIA_LINK_TTL_S = 3 * 86400  # WeChat keeps temporary media for 3 days


class MediaLinks:
    def __init__(self, channel: str, secrets: Iterable[tuple[str, str]]) -> None:
        """``secrets``: (scope, secret) for each account: an Official Account's name, or
        ``kf/<corp>`` for a 微信客服 corp."""
        self._channel = channel
        self._keys = {scope: _derive(secret) for scope, secret in secrets}

    def url_for(self, scope: str) -> MediaUrl:
        key = self._keys[scope]

        def media_url(media_id: str, filename: str) -> str:
            expires = int(time.time()) + MEDIA_LINK_TTL_S
            sig = _sign(key, scope, media_id, expires)
            query = urlencode({"e": expires, "s": sig, "name": filename})
            return f"/{self._channel}/{scope}/media/{quote(media_id, safe='')}?{query}"

        return media_url

    def ok(self, scope: str, media_id: str, query: Mapping[str, str]) -> bool:
        key = self._keys.get(scope)
        try:
            expires = int(query.get("e", ""))
        except ValueError:
            return False
        if key is None or expires < time.time():
            return False
        return hmac.compare_digest(_sign(key, scope, media_id, expires), query.get("s", ""))


def _derive(secret: str) -> bytes:
    return hashlib.sha256(b"zhongtai-wechat-media\0" + secret.encode()).digest()


def _sign(key: bytes, scope: str, media_id: str, expires: int) -> str:
    mac = hmac.new(key, f"{scope}\0{media_id}\0{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()
