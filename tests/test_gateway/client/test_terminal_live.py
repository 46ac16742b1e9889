"""The terminal client at a terminal (its line editor, through terminal_screen.py) against a
real gateway on the suite's Redis, with customers on the web chat socket."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import aiohttp
import pytest
from harness import Client, agent, agent_client, customer, make_config, running
from terminal_screen import WAIT_S, terminal

from gateway.client import expand_canned


async def customer_reads(visitor: Client, text: str) -> None:
    """The web chat customer gets a message with this text (their own echoes are skipped)."""
    async with asyncio.timeout(WAIT_S):
        while (await visitor.expect("message"))["message"]["text"] != text:
            pass


@pytest.fixture
def config(tenant: str):
    return make_config(
        tenant,
        agents=[agent("alice", name="Alice"), agent("bob", name="Bob")],
        queues=[{"name": "general"}, {"name": "billing"}],
    )


async def test_a_message_arriving_mid_line_leaves_the_typed_text_intact(config, redis_url):
    """The customer writes while the agent types: the message shows above the line, the
    half-typed text is drawn again under it, and Enter sends the whole line as a reply (a
    line that is no command replies in the current conversation)."""
    async with (
        running(config, redis_url) as gw,
        customer(gw) as visitor,
        terminal(gw.ws_url("/agent/ws"), "tok-alice") as term,
    ):
        await term.screen.wait_for("connected as Alice (alice)")
        await visitor.send(type="message", text="where is my order?")
        await term.screen.wait_for("OFFER")
        term.line("a")
        await term.screen.wait_for("ASSIGNED")

        term.type("It left the ware")
        await term.screen.wait_for("It left the ware", after="ASSIGNED")
        await visitor.send(type="message", text="hello? anyone?")
        await term.screen.wait_for(": hello? anyone?")
        # Drawn again under the message, whole: nothing was printed into it.
        await term.screen.wait_for("> It left the ware", after=": hello? anyone?")
        assert "It left the ware: hello?" not in term.screen.text

        term.type("house today.\r")
        await term.screen.wait_for("sent: It left the warehouse today.")
        await customer_reads(visitor, "It left the warehouse today.")

        # The agent's own reply is in the thread at once, not only after a reconnect.
        term.line("u")
        await term.screen.wait_for("alice: It left the warehouse today.", after="current:")
        term.line("q")
        assert await term.exit_code() == 0


async def test_transfer_to_an_agent_and_to_a_queue_with_notes_shown(config, redis_url):
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        async with agent_client(gw, "bob") as bob:
            await visitor.send(type="message", text="I was charged twice")
            offer = await bob.expect("offer")
            await bob.send(type="accept", offer_id=offer["offer_id"])
            conv_id = (await bob.expect("assigned"))["conversation"]["id"]

            await bob.send(type="note", conversation_id=conv_id, text="a VIP: be quick")
            await bob.expect("note")
            async with terminal(gw.ws_url("/agent/ws"), "tok-alice") as term:
                await term.screen.wait_for("connected as Alice (alice)")
                await bob.send(
                    type="transfer",
                    conversation_id=conv_id,
                    to_agent="alice",
                    note="order 4471, refund the second charge",
                )
                # Alice sees whom it came from and the note before accepting.
                await term.screen.wait_for("OFFER")
                await term.screen.wait_for(
                    "transferred from bob: order 4471, refund the second charge", after="OFFER"
                )
                await term.screen.wait_for(": a VIP: be quick", after="OFFER")
                term.line("a")
                await term.screen.wait_for("ASSIGNED")
                await term.screen.wait_for("transferred from bob", after="ASSIGNED")
                await term.screen.wait_for("note by Bob at ", after="ASSIGNED")
                assert term.screen.text.count("refund the second charge") == 2  # not as a note
                term.line("t queue billing customer wants the refund on the card")
                await term.screen.wait_for("closed: transferred")
                offer = await bob.expect("offer")
                moved = offer["conversation"]
                assert (moved["id"], moved["queue"]) == (conv_id, "billing")
                assert moved["transfer_note"] == "customer wants the refund on the card"
                assert moved["transferred_from"] == "alice"

                # And to an agent by id, the conversation named by its short id.
                await bob.send(type="accept", offer_id=offer["offer_id"])
                await bob.expect("assigned")
                await bob.send(type="transfer", conversation_id=conv_id, to_agent="alice")
                await term.screen.wait_for("OFFER", after="closed: transferred")
                term.line("a")
                await term.screen.wait_for("ASSIGNED", after="closed: transferred")
                term.line(f"transfer {conv_id[-6:]} agent bob please call back")
                offer = await bob.expect("offer")
                assert offer["conversation"]["transfer_note"] == "please call back"
                term.line("q")
                assert await term.exit_code() == 0


async def test_the_token_may_come_from_the_environment(config, redis_url):
    """`zhongtai agent` reads ZHONGTAI_AGENT_TOKEN when --token is not given (so that it is
    not in `ps`); a --token given wins."""
    async with running(config, redis_url) as gw:
        url = gw.ws_url("/agent/ws")
        env = {**os.environ, "ZHONGTAI_AGENT_TOKEN": "tok-alice"}
        plain = ["-m", "gateway", "agent", "--url", url]
        for argv, expected in (
            (plain, "connected as Alice (alice)"),
            (
                [*plain, "--token", "tok-bob"],
                "connected as Bob (bob)",
            ),
        ):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *argv,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(process.communicate(b"l\nq\n"), WAIT_S * 2)
            assert process.returncode == 0, out.decode()
            assert expected in out.decode()
        del env["ZHONGTAI_AGENT_TOKEN"]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *plain,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), WAIT_S * 2)
        assert process.returncode == 2
        assert "ZHONGTAI_AGENT_TOKEN" in err.decode()


@pytest.fixture
def extras_config(tenant: str):
    return make_config(
        tenant,
        agents=[agent("alice", name="Alice")],
        queues=[{"name": "general"}, {"name": "billing"}],
        conversations={"close_reasons": ["resolved", "spam"]},
        canned_replies=[
            {"id": "greeting", "title": "Greeting", "text": GREETING},
            {
                "id": "refund-time",
                "title": "Refund timing",
                "text": "3 days",
                "queues": ["billing"],
            },
        ],
    )


GREETING = "This is {agent_name}, hello {customer_name}! How can I help?"


async def test_notes_canned_replies_close_reasons_and_history(extras_config, redis_url):
    async with (
        running(extras_config, redis_url) as gw,
        terminal(gw.ws_url("/agent/ws"), "tok-alice") as term,
    ):
        await term.screen.wait_for("close reasons: resolved, spam")
        async with customer(gw) as visitor:
            await visitor.send(type="message", text="my parcel is late")
            await term.screen.wait_for("OFFER")
            term.line("a")
            await term.screen.wait_for("ASSIGNED")

            term.line("n order 4471 is stuck at the depot")
            await term.screen.wait_for("note by Alice at ")
            await term.screen.wait_for(": order 4471 is stuck at the depot", after="note by")

            term.line("/")  # the general queue's: not the billing one
            end = await term.screen.wait_for("/greeting  Greeting: This is {agent_name}")
            assert "/refund-time" not in term.screen.text[:end]
            term.line("/gree")  # comes back filled in, to edit; Enter sends it
            expanded = expand_canned(GREETING, None, "Alice")
            short = re.findall(r"ASSIGNED (\w+)", term.screen.text)[-1]
            await term.screen.wait_for(f"> r {short} {expanded}", after="> /gree")
            assert "sent: This is" not in term.screen.text
            term.type("\r")
            await customer_reads(visitor, expanded)

            term.line("c")
            await term.screen.wait_for("with a reason: resolved, spam")
            term.line("c nonsense")
            await term.screen.wait_for("no close reason 'nonsense'; one of: resolved, spam")
            term.line("c res")
            await term.screen.wait_for("closed: closed_by_agent")
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{gw.admin_base}/metrics") as response,
            ):
                metrics = await response.text()
            assert re.search(r'conversations_closed_total\{[^}]*close_reason="resolved"', metrics)
            token = visitor.frames[0]["visitor_token"]

        async with customer(gw, token) as again:  # the same customer, some days later
            await again.send(type="message", text="it came, but broken")
            await term.screen.wait_for("OFFER", after="closed: closed_by_agent")
            term.line("a")
            await term.screen.wait_for("ASSIGNED", after="closed: closed_by_agent")
            term.line("history")
            await term.screen.wait_for("1 earlier conversation(s), newest first")
            await term.screen.wait_for("Alice, resolved", after="earlier conversation")
        term.line("q")
        assert await term.exit_code() == 0
