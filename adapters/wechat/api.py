"""The few HTTP calls to WeChat and WeCom, with aiohttp (wechatpy's client blocks).

Every call goes through :meth:`Api.call`, which knows which failures may be retried:

- nothing reached WeChat (connection refused, DNS, HTTP 502/503, errcode -1 "system busy"):
  retried with exponential backoff, whatever the call;
- the request may have reached WeChat but no answer came (timeout, connection dropped,
  another 5xx): retried only for calls that are safe to repeat (tokens, uploads, reads).
  For a message send that is :class:`OutcomeUnknown`: sending again could deliver it twice.

:meth:`Api.with_token` adds the access token and, when WeChat refuses it (40001, 42001,
40014), gets a new one once and repeats the call once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import msgspec

from adapters.inputs import decode_json
from adapters.wechat.tokens import TokenCache

log = logging.getLogger("zhongtai.wechat")

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
BUSY = -1  # "system busy, try again later": not processed
RETRY_STATUSES = frozenset({502, 503})  # a proxy or load balancer that did not pass it on

_json = msgspec.json.Decoder()


class WeChatError(Exception):
    """WeChat answered with an errcode (or an HTTP error status, as a negative code)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg


class Unreachable(Exception):
    """WeChat could not be reached, after every attempt; nothing was delivered."""


class OutcomeUnknown(Exception):
    """The request may or may not have been carried out; it must not be repeated blindly."""


class Api:
    def __init__(
        self,
        *,
        timeout_s: float,
        attempts: int,
        backoff_s: float,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._session = session

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Created on first use, inside the running loop; closed by aclose().
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _pause(self, attempt: int) -> None:
        delay = self.backoff_s * (2**attempt)
        await asyncio.sleep(delay * (0.5 + random.random() / 2))

    async def call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        idempotent: bool,
    ) -> dict[str, Any]:
        """The decoded JSON answer of a call whose errcode is 0 (or absent)."""
        body = msgspec.json.encode(json) if json is not None else None
        headers = {"Content-Type": "application/json; charset=utf-8"} if body else None
        last: Exception | None = None
        for attempt in range(self.attempts):
            if attempt:
                await self._pause(attempt - 1)
            try:
                async with self.session.request(
                    method,
                    url,
                    params=params,
                    data=form() if form is not None else body,
                    headers=headers,
                ) as response:
                    status = response.status
                    raw = await response.read()
            except aiohttp.ClientConnectorError as exc:
                last = exc  # never connected: nothing was sent
                continue
            except (TimeoutError, aiohttp.ClientError) as exc:
                if not idempotent:
                    raise OutcomeUnknown(f"no answer from WeChat: {exc!r}") from exc
                last = exc
                continue
            if status in RETRY_STATUSES:
                last = WeChatError(-status, f"HTTP {status}")
                continue
            if status >= 500:
                if not idempotent:
                    raise OutcomeUnknown(f"WeChat answered HTTP {status}")
                last = WeChatError(-status, f"HTTP {status}")
                continue
            if status >= 400:
                raise WeChatError(-status, f"HTTP {status}: {raw[:200]!r}")
            try:
                answer = decode_json(_json.decode, raw)
            except msgspec.DecodeError:
                raise WeChatError(-1, f"not JSON: {raw[:200]!r}") from None
            if not isinstance(answer, dict):
                raise WeChatError(-1, f"unexpected answer: {raw[:200]!r}")
            errcode = int(answer.get("errcode") or 0)
            if errcode == BUSY:
                last = WeChatError(errcode, str(answer.get("errmsg") or "system busy"))
                continue
            if errcode:
                raise WeChatError(errcode, str(answer.get("errmsg") or ""))
            return answer
        if isinstance(last, WeChatError):
            raise last
        raise Unreachable(f"WeChat could not be reached after {self.attempts} attempts: {last!r}")

    async def with_token(
        self, tokens: TokenCache, call: Callable[[str], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """call(access_token), with one refresh and one repeat when the token is refused."""
        token = await tokens.get()
        try:
            return await call(token)
        except WeChatError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.info("wechat: token refused (%s); refreshing once", exc.errcode)
        return await call(await tokens.rejected(token))

    async def download(self, url: str, limit: int) -> tuple[bytes, str]:
        """Bytes and content type of a URL, refused beyond limit bytes."""
        async with self.session.get(url) as response:
            if response.status != 200:
                raise WeChatError(-response.status, f"HTTP {response.status} from {url}")
            if (response.content_length or 0) > limit:
                raise ValueError(f"larger than {limit} bytes")
            data = bytearray()
            async for chunk in response.content.iter_chunked(65536):
                data += chunk
                if len(data) > limit:
                    raise ValueError(f"larger than {limit} bytes")
            return bytes(data), response.content_type


def url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def media_form(data: bytes, filename: str, content_type: str) -> Callable[[], aiohttp.FormData]:
    """A multipart body with the file in the field "media", as WeChat's uploads expect; a
    factory, because a FormData can be sent only once and retries send it again."""

    def build() -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field("media", data, filename=filename, content_type=content_type)
        return form

    return build
