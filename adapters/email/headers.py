"""Reading what mail clients actually send: charsets, RFC 2047 encoded words, raw 8-bit
headers, addresses and Message-IDs.

The standard library decodes the well-formed cases; the cases here are the ones our users'
mail is full of: "gb2312" that is really GBK, encoded words split in the middle of a
two-byte character, headers in raw GBK bytes with no encoding at all, "big5" from Windows
(cp950). Every function returns what it could read, and says what it could not.
"""

from __future__ import annotations

import binascii
import codecs
import re
from email.message import Message
from email.utils import getaddresses

from adapters.email.config import is_address

# Labels mail clients write, mapped to the codecs that actually decode their mail. GB18030
# is a superset of GBK, itself a superset of GB2312: mail labelled gb2312 routinely holds
# GBK-only characters (and Outlook labels GBK as gb2312). cp950 is Big5 as Windows writes it;
# big5hkscs adds the Hong Kong characters.
_ALIASES: dict[str, tuple[str, ...]] = {
    "gb2312": ("gb18030",),
    "gb_2312-80": ("gb18030",),
    "euc-cn": ("gb18030",),
    "euccn": ("gb18030",),
    "x-euc-cn": ("gb18030",),
    "gbk": ("gb18030",),
    "x-gbk": ("gb18030",),
    "cp936": ("gb18030",),
    "ms936": ("gb18030",),
    "windows-936": ("gb18030",),
    "gb18030": ("gb18030",),
    "big5": ("cp950", "big5hkscs"),
    "x-x-big5": ("cp950", "big5hkscs"),
    "big-5": ("cp950", "big5hkscs"),
    "cn-big5": ("cp950", "big5hkscs"),
    "cp950": ("cp950", "big5hkscs"),
    "big5-hkscs": ("big5hkscs", "cp950"),
    "ks_c_5601-1987": ("cp949",),
    "us-ascii": ("ascii",),
    "ascii": ("ascii",),
    # Mail labelled Latin-1 is, in practice, Windows-1252 (curly quotes in 0x80-0x9f).
    "iso-8859-1": ("cp1252", "latin-1"),
    "latin1": ("cp1252", "latin-1"),
    "windows-1252": ("cp1252", "latin-1"),
    "utf8": ("utf-8",),
    "unicode-1-1-utf-7": ("utf-7",),
}

# Tried, in order, when the label is missing, unknown or wrong. Most of our users' mail
# that is not UTF-8 is GBK/GB18030; Big5 comes next. latin-1 never fails, so it ends the list.
FALLBACKS: tuple[str, ...] = ("utf-8", "gb18030", "cp950", "cp1252", "latin-1")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FOLD = re.compile(r"\r?\n[ \t]+")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_MSGID = re.compile(r"<([^<>\s]+)>")
_BARE_MSGID = re.compile(r"^[^<>\s@]+@[^<>\s@]+$")
MAX_MSGID_CHARS = 250


def codecs_for(label: str | None) -> list[str]:
    """The codecs to try for a charset label, best first; [] for a label Python does not know
    and we have no alias for."""
    if not label:
        return []
    label = label.strip().strip('"').lower().split("*", 1)[0]
    if label in _ALIASES:
        return list(_ALIASES[label])
    try:
        return [codecs.lookup(label).name]
    except (LookupError, ValueError):
        return []


def decode_bytes(data: bytes, label: str | None, what: str) -> tuple[str, str | None]:
    """Decode data labelled with charset label; returns the text and a note when some of it
    could not be read (or the label was unknown).

    Candidates are tried strictly, the label's codecs first (UTF-8 first for single-byte
    labels: strict UTF-8 almost never reads text that is not UTF-8, and "iso-8859-1" mail
    often is UTF-8). Only if none reads every byte is the label's codec (or UTF-8) used with
    replacement characters: a few \ufffd in GBK text read better than a page of mojibake.
    """
    if not data:
        return "", None
    labelled = codecs_for(label)
    note = None
    if label and not labelled:
        note = f"{what}: unknown charset {clean(label)[:40]!r}"
    if not labelled or labelled == ["ascii"]:
        candidates = list(FALLBACKS)
    elif _single_byte(labelled[0]):
        candidates = ["utf-8", *labelled]
    else:
        candidates = list(dict.fromkeys([*labelled, "utf-8", "gb18030", "cp950"]))
    if data.isascii() and labelled[:1] != ["utf-7"]:
        return data.decode("ascii"), note
    for codec in candidates:
        try:
            return data.decode(codec), note
        except (UnicodeDecodeError, LookupError):
            continue
    codec = labelled[0] if labelled else "utf-8"
    text = data.decode(codec, errors="replace")
    return text, f"{what}: some bytes are not valid {codec} and are shown as \ufffd"


