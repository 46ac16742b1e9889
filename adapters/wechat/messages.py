"""What WeChat sends, made channel-neutral: the Official Account's XML messages (read
through safexml.py) and the WeCom customer-service JSON messages, in one normalised shape.

Everything here is pure (no I/O), so the callback and the kf puller share it and the tests
can check every kind without a server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from wechatpy.messages import BaseMessage
from wechatpy.parser import parse_message

from adapters.contract import Attachment
from adapters.wechat.safexml import BadXML, xml_fields, xml_text

# What a message does to the reply window (see window.py): a customer's message opens the
# 48-hour window, some events (menu click, follow, QR scan) a short one, unfollowing ends all.
Grant = Literal["message", "event", "none", "revoke"]

# Builds the gateway URL an agent can fetch a media file from: (media_id, file name) -> URL.
MediaUrl = Callable[[str, str], str]


@dataclasses.dataclass
class Normalised:
    customer_id: str
    external_id: str
    kind: str
    text: str
    sent_at: datetime
    grant: Grant
    attachments: list[Attachment] = dataclasses.field(default_factory=list)
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    event: str = ""  # the WeChat event name in lower case ("" for messages)


def parse_oa_message(data: bytes | str) -> BaseMessage:
    """A checked Official Account message, parsed by wechatpy."""
    fields = xml_fields(data)
    if not isinstance(fields.get("MsgType"), str):
        raise BadXML("MsgType is missing")
    if not isinstance(fields.get("FromUserName"), str):
        raise BadXML("FromUserName is missing")
    if fields["MsgType"].lower() == "event" and not isinstance(fields.get("Event"), str):
        raise BadXML("an event without Event")
    return parse_message(xml_text(data))


# Official Account messages.


def _s(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _when(create_time: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(create_time), UTC)
    except (ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def render_fields(fields: Mapping[str, Any], skip: frozenset[str] = frozenset()) -> str:
    """Fields as "Name: value" lines, for kinds we do not know: the agent sees what came."""
    lines = []
    for name, value in fields.items():
        if name in skip or value in (None, ""):
            continue
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


ENVELOPE = frozenset({"ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Encrypt"})
# wechatpy renames a subscription through a QR code "subscribe_scan" and strips "qrscene_".
EVENT_GRANTS = frozenset(
    {"click", "subscribe", "subscribe_scan", "scan", "scancode_push", "scancode_waitmsg"}
)
VOICE_TYPES = {"amr": "audio/amr", "speex": "audio/speex", "mp3": "audio/mpeg"}


def oa_normalise(message: BaseMessage, media_url: MediaUrl) -> Normalised:
    """One Official Account message or event, parsed by wechatpy, made channel-neutral."""
    fields: dict[str, Any] = message._data  # the raw fields wechatpy keeps
    openid = _s(fields, "FromUserName")
    created = _s(fields, "CreateTime")
    msg_type = _s(fields, "MsgType").lower()
    msg_id = _s(fields, "MsgId")
    if msg_type == "event":
        return _oa_event(fields, openid, created)
    external_id = msg_id or f"{openid}:{created}:{msg_type}"
    n = Normalised(
        customer_id=openid,
        external_id=external_id,
        kind=msg_type,
        text="",
        sent_at=_when(created),
        grant="message",
    )
    media_id = _s(fields, "MediaId")
    if media_id:
        n.metadata["media_id"] = media_id
    tag = msg_id or created
    if msg_type == "text":
        n.text = _s(fields, "Content")
    elif msg_type == "image":
        n.text = "[image]"
        url = _s(fields, "PicUrl") or (media_url(media_id, f"image-{tag}.jpg") if media_id else "")
        if url:
            n.attachments.append(
                Attachment(name=f"image-{tag}.jpg", content_type="image/jpeg", url=url)
            )
    elif msg_type == "voice":
        recognition = _s(fields, "Recognition").strip()
        n.text = f"[voice] {recognition}" if recognition else "[voice message]"
        if recognition:
            n.metadata["recognition"] = recognition
        fmt = _s(fields, "Format").lower() or "amr"
        name = f"voice-{tag}.{fmt}"
        if media_id:
            ctype = VOICE_TYPES.get(fmt, "application/octet-stream")
            n.attachments.append(
                Attachment(name=name, content_type=ctype, url=media_url(media_id, name))
            )
    elif msg_type in ("video", "shortvideo"):
        n.text = "[video]" if msg_type == "video" else "[short video]"
        name = f"{msg_type}-{tag}.mp4"
        if media_id:
            n.attachments.append(
                Attachment(name=name, content_type="video/mp4", url=media_url(media_id, name))
            )
        if thumb := _s(fields, "ThumbMediaId"):
            n.metadata["thumb_media_id"] = thumb
    elif msg_type == "location":
        lat, lng = _s(fields, "Location_X"), _s(fields, "Location_Y")
        label = _s(fields, "Label")
        n.text = " ".join(p for p in ("[location]", label, f"({lat}, {lng})") if p)
        n.metadata.update(latitude=lat, longitude=lng, scale=_s(fields, "Scale"), label=label)
    elif msg_type == "link":
        title, url = _s(fields, "Title"), _s(fields, "Url")
        parts = [f"[link] {title}", _s(fields, "Description"), url]
        n.text = "\n".join(p for p in parts if p)
        n.metadata["url"] = url
    elif msg_type == "file":
        title, size = _s(fields, "Title"), _s(fields, "FileTotalLen")
        n.text = f"[file] {title}" + (f" ({size} bytes)" if size else "")
        if description := _s(fields, "Description"):
            n.text += f"\n{description}"
        n.metadata.update(file_key=_s(fields, "FileKey"), file_md5=_s(fields, "FileMd5"))
    else:
        n.kind = f"unknown:{_s(fields, 'MsgType')}"
        body = render_fields(fields, ENVELOPE)
        n.text = f"[a WeChat message of a kind we do not know: {_s(fields, 'MsgType')}]"
        n.text += f"\n{body}" if body else ""
    return n


def _oa_event(fields: Mapping[str, Any], openid: str, created: str) -> Normalised:
    name = _s(fields, "Event")
    event = name.lower()
    key = _s(fields, "EventKey")
    n = Normalised(
        customer_id=openid,
        # WeChat's advice: events have no MsgId; FromUserName + CreateTime identify one.
        external_id=f"{openid}:{created}:{event}",
        kind=f"event.{event}",
        text="",
        sent_at=_when(created),
        grant="event" if event in EVENT_GRANTS else "none",
        event=event,
    )
    if key:
        n.metadata["event_key"] = key
    if event in ("subscribe", "subscribe_scan"):
        n.kind, n.event = "event.subscribe", "subscribe"
        scene = key.removeprefix("qrscene_") if event == "subscribe_scan" else ""
        if scene:
            n.metadata["scene"] = scene
            n.metadata["ticket"] = _s(fields, "Ticket")
            n.text = f"[followed the account by scanning a QR code, scene {scene}]"
        else:
            n.text = "[followed the account]"
    elif event == "unsubscribe":
        n.text = "[unfollowed the account]"
        n.grant = "revoke"
    elif event == "scan":
        n.metadata["scene"] = key
        n.metadata["ticket"] = _s(fields, "Ticket")
        n.text = f"[scanned a QR code, scene {key}]"
    elif event == "click":
        n.text = f"[menu click: {key}]"
    elif event == "view":
        n.text = f"[opened a menu link: {key}]"
    else:
        n.kind = f"unknown:event.{name}"
        body = render_fields(fields, ENVELOPE | {"Event"})
        n.text = f"[a WeChat event of a kind we do not know: {name}]"
        n.text += f"\n{body}" if body else ""
    return n


# WeCom customer-service (kf) messages, from sync_msg.


def _obj(item: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = item.get(name)
    return value if isinstance(value, dict) else {}


def kf_normalise(item: Mapping[str, Any], media_url: MediaUrl) -> Normalised:
    """One entry of sync_msg's msg_list sent by the customer (origin 3) or the system
    (origin 4), made channel-neutral like the Official Account's."""
    msg_type = str(item.get("msgtype") or "")
    customer = str(item.get("external_userid") or "")
    msgid = str(item.get("msgid") or "")
    try:
        sent_at = datetime.fromtimestamp(int(item.get("send_time") or 0), UTC)
    except (ValueError, OverflowError, OSError):
        sent_at = datetime.now(UTC)
    n = Normalised(
        customer_id=customer,
        external_id=msgid,
        kind=msg_type,
        text="",
        sent_at=sent_at,
        grant="message",
    )
    body = _obj(item, msg_type)
    media_id = str(body.get("media_id") or "")
    if media_id:
        n.metadata["media_id"] = media_id
    if msg_type == "text":
        n.text = str(body.get("content") or "")
        if menu_id := body.get("menu_id"):
            n.metadata["menu_id"] = str(menu_id)
    elif msg_type in ("image", "voice", "video", "file"):
        labels = {
            "image": "[image]",
            "voice": "[voice message]",
            "video": "[video]",
            "file": "[file]",
        }
        n.text = labels[msg_type]
        ext = {"image": "jpg", "voice": "amr", "video": "mp4", "file": "bin"}[msg_type]
        types = {"image": "image/jpeg", "voice": "audio/amr", "video": "video/mp4"}
        name = f"{msg_type}-{msgid[-12:] or 'file'}.{ext}"
        if media_id:
            n.attachments.append(
                Attachment(
                    name=name,
                    content_type=types.get(msg_type, "application/octet-stream"),
                    url=media_url(media_id, name),
                )
            )
    elif msg_type == "location":
        lat, lng = str(body.get("latitude", "")), str(body.get("longitude", ""))
        label = " ".join(str(body.get(k) or "") for k in ("name", "address")).strip()
        n.text = " ".join(p for p in ("[location]", label, f"({lat}, {lng})") if p)
        n.metadata.update(latitude=lat, longitude=lng, label=label)
    elif msg_type == "link":
        parts = [
            f"[link] {body.get('title') or ''}",
            str(body.get("desc") or ""),
            str(body.get("url") or ""),
        ]
        n.text = "\n".join(p for p in parts if p.strip())
        n.metadata["url"] = str(body.get("url") or "")
    elif msg_type == "miniprogram":
        n.text = f"[mini program] {body.get('title') or ''} ({body.get('pagepath') or ''})"
    elif msg_type == "business_card":
        n.text = f"[business card] {body.get('userid') or ''}"
    elif msg_type == "event":
        return _kf_event(n, body)
    else:
        n.kind = f"unknown:{msg_type}"
        n.text = f"[a WeChat message of a kind we do not know: {msg_type}]"
        if body:
            n.text += "\n" + render_fields(body)
    return n


def _kf_event(n: Normalised, body: Mapping[str, Any]) -> Normalised:
    event = str(body.get("event_type") or "")
    n.event = event
    n.kind = f"event.{event}"
    n.grant = "none"  # in 微信客服 only the customer's own messages open the reply window
    n.customer_id = str(body.get("external_userid") or n.customer_id)
    if event == "enter_session":
        scene = str(body.get("scene") or "")
        n.text = "[opened the chat]" + (f" scene {scene}" if scene else "")
        if scene:
            n.metadata["scene"] = scene
        if scene_param := body.get("scene_param"):
            n.metadata["scene_param"] = str(scene_param)
    elif event == "user_recall_msg":
        n.text = "[recalled a message]"
        n.metadata["recall_msgid"] = str(body.get("recall_msgid") or "")
    else:
        n.kind = f"unknown:event.{event}"
        n.text = f"[a WeChat customer-service event of a kind we do not know: {event}]"
        rendered = render_fields(body, frozenset({"event_type"}))
        n.text += f"\n{rendered}" if rendered else ""
    return n
