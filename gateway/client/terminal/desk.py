"""What the person at the terminal has in front of them, and how each server frame shows.

The desk keeps the open conversations, the pending offers and the current conversation,
so that frames can be written as lines a person reads, and so that the commands
(commands.py) can find what a typed short id names.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from gateway.agents.protocol import (
    Assigned,
    Closed,
    Conversation,
    CsatFrame,
    DeadlineFrame,
    Error,
    History,
    Message,
    MessageFrame,
    Note,
    NoteAdded,
    Offer,
    OfferRevoked,
    ReplyAck,
    ServerFrame,
    StatusFrame,
    Welcome,
)
from gateway.client.connection import Disconnected
from gateway.client.terminal.names import is_end_of, matching, short_id
from gateway.client.terminal.screen import (
    Printer,
    author,
    clock,
    customer_label,
    message_text,
    one_line,
)


class Desk:
    """The conversations and offers on screen, updated by frames, read by commands."""

    def __init__(self, out: Printer) -> None:
        self.out = out
        self.conversations: dict[str, Conversation] = {}
        self.offers: dict[str, tuple[Offer, float]] = {}  # offer id -> offer, local deadline
        self.current: str | None = None
        self.accepted: set[str] = set()  # conversations accepted here, not yet assigned
        self.replies: dict[str, tuple[str, str]] = {}  # client_msg_id -> conversation, text
        self.welcomed = False
        self.down = False  # a Disconnected came since the last welcome
        self.notes: dict[str, list[Note]] = {}  # conversation id -> internal notes, oldest first
        self.close_reasons: list[str] = []
        self.agent_id = ""
        self.agent_name = ""

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
                self.notes[frame.conversation.id] = list(frame.notes)
                self.on_assigned(frame.conversation)
            case NoteAdded():
                self.on_note(frame)
            case DeadlineFrame():
                what = frame.deadline.replace("_", " ")
                conv = self.short(frame.conversation_id)
                if frame.stage == "missed":
                    self.out.say(f"{conv}: complaint {what} deadline missed ({frame.action})")
                else:
                    self.out.say(f"{conv}: complaint {what} due at {clock(frame.due_at)}")
            case History():
                self.on_history(frame)
            case MessageFrame():
                self.on_message(frame.conversation_id, frame.message)
            case ReplyAck():
                self.on_reply_ack(frame)
            case Closed():
                self.on_closed(frame)
            case CsatFrame():
                comment = f": {frame.comment}" if frame.comment else ""
                cid = self.short(frame.conversation_id)
                self.out.say(f"[{cid}] the customer rated it {frame.score}/{frame.scale}{comment}")
            case StatusFrame():
                reason = f" ({frame.reason})" if frame.reason else ""
                self.out.say(f"status: {frame.status}{reason}")
            case Error():
                self.on_error(frame)
            case Disconnected():
                self.down = True
                self.out.say(
                    f"connection lost ({frame.reason}); reconnecting in {frame.retry_in_s:.1f}s"
                )
            case _:
                pass  # pongs, and frames newer than this client

    def on_welcome(self, welcome: Welcome) -> None:
        agent = welcome.agent
        # {agent_name} in canned replies is what customers see, never the id.
        self.agent_id, self.agent_name = agent.id, agent.shown_as or agent.name
        self.conversations = {c.id: c for c in welcome.conversations}
        self.offers = {}  # those still pending are sent again after the welcome
        self.notes = {cid: list(notes) for cid, notes in welcome.notes.items()}
        self.close_reasons = list(welcome.close_reasons)
        if self.current not in self.conversations:
            self.current = None
        # A welcome without a drop before it is the gateway resyncing this connection.
        verb = "resynced" if self.welcomed and not self.down else "connected"
        verb = "reconnected" if self.welcomed and self.down else verb
        self.welcomed, self.down = True, False
        self.out.say(f"{verb} as {agent.name} ({agent.id}), status {agent.status}")
        if agent.statuses:
            self.out.more("statuses: " + ", ".join(agent.statuses))
        if welcome.close_reasons:
            self.out.more("close reasons: " + ", ".join(welcome.close_reasons))
        self.list_conversations()
        if verb == "connected":
            self.out.more("type help for commands")

    def on_offer(self, offer: Offer) -> None:
        deadline = asyncio.get_running_loop().time() + offer.expires_in_s
        self.offers[offer.offer_id] = (offer, deadline)
        conv = offer.conversation
        self.notes[conv.id] = list(offer.notes)
        cid = self.short(conv.id)
        self.out.say(
            f"OFFER {cid}  {conv.channel}  {customer_label(conv)}  queue {conv.queue}  "
            f"priority {conv.priority}{grade_of(conv)}  expires in {offer.expires_in_s:.0f}s"
        )
        self.show_context(conv)
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
            f"ASSIGNED {self.short(conv.id)}  {conv.channel}  {customer_label(conv)}  "
            f"queue {conv.queue}{grade_of(conv)}{mark}"
        )
        self.show_context(conv)
        self.show_messages(conv, 3)

    def on_message(self, conversation_id: str, message: Message) -> None:
        conv = self.conversations.get(conversation_id)
        if conv is not None:
            if any(m.id == message.id for m in conv.messages):
                return  # already shown, by a welcome that resynced the desk
            conv.messages.append(message)
        self.out.say(
            f"[{self.short(conversation_id)}] {author(conv, message)}: {message_text(message)}",
            when=message.sent_at,
        )

    def on_reply_ack(self, ack: ReplyAck) -> None:
        conv_id, text = self.replies.pop(ack.client_msg_id, ("?", ""))
        conv = self.conversations.get(conv_id)
        if conv is not None and all(m.id != ack.message_id for m in conv.messages):
            # The gateway sends an agent's own replies back only in the next welcome: keep
            # them here, so that `use` shows the whole exchange before a reconnect too.
            conv.messages.append(
                Message(
                    id=ack.message_id,
                    direction="out",
                    text=text,
                    author=self.agent_id or None,  # as the gateway stores it
                    sent_at=datetime.now(UTC),
                )
            )
        self.out.say(f"[{self.short(conv_id)}] sent: {one_line(text)}")

    def on_note(self, frame: NoteAdded) -> None:
        notes = self.notes.setdefault(frame.conversation_id, [])
        if all(n.id != frame.note.id for n in notes):
            notes.append(frame.note)
        self.out.say(f"[{self.short(frame.conversation_id)}] {note_line(frame.note)}")

    def on_history(self, frame: History) -> None:
        cid = self.short(frame.conversation_id)
        if not frame.conversations:
            self.out.say(f"[{cid}] no earlier conversations of this customer")
            return
        self.out.say(f"[{cid}] {len(frame.conversations)} earlier conversation(s), newest first")
        for past in frame.conversations:
            opened = datetime.fromtimestamp(past.opened_ms / 1000).strftime("%Y-%m-%d %H:%M")
            who = past.agent_name or past.agent or "nobody"
            reason = f", {past.close_reason}" if past.close_reason else ""
            last = f": {one_line(past.last_text, 40)}" if past.last_text else ""
            self.out.more(
                f"{opened}  {past.channel}  queue {past.queue}  {who}{reason}  "
                f"{past.messages} message(s){last}"
            )

    def on_closed(self, frame: Closed) -> None:
        cid = self.short(frame.conversation_id)
        self.conversations.pop(frame.conversation_id, None)
        if not any(o.conversation.id == frame.conversation_id for o, _ in self.offers.values()):
            self.notes.pop(frame.conversation_id, None)
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

    # Listing.

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

    def show_context(self, conv: Conversation) -> None:
        """What the person should know before answering: a customer asked to leave a
        message, a transfer's note, the internal notes."""
        if conv.leave_message:
            self.out.more("LEAVE A MESSAGE: the customer was asked to leave one; answer it as such")
        if conv.transferred_from or conv.transfer_note:
            source = f" from {conv.transferred_from}" if conv.transferred_from else ""
            note = f": {conv.transfer_note}" if conv.transfer_note else ""
            self.out.more(f"transferred{source}{note}")
        for item in self.notes.get(conv.id, []):
            if item.text != conv.transfer_note:  # a transfer's note is kept as a note too
                self.out.more(note_line(item))

    def show_messages(self, conv: Conversation, count: int) -> None:
        for message in conv.messages[-count:]:
            self.out.more(
                f"{clock(message.sent_at)} {author(conv, message)}: {message_text(message)}"
            )

    def target(self) -> str | None:
        """The conversation a plain line replies in: the current one, else the only open one."""
        if self.current in self.conversations:
            return self.current
        if len(self.conversations) == 1:
            return next(iter(self.conversations))
        return None

    # Naming.

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
            found = [f for f in found if f == token or is_end_of(token, f)]
        if len(found) == 1:
            return found[0]
        if not quiet:
            problem = "no open conversation" if not found else "more than one conversation for"
            self.out.say(f"{problem} {token!r}")
        return None


def grade_of(conv: Conversation) -> str:
    return f"  grade {conv.grade}" if conv.grade else ""


def note_line(note: Note) -> str:
    when = clock(datetime.fromtimestamp(note.at_ms / 1000))
    return f"note by {note.author.name} at {when}: {note.text}"
