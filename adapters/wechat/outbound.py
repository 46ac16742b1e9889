"""Agents' replies out to WeChat: text, and the images (and, in 微信客服, files) they attach.

A reply becomes one API message per part (the text, then each attachment). Each part is
sent at most once: a Redis key per part goes "sending" (SET NX) -> "sent", is deleted when
WeChat definitely refused it (so a retry may send it), and stays "unknown" when WeChat did
not answer after the request left (a retry then refuses rather than risk a second copy).
The key is the agent's client_msg_id when the gateway passes it (``metadata``), else the
stored message id.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from adapters.contract import Attachment, DeliveryError, Outbound
from adapters.wechat import endpoints
from adapters.wechat.api import Api, OutcomeUnknown, Unreachable, WeChatError
from adapters.wechat.tokens import TokenCache, TokenUnavailable
from adapters.wechat.window import Windows

log = logging.getLogger("zhongtai.wechat")

SENT_TTL_S = 2 * 86400
SENDING, SENT, UNKNOWN = b"sending", b"sent", b"unknown"
IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
    (b"BM", "image/bmp", "bmp"),
)
# What an errcode means for the agent, beyond WeChat's terse errmsg.
HINTS = {
    45015: "the reply window is closed (48 hours after the customer's last message) or the "
    "customer unfollowed; WeChat takes replies again once the customer writes",
    45047: "the replies this window allows are used up; more once the customer writes again",
    45009: "the account's daily API quota is used up",
    48001: "the account has no permission for the customer-service message API",
    40003: "the openid does not belong to this account",
    95018: "the 微信客服 session is not one the API may answer (a WeCom servicer took it, or it "
    "ended); only sessions that are new or handled by the API can be answered",
    95016: "the 微信客服 session state does not allow this",
}
RETRYABLE = frozenset({-1, 45009})


@dataclass(frozen=True)
class Target:
    """Where a reply goes: an Official Account, or a 微信客服 account of a WeCom corp."""

    platform: Literal["oa", "kf"]
    base: str
    tokens: TokenCache
    open_kfid: str = ""


@dataclass(frozen=True)
class Part:
    kind: Literal["text", "image", "file"]
    text: str = ""
    attachment: Attachment | None = None


class Sender:
    def __init__(
        self,
        redis: Any,
        key: Callable[..., str],
        api: Api,
        windows: Windows,
        target: Callable[[str], Target | None],
        max_attachment_bytes: int,
    ) -> None:
        self.redis = redis
        self._key = key
        self.api = api
        self.windows = windows
        self._target = target
        self.max_attachment_bytes = max_attachment_bytes

    async def send(self, outbound: Outbound) -> None:
        target = self._target(outbound.account)
        if target is None:
            raise DeliveryError("unknown_account", f"no WeChat account {outbound.account!r}")
        parts = _parts(outbound, target)
        if not parts:
            raise DeliveryError("empty", "nothing to send")
        base = outbound.metadata.get("client_msg_id")
        base = f"{outbound.conversation_id}:{base}" if base else outbound.message_id
        keys = [self._key("sent", base, str(i)) for i in range(len(parts))]
        states = await self.redis.mget(keys)
        if any(state in (SENDING, UNKNOWN) for state in states):
            raise _outcome_unknown()
        todo = [i for i, state in enumerate(states) if state != SENT]
        if not todo:
            return  # every part went out before: nothing is sent twice
        reservation = await self.windows.reserve(outbound.account, outbound.customer.id, len(todo))
        used = 0
        try:
            for i in todo:
                if not await self.redis.set(keys[i], SENDING, nx=True, ex=SENT_TTL_S):
                    raise _outcome_unknown()
                try:
                    await self._send_part(target, outbound, parts[i])
                except OutcomeUnknown:
                    used += 1
                    await self.redis.set(keys[i], UNKNOWN, ex=SENT_TTL_S)
                    raise
                except BaseException:
                    await self.redis.delete(keys[i])
                    raise
                await self.redis.set(keys[i], SENT, ex=SENT_TTL_S)
                used += 1
        except OutcomeUnknown as exc:
            log.warning("wechat: no answer for %s: %s", outbound.message_id, exc)
            raise _outcome_unknown() from exc
        except WeChatError as exc:
            raise _refused(exc) from exc
        except Unreachable as exc:
            raise DeliveryError("unreachable", str(exc), retryable=True) from exc
        except TokenUnavailable as exc:
            raise DeliveryError("token_unavailable", str(exc), retryable=True) from exc
        finally:
            with contextlib.suppress(Exception):
                await self.windows.release(reservation, len(todo) - used)

    async def _send_part(self, target: Target, outbound: Outbound, part: Part) -> None:
        to = outbound.customer.id
        payload: dict[str, Any] = {"touser": to}
        if part.kind == "text":
            payload |= {"msgtype": "text", "text": {"content": part.text}}
        else:
            assert part.attachment is not None
            data, ctype, filename = await self._load(part.attachment, part.kind)
            media_id = await endpoints.upload_media(
                self.api, target.tokens, target.base, part.kind, data, filename, ctype
            )
            payload |= {"msgtype": part.kind, part.kind: {"media_id": media_id}}
        if target.platform == "oa":
            await endpoints.custom_send(self.api, target.tokens, target.base, payload)
        else:
            # A fresh msgid per attempt: our Redis key, not WeCom, keeps sends unique, and a
            # refused attempt must not block the next one with a used msgid.
            msgid = "zt" + secrets.token_hex(15)
            payload |= {"open_kfid": target.open_kfid, "msgid": msgid}
            await endpoints.kf_send_msg(self.api, target.tokens, target.base, payload)

    async def _load(self, attachment: Attachment, kind: str) -> tuple[bytes, str, str]:
        """The attachment's bytes, content type and a file name WeChat accepts."""
        source = attachment.url or ""
        limit = self.max_attachment_bytes
        try:
            if source.startswith("data:"):
                header, _, payload = source.partition(",")
                if ";base64" not in header:
                    raise ValueError("only base64 data: URLs are supported")
                data = base64.b64decode(payload, validate=True)
                ctype = header[5:].split(";")[0] or attachment.content_type
            elif source.startswith(("http://", "https://")):
                data, ctype = await self.api.download(source, limit)
            else:
                raise ValueError("it has no http(s) or data: URL the gateway can fetch")
        except (ValueError, binascii.Error) as exc:
            raise DeliveryError("bad_attachment", f"{attachment.name}: {exc}") from exc
        except WeChatError as exc:
            raise DeliveryError("bad_attachment", f"{attachment.name}: {exc.errmsg}") from exc
        except OSError as exc:
            detail = f"{attachment.name}: could not be fetched: {exc}"
            raise DeliveryError("bad_attachment", detail, retryable=True) from exc
        if len(data) > limit:
            raise DeliveryError("bad_attachment", f"{attachment.name}: larger than {limit} bytes")
        if kind == "image":
            for magic, image_type, ext in IMAGE_MAGIC:
                if data.startswith(magic):
                    stem = attachment.name.rsplit(".", 1)[0] or "image"
                    return data, image_type, f"{stem}.{ext}"
            raise DeliveryError(
                "unsupported_attachment",
                f"{attachment.name} is not a JPEG, PNG, GIF or BMP image",
            )
        return data, ctype or attachment.content_type, attachment.name or "file"


