"""Reading one MIME part without ever raising: its type, disposition, charset, file name
and payload, each falling back to a safe default when the mail lies or is damaged, and the
walk over a mail's parts, bounded in count and depth so a hostile mail cannot exhaust us."""

from __future__ import annotations

import mimetypes
import re
from email.message import Message

from adapters.email.headers import clean, decode_header, raw_header

MAX_PARTS = 200
MAX_DEPTH = 20


def message_charset(msg: Message) -> str | None:
    """The first charset the mail declares anywhere: the best guess for raw 8-bit headers."""
    for part in walk(msg, 0):
        try:
            charset = part.get_content_charset()
        except Exception:
            continue
        if charset and charset not in ("us-ascii", "ascii"):
            return charset
    return None


def walk(msg: Message, depth: int) -> list[Message]:
    found: list[Message] = []
    stack = [(msg, depth)]
    while stack and len(found) < MAX_PARTS:
        part, level = stack.pop()
        found.append(part)
        if level < MAX_DEPTH and part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend((p, level + 1) for p in reversed(payload) if isinstance(p, Message))
    return found


def filename(part: Message, index: int, charset: str | None) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is None or "\ufffd" in name:
        # Raw 8-bit names (GBK bytes, unencoded) come out of the policy as U+FFFD: read the
        # parameter from the raw header and guess its charset like a header's.
        for header in ("content-disposition", "content-type"):
            raw = raw_header(part, header) or ""
            match = re.search(r'(?:file)?name\s*=\s*("([^"]*)"|[^;\s]+)', raw, re.IGNORECASE)
            if match:
                value = match.group(2) if match.group(2) is not None else match.group(1)
                name, _ = decode_header(value, charset)
                break
    elif "=?" in name:
        name, _ = decode_header(name, charset)
    name = clean(name or "")
    name = re.split(r"[\\/]", name)[-1].strip(" .")[:200]
    if not name:
        try:
            content_type = part.get_content_type()
        except Exception:
            content_type = "application/octet-stream"
        extension = mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment-{index}{extension}"
    return name


def payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", errors="surrogateescape")
    return b""


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def named(part: Message) -> bool:
    try:
        return (
            part.get_param("name") is not None
            or part.get_param("filename", header="content-disposition") is not None
        )
    except Exception:
        return False


def charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None
