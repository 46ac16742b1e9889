"""The commands for what agents keep beside the replies: internal notes, canned replies, a
close reason, and the customer's earlier conversations (docs/protocol.md, the frames that
came after the first version).

Canned replies are found by a `/word` typed as the line: the reply whose id (or else
title) starts with the word, filled in with the library's expand_canned. At a terminal the
filled-in text comes back as the next line to edit before Enter sends it, since a canned
text often needs a word changed; from a pipe, where nobody edits, it is sent as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.agents.protocol import CannedReply, expand_canned
from gateway.client.connection import AgentClient
from gateway.client.terminal.desk import Desk
from gateway.client.terminal.names import matching
from gateway.client.terminal.prompt import LineSource
from gateway.client.terminal.screen import one_line


def find_canned(word: str, replies: list[CannedReply]) -> list[CannedReply]:
    """The canned replies `word` names: the one with that id, else those whose id starts
    with it, else those whose title starts with it or has it as a word (any case)."""
    word = word.lower()
    if not word:
        return list(replies)
    for test in (
        lambda c: c.id.lower() == word,
        lambda c: c.id.lower().startswith(word),
        lambda c: c.title.lower().startswith(word) or word in c.title.lower().split(),
    ):
        found = [c for c in replies if test(c)]
        if found:
            return found
    return []


def pick_reason(token: str, reasons: list[str]) -> tuple[str | None, str]:
    """The close reason `token` names among `reasons` (a unique start of one will do), or
    None and what is wrong."""
    if token in reasons:
        return token, ""
    found = [r for r in reasons if r.startswith(token)]
    if len(found) == 1:
        return found[0], ""
    problem = "more than one close reason starts with" if found else "no close reason"
    return None, f"{problem} {token!r}; one of: {', '.join(reasons)}"


class MoreCommands:
    """note, close with a reason, history and `/word`; registered in Commands' table, which
    lends it its way of sending replies and the current input."""

    def __init__(
        self,
        client: AgentClient,
        desk: Desk,
        send_reply: Callable[[str, str], Awaitable[None]],
        lines: Callable[[], LineSource | None],
    ) -> None:
        self.client = client
        self.desk = desk
        self.out = desk.out
        self.send_reply = send_reply  # Commands': it keeps the reply for its ack
        self.lines = lines

    def conversation_and_rest(self, args: str) -> tuple[str | None, str]:
        """A leading conversation name (whole id, or a head or tail of four characters or
        more), else the target conversation; and the rest of the line."""
        head, _, rest = args.partition(" ")
        conv_id = self.desk.pick_conversation(head, quiet=True) if head else None
        if conv_id is not None:
            return conv_id, rest.strip()
        return self.desk.target(), args

    async def cmd_note(self, args: str) -> None:
        conv_id, text = self.conversation_and_rest(args)
        if not text:
            self.out.say("usage: note [conv] <text>  (seen by agents only, never the customer)")
            return
        if conv_id is None:
            self.out.say("no current conversation: note <conv> <text>")
            return
        await self.client.note(conv_id, text)

    async def cmd_close(self, args: str) -> None:
        head, _, rest = args.partition(" ")
        named = matching(head, self.desk.conversations) if head else []
        if len(named) == 1:  # any unique part, as before reasons: never close the wrong one
            conv_id, reason = named[0], rest.strip()
        else:
            conv_id, reason = self.conversation_and_rest(args)
        if conv_id is None:
            if args and len(self.desk.conversations) > 1:
                self.desk.pick_conversation(args.split()[0])  # says why it names none
            else:
                self.out.say("no current conversation: close <conv> [reason]")
            return
        reasons = self.desk.close_reasons
        if reasons:
            if not reason:
                short = self.desk.short(conv_id)
                self.out.say(f"close {short} with a reason: {', '.join(reasons)}")
                self.out.more(f"for example: c {short} {reasons[0]}")
                return
            picked, problem = pick_reason(reason, reasons)
            if picked is None:
                self.out.say(problem)
                return
            reason = picked
        await self.client.close(conv_id, reason or None)

    async def cmd_history(self, args: str) -> None:
        conv_id = self.desk.pick_conversation(args) if args else self.desk.target()
        if conv_id is None:
            if not args:
                self.out.say("no current conversation: history <conv>")
            return
        await self.client.history(conv_id)

    async def canned(self, word: str) -> None:
        """`/word`: a canned reply for the target conversation; `/` alone lists them."""
        desk = self.desk
        conv_id = desk.target()
        conv = desk.conversations.get(conv_id) if conv_id else None
        replies = self.client.canned_for(conv.queue) if conv else self.client.canned_replies
        found = find_canned(word, replies)
        if conv is None or len(found) != 1 or not word:
            if not replies:
                self.out.say("no canned replies" + (f" for queue {conv.queue}" if conv else ""))
            elif not found:
                self.out.say(f"no canned reply matching {word!r}; / lists them")
            else:
                where = f" for {desk.short(conv.id)}" if conv else ""
                self.out.say(f"canned replies{where}: /<id> to use one")
                for c in found:
                    self.out.more(f"/{c.id}  {c.title}: {one_line(c.text, 50)}")
            if conv is None and found:
                self.out.more("no current conversation: use <conv> first")
            return
        text = expand_canned(found[0].text, conv.customer.name, desk.agent_name)
        lines = self.lines()
        # `r <conv>` pins the conversation the names were filled in for, and keeps a text
        # that starts with a command word a reply.
        if lines is not None and lines.prefill(f"r {desk.short(conv.id)} {text}"):
            return
        await self.send_reply(conv.id, text)