def _single_byte(codec: str) -> bool:
    try:
        return len(bytes(range(0x80, 0x100)).decode(codec, errors="replace")) == 0x80
    except LookupError:
        return False


def clean(text: str) -> str:
    """One line of header text: no line breaks, no control characters."""
    text = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub("", text).strip()


def _b64(data: str) -> bytes:
    # Lenient: mail in the wild drops padding and slips in stray characters.
    data = re.sub(r"[^A-Za-z0-9+/]", "", data)
    if len(data) % 4 == 1:
        data = data[:-1]
    return binascii.a2b_base64(data + "=" * (-len(data) % 4))


def _raw_bytes(text: str) -> bytes:
    """A header value parsed from bytes keeps 8-bit bytes as surrogate escapes: get them back."""
    return text.encode("utf-8", errors="surrogateescape")


def decode_header(raw: str | None, fallback: str | None = None) -> tuple[str, list[str]]:
    """A header value as text: unfolded, RFC 2047 words decoded, raw 8-bit bytes decoded by
    guess (fallback: the message's own charset, tried first). Returns (text, notes)."""
    if not raw:
        return "", []
    raw = _FOLD.sub(" ", raw)
    notes: list[str] = []
    out: list[str] = []
    # Adjacent encoded words in one charset are joined before decoding: encoders split
    # GB2312 and UTF-8 text between bytes of one character.
    pending: list[bytes] = []
    pending_charset: str | None = None

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            text, note = decode_bytes(b"".join(pending), pending_charset, "a header")
            out.append(text)
            if note:
                notes.append(note)
        pending, pending_charset = [], None

    def plain(segment: str) -> None:
        if not segment:
            return
        flush()
        data = _raw_bytes(segment)
        if data.isascii():
            out.append(segment)
            return
        text, note = decode_bytes(data, fallback, "a header")
        out.append(text)
        if note:
            notes.append(note)

    position = 0
    after_word = False
    for match in _ENCODED_WORD.finditer(raw):
        gap = raw[position : match.start()]
        # Whitespace between two encoded words is not part of the text (RFC 2047 6.2).
        if not (after_word and gap.strip() == ""):
            plain(gap)
        position, after_word = match.end(), True
        charset, encoding, payload = match.groups()
        charset = charset.split("*", 1)[0].lower()
        try:
            if encoding in "bB":
                data = _b64(payload)
            else:
                data = binascii.a2b_qp(payload.encode("ascii", "surrogateescape"), header=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            plain(match.group(0))
            notes.append("a header: an encoded word is damaged and shown as sent")
            after_word = False
            continue
        if pending and charset != pending_charset:
            flush()
        pending.append(data)
        pending_charset = charset
    plain(raw[position:])
    flush()
    return clean("".join(out)), notes


def raw_header(msg: Message, name: str) -> str | None:
    """The first header of that name as it was sent (no policy parsing, which can raise on
    malformed values), or None."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


def raw_headers(msg: Message, name: str) -> list[str]:
    wanted = name.lower()
    return [str(value) for key, value in msg.raw_items() if key.lower() == wanted]


def parse_addresses(raw: str | None, fallback: str | None = None) -> list[tuple[str, str]]:
    """(display name, lowercased address) pairs of an address header; names decoded, entries
    that are not addresses dropped."""
    if not raw:
        return []
    unfolded = _FOLD.sub(" ", raw).replace("\r", " ").replace("\n", " ")
    found: list[tuple[str, str]] = []
    for name, address in getaddresses([unfolded]):
        address = clean(address).lower()
        if not is_address(address):
            continue
        decoded, _ = decode_header(name, fallback) if name else ("", [])
        found.append((decoded.strip().strip('"').strip(), address))
    return found


def message_ids(raw: str | None) -> list[str]:
    """Every <id> in a Message-ID, In-Reply-To or References header, in order; a bare
    local@domain (clients that drop the brackets) counts too."""
    if not raw:
        return []
    raw = _FOLD.sub(" ", raw)
    ids = [f"<{m}>" for m in _MSGID.findall(raw) if len(m) <= MAX_MSGID_CHARS]
    if not ids:
        bare = raw.strip()
        if _BARE_MSGID.match(bare) and len(bare) <= MAX_MSGID_CHARS:
            ids = [f"<{bare}>"]
    return ids
