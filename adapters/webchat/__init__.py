"""The web chat channel: a customer websocket and a page to try it (see adapter.py)."""

from adapters.webchat.adapter import WebChatAdapter, WebChatConfig

__all__ = ["WebChatAdapter", "WebChatConfig"]
