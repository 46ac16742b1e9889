"""The WeChat channel: Official Account callbacks and WeCom customer service (see adapter.py
and docs/channels/wechat.md)."""

from adapters.wechat.adapter import WeChatAdapter
from adapters.wechat.config import WeChatConfig

__all__ = ["WeChatAdapter", "WeChatConfig"]
