"""WeChat's XML, read safely: what WeChat never sends and XML attacks need (a DTD, entity
declarations) is refused before any parser that would expand it sees the document;
encodings are read with Python's codecs (expat takes neither GB2312 nor names it does not
know); fields WeChat sends as plain text are checked to be plain text. Every refusal is a
BadXML whose text is the reason for the 400, and never holds exception text.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from typing import Any


class BadXML(ValueError):
    """The body is not a WeChat XML document we accept; str() is the reason for the 400."""


class _Refused(Exception):
    pass


def _refuse_dtd(*_args: object) -> None:
    raise _Refused("a DTD is not allowed")


def _refuse_entity(*_args: object) -> None:
    raise _Refused("entity declarations are not allowed")


def check_xml(data: bytes | str) -> None:
    """Refuse what WeChat never sends and XML attacks need: a DTD, entity declarations, and
    anything that is not well-formed. expat reads the whole document here, before wechatpy
    or xmltodict see it, so no entity is ever expanded."""
    parser = xml.parsers.expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_entity  # type: ignore[assignment]
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise BadXML(str(exc)) from None
    except xml.parsers.expat.ExpatError as exc:
        raise BadXML(f"malformed XML: {exc}") from None


# XML declarations WeChat may send; what they name is read with Python's codecs, and the
# text handed on without the declaration, so expat and xmltodict only ever see UTF-8 (expat
# itself takes neither GB2312 nor names it does not know: a ValueError, a LookupError).
_DECLARATION = re.compile(r"\A\s*<\?xml\b[^>]*\?>")
_ENCODING = re.compile(r"""\bencoding\s*=\s*["']([^"']*)["']""")
_UTF8 = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_CHINESE = frozenset({"gb2312", "gbk", "gb18030", "cp936", "euc-cn"})  # gb18030 reads all
_BOMS = (b"\xff\xfe", b"\xfe\xff")

# Fields WeChat always sends as text, once. Child elements, attributes or a repeat there are
# not WeChat's, and would reach wechatpy as dicts or lists (an AttributeError, a 500).
TEXT_FIELDS = (
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "MsgId",
    "Event",
    "EventKey",
    "Content",
    "MediaId",
    "PicUrl",
    "Format",
    "Recognition",
    "ThumbMediaId",
    "Location_X",
    "Location_Y",
    "Scale",
    "Label",
    "Title",
    "Description",
    "Url",
    "Ticket",
    "FileKey",
    "FileMd5",
    "FileTotalLen",
    "Encrypt",
    "OpenKfId",
    "Token",
)


def _shown(name: str) -> str:
    return repr(re.sub(r"[^A-Za-z0-9._-]", "?", name)[:40])


def xml_text(data: bytes | str) -> str:
    """The document as text, without its XML declaration: UTF-8 (the default), or GB2312,
    GBK or GB18030 when the declaration says so. Anything else is a BadXML naming it."""
    if isinstance(data, bytes):
        if data.startswith(_BOMS):
            raise BadXML("the body must be UTF-8, not UTF-16")
        data = data.removeprefix(b"\xef\xbb\xbf")
        # The declaration is ASCII: found the same in latin-1 as in any codec we take.
        head = data[:256].decode("latin-1")
    else:
        head = data[:256]
    declaration = _DECLARATION.match(head)
    declared = "utf-8"
    if declaration and (found := _ENCODING.search(declaration.group())):
        declared = found.group(1)
    name = declared.strip().lower().replace("_", "-")
    if name in _UTF8:
        codec = "utf-8"
    elif name in _CHINESE:
        codec = "gb18030"
    else:
        raise BadXML(f"unsupported XML encoding {_shown(declared)}: send UTF-8")
    if isinstance(data, bytes):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            raise BadXML(f"the body is not valid {_shown(declared)}") from None
    else:
        text = data
    return text[declaration.end() :] if declaration else text


def xml_fields(data: bytes | str) -> dict[str, Any]:
    """The children of the <xml> root of a checked document, as xmltodict reads them, with
    every field of TEXT_FIELDS present checked to be text."""
    import xmltodict

    text = xml_text(data)
    check_xml(text.encode("utf-8"))
    try:
        root = xmltodict.parse(text)
    except Exception:  # xmltodict raises plain ValueErrors and expat errors
        raise BadXML("malformed XML") from None
    fields = root.get("xml") if isinstance(root, dict) else None
    if not isinstance(fields, dict):
        raise BadXML("the root element must be <xml> with child elements")
    for name in TEXT_FIELDS:
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            shape = "it appears more than once" if isinstance(value, list) else "it has children"
            raise BadXML(f"{name} must be plain text once ({shape} or attributes)")
    return fields
