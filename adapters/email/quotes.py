"""Folding quoted history away from what the agent sees.

A reply repeats the whole thread below (or above) the new text. The agent already has the
thread as the conversation's messages, so the message shows only what is new; the full body
is kept (see store.py). The markers here are the ones real clients write: Gmail's "On ...
wrote:" (and its Chinese "于...写道："), Outlook's "-----Original Message-----" and its
From/Sent/To header block, QQ Mail's "------------------ 原始邮件 ------------------",
"> " quoting. A forward is never folded: what was forwarded is the point of the mail.
"""

from __future__ import annotations

import re

_SEPARATOR = re.compile(
    r"^\s*[-_=]{2,}\s*(original message|原始邮件|原始郵件|原邮件|reply message|"
    r"ursprüngliche nachricht|message d'origine|mensaje original)\s*[-_=]{2,}\s*$",
    re.IGNORECASE,
)
_FORWARD_MARKER = re.compile(
    r"^\s*[-_=]{2,}\s*(forwarded message|转发的邮件|轉寄的郵件|转发邮件|begin forwarded message"
    r"|weitergeleitete nachricht)\s*[-_=:]*\s*$|^\s*begin forwarded message:?\s*$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^\s*_{20,}\s*$")
_HEADER_FROM = re.compile(r"^\s*\*?\s*(from|发件人|發件人|寄件者|von|de)\s*\*?\s*[:：]", re.I)
_HEADER_OTHER = re.compile(
    r"^\s*\*?\s*(sent|date|to|subject|cc|发送时间|時間|时间|日期|寄件日期|收件人|主题|主旨|"
    r"gesendet|an|betreff|envoyé|objet|à)\s*\*?\s*[:：]",
    re.IGNORECASE,
)
_WROTE = re.compile(
    r"(wrote|写道|寫道|a écrit|schrieb|escribió|ha scritto|написал\w*)\s*[:：]?\s*$", re.I
)
_ON = re.compile(r"^\s*(on|在|于|於|le|am|el|il)\b|\d{4}|于\d|於\d", re.IGNORECASE)
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|fw|转发|轉寄|转寄|wg|tr)\s*[:：]", re.IGNORECASE)


def is_forward(subject: str, text: str) -> bool:
    if _FORWARD_SUBJECT.match(subject):
        return True
    first = next((line for line in text.splitlines() if line.strip()), "")
    return bool(_FORWARD_MARKER.match(first))


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution(lines: list[str], i: int) -> int:
    """How many lines (1 or 2) starting at i form an "On ... wrote:" attribution; 0 if none.
    Gmail wraps long ones over two lines."""
    line = lines[i].strip()
    if not line or _quoted(line):
        return 0
    if _WROTE.search(line) and (_ON.search(line) or "@" in line):
        return 1
    if i + 1 < len(lines):
        joined = f"{line} {lines[i + 1].strip()}"
        if _WROTE.search(joined) and _ON.search(line) and not _quoted(lines[i + 1]):
            return 2
    return 0


def _header_block(lines: list[str], i: int) -> bool:
    """A From: line followed closely by Sent:/To:/Subject: lines: Outlook's plain-text reply
    header (or its Chinese one, 发件人/发送时间/收件人/主题)."""
    if not _HEADER_FROM.match(lines[i]):
        return False
    following = [line for line in lines[i + 1 : i + 6] if line.strip()]
    return sum(bool(_HEADER_OTHER.match(line)) for line in following[:4]) >= 2


def _history_start(lines: list[str]) -> int | None:
    """The index of the first line of quoted history, or None."""
    for i, line in enumerate(lines):
        if _SEPARATOR.match(line):
            return i
        if _UNDERSCORES.match(line) and any(_HEADER_FROM.match(x) for x in lines[i + 1 : i + 3]):
            return i
        if _header_block(lines, i):
            return i
        span = _attribution(lines, i)
        if span:
            rest = [x for x in lines[i + span : i + span + 3] if x.strip()]
            if rest and _quoted(rest[0]):
                return i
    return None


_RULE = re.compile(r"^\s*([-_=*]\s*){3,}$")


def _trim(lines: list[str]) -> list[str]:
    """Without blank lines at either end, nor a separator line (an <hr>) left at the end."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and (not lines[end - 1].strip() or _RULE.match(lines[end - 1])):
        end -= 1
    return lines[start:end]


def fold_quotes(text: str, subject: str = "") -> tuple[str, bool]:
    """(what is new in the mail, whether anything was folded). Never returns an empty text for
    a non-empty mail: if everything looks quoted, the whole text is shown."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if is_forward(subject, text):
        return "\n".join(_trim(lines)), False
    visible = lines
    cut = _history_start(lines)
    if cut is not None:
        visible = lines[:cut]
    visible = _trim(visible)
    # A trailing block of "> " lines (with no marker before it) is history too.
    end = len(visible)
    while end and (_quoted(visible[end - 1]) or not visible[end - 1].strip()):
        end -= 1
    visible = visible[:end]
    # Bottom-posting: the attribution and the quote come first, the new text after.
    if not _trim(visible) and cut is not None:
        tail = lines[cut:]
        start = 0
        start += _attribution(tail, 0) if tail else 0
        while start < len(tail) and (_quoted(tail[start]) or not tail[start].strip()):
            start += 1
        visible = tail[start:] if start < len(tail) and start > 0 else []
        # What follows the quote may end in another history marker.
        further = _history_start(visible) if visible else None
        if further is not None:
            visible = visible[:further]
    elif visible and _quoted(visible[0]):
        start = 0
        while start < len(visible) and (_quoted(visible[start]) or not visible[start].strip()):
            start += 1
        if start < len(visible):
            visible = visible[start:]
    visible = _trim(visible)
    original = _trim(lines)
    if not visible:
        return "\n".join(original), False
    return "\n".join(visible), len(visible) < len(original)
