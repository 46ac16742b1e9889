"""The ``[webchat]`` table, with its pre-chat form and upload limits.

Decoded strictly (unknown keys are errors) and checked once at start, so that a mistake in
the form or the allowed types is a config error rather than a surprise for the first visitor.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from adapters.webchat.limits import networks

Origin = Annotated[str, msgspec.Meta(pattern=r"^https?://[^/\s]+$")]
FieldName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
MimeType = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")]
FieldKind = Literal["name", "email", "phone", "text"]
PageLanguage = Literal["en", "zh"]
CloseReason = Annotated[str, msgspec.Meta(pattern=r"^(_unknown|[a-z][a-z0-9_]{0,63})$")]
Sentence = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
KINDS: tuple[str, ...] = ("name", "email", "phone", "text")

# Image types the upload check recognises by their first bytes (see uploads.sniff). Any
# other image type could be markup in disguise (SVG carries scripts), so it is refused.
SNIFFED_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")
DEFAULT_TYPES = ["image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain"]


class PrechatField(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One field of the pre-chat form.

    - ``name``: the key of the value (``prechat.<name>`` in the message metadata).
    - ``kind``: ``name`` (becomes the conversation's customer name; at most one field),
      ``email``, ``phone`` (their shapes are checked) or ``text``.
    - ``required``: the first message is refused without it.
    - ``label``: what the page shows; absent, the page's own words for the kind.
    - ``max_chars``: the longest value.
    """

    name: FieldName
    kind: FieldKind = "text"
    required: bool = False
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=80)] | None = None
    max_chars: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 200


def _field(entry: str | PrechatField) -> PrechatField:
    """A bare string is a field of that name; its kind is the name when that is a kind; only
    a name field is required (``prechat = ["name", "email"]``: a name, an optional email)."""
    if isinstance(entry, PrechatField):
        return entry
    kind = entry if entry in KINDS else "text"
    return PrechatField(name=entry, kind=kind, required=kind == "name")  # type: ignore[arg-type]


class UploadsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[webchat] uploads``: files a visitor may attach to a message.

    - ``max_bytes``: the largest file; 0 turns uploads off.
    - ``types``: the content types accepted (images are also checked by their first bytes).
    - ``ttl_s``: how long a file is kept; keep it at least ``[routing] closed_retention_s``
      so a conversation's files live as long as its messages.
    - ``per_minute``: uploads per visitor per minute (0: no limit).
    """

    max_bytes: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)] = 5_000_000
    types: list[MimeType] = msgspec.field(default_factory=lambda: list(DEFAULT_TYPES))
    ttl_s: Annotated[float, msgspec.Meta(ge=60)] = 30 * 86400.0
    per_minute: Annotated[int, msgspec.Meta(ge=0)] = 10

    def __post_init__(self) -> None:
        for kind in self.types:
            if kind.startswith("image/") and kind not in SNIFFED_IMAGES:
                allowed = ", ".join(SNIFFED_IMAGES)
                raise ValueError(f"uploads.types: {kind} cannot be checked; images: {allowed}")

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and bool(self.types)


class WebChatConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[webchat]`` table.

    - ``enabled``: serve the channel at all.
    - ``account``: the account name stored on every web chat message (one per gateway).
    - ``max_frame_bytes``: largest websocket frame a visitor may send; bigger closes with 1009.
    - ``max_text_chars``: longest message text, after trimming whitespace.
    - ``heartbeat_s``: websocket ping interval, so half-open connections are noticed (0: off).
    - ``visitor_ttl_s``: how long a visitor token stays valid after its last use.
    - ``allowed_origins``: browser origins (``https://shop.example.com``) whose pages may open
      the socket; empty allows any. The gateway's own page is always allowed, and clients
      that send no Origin header (not browsers, which could send any) are not checked.
    - ``hello_timeout_s``: a socket that has not sent ``hello`` by then is closed (4408).
      0 waits forever.
    - ``messages_per_minute``: per visitor, across their sockets and the gateway's processes
      (counted in Redis per minute), and per socket in bursts of up to 10; beyond it a
      message gets ``error {code: "rate_limited"}`` and is not stored. 0: no limit.
    - ``new_visitors_per_minute``: new visitors (a hello without a known token) per client
      address per minute, across processes; one more gets ``error {code: "rate_limited"}``
      and is closed (1008). 0: no limit.
    - ``trusted_proxies``: addresses or networks of proxies in front of the gateway whose
      ``X-Forwarded-For`` names the client; empty: the socket's peer is the client; absent:
      ``[server] trusted_proxies`` (one list for a gateway behind one load balancer).
    - ``max_sockets_per_visitor``: open tabs of one visitor on one gateway process; one more
      gets ``error {code: "too_many_connections"}`` and is closed (1008).
    - ``serve_page``: serve the try-it page at ``/webchat/`` and its files at
      ``/webchat/static/`` (the widget script ``chat.js`` can be embedded in other sites).
    - ``prechat``: the pre-chat form, field names or :class:`PrechatField` tables; empty:
      no form.
    - ``uploads``: see :class:`UploadsConfig`.
    - ``close_messages``: the sentence the page shows for a close reason, per language
      (``[webchat.close_messages.inactive] en = "..."``, ``zh = "..."``); reasons and
      languages not given keep the page's own sentences. ``_unknown`` is for a reason the
      page does not know.
    """

    enabled: bool = True
    account: str = "default"
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 16384
    max_text_chars: Annotated[int, msgspec.Meta(ge=1)] = 4000
    heartbeat_s: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    visitor_ttl_s: Annotated[float, msgspec.Meta(ge=60)] = 30 * 86400.0
    allowed_origins: list[Origin] = []
    hello_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    messages_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 30
    new_visitors_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 30
    trusted_proxies: list[str] | None = None
    max_sockets_per_visitor: Annotated[int, msgspec.Meta(ge=1)] = 8
    serve_page: bool = True
    prechat: list[FieldName | PrechatField] = []
    uploads: UploadsConfig = msgspec.field(default_factory=UploadsConfig)
    close_messages: dict[CloseReason, dict[PageLanguage, Sentence]] = {}

    def __post_init__(self) -> None:
        networks(self.trusted_proxies or [])  # a bad entry is a config error naming it
        fields = self.prechat_fields
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise ValueError("prechat: field names must be unique")
        if sum(f.kind == "name" for f in fields) > 1:
            raise ValueError("prechat: at most one field of kind name")

    @property
    def prechat_fields(self) -> list[PrechatField]:
        return [_field(entry) for entry in self.prechat]
