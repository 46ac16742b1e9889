"""The terminal agent client behind `zhongtai agent --url WS_URL --token TOKEN`.

A person reads offers and customer messages as lines of text and types short commands
(`help` lists them). Conversations are shown by a short tail of their id, four characters
or more, unique among those on screen; any unique part of an id is accepted back.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import IO, Any, TextIO

from websockets.exceptions import InvalidURI

from adapters.model import Conversation, Message
from gateway.agents.protocol import (
    Assigned,
    Closed,
    Error,
    MessageFrame,
    Offer,
    OfferRevoked,
    ReplyAck,
    ServerFrame,
    StatusFrame,
    Welcome,
)
from gateway.client.connection import (
    AgentClient,
    AgentClientError,
    AuthenticationFailed,
    Disconnected,
    NotConnected,
    Replaced,
)

READER_THREAD_NAME = "zhongtai-agent-stdin"
EXIT_OK, EXIT_FAILED, EXIT_BAD_TOKEN = 0, 1, 2
MIN_SHORT_ID = 4
INDENT = " " * 9  # under the "HH:MM:SS " of the line above

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


# Ids.


def short_id(full: str, others: Iterable[str], min_len: int = MIN_SHORT_ID) -> str:
    """The shortest tail of `full`, at least `min_len` long, that no other id contains.

    Tails, because ids start with their creation time (router/ids.py): the heads of ids made
    the same hour are alike, the tails random.
    """
    rivals = [o for o in others if o != full]
    n = min(min_len, len(full))
    while n < len(full) and any(full[-n:] in o for o in rivals):
        n += 1
    return full[-n:]


def matching(token: str, ids: Iterable[str]) -> list[str]:
    """Ids that `token` names: itself when it is one, else those containing it (so the short
    tail shown works, and so does any other unique part, a head included)."""
    ids = list(dict.fromkeys(ids))
    if token in ids:
        return [token]
    return [i for i in ids if token and token in i]


# Input.


def start_line_reader(stream: IO[Any]) -> asyncio.Queue[str | None]:
    """Lines from `stream` as they are typed; None at end of input.

    A thread does the blocking reads, so that ttys, pipes and plain files all work and the
    event loop never waits on the keyboard. It reads the file descriptor itself, not the
    buffered file object, whose lock would otherwise still be held at interpreter exit.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def deliver(line: str | None) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, line)

    thread = threading.Thread(
        target=_read_lines, args=(stream, deliver), name=READER_THREAD_NAME, daemon=True
    )
    thread.start()
    return queue


