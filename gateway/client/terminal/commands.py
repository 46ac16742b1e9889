"""The commands a person types at the terminal, each turned into a frame for the gateway.

A command reads the desk (desk.py) to find what a short id names and sends through the
client library; what comes back shows when its frame arrives, not here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.client.connection import AgentClient
from gateway.client.errors import NotConnected
from gateway.client.terminal.desk import Desk
from gateway.client.terminal.extras import MoreCommands
from gateway.client.terminal.prompt import LineSource
from gateway.client.terminal.screen import customer_label

HELP = """\
commands (short forms in brackets):
  accept [offer]              (a)  accept an offer; the latest one when none is named
  decline [offer] [reason]    (d)  decline an offer
  reply <conv> <text>         (r)  reply in a conversation; `r <text>` replies in the current one
  <text>                           any line that is not a command replies in the current
                                   conversation (shown in the prompt, * in list): the one last
                                   used, accepted or replied in, else the only one open
  use [conv]                  (u)  make a conversation the current one and show its last
                                   messages, yours too; the current one when none is named
  transfer [conv] agent <id> [note]     (t)  hand a conversation to another agent,
  transfer [conv] queue <name> [note]        or back to a queue, with a note for the next agent
  close [conv] [reason]       (c)  close a conversation; the current one when none is named;
                                   with the gateway's close reasons (see connect), name one
  note [conv] <text>          (n)  an internal note: agents see it (after a transfer too),
                                   the customer never does
  /<word>                          a canned reply for the current conversation, names filled
                                   in: the one whose id (or title) starts with <word>; at a
                                   terminal it comes back to edit, Enter sends it. / lists them
  history [conv]           (hist)  the customer's earlier conversations
  status available|away|offline|<reason>  (s)
  list                        (l)  open conversations and pending offers
  help                        (h)
  quit                        (q)
