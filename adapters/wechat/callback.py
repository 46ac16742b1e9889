"""The HTTP side of the channel, mounted at ``/wechat/``:

- ``GET|POST /wechat/{account}``: an Official Account's callback (verification, messages);
- ``GET|POST /wechat/kf/{corp}``: a WeCom corp's callback for 微信客服 (encrypted echostr
  check; kf_msg_or_event notices);
- ``GET /wechat/{account}/media/{media_id}`` and ``/wechat/kf/{corp}/media/{media_id}``: a
  customer's voice, video or file, relayed from WeChat for agents, with a signed link.

Every refusal is a status with a one-line reason in the body and in the log, and never holds
exception text: 403 signature, msg_signature, a stale timestamp or a plaintext callback to a
safe-mode account (verify.py); 409 a (timestamp, nonce) pair already taken; 400 malformed,
refused or unreadable XML (safexml.py); 413 too large; 404 unknown account; 503 when the
message could not be stored (WeChat then retries, its pair is released so the retry is
taken, and dedupe makes one message of the retries). WeChat retries any answer but 200 a
few times; the refusals' retries are refused the same way, and lose nothing that was stored.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Protocol

from aiohttp import web
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto
from wechatpy.exceptions import InvalidAppIdException

from adapters.contract import NotDurable
from adapters.retryable import NOT_REPLICATED, loading_response, redis_unavailable
from adapters.wechat import endpoints
from adapters.wechat.api import Api, WeChatError
from adapters.wechat.config import AccountConfig, KfConfig, WeChatConfig
from adapters.wechat.messages import MediaUrl, Normalised, oa_normalise, parse_oa_message
from adapters.wechat.safexml import BadXML, xml_fields
from adapters.wechat.tokens import TokenCache
from adapters.wechat.verify import Refused, ReplayGuard, check_fresh, check_signature

log = logging.getLogger("zhongtai.wechat")

SUCCESS = "success"
MEDIA_RELAY_LIMIT = 20 * 1024 * 1024


class Receiver(Protocol):
    """What the callbacks hand their work to: the WeChat adapter, declared here by what is
    used so that this module need not import adapter.py, which builds its app from here."""

    config: WeChatConfig
    accounts: dict[str, AccountConfig]
    corps: dict[str, KfConfig]
    oa_crypto: dict[str, WeChatCrypto]
    kf_crypto: dict[str, WeComCrypto]
    api: Api

    @property
    def replay(self) -> ReplayGuard: ...

    def oa_tokens(self, name: str) -> TokenCache: ...

    def kf_tokens(self, corp_key: str) -> TokenCache: ...

    def media_url_for(self, scope: str) -> MediaUrl: ...

    def media_link_ok(self, scope: str, media_id: str, query: Mapping[str, str]) -> bool: ...

    async def accept_oa(self, account: AccountConfig, n: Normalised) -> None: ...

    async def kf_notice(self, corp: str, open_kfid: str, sync_token: str) -> None: ...


def build_app(adapter: Receiver) -> web.Application:
    handlers = Callbacks(adapter)
    # client_max_size bounds what aiohttp itself would buffer; the handlers read the body
    # with the same limit themselves, since the request object belongs to the parent app.
    app = web.Application(client_max_size=adapter.config.max_body_bytes)
    app.router.add_get("/kf/{corp}", handlers.kf_verify)
    app.router.add_post("/kf/{corp}", handlers.kf_notice)
    app.router.add_get("/kf/{corp}/media/{media_id}", handlers.kf_media)
    app.router.add_get("/{account}", handlers.oa_verify)
    app.router.add_post("/{account}", handlers.oa_message)
    app.router.add_get("/{account}/media/{media_id}", handlers.oa_media)
    return app


def _refusal(request: web.Request, status: int, reason: str) -> web.Response:
    log.warning("wechat: %s %s -> %d: %s", request.method, request.path, status, reason)
    if status == 503:  # WeChat retries by itself; a proxy or a test reads when
        return loading_response(reason)
    return web.Response(status=status, text=reason)


class Callbacks:
    def __init__(self, adapter: Receiver) -> None:
        self.adapter = adapter
        self.limit = adapter.config.max_body_bytes
        self.tolerance_s = adapter.config.timestamp_tolerance_s

    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > self.limit:
            raise Refused(413, f"body larger than {self.limit} bytes")
        data = bytearray()
        async for chunk in request.content.iter_any():
            data += chunk
            if len(data) > self.limit:
                raise Refused(413, f"body larger than {self.limit} bytes")
        return bytes(data)

    def _signed(
        self, request: web.Request, token: str, signature_name: str, *extra: str
    ) -> list[str]:
        """The signature (as computed), timestamp, nonce and ``extra`` parameters of the
        query, once the signature over token, timestamp, nonce and ``extra`` and the
        timestamp's freshness are checked; refuses with 403 otherwise."""
        names = (signature_name, "timestamp", "nonce", *extra)
        values = [request.query.get(name, "") for name in names]
        if not all(values):
            raise Refused(403, f"missing signature parameters: {', '.join(names)}")
        signature, timestamp, nonce, *rest = values
        values[0] = check_signature(token, signature, timestamp, nonce, *rest, what=signature_name)
        check_fresh(timestamp, nonce, time.time(), self.tolerance_s)
        return values

    async def _take(self, scope: str, timestamp: str, nonce: str) -> None:
        try:
            first = await self.adapter.replay.claim(scope, timestamp, nonce)
        except Exception as exc:  # Redis away: nothing was taken, so WeChat may retry
            log.warning("wechat: %s: could not record the callback's nonce: %s", scope, exc)
            raise Refused(503, "could not store the message; retry") from None
        if not first:
            raise Refused(409, "replayed: this timestamp and nonce were already used")

    # Official Accounts.

    async def oa_verify(self, request: web.Request) -> web.Response:
        account = self.adapter.accounts.get(request.match_info["account"])
        if account is None:
            return _refusal(request, 404, "unknown WeChat account")
        try:
            self._signed(request, account.token, "signature")
        except Refused as refuse:
            return _refusal(request, refuse.status, refuse.reason)
        echostr = request.query.get("echostr")
        if echostr is None:
            return _refusal(request, 400, "echostr is missing")
        return web.Response(text=echostr)

    async def oa_message(self, request: web.Request) -> web.Response:
        name = request.match_info["account"]
        account = self.adapter.accounts.get(name)
        if account is None:
            return _refusal(request, 404, "unknown WeChat account")
        try:
            # WeChat signs every request (safe mode too) over token, timestamp and nonce.
            _, timestamp, nonce = self._signed(request, account.token, "signature")
            body = await self._body(request)
            if request.query.get("encrypt_type", "raw").lower() == "aes":
                body = self._decrypt_oa(name, request, body, timestamp, nonce)
            elif account.mode == "safe":
                # The query's signature says nothing of a plaintext body: anyone holding one
                # signed query could send any message.
                raise Refused(
                    403,
                    "plaintext callback refused: the account is in safe mode "
                    '(set mode = "compatible" to take both)',
                )
            message = parse_oa_message(body)
            normalised = oa_normalise(message, self.adapter.media_url_for(name))
            await self._take(name, timestamp, nonce)
        except Refused as refuse:
            return _refusal(request, refuse.status, refuse.reason)
        except BadXML as exc:
            return _refusal(request, 400, str(exc))
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            log.info("wechat: %s: unreadable message (%s)", name, type(exc).__name__)
            return _refusal(request, 400, "not a WeChat message this gateway can read")
        try:
            await self.adapter.accept_oa(account, normalised)
        except Exception as exc:
            await self._forget(name, timestamp, nonce)
            if redis_unavailable(exc):
                return _refusal(request, 503, "Redis is unavailable; could not store the message")
            if isinstance(exc, NotDurable):  # a failover's refusal: WeChat's retry is a duplicate
                return _refusal(request, 503, f"the message was {NOT_REPLICATED}")
            log.exception("wechat: storing %s from %s failed", normalised.external_id, name)
            # Not "success": WeChat retries, and dedupe keeps one copy if it was stored.
            return web.Response(status=503, text="could not store the message; retry")
        return web.Response(text=SUCCESS)

    async def _forget(self, scope: str, timestamp: str, nonce: str) -> None:
        """Release a pair whose message was not stored, so that WeChat's retry is taken."""
        try:
            await self.adapter.replay.release(scope, timestamp, nonce)
        except Exception as exc:
            log.warning("wechat: %s: could not release a replay claim: %s", scope, exc)

    def _decrypt_oa(
        self, name: str, request: web.Request, body: bytes, timestamp: str, nonce: str
    ) -> str:
        crypto = self.adapter.oa_crypto.get(name)
        if crypto is None:
            raise Refused(
                400,
                "the callback is encrypted (safe or compatible mode) but the account is in "
                "plaintext mode: no aes_key is configured for it",
            )
        msg_signature = request.query.get("msg_signature", "")
        if not msg_signature:
            raise Refused(403, "msg_signature is missing")
        envelope = xml_fields(body)
        encrypt = envelope.get("Encrypt")
        if not isinstance(encrypt, str) or not encrypt:
            raise BadXML("encrypt_type=aes, but the body has no Encrypt element")
        token = self.adapter.accounts[name].token
        expected = check_signature(
            token, msg_signature, timestamp, nonce, encrypt, what="msg_signature"
        )
        try:
            # Our own check passed; wechatpy's repeats it with the value it computes.
            return crypto.decrypt_message(envelope, expected, timestamp, nonce)
        except InvalidAppIdException:
            raise Refused(403, "the message is encrypted for another AppID") from None
        except Exception as exc:
            raise Refused(400, f"cannot decrypt: {type(exc).__name__}") from None

    async def oa_media(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["account"]
        account = self.adapter.accounts.get(name)
        if account is None:
            return _refusal(request, 404, "unknown WeChat account")
        return await self._relay(request, name, account.api_base, self.adapter.oa_tokens(name))

    # WeCom 微信客服.

    async def kf_verify(self, request: web.Request) -> web.Response:
        corp = self.adapter.corps.get(request.match_info["corp"])
        if corp is None:
            return _refusal(request, 404, "unknown WeCom corp")
        crypto = self.adapter.kf_crypto[corp.key]
        try:
            expected, timestamp, nonce, echostr = self._signed(
                request, corp.token, "msg_signature", "echostr"
            )
            plain = crypto.check_signature(expected, timestamp, nonce, echostr)
        except Refused as refuse:
            return _refusal(request, refuse.status, refuse.reason)
        except Exception as exc:  # wrong corp id, bad padding, not base64
            return _refusal(request, 400, f"cannot decrypt echostr: {type(exc).__name__}")
        return web.Response(text=plain)

    async def kf_notice(self, request: web.Request) -> web.Response:
        corp = self.adapter.corps.get(request.match_info["corp"])
        if corp is None:
            return _refusal(request, 404, "unknown WeCom corp")
        crypto = self.adapter.kf_crypto[corp.key]
        scope = f"kf.{corp.key}"
        try:
            names = ("msg_signature", "timestamp", "nonce")
            signature, timestamp, nonce = (request.query.get(n, "") for n in names)
            if not (signature and timestamp and nonce):
                raise Refused(403, f"missing signature parameters: {', '.join(names)}")
            body = await self._body(request)
            envelope = xml_fields(body)
            encrypt = envelope.get("Encrypt")
            if not isinstance(encrypt, str) or not encrypt:
                raise BadXML("the body has no Encrypt element")
            # msg_signature covers the ciphertext, so it is checked once the body is read.
            expected = check_signature(
                corp.token, signature, timestamp, nonce, encrypt, what="msg_signature"
            )
            check_fresh(timestamp, nonce, time.time(), self.tolerance_s)
            try:
                inner = crypto.decrypt_message(envelope, expected, timestamp, nonce)
            except Exception as exc:
                raise Refused(400, f"cannot decrypt: {type(exc).__name__}") from None
            fields = xml_fields(inner)
            await self._take(scope, timestamp, nonce)
        except Refused as refuse:
            return _refusal(request, refuse.status, refuse.reason)
        except BadXML as exc:
            return _refusal(request, 400, str(exc))
        event = str(fields.get("Event") or "").lower()
        if event != "kf_msg_or_event":
            log.info("wechat kf: %s: ignoring event %r", corp.key, event)
            return web.Response(text=SUCCESS)
        open_kfid = str(fields.get("OpenKfId") or "")
        if not open_kfid:
            await self._forget(scope, timestamp, nonce)
            return _refusal(request, 400, "OpenKfId is missing")
        if corp.open_kfids and open_kfid not in corp.open_kfids:
            log.info("wechat kf: %s: %s is not one of ours; ignored", corp.key, open_kfid)
            return web.Response(text=SUCCESS)
        try:
            await self.adapter.kf_notice(corp.key, open_kfid, str(fields.get("Token") or ""))
        except Exception as exc:
            await self._forget(scope, timestamp, nonce)
            if redis_unavailable(exc):
                return _refusal(request, 503, "Redis is unavailable; could not record the notice")
            log.exception("wechat kf: recording a notice for %s failed", open_kfid)
            return web.Response(status=503, text="could not record the notice; retry")
        return web.Response(text=SUCCESS)

    async def kf_media(self, request: web.Request) -> web.StreamResponse:
        corp = self.adapter.corps.get(request.match_info["corp"])
        if corp is None:
            return _refusal(request, 404, "unknown WeCom corp")
        scope = f"kf/{corp.key}"
        return await self._relay(request, scope, corp.api_base, self.adapter.kf_tokens(corp.key))

    # Media relay.

    async def _relay(
        self, request: web.Request, scope: str, base: str, tokens: TokenCache
    ) -> web.StreamResponse:
        media_id = request.match_info["media_id"]
        if not self.adapter.media_link_ok(scope, media_id, request.query):
            return _refusal(request, 403, "bad or expired media link")
        try:
            data, ctype = await endpoints.get_media(
                self.adapter.api, tokens, base, media_id, MEDIA_RELAY_LIMIT
            )
        except WeChatError as exc:
            status = 404 if exc.errcode == 40007 else 502
            return _refusal(request, status, f"WeChat: {exc.errcode} {exc.errmsg}")
        except Exception as exc:
            return _refusal(request, 502, f"WeChat could not be reached: {type(exc).__name__}")
        if ctype.startswith("redirect:"):
            raise web.HTTPFound(ctype.removeprefix("redirect:"))
        headers = {
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "attachment",
            "ETag": hashlib.sha1(media_id.encode()).hexdigest(),
        }
        return web.Response(
            body=data, content_type=ctype or "application/octet-stream", headers=headers
        )
