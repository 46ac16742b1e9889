"""The page's words: every reason the gateway closes a conversation with has a sentence in
English and Chinese in the widget's strings.js.

The reasons are read from the gateway's code (every ``close_conversation`` or
``closing.close`` call, which share one signature, and the
strings the reason variable is assigned), not listed by hand, so a new reason fails here
until the page can say it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from adapters.webchat import adapter

ROOT = Path(__file__).resolve().parents[3]
STRINGS_JS = ROOT / "adapters" / "webchat" / "static" / "strings.js"
CHAT_JS = ROOT / "adapters" / "webchat" / "static" / "chat.js"
REASON_ARG = 2  # close_conversation(conversation_id, by_agent, reason, message=None)


def _closes(func: ast.Attribute) -> bool:
    if func.attr == "close_conversation":
        return True
    owner = func.value
    named = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
    return func.attr == "close" and named == "closing"


def _strings(node: ast.AST) -> set[str]:
    constants = (n for n in ast.walk(node) if isinstance(n, ast.Constant))
    return {c.value for c in constants if isinstance(c.value, str)}


def _reasons_in(function: ast.AST) -> set[str]:
    found: set[str] = set()
    for call in ast.walk(function):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            continue
        if not _closes(call.func):
            continue
        args = [kw.value for kw in call.keywords if kw.arg == "reason"]
        args += call.args[REASON_ARG : REASON_ARG + 1]
        for arg in args:
            if isinstance(arg, ast.Name):  # reason = "a" if ... else "b"
                for assign in ast.walk(function):
                    if isinstance(assign, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == arg.id for t in assign.targets
                    ):
                        found |= _strings(assign.value)
            else:
                found |= _strings(arg)
    return found


def server_close_reasons() -> set[str]:
    reasons = {adapter.DEFAULT_CLOSE_REASON}
    for path in (ROOT / "gateway").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                reasons |= _reasons_in(node)
    return reasons


def page_close_sentences() -> dict[str, tuple[str, str]]:
    text = STRINGS_JS.read_text(encoding="utf-8")
    block = text[text.index("var CLOSED = {") : text.index("var WORDS")]
    entry = re.compile(r'(\w+): \{\s*en: "([^"]*)",\s*zh: "([^"]*)"\s*\}')
    return {m[1]: (m[2], m[3]) for m in entry.finditer(block)}


def test_the_reasons_are_found_in_the_code() -> None:
    reasons = server_close_reasons()
    expected = {"closed_by_agent", "closed_by_supervisor", "inactive", "max_wait", "closed"}
    assert expected <= reasons, reasons


def test_every_close_reason_has_a_sentence_in_both_languages() -> None:
    sentences = page_close_sentences()
    missing = server_close_reasons() - sentences.keys()
    assert not missing, f"strings.js CLOSED lacks {sorted(missing)}"
    assert "_unknown" in sentences  # for a reason the page does not know yet
    for reason, (en, zh) in sentences.items():
        assert en and zh, reason
        assert re.search(r"[\u4e00-\u9fff]", zh), f"{reason}: the zh sentence is not Chinese"
        assert not re.search(r"[a-z]+_[a-z]+", en + zh), reason  # a sentence, not the code


def test_both_languages_have_the_same_words() -> None:
    text = STRINGS_JS.read_text(encoding="utf-8")
    en = text[text.index("    en: {") : text.index("    zh: {")]
    zh = text[text.index("    zh: {") :]
    keys = re.compile(r"^\s{6}(\w+):", re.M)
    assert keys.findall(en) == keys.findall(zh)
    assert '"Attach file"' in en and '"添加附件"' in zh


def test_the_page_uses_the_sentences_and_the_language_switch() -> None:
    chat = CHAT_JS.read_text(encoding="utf-8")
    assert "closeSentence(f.reason)" in chat
    assert 'get("lang")' in chat and "navigator.language" in chat
    assert "strings.js" in (ROOT / "adapters" / "webchat" / "static" / "index.html").read_text()


def test_the_page_tells_the_customer_their_agent_left() -> None:
    chat = CHAT_JS.read_text(encoding="utf-8")
    assert 'case "agent_left":' in chat and "T.agentLeft" in chat
    text = STRINGS_JS.read_text(encoding="utf-8")
    en = text[text.index("    en: {") : text.index("    zh: {")]
    zh = text[text.index("    zh: {") :]
    assert "another agent will take over shortly" in en
    assert re.search(r'agentLeft: "[^"]*[\u4e00-\u9fff]', zh)