conversations are named by the short id shown, or any unique part of their id.
a reply whose first word is a command word: type it after `r `."""

THREAD_LINES = 10  # the messages `use` shows

Handler = Callable[[str], Awaitable[bool | None]]


class Commands:
    """Typed lines in, frames out; `handle_line` says whether to go on."""

    def __init__(self, client: AgentClient, desk: Desk, lines: LineSource | None = None) -> None:
        self.client = client
        self.desk = desk
        self.lines = lines
        self.out = desk.out
        self.table: dict[str, Handler] = {}
        self.more = MoreCommands(client, desk, self.send_reply, lambda: self.lines)
        for names, handler in (
            (("accept", "a"), self.cmd_accept),
            (("decline", "d"), self.cmd_decline),
            (("reply", "r"), self.cmd_reply),
            (("use", "u"), self.cmd_use),
            (("transfer", "t"), self.cmd_transfer),
            (("close", "c"), self.more.cmd_close),
            (("note", "n"), self.more.cmd_note),
            (("history", "hist"), self.more.cmd_history),
            (("status", "s"), self.cmd_status),
            (("list", "l"), self.cmd_list),
            (("help", "h", "?"), self.cmd_help),
            (("quit", "q", "exit"), self.cmd_quit),
        ):
            for name in names:
                self.table[name] = handler

    async def handle_line(self, line: str) -> bool:
        """Run one command; False to quit."""
        name, _, args = line.strip().partition(" ")
        if not name:
            return True
        handler = self.table.get(name.lower())
        try:
            if name.startswith("/"):
                await self.more.canned(line.strip()[1:].strip())
                return True
            if handler is None:
                await self.say_plain(line.strip())
                return True
            return await handler(args.strip()) is not False
        except NotConnected:
            self.out.say("not connected (reconnecting); nothing was sent")
            return True

    async def cmd_accept(self, args: str) -> None:
        desk = self.desk
        offer = desk.pick_offer(args.split()[0] if args else None)
        if offer is None:
            return
        await self.client.accept(offer.offer_id)
        desk.offers.pop(offer.offer_id, None)
        desk.accepted.add(offer.conversation.id)
        self.out.say(f"accepting {desk.short(offer.conversation.id)}")

    async def cmd_decline(self, args: str) -> None:
        desk = self.desk
        head, _, rest = args.partition(" ")
        offer = desk.pick_offer(head, quiet=True) if head else None
        reason = rest.strip() if offer is not None else args
        if offer is None:
            offer = desk.pick_offer(None)
        if offer is None:
            return
        await self.client.decline(offer.offer_id, reason or None)
        desk.offers.pop(offer.offer_id, None)
        self.out.say(f"declined {desk.short(offer.conversation.id)}")

    async def cmd_reply(self, args: str) -> None:
        desk = self.desk
        head, _, rest = args.partition(" ")
        conv_id = desk.pick_conversation(head, quiet=True) if rest.strip() else None
        text = rest.strip() if conv_id is not None else args
        conv_id = conv_id or desk.target()
        if not text:
            self.out.say("usage: reply <conv> <text>, or r <text> in the current conversation")
            return
        if conv_id is None:
            self.out.say("no current conversation: reply <conv> <text>, or use <conv> first")
            return
        await self.send_reply(conv_id, text)

    async def say_plain(self, text: str) -> None:
        """A line that is no command: a reply in the conversation `desk.target()` names."""
        conv_id = self.desk.target()
        if conv_id is None:
            where = "none open" if not self.desk.conversations else "use <conv> first"
            self.out.say(f"not sent, no current conversation ({where}): {text[:40]!r}")
            return
        await self.send_reply(conv_id, text)

    async def send_reply(self, conv_id: str, text: str) -> None:
        client_msg_id = await self.client.reply(conv_id, text)
        self.desk.replies[client_msg_id] = (conv_id, text)
        self.desk.current = conv_id

    async def cmd_transfer(self, args: str) -> None:
        usage = "usage: transfer [conv] agent <id> [note], or transfer [conv] queue <name> [note]"
        words = args.split(maxsplit=1)
        conv_id: str | None = None
        if words and words[0].lower() not in ("agent", "queue"):
            conv_id = self.desk.pick_conversation(words[0])
            if conv_id is None:
                return
            words = words[1].split(maxsplit=1) if len(words) > 1 else []
        else:
            conv_id = self.desk.target()
            if conv_id is None:
                self.out.say("no current conversation: transfer <conv> agent|queue <to> [note]")
                return
        kind = words[0].lower() if words else ""
        rest = words[1].split(maxsplit=1) if len(words) > 1 else []
        if kind not in ("agent", "queue") or not rest:
            self.out.say(usage)
            return
        to, note = rest[0], rest[1].strip() if len(rest) > 1 else None
        if kind == "agent":
            await self.client.transfer(conv_id, to_agent=to, note=note)
        else:
            await self.client.transfer(conv_id, to_queue=to, note=note)
        self.out.say(f"transferring {self.desk.short(conv_id)} to {kind} {to}")

    async def cmd_use(self, args: str) -> None:
        desk = self.desk
        conv_id = desk.pick_conversation(args) if args else desk.target()
        if conv_id is None:
            if not args:
                self.out.say("no current conversation: use <conv>")
            return
        desk.current = conv_id
        conv = desk.conversations[conv_id]
        self.out.say(f"current: {desk.short(conv_id)}  {conv.channel}  {customer_label(conv)}")
        desk.show_context(conv)
        desk.show_messages(conv, THREAD_LINES)

    async def cmd_status(self, args: str) -> None:
        if not args:
            self.out.say("usage: status available|away|offline|<reason>")
            return
        await self.client.set_status(args)
        self.out.say(f"asked for status {args}")

    async def cmd_list(self, args: str) -> None:
        self.desk.list_conversations()

    async def cmd_help(self, args: str) -> None:
        for line in HELP.splitlines():
            self.out.more(line)

    async def cmd_quit(self, args: str) -> bool:
        return False
