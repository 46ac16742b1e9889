"""HTML mail turned into text an agent can read: paragraphs and line breaks kept, lists as
"- " lines, links with their address, quoted replies (blockquote, Gmail's and Outlook's
quote containers) as "> " lines so that quote folding sees them, scripts and styles dropped.

The standard library's HTMLParser is forgiving: unclosed tags and stray brackets in broken
mail produce text, never an exception.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = {
    "address", "article", "aside", "div", "dl", "dt", "dd", "fieldset", "figure", "footer",
    "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "main", "nav", "ol", "p", "pre",
    "section", "table", "tbody", "thead", "tfoot", "tr", "ul", "center",
}  # fmt: skip
_SKIP = {"script", "style", "head", "title", "template", "noscript", "xml", "object"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "wbr", "area", "base", "col", "source"}
_SPACES = re.compile(r"[ \t\r\n\f\u00a0\u200b]+")
# Containers mail clients put quoted history in (besides <blockquote>): Gmail's quote div,
# Yahoo's, Apple Mail's. (Outlook's divRplyFwdMsg holds only the From/Sent/To header, with
# the quoted mail after it: quote folding finds that header block in the text.)
_QUOTE_MARKERS = ("gmail_quote", "yahoo_quoted", "applemailquote")


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0
        self.quote_depth = 0
        self.pre_depth = 0
        # Stack of (tag, opened a quote) to close quote containers that are divs.
        self.stack: list[tuple[str, bool]] = []
        self.list_depth = 0
        self.href: str | None = None
        self.link_text: list[str] = []

    # Text assembly.

    def _emit(self, text: str) -> None:
        if self.href is not None:
            self.link_text.append(text)
        self.current.append(text)

    def _break(self, blank: bool = False) -> None:
        line = "".join(self.current)
        if self.pre_depth == 0:
            line = _SPACES.sub(" ", line).strip()
        self.current = []
        prefix = "> " * self.quote_depth
        if line:
            self.lines.append(prefix + line)
        if blank and self.lines and self.lines[-1].strip("> ") != "":
            self.lines.append(prefix.rstrip())

    # Parser callbacks.

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        attributes = {k.lower(): (v or "") for k, v in attrs}
        if tag == "br":
            self._break()
            return
        if tag == "hr":
            self._break()
            self.lines.append("> " * self.quote_depth + "---")
            return
        if tag == "img":
            alt = attributes.get("alt", "").strip()
            if alt:
                self._emit(f"[{alt}]")
            return
        if tag in _VOID:
            return
        marker = " ".join([attributes.get("class", ""), attributes.get("id", "")]).lower()
        opens_quote = tag == "blockquote" or any(m in marker for m in _QUOTE_MARKERS)
        if tag in _BLOCK or tag in ("blockquote", "li") or opens_quote:
            self._break(blank=tag in ("p", "blockquote", "table") or opens_quote)
        if opens_quote:
            self.quote_depth += 1
        self.stack.append((tag, opens_quote))
        if tag == "pre":
            self.pre_depth += 1
        elif tag in ("ul", "ol"):
            self.list_depth += 1
        elif tag == "li":
            self._emit("  " * max(0, self.list_depth - 1) + "- ")
        elif tag in ("td", "th"):
            self._emit(" ")
        elif tag == "a":
            self.href = attributes.get("href", "").strip()
            self.link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth or tag in _VOID:
            return
        # Close up to the matching open tag: broken mail leaves tags open.
        if not any(open_tag == tag for open_tag, _ in self.stack):
            return
        while self.stack:
            open_tag, opened_quote = self.stack.pop()
            self._close(open_tag, opened_quote)
            if open_tag == tag:
                break

    def _close(self, tag: str, opened_quote: bool) -> None:
        if tag == "a" and self.href is not None:
            href, text = self.href, "".join(self.link_text).strip()
            self.href = None
            if href.startswith(("http://", "https://")) and href not in text:
                self._emit(f" ({href})")
            elif href.startswith("mailto:") and href[7:] not in text:
                self._emit(f" ({href[7:]})")
        if tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag in ("ul", "ol"):
            self.list_depth = max(0, self.list_depth - 1)
        if tag in _BLOCK or tag in ("blockquote", "li") or opened_quote:
            self._break(blank=tag in ("p", "table") or opened_quote)
        if opened_quote:
            self.quote_depth = max(0, self.quote_depth - 1)

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            parts = data.split("\n")
            for i, part in enumerate(parts):
                if i:
                    self._break()
                self._emit(part)
            return
        self._emit(data)

    def text(self) -> str:
        while self.stack:
            self._close(*self.stack.pop())
        self._break()
        out: list[str] = []
        for line in self.lines:
            if line == "" and (not out or out[-1] == ""):
                continue
            out.append(line)
        return "\n".join(out).strip("\n")


def html_to_text(html: str) -> str:
    converter = _Converter()
    try:
        converter.feed(html)
        converter.close()
    except Exception:
        # HTMLParser does not raise on bad markup; this is for the truly unexpected, and
        # falls back to stripping tags so the agent still gets words.
        return _SPACES.sub(" ", re.sub(r"<[^>]*>", " ", html)).strip()
    return converter.text()