def _read_lines(stream: IO[Any], deliver: Callable[[str | None], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening any more
        try:
            fd: int | None = stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            fd = None
        if fd is None:
            while line := stream.readline():
                deliver(_text(line).rstrip("\r\n"))
        else:
            _read_fd(fd, getattr(stream, "encoding", None) or "utf-8", deliver)
        deliver(None)


def _read_fd(fd: int, encoding: str, deliver: Callable[[str | None], None]) -> None:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    pending = ""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        pending += decoder.decode(chunk, final=not chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            deliver(line.rstrip("\r"))
        if not chunk:
            if pending:
                deliver(pending.rstrip("\r"))
            return


def _text(line: str | bytes) -> str:
    return line.decode("utf-8", "replace") if isinstance(line, bytes) else line


# Output.


def clock(when: datetime | None = None) -> str:
    """Local wall-clock time, HH:MM:SS."""
    when = datetime.now() if when is None else when
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%H:%M:%S")


def customer_label(conversation: Conversation) -> str:
    customer = conversation.customer
    return f"{customer.name} ({clip_id(customer.id)})" if customer.name else clip_id(customer.id)


def clip_id(value: str, keep: int = 8) -> str:
    """A long opaque id (a web chat visitor's, say) cut to its tail."""
    return value if len(value) <= 2 * keep else "..." + value[-keep:]


def one_line(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


class Printer:
    """Writes whole lines and flushes them, so that pipes see them at once."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def say(self, text: str, *, when: datetime | None = None) -> None:
        self.stream.write(f"{clock(when)} {text}\n")
        self.stream.flush()

    def more(self, text: str) -> None:
        self.stream.write(f"{INDENT}{text}\n")
        self.stream.flush()


# The session.


class TerminalSession:
    """What one person sees and can do: frames in, commands out."""

    def __init__(self, client: AgentClient, out: Printer) -> None:
        self.client = client
        self.out = out
        self.conversations: dict[str, Conversation] = {}
        self.offers: dict[str, tuple[Offer, float]] = {}  # offer id -> offer, local deadline
        self.current: str | None = None
        self.accepted: set[str] = set()  # conversations accepted here, not yet assigned
        self.replies: dict[str, tuple[str, str]] = {}  # client_msg_id -> conversation, text
        self.welcomed = False
        self.commands: dict[str, Callable[[str], Awaitable[bool | None]]] = {}
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
                self.commands[name] = handler

    async def run(self, lines: asyncio.Queue[str | None]) -> int:
        """Until quit, end of input, or a connection that cannot come back; the exit code."""
        pump = asyncio.create_task(self.pump())
        typing = asyncio.create_task(self.read_commands(lines))
        done, _ = await asyncio.wait({pump, typing}, return_when=asyncio.FIRST_COMPLETED)
        for task in (pump, typing):
            if task not in done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return pump.result() if pump in done else typing.result()

    async def pump(self) -> int:
        try:
            async for frame in self.client.frames():
                self.show(frame)
        except AuthenticationFailed as exc:
            self.out.say(f"the gateway refused the token: {exc}")
            return EXIT_BAD_TOKEN
        except Replaced:
            self.out.say("another connection of this agent took over; this one stops")
            return EXIT_FAILED
        except AgentClientError as exc:
            self.out.say(f"disconnected for good: {exc}")
            return EXIT_FAILED
        return EXIT_OK

    async def read_commands(self, lines: asyncio.Queue[str | None]) -> int:
        while (line := await lines.get()) is not None:
            if not await self.handle_line(line):
                break
        return EXIT_OK

    async def handle_line(self, line: str) -> bool:
        """Run one command; False to quit."""
        name, _, args = line.strip().partition(" ")
        if not name:
            return True
        handler = self.commands.get(name.lower())
        if handler is None:
            self.out.say(f"unknown command {name!r}; type help")
            return True
        try:
            return await handler(args.strip()) is not False
        except NotConnected:
            self.out.say("not connected (reconnecting); nothing was sent")
            return True

    # Frames.

    def show(self, frame: ServerFrame | Disconnected) -> None:
        match frame:
            case Welcome():
                self.on_welcome(frame)
            case Offer():
                self.on_offer(frame)
            case OfferRevoked():
                offer = self.offers.pop(frame.offer_id, None)
                if offer is not None:
                    conv = self.short(offer[0].conversation.id)
                    self.out.say(f"offer of {conv} withdrawn: {frame.reason}")
            case Assigned():
                self.on_assigned(frame.conversation)
            case MessageFrame():
                self.on_message(frame.conversation_id, frame.message)
            case ReplyAck():
                conv, text = self.replies.pop(frame.client_msg_id, ("?", ""))
                self.out.say(f"[{self.short(conv)}] sent: {one_line(text)}")
            case Closed():
                self.on_closed(frame)
            case StatusFrame():
                reason = f" ({frame.reason})" if frame.reason else ""
                self.out.say(f"status: {frame.status}{reason}")
            case Error():
                self.on_error(frame)
            case Disconnected():
                self.out.say(
                    f"connection lost ({frame.reason}); reconnecting in {frame.retry_in_s:.1f}s"
                )
            case _:
                pass  # pongs, and frames newer than this client

    def on_welcome(self, welcome: Welcome) -> None:
        agent = welcome.agent
        self.conversations = {c.id: c for c in welcome.conversations}
        if self.current not in self.conversations:
            self.current = None
        verb = "reconnected" if self.welcomed else "connected"
        self.welcomed = True
        self.out.say(f"{verb} as {agent.name} ({agent.id}), status {agent.status}")
        if agent.statuses:
            self.out.more("statuses: " + ", ".join(agent.statuses))
        self.list_conversations()
        if verb == "connected":
            self.out.more("type help for commands")

    def on_offer(self, offer: Offer) -> None:
        deadline = asyncio.get_running_loop().time() + offer.expires_in_s
        self.offers[offer.offer_id] = (offer, deadline)
        conv = offer.conversation
        cid = self.short(conv.id)
        self.out.say(
            f"OFFER {cid}  {conv.channel}  {customer_label(conv)}  queue {conv.queue}  "
            f"priority {conv.priority}  expires in {offer.expires_in_s:.0f}s"
        )
        self.show_messages(conv, 3)
        self.out.more(f"accept: a {cid}    decline: d {cid} [reason]")

    def on_assigned(self, conv: Conversation) -> None:
        self.conversations[conv.id] = conv
        for offer_id, (offer, _) in list(self.offers.items()):
            if offer.conversation.id == conv.id:
                del self.offers[offer_id]
        # Only an accept made here moves the current conversation: a transfer arriving
        # while the person types must not redirect their next `r <text>`.
        if conv.id in self.accepted or self.current is None:
            self.current = conv.id
        self.accepted.discard(conv.id)
        mark = "  (current)" if self.current == conv.id else ""
        self.out.say(
            f"ASSIGNED {self.short(conv.id)}  {conv.channel}  {customer_label(conv)}{mark}"
        )
        self.show_messages(conv, 3)

    def on_message(self, conversation_id: str, message: Message) -> None:
        conv = self.conversations.get(conversation_id)
        if conv is not None:
            conv.messages.append(message)
        self.out.say(
            f"[{self.short(conversation_id)}] {self.author(conv, message)}: "
            f"{self.message_text(message)}",
            when=message.sent_at,
        )

    def on_closed(self, frame: Closed) -> None:
        cid = self.short(frame.conversation_id)
        self.conversations.pop(frame.conversation_id, None)
        if self.current == frame.conversation_id:
            self.current = None
        self.out.say(f"[{cid}] closed: {frame.reason}")

    def on_error(self, error: Error) -> None:
        where = ""
        if error.client_msg_id in self.replies:
            conv, text = self.replies.pop(error.client_msg_id)
            where = f" [{self.short(conv)}] not sent: {one_line(text, 40)};"
        elif error.conversation_id:
            where = f" [{self.short(error.conversation_id)}]"
        field = f" (field {error.field})" if error.field else ""
        self.out.say(f"error{where} {error.code}: {error.detail}{field}")

    # Commands.

    async def cmd_accept(self, args: str) -> None:
        offer = self.pick_offer(args.split()[0] if args else None)
        if offer is None:
            return
        await self.client.accept(offer.offer_id)
        self.offers.pop(offer.offer_id, None)
        self.accepted.add(offer.conversation.id)
        self.out.say(f"accepting {self.short(offer.conversation.id)}")

    async def cmd_decline(self, args: str) -> None:
        head, _, rest = args.partition(" ")
        offer = self.pick_offer(head, quiet=True) if head else None
        reason = rest.strip() if offer is not None else args
        if offer is None:
            offer = self.pick_offer(None)
        if offer is None:
            return
        await self.client.decline(offer.offer_id, reason or None)
        self.offers.pop(offer.offer_id, None)
        self.out.say(f"declined {self.short(offer.conversation.id)}")

    async def cmd_reply(self, args: str) -> None:
        head, _, rest = args.partition(" ")
        conv_id = self.pick_conversation(head, quiet=True) if rest.strip() else None
        text = rest.strip() if conv_id is not None else args
        conv_id = conv_id or self.current
        if not text:
            self.out.say("usage: reply <conv> <text>, or r <text> in the current conversation")
            return
        if conv_id is None:
            self.out.say("no current conversation: reply <conv> <text>, or use <conv> first")
            return
        client_msg_id = await self.client.reply(conv_id, text)
        self.replies[client_msg_id] = (conv_id, text)
        self.current = conv_id

    async def cmd_use(self, args: str) -> None:
        conv_id = self.pick_conversation(args) if args else None
        if conv_id is None:
            if not args:
                self.out.say("usage: use <conv>")
            return
        self.current = conv_id
        conv = self.conversations[conv_id]
        self.out.say(f"current: {self.short(conv_id)}  {conv.channel}  {customer_label(conv)}")
        self.show_messages(conv, 5)

    async def cmd_close(self, args: str) -> None:
        conv_id = self.pick_conversation(args) if args else self.current
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
        self.list_conversations()

    async def cmd_help(self, args: str) -> None:
        for line in HELP.splitlines():
            self.out.more(line)

    async def cmd_quit(self, args: str) -> bool:
        return False

    # Helpers.

    def list_conversations(self) -> None:
        self.out.more(f"{len(self.conversations)} open conversation(s)")
        for conv in self.conversations.values():
            mark = "*" if conv.id == self.current else " "
            last = conv.messages[-1] if conv.messages else None
            tail = f"  {clock(last.sent_at)} {one_line(last.text, 40)}" if last else ""
            self.out.more(
                f"{mark} {self.short(conv.id)}  {conv.channel}  {customer_label(conv)}{tail}"
            )
        self.purge_offers()
        for offer, _ in self.offers.values():
            conv = offer.conversation
            self.out.more(f"  offer {self.short(conv.id)}  {conv.channel}  {customer_label(conv)}")

    def show_messages(self, conv: Conversation, count: int) -> None:
        for message in conv.messages[-count:]:
            self.out.more(
                f"{clock(message.sent_at)} {self.author(conv, message)}: "
                f"{self.message_text(message)}"
            )

    @staticmethod
    def author(conv: Conversation | None, message: Message) -> str:
        if message.direction == "out":
            return message.author or "agent"
        if conv is not None:
            return conv.customer.name or clip_id(conv.customer.id)
        return message.author or "customer"

    @staticmethod
    def message_text(message: Message) -> str:
        names = "".join(f" [attachment: {a.name}]" for a in message.attachments)
        return message.text + names

    def short(self, conversation_id: str) -> str:
        return short_id(conversation_id, self.known_conversation_ids())

    def known_conversation_ids(self) -> list[str]:
        return [*self.conversations, *(o.conversation.id for o, _ in self.offers.values())]

    def purge_offers(self) -> None:
        now = asyncio.get_running_loop().time()
        for offer_id, (_, deadline) in list(self.offers.items()):
            if deadline < now:
                del self.offers[offer_id]

    def pick_offer(self, token: str | None, *, quiet: bool = False) -> Offer | None:
        """The offer `token` names (by offer or conversation id), else the latest one."""
        self.purge_offers()
        if not self.offers:
            if not quiet:
                self.out.say("no pending offer")
            return None
        offers = [offer for offer, _ in self.offers.values()]
        if token is None:
            return offers[-1]
        found = [o for o in offers if matching(token, [o.offer_id, o.conversation.id])]
        if len(found) != 1 and not quiet:
            problem = "no pending offer" if not found else "more than one offer for"
            self.out.say(f"{problem} {token!r}")
        return found[0] if len(found) == 1 else None

    def pick_conversation(self, token: str, *, quiet: bool = False) -> str | None:
        """The open conversation `token` names. Quiet (the first word of `r <text>`, which
        may be text): only a whole id, or a head or tail of MIN_SHORT_ID characters or more."""
        found = matching(token, self.conversations)
        if quiet:
            found = [f for f in found if f == token or _end_of(token, f)]
        if len(found) == 1:
            return found[0]
        if not quiet:
            problem = "no open conversation" if not found else "more than one conversation for"
            self.out.say(f"{problem} {token!r}")
        return None


def _end_of(token: str, full: str) -> bool:
    return len(token) >= MIN_SHORT_ID and (full.startswith(token) or full.endswith(token))


async def run_terminal(
    url: str, token: str, *, stdin: IO[Any] | None = None, stdout: TextIO | None = None
) -> int:
    """Run the terminal client until quit or end of input: 0; bad token: 2; else 1."""
    out = Printer(stdout if stdout is not None else sys.stdout)
    try:
        client = AgentClient(url, token)
    except InvalidURI as exc:
        out.say(f"not a websocket URL: {exc}")
        return EXIT_FAILED
    try:
        await client.connect()
    except AuthenticationFailed as exc:
        out.say(f"the gateway refused the token: {exc}")
        return EXIT_BAD_TOKEN
    except AgentClientError as exc:
        out.say(str(exc))
        return EXIT_FAILED
    try:
        lines = start_line_reader(stdin if stdin is not None else sys.stdin)
        return await TerminalSession(client, out).run(lines)
    finally:
        await client.aclose()
