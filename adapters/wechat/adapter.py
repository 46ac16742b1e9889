"""The WeChat channel: Official Accounts (公众号) and WeCom customer service (微信客服).

The pieces, each in its own module: config.py (the ``[wechat]`` table), callback.py (HTTP),
messages.py (XML and JSON to one normalised shape), tokens.py (access tokens shared through
Redis), api.py and endpoints.py (the HTTP calls), window.py (WeChat's reply windows),
outbound.py (replies, sent at most once), kf.py (pulling 微信客服 messages), profiles.py,
medialinks.py (the signed links agents open a customer's media by).
This module wires them and turns normalised messages into ``Inbound``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec
from aiohttp import web
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto

from adapters.contract import Adapter, AdapterHost, CsatMode, CustomerRef, Inbound, Outbound
from adapters.loops import Outage, repeat_forever
from adapters.wechat import callback, endpoints
from adapters.wechat.api import Api, WeChatError
from adapters.wechat.config import AccountConfig, KfConfig, WeChatConfig
from adapters.wechat.kf import KfPuller
from adapters.wechat.medialinks import MediaLinks
from adapters.wechat.messages import MediaUrl, Normalised, kf_normalise
from adapters.wechat.outbound import Sender, Target
from adapters.wechat.profiles import Profiles
from adapters.wechat.tokens import TokenCache
from adapters.wechat.verify import ReplayGuard
from adapters.wechat.window import Windows

log = logging.getLogger("zhongtai.wechat")

CHANNEL = "wechat"
KF_ORIGIN_CUSTOMER, KF_ORIGIN_SYSTEM = 3, 4


def kf_account(corp: str, open_kfid: str) -> str:
    """The account name of a 微信客服 account on conversations (and in routing rules)."""
    return f"kf:{corp}:{open_kfid}"


class WeChatAdapter(Adapter[WeChatConfig]):
    name: ClassVar[str] = CHANNEL
    csat: ClassVar[CsatMode | None] = "text"
    Config: ClassVar[type[msgspec.Struct]] = WeChatConfig

    def __init__(self, config: WeChatConfig, host: AdapterHost) -> None:
        super().__init__(config, host)
        self.accounts: dict[str, AccountConfig] = {a.name: a for a in config.accounts}
        self.corps: dict[str, KfConfig] = {k.key: k for k in config.kf}
        self.oa_crypto = {
            a.name: WeChatCrypto(a.token, a.aes_key, a.app_id) for a in config.accounts if a.aes_key
        }
        self.kf_crypto = {k.key: WeComCrypto(k.token, k.aes_key, k.corp_id) for k in config.kf}
        self.api = Api(
            timeout_s=config.request_timeout_s,
            attempts=config.retry_attempts,
            backoff_s=config.retry_backoff_s,
        )
        # Keys for media links, derived from each account's secret: every process agrees.
        secrets = [(a.name, a.app_secret) for a in config.accounts]
        self._media = MediaLinks(CHANNEL, secrets + [(f"kf/{k.key}", k.secret) for k in config.kf])
        self._tokens: dict[str, TokenCache] = {}
        self._windows: Windows | None = None
        self._sender: Sender | None = None
        self._kf: KfPuller | None = None
        self._profiles: Profiles | None = None
        self._replay: ReplayGuard | None = None
        self._closing = False

    # Lifecycle.

    def web_app(self) -> web.Application:
        return callback.build_app(self)

    async def start(self) -> None:
        redis, cfg = self.host.redis, self.config
        self._windows = Windows(
            redis,
            self._key,
            window_s=cfg.window_s,
            replies=cfg.replies_per_window,
            event_window_s=cfg.event_window_s,
            event_replies=cfg.replies_per_event,
            warning_s=cfg.window_warning_s,
        )
        self._sender = Sender(
            redis, self._key, self.api, self._windows, self._target, cfg.max_attachment_bytes
        )
        self._kf = KfPuller(redis, self._key, self._kf_sync, self._kf_item)
        self._profiles = Profiles(redis, self._key, cfg.profile_ttl_s)
        self._replay = ReplayGuard(redis, self._key, cfg.timestamp_tolerance_s)

    async def run(self) -> None:
        await asyncio.gather(self._window_loop(), self._kf_loop())

    async def ready(self) -> bool:
        return not self._closing and self._windows is not None

    async def aclose(self) -> None:
        self._closing = True
        if self._kf is not None:
            await self._kf.aclose()
        if self._profiles is not None:
            await self._profiles.aclose()
        await self.api.aclose()

    def _key(self, *parts: str) -> str:
        return self.host.key(CHANNEL, *parts)

    @property
    def windows(self) -> Windows:
        if self._windows is None:
            raise RuntimeError("the wechat adapter has not started")
        return self._windows

    @property
    def replay(self) -> ReplayGuard:
        if self._replay is None:
            raise RuntimeError("the wechat adapter has not started")
        return self._replay

    @property
    def profiles(self) -> Profiles:
        if self._profiles is None:
            raise RuntimeError("the wechat adapter has not started")
        return self._profiles

    # Access tokens, one cache per account (built on first use: Redis is bound at start).

    def oa_tokens(self, name: str) -> TokenCache:
        account = self.accounts[name]
        cache = self._tokens.get(name)
        if cache is None:
            cache = self._tokens[name] = TokenCache(
                self.host.redis,
                self._key("token", account.app_id),
                lambda force: endpoints.stable_token(
                    self.api, account.api_base, account.app_id, account.app_secret, force
                ),
                refresh_ahead_s=self.config.token_refresh_ahead_s,
            )
        return cache

    def kf_tokens(self, corp_key: str) -> TokenCache:
        corp = self.corps[corp_key]
        name = f"kf/{corp_key}"
        cache = self._tokens.get(name)
        if cache is None:
            # WeCom tokens belong to an app (its secret), not to the corp alone.
            app = hashlib.sha256(corp.secret.encode()).hexdigest()[:12]
            cache = self._tokens[name] = TokenCache(
                self.host.redis,
                self._key("token", f"wecom.{corp.corp_id}.{app}"),
                lambda force: endpoints.wecom_token(
                    self.api, corp.api_base, corp.corp_id, corp.secret
                ),
                refresh_ahead_s=self.config.token_refresh_ahead_s,
            )
        return cache

    # Inbound: Official Accounts.

    async def accept_oa(self, account: AccountConfig, n: Normalised) -> None:
        """Store one callback message; returns when it is in Redis (then WeChat may be told
        "success"). Safe to repeat: WeChat's retries make one message."""
        if n.event and n.event in self.config.ignore_events:
            return
        profile: dict[str, str] = {}
        if account.profile_lookup:
            profile = await self.profiles.cached(account.name, n.customer_id)
        inbound = self._inbound(account.name, n, profile)
        at_ms = int(n.sent_at.timestamp() * 1000)
        if n.grant == "revoke":
            await self._unsubscribed(account.name, inbound, at_ms)
            return
        result = await self.host.ingest(inbound)
        await self.windows.record(
            account.name, n.customer_id, result.conversation_id, n.grant, at_ms, result.duplicate
        )
        if account.profile_lookup and not profile:
            tokens, base, openid = self.oa_tokens(account.name), account.api_base, n.customer_id

            async def lookup() -> dict[str, str]:
                info = await endpoints.user_info(self.api, tokens, base, openid)
                return _profile(info, name_fields=("remark", "nickname"))

            self.profiles.refresh_later(account.name, n.customer_id, lookup)

    async def _unsubscribed(self, account: str, inbound: Inbound, at_ms: int) -> None:
        """Unfollowing ends the reply window and closes the customer's open conversation;
        with none open, nothing is started just to say so."""
        open_conversation = await self.host.open_conversation(CHANNEL, account, inbound.customer.id)
        if open_conversation is None:
            await self.windows.record(account, inbound.customer.id, "", "revoke", at_ms)
            return
        result = await self.host.ingest(inbound)
        await self.windows.record(
            account, inbound.customer.id, result.conversation_id, "revoke", at_ms
        )
        await self._close(result.conversation_id, "customer_unsubscribed")

    async def _close(self, conversation_id: str, reason: str) -> None:
        close = getattr(self.host, "close_conversation", None)
        if close is not None:
            try:
                await close(conversation_id, reason)
                return
            except Exception as exc:  # already closed meanwhile: nothing to do
                log.info("wechat: closing %s: %s", conversation_id, exc)
                return
        # A host without close_conversation: the agent holding it is told to close it.
        await self.host.tell_agent(
            conversation_id,
            "wechat_unsubscribed",
            "The customer unfollowed the account; WeChat delivers nothing to them any more. "
            "Close the conversation.",
        )

    def _inbound(self, account: str, n: Normalised, profile: Mapping[str, str]) -> Inbound:
        metadata = dict(n.metadata)
        if unionid := profile.get("unionid"):
            metadata["unionid"] = unionid
        return Inbound(
            channel=CHANNEL,
            account=account,
            external_id=n.external_id,
            customer=CustomerRef(id=n.customer_id, name=profile.get("name") or None),
            text=n.text,
            kind=n.kind,
            attachments=n.attachments,
            metadata=metadata,
            received_at=n.sent_at,
            reopen_within_s=self.config.reopen_within_s,
        )

    # Inbound: WeCom 微信客服.

    async def kf_notice(self, corp: str, open_kfid: str, sync_token: str) -> None:
        if self._kf is None:
            raise RuntimeError("the wechat adapter has not started")
        await self._kf.notice(corp, open_kfid, sync_token)

    async def _kf_sync(
        self, corp_key: str, open_kfid: str, cursor: str, sync_token: str
    ) -> dict[str, Any]:
        corp = self.corps.get(corp_key)
        if corp is None:
            # A corp removed from the config since the notice: nothing to pull any more.
            return {"msg_list": [], "has_more": 0}
        tokens = self.kf_tokens(corp_key)
        try:
            return await endpoints.kf_sync_msg(
                self.api, tokens, corp.api_base, open_kfid, cursor, sync_token
            )
        except WeChatError as exc:
            if not sync_token or exc.errcode != 95007:
                raise
            # The notice's token expired or was refused: pull without it (lower rate limit).
            return await endpoints.kf_sync_msg(
                self.api, tokens, corp.api_base, open_kfid, cursor, ""
            )

    async def _kf_item(self, corp_key: str, item: dict[str, Any]) -> None:
        corp = self.corps.get(corp_key)
        if corp is None:
            return
        try:
            origin = int(item.get("origin") or 0)
        except (TypeError, ValueError):
            origin = 0
        if origin not in (KF_ORIGIN_CUSTOMER, KF_ORIGIN_SYSTEM):
            return  # 5: written by a servicer in WeCom (or sent by us): not the customer's
        open_kfid = str(item.get("open_kfid") or "")
        account = kf_account(corp.key, open_kfid)
        n = kf_normalise(item, self.media_url_for(f"kf/{corp.key}"))
        if not n.customer_id or not n.external_id:
            log.info("wechat kf: skipping an entry without customer or msgid: %r", item)
            return
        if n.event in ("msg_send_fail", "session_status_change", "servicer_status_change"):
            await self._kf_system_event(account, n, item)
            return
        if n.event and n.event in self.config.ignore_events:
            return
        profile: dict[str, str] = {}
        if corp.profile_lookup:
            profile = await self.profiles.cached(account, n.customer_id)
        result = await self.host.ingest(self._inbound(account, n, profile))
        at_ms = int(n.sent_at.timestamp() * 1000)
        await self.windows.record(
            account, n.customer_id, result.conversation_id, n.grant, at_ms, result.duplicate
        )
        if corp.profile_lookup and not profile:
            tokens, base, customer = self.kf_tokens(corp.key), corp.api_base, n.customer_id

            async def lookup() -> dict[str, str]:
                info = await endpoints.kf_customer(self.api, tokens, base, customer)
                return _profile(info, name_fields=("nickname",))

            self.profiles.refresh_later(account, n.customer_id, lookup)

    async def _kf_system_event(self, account: str, n: Normalised, item: dict[str, Any]) -> None:
        """Events about our side of the session: told to the agent, not stored as messages."""
        event = item.get("event") if isinstance(item.get("event"), dict) else {}
        conversation = await self.host.open_conversation(CHANNEL, account, n.customer_id)
        if conversation is None:
            return
        if n.event == "msg_send_fail":
            detail = (
                f"WeChat could not deliver message {event.get('fail_msgid', '')} "
                f"(fail_type {event.get('fail_type', '?')})."
            )
            await self.host.tell_agent(conversation.id, "wechat_send_failed", detail)
        elif n.event == "session_status_change":
            change = str(event.get("change_type") or "")
            if change in ("1", "2"):
                detail = (
                    "A WeCom servicer took this 微信客服 session; replies from here are refused "
                    "(95018) until it is handed back or the customer starts a new session."
                )
                await self.host.tell_agent(conversation.id, "wechat_kf_session_taken", detail)
            elif change == "3":
                detail = "The 微信客服 session was ended in WeCom."
                await self.host.tell_agent(conversation.id, "wechat_kf_session_ended", detail)

    # Outbound.

    def _target(self, account: str) -> Target | None:
        if account.startswith("kf:"):
            _, corp_key, open_kfid = [*account.split(":", 2), "", ""][:3]
            corp = self.corps.get(corp_key)
            if corp is None or not open_kfid:
                return None
            return Target("kf", corp.api_base, self.kf_tokens(corp_key), open_kfid)
        oa = self.accounts.get(account)
        if oa is None:
            return None
        return Target("oa", oa.api_base, self.oa_tokens(account))

    async def send(self, outbound: Outbound) -> None:
        if self._sender is None:
            raise RuntimeError("the wechat adapter has not started")
        await self._sender.send(outbound)

    # Background work.

    async def _window_loop(self) -> None:
        await repeat_forever(
            Outage(log, "wechat: the window sweep"),
            self._sweep_windows,
            self.config.window_sweep_s,
        )

    async def _sweep_windows(self) -> None:
        for due in await self.windows.sweep():
            await self.host.tell_agent(due.conversation_id, due.code, due.detail)

    async def _kf_loop(self) -> None:
        if not self.corps or self._kf is None:
            return
        await repeat_forever(
            Outage(log, "wechat kf: the pending sweep"),
            self._kf.sweep,
            self.config.kf_sweep_s,
        )

    # Media links for agents: signed, expiring, relayed by callback.py.

    def media_url_for(self, scope: str) -> MediaUrl:
        return self._media.url_for(scope)

    def media_link_ok(self, scope: str, media_id: str, query: Mapping[str, str]) -> bool:
        return self._media.ok(scope, media_id, query)


def _profile(info: Mapping[str, Any], name_fields: tuple[str, ...]) -> dict[str, str]:
    profile = {"unionid": str(info.get("unionid") or "")}
    for name in name_fields:
        if value := str(info.get(name) or "").strip():
            profile["name"] = value
            break
    return profile