def _parts(outbound: Outbound, target: Target) -> list[Part]:
    """The API messages a reply becomes, checked before anything is sent."""
    parts: list[Part] = []
    if outbound.text.strip():
        parts.append(Part("text", text=outbound.text))
    for attachment in outbound.attachments:
        if attachment.content_type.startswith("image/"):
            parts.append(Part("image", attachment=attachment))
        elif target.platform == "kf":
            parts.append(Part("file", attachment=attachment))
        else:
            raise DeliveryError(
                "unsupported_attachment",
                f"WeChat customer-service messages carry text and images; {attachment.name} "
                f"({attachment.content_type}) cannot be sent",
            )
    return parts


def _outcome_unknown() -> DeliveryError:
    return DeliveryError(
        "outcome_unknown",
        "WeChat did not confirm an earlier attempt of this reply; it may have reached the "
        "customer, so it is not sent again. Send a new reply if it did not.",
    )


def _refused(exc: WeChatError) -> DeliveryError:
    code = str(exc.errcode) if exc.errcode >= -1 else f"http_{-exc.errcode}"
    detail = exc.errmsg or "refused"
    if hint := HINTS.get(exc.errcode):
        detail = f"{detail} ({hint})"
    return DeliveryError(code, detail, retryable=exc.errcode in RETRYABLE)
