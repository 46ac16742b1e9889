"""The commands a person types at the terminal, each turned into a frame for the gateway.

A command reads the desk (desk.py) to find what a short id names and sends through the
client library; what comes back shows when its frame arrives, not here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.client.connection import AgentClient
from gateway.client.errors import NotConnected
from gateway.client.terminal.desk import Desk
from gateway.client.terminal.screen import customer_label

HELP = """\
commands (short forms in brackets):
  accept [offer]              (a)  accept an offer; the latest one when none is named
  decline [offer] [reason]    (d)  decline an offer
  reply <conv> <text>         (r)  reply in a conversation; `r <text>` replies in the current one
  use <conv>                  (u)  make a conversation the current one and show its last messages
  close [conv]                (c)  close a conversation; the current one when none is named
  status available|away|offline|<reason>  (s)
  list                        (l)  open conversations and pending offers
  help                        (h)
  quit                        (q)
conversations are named by the short id shown, or any unique part of their id."""

Handler = Callable[[str], Awaitable[bool | None]]


class Commands:
    """Typed lines in, frames out; `handle_line` says whether to go on."""

    def __init__(self, client: AgentClient, desk: Desk) -> None:
        self.client = client
        self.desk = desk
        self.out = desk.out
        self.table: dict[str, Handler] = {}
        for names, handler in (
            (("accept", "a"), self.cmd_accept),
            (("decline", "d"), self.cmd_decline),
            (("reply", "r"), self.cmd_reply),
            (("use", "u"), self.cmd_use),
            (("close", "c"), self.cmd_close),
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
        if handler is None:
            self.out.say(f"unknown command {name!r}; type help")
            return True
        try:
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
        conv_id = conv_id or desk.current
        if not text:
            self.out.say("usage: reply <conv> <text>, or r <text> in the current conversation")
            return
        if conv_id is None:
            self.out.say("no current conversation: reply <conv> <text>, or use <conv> first")
            return
        client_msg_id = await self.client.reply(conv_id, text)
        desk.replies[client_msg_id] = (conv_id, text)
        desk.current = conv_id

    async def cmd_use(self, args: str) -> None:
        desk = self.desk
        conv_id = desk.pick_conversation(args) if args else None
        if conv_id is None:
            if not args:
                self.out.say("usage: use <conv>")
            return
        desk.current = conv_id
        conv = desk.conversations[conv_id]
        self.out.say(f"current: {desk.short(conv_id)}  {conv.channel}  {customer_label(conv)}")
        desk.show_messages(conv, 5)

    async def cmd_close(self, args: str) -> None:
        conv_id = self.desk.pick_conversation(args) if args else self.desk.current
        if conv_id is None:
            if not args:
                self.out.say("no current conversation: close <conv>")
            return
        await self.client.close(conv_id)

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
