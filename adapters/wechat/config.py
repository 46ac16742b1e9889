"""The ``[wechat]`` table: Official Accounts (``[[wechat.accounts]]``), WeCom customer-service
corps (``[[wechat.kf]]``) and the channel-wide settings.

Every Struct forbids unknown keys, so a typo is an error naming the key (the gateway's loader
turns msgspec's path into file, table and key). Checks that span entries (duplicate names)
live in ``WeChatConfig.__post_init__`` and name the entry in their message.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

# An account name is a URL path segment (/wechat/{name}) and part of routing keys, which use
# "|" and ":" as separators: letters, digits, "_", "." and "-" only.
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
# WeChat's rules for the callback Token: 3 to 32 letters or digits (WeCom: up to 32).
CallbackToken = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{3,32}$")]
# EncodingAESKey: 43 characters of base64 without the trailing "=".
AesKey = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{43}$")]
ApiBase = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
Count = Annotated[int, msgspec.Meta(ge=0)]

# How an Official Account's callbacks arrive (消息加解密方式): plaintext (明文模式), compatible
# (兼容模式: encrypted, with the plaintext fields alongside) or safe (安全模式: encrypted only).
Mode = Literal["plaintext", "compatible", "safe"]

# Names a callback path could not tell apart from the kf callback and media routes.
RESERVED_NAMES = frozenset({"kf", "media"})


class AccountConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One Official Account (公众号), served at ``/wechat/{name}``."""

    name: Name
    app_id: str
    app_secret: str
    token: CallbackToken
    # Absent: plaintext mode only; encrypted (safe or compatible mode) callbacks are refused.
    aes_key: AesKey | None = None
    # The mode set in the platform. Default: "safe" with an aes_key (plaintext callbacks are
    # refused: their body is signed by nothing), "plaintext" without. "compatible" is the
    # explicit opt-in to take both, for the switch from plaintext to safe mode.
    mode: Mode | None = None
    api_base: ApiBase = "https://api.weixin.qq.com"
    # Look up the follower's profile (user/info: unionid, the operator's remark) in the
    # background, and show the remark as the customer's name on later messages.
    profile_lookup: bool = False


class KfConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One WeCom corp whose WeChat customer-service (微信客服) accounts we answer, served at
    ``/wechat/kf/{name}``."""

    corp_id: Name
    secret: str  # the Secret of the WeCom app that holds the 微信客服 API permission
    token: CallbackToken
    aes_key: AesKey  # WeCom callbacks are always encrypted
    name: Name | None = None  # the callback path segment; default: corp_id
    # Customer-service accounts (open_kfid, "wk...") to pull from even without a callback
    # notice; accounts seen in notices are pulled anyway.
    open_kfids: list[str] = []
    api_base: ApiBase = "https://qyapi.weixin.qq.com"
    profile_lookup: bool = False

    @property
    def key(self) -> str:
        return self.name or self.corp_id


class WeChatConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[wechat]`` table. See docs/channels/wechat.md for every key."""

    enabled: bool = True
    accounts: list[AccountConfig] = []
    kf: list[KfConfig] = []
    # Callbacks whose signed timestamp is further than this from our clock get 403, and each
    # (timestamp, nonce) pair is taken once within the window (the signature never expires).
    timestamp_tolerance_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    # Callback bodies larger than this get 413 (WeChat's own are a few kilobytes).
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 65536
    # The reply window opened by a customer's message, and how many replies it allows.
    window_s: Annotated[float, msgspec.Meta(gt=0)] = 48 * 3600.0
    replies_per_window: Count = 5
    # The short window a menu click, a subscription or a QR scan opens (Official Accounts).
    event_window_s: Seconds = 60.0
    replies_per_event: Count = 3
    # Tell the agent this long before the window closes (0: no warning).
    window_warning_s: Seconds = 3600.0
    # How often each process looks for windows to warn about.
    window_sweep_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # Outbound HTTP: per-request timeout, attempts for network errors, first backoff step.
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    retry_attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    retry_backoff_s: Seconds = 0.5
    # Refresh an access token this long before it expires.
    token_refresh_ahead_s: Seconds = 300.0
    # Largest image an agent may attach (WeChat takes images up to 10 MB).
    max_attachment_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 10 * 1024 * 1024
    # How often each process looks for WeCom customer-service accounts waiting to be pulled.
    kf_sweep_s: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    # Events (WeChat's Event names, e.g. "VIEW", "LOCATION") that are acknowledged but not
    # shown to agents.
    ignore_events: list[str] = []
    # A message within this long after the customer's conversation closed reopens it.
    reopen_within_s: Seconds = 0.0
    # How long a looked-up customer profile is kept.
    profile_ttl_s: Seconds = 86400.0

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, account in enumerate(self.accounts):
            if account.name in RESERVED_NAMES:
                raise ValueError(f"accounts[{i}].name: {account.name!r} is reserved")
            if account.name in seen:
                raise ValueError(f"accounts[{i}].name: duplicate account name {account.name!r}")
            seen.add(account.name)
            if account.mode is None:
                account.mode = "safe" if account.aes_key else "plaintext"
            elif account.mode == "plaintext" and account.aes_key:
                raise ValueError(
                    f"accounts[{i}].mode: 'plaintext' takes no aes_key; remove it, or choose "
                    "'safe' or 'compatible'"
                )
            elif account.mode != "plaintext" and not account.aes_key:
                raise ValueError(f"accounts[{i}].mode: {account.mode!r} needs aes_key")
        corps: set[str] = set()
        for i, kf in enumerate(self.kf):
            if kf.key in corps:
                raise ValueError(f"kf[{i}].name: duplicate kf name {kf.key!r}")
            corps.add(kf.key)
        self.ignore_events = [e.lower() for e in self.ignore_events]
