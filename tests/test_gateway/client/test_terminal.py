"""The terminal client behind `zhongtai agent`, typed at through a pipe, against a scripted
gateway (fake_gateway.py), and its short ids."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import IO, Any

import pytest
from fake_gateway import TOKEN, WAIT_S, FakeGateway, conversation

from gateway.client import Accept, CannedReply, Close, CsatFrame, Message, MessageFrame, Reply
from gateway.client.terminal import READER_THREAD_NAME, matching, run_terminal, short_id


class Screen:
    """A stdout that tests can wait on."""

    def __init__(self) -> None:
        self.text = ""
        self.changed = asyncio.Event()

    def write(self, text: str) -> int:
        self.text += text
        self.changed.set()
        return len(text)

    def flush(self) -> None:
        pass

    async def wait_for(self, needle: str) -> None:
        try:
            async with asyncio.timeout(WAIT_S):
                while needle not in self.text:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            pytest.fail(f"{needle!r} not on the screen:\n{self.text}")


class Keyboard:
    """The write end of a pipe that the terminal client reads as its stdin."""

    def __init__(self) -> None:
        read_fd, self.fd = os.pipe()
        self.stdin: IO[bytes] = os.fdopen(read_fd, "rb", buffering=0)

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@pytest.fixture
def keyboard() -> Iterator[Keyboard]:
    kb = Keyboard()
    yield kb
    kb.close()  # end of input lets the reader thread finish before its fd is closed
    for thread in threading.enumerate():
        if thread.name == READER_THREAD_NAME:
            thread.join(5)
    kb.stdin.close()


@contextlib.asynccontextmanager
async def terminal(
    gateway: FakeGateway, keyboard: Keyboard, token: str = TOKEN
) -> AsyncIterator[tuple[Screen, asyncio.Task[int]]]:
    """run_terminal in a task, cancelled at the end if the test left it running."""
    screen = Screen()
    stdout: Any = screen
    run = asyncio.create_task(run_terminal(gateway.url, token, stdin=keyboard.stdin, stdout=stdout))
    try:
        yield screen, run
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run


async def test_terminal_accepts_an_offer_and_replies(
    gateway: FakeGateway, keyboard: Keyboard
) -> None:
    async with terminal(gateway, keyboard) as (screen, run):
        await accept_and_reply(gateway, keyboard, screen)
        keyboard.type("q")
        assert await asyncio.wait_for(run, WAIT_S) == 0


async def accept_and_reply(gateway: FakeGateway, keyboard: Keyboard, screen: Screen) -> None:
    await screen.wait_for("connected as Alice (alice)")
    conv = conversation()
    short = conv.id[-4:]
    await gateway.offer(conv)
    await screen.wait_for(f"OFFER {short}  webchat  Li Wei (v-42)")
    await screen.wait_for("where is my order?")

    keyboard.type("a")
    assert await gateway.expect(Accept) == Accept(offer_id="offer-1")
    await screen.wait_for(f"ASSIGNED {short}")

    keyboard.type("r It left the warehouse today.")
    reply = await gateway.expect(Reply)
    assert (reply.conversation_id, reply.text) == (conv.id, "It left the warehouse today.")
    await screen.wait_for(f"[{short}] sent: It left the warehouse today.")

    await gateway.send(
        MessageFrame(
            conversation_id=conv.id,
            message=Message(id="m-3", direction="in", text="thanks!", sent_at=datetime.now(UTC)),
        )
    )
    await screen.wait_for(f"[{short}] Li Wei: thanks!")

    keyboard.type(f"reply {conv.id[-6:]} you're welcome")
    assert (await gateway.expect(Reply)).text == "you're welcome"
    keyboard.type("reply face the facts")  # no conversation named: the line is the text
    reply = await gateway.expect(Reply)
    assert (reply.conversation_id, reply.text) == (conv.id, "face the facts")

    keyboard.type("thanks for waiting")  # no command: a reply in the current conversation
    reply = await gateway.expect(Reply)
    assert (reply.conversation_id, reply.text) == (conv.id, "thanks for waiting")
    keyboard.type("c")
    assert await gateway.expect(Close) == Close(conversation_id=conv.id)
    await screen.wait_for(f"[{short}] closed: closed by agent")


async def test_terminal_shows_errors_on_one_line(gateway: FakeGateway, keyboard: Keyboard) -> None:
    conv = conversation()
    gateway.open, gateway.broken = [conv], {conv.id}
    async with terminal(gateway, keyboard) as (screen, run):
        await screen.wait_for("1 open conversation(s)")
        keyboard.type(f"use {conv.id[-4:]}")
        keyboard.type("r too late now")
        await screen.wait_for(
            f"error [{conv.id[-4:]}] not sent: too late now; "
            "channel_error: 45015: reply window closed\n"
        )
        keyboard.close()  # end of input quits
        assert await asyncio.wait_for(run, WAIT_S) == 0


async def test_a_customers_rating_shows_on_one_line(
    gateway: FakeGateway, keyboard: Keyboard
) -> None:
    conv = conversation()
    gateway.open = [conv]
    async with terminal(gateway, keyboard) as (screen, run):
        await screen.wait_for("1 open conversation(s)")
        await gateway.send(CsatFrame(conversation_id=conv.id, score=4, scale=5, comment="快"))
        await screen.wait_for(f"[{conv.id[-4:]}] the customer rated it 4/5: 快\n")
        keyboard.close()
        assert await asyncio.wait_for(run, WAIT_S) == 0


async def test_offers_show_grade_transfer_note_and_leave_a_message(
    gateway: FakeGateway, keyboard: Keyboard
) -> None:
    conv = conversation()
    conv.grade, conv.leave_message = "A", True
    conv.transferred_from, conv.transfer_note = "bob", "refund promised"
    short = conv.id[-4:]
    async with terminal(gateway, keyboard) as (screen, _):
        await screen.wait_for("connected as Alice (alice)")
        await gateway.offer(conv)
        await screen.wait_for(
            f"OFFER {short}  webchat  Li Wei (v-42)  queue general  priority 5  grade A"
        )
        await screen.wait_for("LEAVE A MESSAGE")
        await screen.wait_for("transferred from bob: refund promised")
        keyboard.type("a")
        await screen.wait_for(f"ASSIGNED {short}  webchat  Li Wei (v-42)  queue general  grade A")
        assert screen.text.count("transferred from bob: refund promised") == 2


async def test_plain_text_without_a_conversation_is_not_sent(
    gateway: FakeGateway, keyboard: Keyboard
) -> None:
    first, second = conversation(), conversation()
    gateway.open = [first, second]
    async with terminal(gateway, keyboard) as (screen, run):
        await screen.wait_for("2 open conversation(s)")
        keyboard.type("hello there")  # two open, none current: which one is not guessed
        await screen.wait_for("not sent, no current conversation (use <conv> first)")
        keyboard.type(f"u {second.id[-4:]}")
        await screen.wait_for(f"current: {second.id[-4:]}")
        keyboard.type("hello there")
        reply = await gateway.expect(Reply)
        assert (reply.conversation_id, reply.text) == (second.id, "hello there")
        await screen.wait_for("sent: hello there")
        keyboard.type("u")  # the current one, with the reply just sent
        await screen.wait_for("alice: hello there")
        keyboard.close()
        assert await asyncio.wait_for(run, WAIT_S) == 0


async def test_a_canned_reply_from_a_pipe_is_sent_filled_in(
    gateway: FakeGateway, keyboard: Keyboard
) -> None:
    conv = conversation()
    gateway.open = [conv]
    gateway.canned = [
        CannedReply(
            id="greeting", title="Greeting", text="Hello {customer_name}, {agent_name} here"
        ),
        CannedReply(id="goodbye", title="Goodbye", text="Bye {customer_name}"),
        CannedReply(id="refund", title="Refund", text="3 days", queues=["billing"]),
    ]
    async with terminal(gateway, keyboard) as (screen, run):
        await screen.wait_for("1 open conversation(s)")
        keyboard.type("/g")  # two match: listed, nothing sent
        await screen.wait_for("/goodbye  Goodbye: Bye {customer_name}")
        keyboard.type("/ref")  # not for this queue
        await screen.wait_for("no canned reply matching 'ref'")
        keyboard.type("/gree")  # nobody edits a pipe's line: sent as it is
        reply = await gateway.expect(Reply)
        assert (reply.conversation_id, reply.text) == (conv.id, "Hello Li Wei, Alice here")
        keyboard.close()
        assert await asyncio.wait_for(run, WAIT_S) == 0


async def test_terminal_exits_2_on_a_bad_token(gateway: FakeGateway, keyboard: Keyboard) -> None:
    async with terminal(gateway, keyboard, "wrong") as (screen, run):
        assert await asyncio.wait_for(run, WAIT_S) == 2
        assert "refused the token" in screen.text


# Ids for typing.


def test_short_ids_are_unique_tails() -> None:
    assert short_id("c018b0a1e2f3", ["c018b0a1e2f3", "c018b0a1ffff"]) == "e2f3"
    assert short_id("c0abc1234", ["c0abc1234", "c0fff1234"]) == "c1234"
    assert short_id("c0abc1234", ["c0abc1234", "c01234fff"]) == "c1234"  # not inside either
    assert short_id("c1", ["c2"]) == "c1"


def test_matching_prefers_an_exact_id() -> None:
    assert matching("c1", ["c1", "c10"]) == ["c1"]
    assert matching("c1", ["c10", "c11"]) == ["c10", "c11"]
    assert matching("1234", ["c0abc1234", "c0ffff999"]) == ["c0abc1234"]
    assert matching("x", ["c10"]) == []


async def test_a_resync_welcome_replaces_the_desk_and_shows_no_message_twice(
    gateway: FakeGateway, keyboard: Keyboard
) -> None:
    gone, kept = conversation("c-gone-1"), conversation("c-kept-2")
    gateway.open = [gone, kept]
    async with terminal(gateway, keyboard) as (screen, run):
        await screen.wait_for("2 open conversation(s)")
        missed = Message(
            id="m-new", direction="in", text="sent during the outage", sent_at=datetime.now(UTC)
        )
        kept.messages.append(missed)
        gateway.open = [kept]
        await gateway.send(gateway.welcome())  # the gateway resyncing this socket
        await screen.wait_for("resynced as Alice")
        await screen.wait_for("1 open conversation(s)")
        # The same message live after the welcome that held it is not shown again.
        await gateway.send(MessageFrame(conversation_id=kept.id, message=missed))
        later = Message(id="m-later", direction="in", text="and later", sent_at=datetime.now(UTC))
        await gateway.send(MessageFrame(conversation_id=kept.id, message=later))
        await screen.wait_for("and later")
        keyboard.close()
        assert await asyncio.wait_for(run, WAIT_S) == 0
    assert screen.text.count("sent during the outage") == 1
    assert "reconnected" not in screen.text
